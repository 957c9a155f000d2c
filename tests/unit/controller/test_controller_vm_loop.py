"""The VM controller's reconcile loop against an in-memory API (as upstream's vm_test.go uses a fake
clientset): what it creates, deletes and writes for each runStrategy and state change request."""
import pytest

from kubevirt_runtime.api.constants import REQUEST_GENERATION_KEY, VM_CONTROLLER_FINALIZER, VMI_FINALIZER
from kubevirt_runtime.controller.vm_controller import VMController
from tests.unit.fakeapi import FakeRecorder, FakeResource

KEY = "ns/vm1"


@pytest.fixture
def api():
    vms = FakeResource("VirtualMachine", "kubevirt.io/v1")
    vmis = FakeResource("VirtualMachineInstance", "kubevirt.io/v1")
    recorder = FakeRecorder()
    controller = VMController(vms, vmis, vms.informer, vmis.informer, recorder)
    return controller, vms, vmis, recorder


def new_vm(vms, strategy="Always", requests=None):
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "vm1", "namespace": "ns"},
          "spec": {"runStrategy": strategy,
                   "template": {"metadata": {"labels": {"app": "demo"}},
                                "spec": {"domain": {"devices": {}, "memory": {"guest": "64Mi"}}}}}}
    created = vms.create(vm, "ns")
    if requests:
        vms.patch_status("vm1", {"status": {"stateChangeRequests": requests}}, "ns")
    return created


def settle(controller, rounds=8):
    for _ in range(rounds):
        controller.sync(KEY)


def set_vmi_phase(vmis, phase):
    """As virt-handler writes it: the phase and its transition."""
    status = vmis.get("vm1", "ns").get("status") or {}
    transitions = status.get("phaseTransitionTimestamps", []) + [
        {"phase": phase, "phaseTransitionTimestamp": "2026-01-01T00:00:00Z"}]
    vmis.patch_status("vm1", {"status": {"phase": phase, "phaseTransitionTimestamps": transitions}}, "ns")


def finish_vmi_deletion(vmis):
    """What the VMI controller does once the launcher pod is gone."""
    vmi = vmis.get("vm1", "ns")
    vmis.patch("vm1", {"metadata": {"finalizers": [f for f in vmi["metadata"]["finalizers"] if f != VMI_FINALIZER]}},
               "ns")


def vm_status(vms):
    return vms.get("vm1", "ns").get("status") or {}


def test_always_creates_one_owned_vmi_and_reports_starting(api):
    controller, vms, vmis, recorder = api
    vm = new_vm(vms)
    settle(controller)
    assert vmis.verbs().count("create") == 1
    vmi = vmis.get("vm1", "ns")
    assert vmi["metadata"]["ownerReferences"][0]["uid"] == vm["metadata"]["uid"]
    assert set(vmi["metadata"]["finalizers"]) == {VM_CONTROLLER_FINALIZER, VMI_FINALIZER}
    assert vmi["metadata"]["labels"] == {"app": "demo"}
    assert VM_CONTROLLER_FINALIZER in vms.get("vm1", "ns")["metadata"]["finalizers"]
    assert vm_status(vms)["printableStatus"] == "Starting" and vm_status(vms)["created"] is True


def test_no_second_vmi_while_the_cache_has_not_seen_the_first(api):
    controller, vms, vmis, _ = api
    new_vm(vms)
    vmis.informer.paused = True
    settle(controller, 3)
    assert vmis.verbs().count("create") == 1
    vmis.informer.resume()
    settle(controller, 3)
    assert vmis.verbs().count("create") == 1


def test_halted_stops_the_vmi(api):
    controller, vms, vmis, recorder = api
    new_vm(vms)
    settle(controller)
    set_vmi_phase(vmis, "Running")
    vms.patch("vm1", {"spec": {"runStrategy": "Halted"}}, "ns")
    settle(controller)
    assert vmis.get("vm1", "ns")["metadata"].get("deletionTimestamp")
    assert vm_status(vms)["printableStatus"] == "Stopping"
    finish_vmi_deletion(vmis)
    settle(controller)
    assert "ns/vm1" not in vmis.objects
    assert vm_status(vms)["printableStatus"] == "Stopped"
    assert "SuccessfulDelete" in recorder.reasons()


def request_start(vm):
    return {"action": "Start", "data": {REQUEST_GENERATION_KEY: str(vm["metadata"]["generation"])}}


