import datetime

import pytest

from kubevirt_runtime.controller.vm_controller import build_vmi, firmware_uuid
from kubevirt_runtime.controller.vm_status import (
    backoff_left,
    desired_vm_status,
    first_request_done,
    is_set_to_start,
    printable_status,
    start_backoff_seconds,
)

NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


def vm(strategy="Always", deleting=False, status=None, running=None):
    spec = {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"domain": {"devices": {}, "memory": {
        "guest": "64Mi"}}}}}
    if running is None:
        spec["runStrategy"] = strategy
    else:
        spec["running"] = running
    meta = {"name": "vm1", "namespace": "ns", "uid": "vm-uid", "generation": 3}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "spec": spec, "status": status or {}}


def vmi(phase=None, uid="vmi-uid", ready=None, paused=False, deleting=False, ran=False, extra_conditions=()):
    status = {"conditions": []}
    if phase:
        status["phase"] = phase
    if ready is not None:
        status["conditions"].append({"type": "Ready", "status": ready})
    if paused:
        status["conditions"].append({"type": "Paused", "status": "True"})
    status["conditions"].extend(extra_conditions)
    if ran:
        status["phaseTransitionTimestamps"] = [{"phase": "Running", "phaseTransitionTimestamp": "x"}]
    meta = {"name": "vm1", "uid": uid, "annotations": {"kubevirt.io/vm-generation": "2"}}
    if deleting:
        meta["deletionTimestamp"] = "x"
    return {"metadata": meta, "status": status}


@pytest.mark.parametrize("the_vm, the_vmi, start, stop, expected", [
    (vm(), None, False, False, "Stopped"),
    (vm(), None, True, False, "Starting"),
    (vm(), vmi("Pending"), False, False, "Starting"),
    (vm(), vmi("Scheduled"), False, False, "Starting"),
    (vm(), vmi("Running"), False, False, "Running"),
    (vm(), vmi("Running", paused=True), False, False, "Paused"),
    (vm(), vmi("Running"), False, True, "Stopping"),
    (vm(), vmi("Running", deleting=True), False, False, "Stopping"),
    (vm(deleting=True), vmi("Running"), False, False, "Terminating"),
    (vm(), vmi("Succeeded"), False, False, "Stopped"),
    (vm(), vmi("Scheduling", extra_conditions=[{"type": "PodScheduled", "status": "False",
                                                 "reason": "Unschedulable"}]), False, False, "ErrorUnschedulable"),
    (vm(status={"startFailure": {"consecutiveFailCount": 2}}), None, False, False, "CrashLoopBackOff"),
    (vm("Manual", status={"startFailure": {"consecutiveFailCount": 2}}), None, False, False, "Stopped"),
    (vm(), vmi("Unknown"), False, False, "Unknown"),
])
def test_printable_status(the_vm, the_vmi, start, stop, expected):
    assert printable_status(the_vm, the_vmi, start, stop) == expected


def test_is_set_to_start():
    assert is_set_to_start(vm("Always"), None)
    assert not is_set_to_start(vm("Halted"), None)
    assert is_set_to_start(vm(running=True), None)
    assert not is_set_to_start(vm("Manual"), None)
    assert is_set_to_start(vm("Manual", status={"stateChangeRequests": [{"action": "Start"}]}), None)
    assert not is_set_to_start(vm("RerunOnFailure"), vmi("Succeeded"))
    assert is_set_to_start(vm("RerunOnFailure"), vmi("Failed"))
    assert is_set_to_start(vm("Once"), None) and not is_set_to_start(vm("Once"), vmi("Succeeded"))


def test_state_change_requests_are_trimmed_when_done():
    stop = vm(status={"stateChangeRequests": [{"action": "Stop", "uid": "vmi-uid"}, {"action": "Start"}]})
    assert not first_request_done(stop, vmi("Running"))
    assert first_request_done(stop, None)
    assert first_request_done(stop, vmi("Pending", uid="new"))
    start = vm(status={"stateChangeRequests": [{"action": "Start"}]})
    assert not first_request_done(start, None)
    assert first_request_done(start, vmi("Pending"))
    assert not first_request_done(start, vmi("Failed"), stopping=True)
    status = desired_vm_status(stop, None, False, False, now=NOW)
    assert status["stateChangeRequests"] == [{"action": "Start"}]


def test_backoff_grows_quadratically_and_caps():
    no_jitter = lambda lo, hi: 0  # noqa: E731
    assert [start_backoff_seconds(n, rand=no_jitter) for n in (1, 2, 3, 4, 5, 6)] == [10, 40, 90, 160, 250, 300]
    assert 10 <= start_backoff_seconds(1) <= 15
    assert start_backoff_seconds(50) == 300


def test_failed_start_records_start_failure_and_running_clears_it():
    status = desired_vm_status(vm(), vmi("Failed"), False, False, now=NOW)
    failure = status["startFailure"]
    assert failure["consecutiveFailCount"] == 1 and failure["lastFailedVMIUID"] == "vmi-uid"
    assert status["printableStatus"] == "CrashLoopBackOff"
    left = backoff_left({"status": status}, NOW)
    assert 10 <= left <= 15
    again = desired_vm_status(vm(status=status), vmi("Failed"), False, False, now=NOW)
    assert again["startFailure"]["consecutiveFailCount"] == 1  # same VMI counted once
    second = desired_vm_status(vm(status=status), vmi("Failed", uid="second"), False, False, now=NOW)
    assert second["startFailure"]["consecutiveFailCount"] == 2
    cleared = desired_vm_status(vm(status=second), vmi("Running", uid="third", ran=True), False, False, now=NOW)
    assert "startFailure" not in cleared


def test_status_fields_and_conditions():
    status = desired_vm_status(vm(), vmi("Running", ready="True", paused=True), False, False, now=NOW)
    assert status["created"] and status["ready"] and status["runStrategy"] == "Always"
    assert status["printableStatus"] == "Paused"
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Paused"]
    assert status["observedGeneration"] == 2 and status["desiredGeneration"] == 3
    stopped = desired_vm_status(vm(status=status), None, False, False, sync_error=("FailedCreate", "boom"), now=NOW)
    assert not stopped["created"] and not stopped["ready"]
    assert [(c["type"], c["status"], c["reason"]) for c in stopped["conditions"]] == [
        ("Ready", "False", "VMINotExists"), ("Failure", "True", "FailedCreate")]


def test_status_is_stable_without_changes():
    first = desired_vm_status(vm(), None, False, False, now=NOW)
    later = desired_vm_status(vm(status=first), None, False, False, now=NOW + datetime.timedelta(hours=1))
    assert later == first


def test_build_vmi_from_template():
    built = build_vmi(vm())
    meta = built["metadata"]
    assert meta["name"] == "vm1" and meta["labels"] == {"a": "b"}
    assert meta["ownerReferences"][0]["uid"] == "vm-uid"
    assert meta["finalizers"] == ["kubevirt.io/virtualMachineControllerFinalize", "foregroundDeleteVirtualMachine"]
    assert meta["annotations"]["kubevirt.io/vm-generation"] == "3"
    assert built["spec"]["domain"]["firmware"]["uuid"] == firmware_uuid("vm1")
    assert built["spec"]["networks"] == [{"name": "default", "pod": {}}]
