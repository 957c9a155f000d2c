"""The VMI controller's reconcile loop against an in-memory API: exactly one launcher pod per VMI, the
phases up to Scheduled, failure when the pod goes away, and cleanup on delete."""
import pytest

from kubevirt_runtime.api.constants import NODE_NAME_LABEL, VMI_FINALIZER
from kubevirt_runtime.controller.vmi_controller import VMIController, pod_indexers
from kubevirt_runtime.controller.vmi_status import MAX_LAUNCHER_ATTEMPTS
from tests.unit.fakeapi import FakeInformer, FakeRecorder, FakeResource

KEY = "ns/v1"


@pytest.fixture
def api():
    vmis = FakeResource("VirtualMachineInstance", "kubevirt.io/v1")
    pods = FakeResource("Pod", "v1", FakeInformer(pod_indexers()))
    recorder = FakeRecorder()
    return VMIController(vmis, pods, vmis.informer, pods.informer, recorder), vmis, pods, recorder


def new_vmi(vmis, **spec_extra):
    spec = {"domain": {"devices": {}, "memory": {"guest": "64Mi"}}, **spec_extra}
    return vmis.create({"metadata": {"name": "v1", "namespace": "ns"}, "spec": spec}, "ns")


def settle(controller, rounds=5):
    for _ in range(rounds):
        controller.sync(KEY)


def only_pod(pods):
    assert len(pods.objects) == 1
    return next(iter(pods.objects.values()))