def test_restart_then_stop_leaves_the_vm_stopped(api):
    """Defect: the Start of a restart outlived the user's stop and turned the VM back on."""
    controller, vms, vmis, _ = api
    vm = new_vm(vms)
    settle(controller)
    set_vmi_phase(vmis, "Running")
    uid = vmis.get("vm1", "ns")["metadata"]["uid"]
    vm = vms.get("vm1", "ns")
    vms.patch_status("vm1", {"status": {"stateChangeRequests": [{"action": "Stop", "uid": uid},
                                                                 request_start(vm)]}}, "ns")
    vms.patch("vm1", {"spec": {"runStrategy": "Halted"}}, "ns")  # virtctl stop, right after restart
    settle(controller)
    finish_vmi_deletion(vmis)
    settle(controller)
    assert "ns/vm1" not in vmis.objects
    assert vms.get("vm1", "ns")["spec"]["runStrategy"] == "Halted"
    assert "stateChangeRequests" not in vm_status(vms)
    assert vmis.verbs().count("create") == 1


def test_halted_honours_a_start_request_made_after_the_last_spec_change(api):
    """Upstream's start-paused path: a Start request on a Halted VM turns it on."""
    controller, vms, vmis, _ = api
    vm = new_vm(vms, "Halted")
    vms.patch_status("vm1", {"status": {"stateChangeRequests": [request_start(vm)]}}, "ns")
    settle(controller)
    assert vms.get("vm1", "ns")["spec"]["runStrategy"] == "Always"
    assert vmis.verbs().count("create") == 1


def test_a_start_request_without_a_recorded_generation_is_taken_as_is(api):
    controller, vms, vmis, _ = api
    new_vm(vms, "Halted", requests=[{"action": "Start"}])
    settle(controller)
    assert vms.get("vm1", "ns")["spec"]["runStrategy"] == "Always"


def test_restart_under_always_replaces_the_vmi(api):
    controller, vms, vmis, _ = api
    vm = new_vm(vms)
    settle(controller)
    set_vmi_phase(vmis, "Running")
    old_uid = vmis.get("vm1", "ns")["metadata"]["uid"]
    vms.patch_status("vm1", {"status": {"stateChangeRequests": [{"action": "Stop", "uid": old_uid},
                                                                 request_start(vm)]}}, "ns")
    settle(controller)
    finish_vmi_deletion(vmis)
    settle(controller)
    assert vmis.get("vm1", "ns")["metadata"]["uid"] != old_uid
    assert "stateChangeRequests" not in vm_status(vms)


def test_manual_follows_requests_only(api):
    controller, vms, vmis, _ = api
    vm = new_vm(vms, "Manual")
    settle(controller)
    assert not vmis.objects
    vms.patch_status("vm1", {"status": {"stateChangeRequests": [request_start(vm)]}}, "ns")
    settle(controller)
    assert "ns/vm1" in vmis.objects and "stateChangeRequests" not in vm_status(vms)
    set_vmi_phase(vmis, "Succeeded")
    settle(controller)
    assert vmis.verbs().count("create") == 1  # a finished instance is not restarted


def test_rerun_on_failure_restarts_a_failed_vmi_but_not_a_succeeded_one(api):
    controller, vms, vmis, _ = api
    new_vm(vms, "RerunOnFailure")
    settle(controller)
    set_vmi_phase(vmis, "Running")
    set_vmi_phase(vmis, "Failed")
    settle(controller)
    finish_vmi_deletion(vmis)
    settle(controller)
    assert vmis.verbs().count("create") == 2
    set_vmi_phase(vmis, "Running")
    set_vmi_phase(vmis, "Succeeded")
    settle(controller)
    finish_vmi_deletion(vmis)
    settle(controller)
    assert vmis.verbs().count("create") == 2


def test_always_restarts_a_failed_vmi_with_crash_loop_backoff(api):
    controller, vms, vmis, _ = api
    new_vm(vms)
    settle(controller)
    set_vmi_phase(vmis, "Failed")  # never ran: a failed start
    settle(controller)
    finish_vmi_deletion(vmis)
    settle(controller)
    status = vm_status(vms)
    assert status["startFailure"]["consecutiveFailCount"] == 1
    assert status["printableStatus"] == "CrashLoopBackOff"
    assert vmis.verbs().count("create") == 1  # the next start waits for the backoff


def test_deleting_the_vm_deletes_its_vmi_then_releases_the_vm(api):
    controller, vms, vmis, _ = api
    new_vm(vms)
    settle(controller)
    vms.delete("vm1", "ns")
    settle(controller)
    assert vmis.get("vm1", "ns")["metadata"].get("deletionTimestamp")
    finish_vmi_deletion(vmis)
    settle(controller)
    assert not vmis.objects and not vms.objects


def test_a_foreign_vmi_with_the_vms_name_is_reported_not_adopted(api):
    controller, vms, vmis, _ = api
    vmis.put({"metadata": {"name": "vm1", "namespace": "ns"}, "spec": {}, "status": {"phase": "Running"}})
    new_vm(vms)
    with pytest.raises(RuntimeError, match="not owned by this VM"):
        controller.sync(KEY)
    failure = [c for c in vm_status(vms)["conditions"] if c["type"] == "Failure"]
    assert failure and failure[0]["reason"] == "FailedCreate"
    assert vmis.verbs().count("create") == 0