def run_pod(pods, node="node01"):
    pod = only_pod(pods)
    name = pod["metadata"]["name"]
    pods.patch(name, {"spec": {"nodeName": node}}, "ns")
    pods.patch_status(name, {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
                      "ns")


def phase(vmis):
    return (vmis.get("v1", "ns").get("status") or {}).get("phase")


def test_one_pod_per_vmi_and_pending(api):
    controller, vmis, pods, recorder = api
    vmi = new_vmi(vmis)
    settle(controller)
    pod = only_pod(pods)
    assert pod["metadata"]["labels"]["kubevirt.io/created-by"] == vmi["metadata"]["uid"]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == vmi["metadata"]["uid"]
    assert VMI_FINALIZER in vmis.get("v1", "ns")["metadata"]["finalizers"]
    assert phase(vmis) == "Scheduling" or phase(vmis) == "Pending"
    assert recorder.reasons().count("SuccessfulCreate") == 1


def test_no_second_pod_while_the_pod_cache_lags(api):
    controller, vmis, pods, _ = api
    new_vmi(vmis)
    pods.informer.paused = True
    settle(controller)
    pods.informer.resume()
    settle(controller)
    assert pods.verbs().count("create") == 1


def test_a_pod_made_by_a_racing_replica_is_not_duplicated(api):
    """The pod name comes from the VMI uid, so the API server refuses a second one (AlreadyExists)."""
    controller, vmis, pods, _ = api
    new_vmi(vmis)
    other = VMIController(vmis, pods, vmis.informer, pods.informer, FakeRecorder())
    pods.informer.paused = True  # this controller's cache will not show the other replica's pod
    other.sync(KEY)
    vmis.patch_status("v1", {"status": None}, "ns")  # as if this replica read the VMI before the other wrote
    controller.sync(KEY)
    pods.informer.resume()
    settle(controller)
    assert pods.verbs().count("create") == 2 and len(pods.objects) == 1


def test_a_racing_replicas_pod_missing_from_this_cache_does_not_fail_the_vmi(api):
    """The other replica created the pod and wrote Scheduling; this replica's pod cache has not seen the pod
    yet. Only the API server's answer, not the lagging cache, may say the pod is gone."""
    controller, vmis, pods, _ = api
    new_vmi(vmis)
    other = VMIController(vmis, pods, vmis.informer, pods.informer, FakeRecorder())
    pods.informer.paused = True
    other.sync(KEY)
    assert phase(vmis) == "Scheduling"
    controller.sync(KEY)
    assert phase(vmis) == "Scheduling" and len(pods.objects) == 1
    pods.informer.resume()
    settle(controller)
    assert phase(vmis) == "Scheduling"


def test_scheduled_once_the_pod_runs_on_a_node(api):
    controller, vmis, pods, recorder = api
    new_vmi(vmis)
    settle(controller)
    run_pod(pods)
    settle(controller)
    vmi = vmis.get("v1", "ns")
    assert vmi["status"]["phase"] == "Scheduled" and vmi["status"]["nodeName"] == "node01"
    assert vmi["metadata"]["labels"][NODE_NAME_LABEL] == "node01"
    assert [t["phase"] for t in vmi["status"]["phaseTransitionTimestamps"]][-1] == "Scheduled"
    assert "Scheduled" in recorder.reasons()


def test_a_deleted_launcher_pod_fails_the_vmi_with_a_reason(api):
    controller, vmis, pods, recorder = api
    new_vmi(vmis)
    settle(controller)
    run_pod(pods)
    settle(controller)
    vmis.patch_status("v1", {"status": {"phase": "Running"}}, "ns")
    pods.remove(next(iter(pods.objects)))
    settle(controller)
    vmi = vmis.get("v1", "ns")
    assert vmi["status"]["phase"] == "Failed" and vmi["status"]["reason"] == "PodNotExists"
    assert pods.verbs().count("create") == 1  # a final VMI never gets a new pod


def reject_pod(pods, reason="UnexpectedAdmissionError"):
    """What the kubelet does to a pod it will not admit: Failed, with no container ever started."""
    pod = next(p for p in pods.objects.values() if (p.get("status") or {}).get("phase") != "Failed")
    pods.patch(pod["metadata"]["name"], {"spec": {"nodeName": "node01"}}, "ns")
    pods.patch_status(pod["metadata"]["name"], {"status": {
        "phase": "Failed", "reason": reason,
        "message": "Allocate failed due to no healthy devices present; cannot allocate unhealthy devices"}}, "ns")
    return pod["metadata"]["name"]


def test_a_pod_the_kubelet_rejected_before_it_started_is_replaced_and_the_vmi_lives_on(api):
    controller, vmis, pods, recorder = api
    uid = new_vmi(vmis)["metadata"]["uid"]
    settle(controller)
    first = reject_pod(pods)
    settle(controller)
    second = only_pod(pods)
    assert second["metadata"]["name"] != first and second["metadata"]["labels"]["kubevirt.io/created-by"] == uid
    assert second["metadata"]["annotations"]["kubevirt.io/launcher-attempt"] == "1"
    assert phase(vmis) == "Scheduling" and "PodRejected" in recorder.reasons()
    run_pod(pods)
    settle(controller)
    assert phase(vmis) == "Scheduled" and vmis.get("v1", "ns")["metadata"]["uid"] == uid


def test_a_pod_that_started_and_failed_is_not_replaced(api):
    controller, vmis, pods, _ = api
    new_vmi(vmis)
    settle(controller)
    name = reject_pod(pods, reason=None)
    pods.patch_status(name, {"status": {"containerStatuses": [
        {"name": "compute", "state": {"terminated": {"exitCode": 1, "startedAt": "2026-11-30T06:00:00Z"}}}]}}, "ns")
    settle(controller)
    assert phase(vmis) == "Failed" and vmis.get("v1", "ns")["status"]["reason"] == "PodFailed"
    assert pods.verbs().count("create") == 1


def test_the_vmi_fails_after_the_kubelet_rejected_every_attempt(api):
    controller, vmis, pods, _ = api
    new_vmi(vmis)
    settle(controller)
    for _ in range(MAX_LAUNCHER_ATTEMPTS):
        reject_pod(pods)
        settle(controller)
    assert pods.verbs().count("create") == MAX_LAUNCHER_ATTEMPTS
    assert phase(vmis) == "Failed" and vmis.get("v1", "ns")["status"]["reason"] == "PodFailed"


def test_deleting_the_vmi_removes_the_pod_first(api):
    controller, vmis, pods, _ = api
    new_vmi(vmis)
    settle(controller)
    vmis.delete("v1", "ns")
    settle(controller)
    assert not pods.objects
    assert not vmis.objects  # our finalizer was the last one


def test_an_invalid_vmi_gets_no_pod_and_says_why(api):
    controller, vmis, pods, recorder = api
    new_vmi(vmis, volumes=[{"name": "a", "containerDisk": {"image": "x"}},
                           {"name": "a", "containerDisk": {"image": "y"}}])
    settle(controller)
    assert not pods.objects
    synced = [c for c in vmis.get("v1", "ns")["status"]["conditions"] if c["type"] == "Synchronized"][0]
    assert synced["status"] == "False" and "volumes" in synced["message"]
    assert "FailedCreate" in recorder.reasons()
