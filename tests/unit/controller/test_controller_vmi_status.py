import time

import pytest

from kubevirt_runtime.controller.vmi_status import (
    MAX_LAUNCHER_ATTEMPTS,
    desired_vmi_status,
    replacement_attempt,
    seconds_until_replacement,
)

NOW = "2025-01-01T00:00:00Z"


def vmi(phase=None, conditions=None):
    status = {}
    if phase:
        status["phase"] = phase
    if conditions:
        status["conditions"] = conditions
    return {"metadata": {"name": "v", "uid": "u"}, "status": status}


def pod(phase="Pending", node=None, ready=False, scheduled=None):
    conditions = []
    if ready:
        conditions.append({"type": "Ready", "status": "True"})
    if scheduled:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": scheduled, "message": "0/1 nodes"})
    spec = {"nodeName": node} if node else {}
    return {"metadata": {"name": "virt-launcher-v-abcde", "uid": "pod-uid"}, "spec": spec,
            "status": {"phase": phase, "conditions": conditions}}


def phases(status):
    return [t["phase"] for t in status.get("phaseTransitionTimestamps", [])]


def test_new_vmi_without_pod_is_pending():
    status, _ = desired_vmi_status(vmi(), None, NOW)
    assert status["phase"] == "Pending" and phases(status) == ["Pending"]
    assert status["conditions"][0]["reason"] == "PodNotExists"


def test_pod_created_means_scheduling_and_unschedulable_is_surfaced():
    status, _ = desired_vmi_status(vmi(), pod(scheduled="Unschedulable"), NOW)
    assert status["phase"] == "Scheduling" and phases(status) == ["Pending", "Scheduling"]
    cond = [c for c in status["conditions"] if c["type"] == "PodScheduled"][0]
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"


def test_running_pod_means_scheduled_with_node():
    status, events = desired_vmi_status(vmi("Scheduling"), pod("Running", node="node01"), NOW)
    assert status["phase"] == "Scheduled" and status["nodeName"] == "node01"
    assert status["activePods"] == {"pod-uid": "node01"}
    assert events[0][1] == "Scheduled"


def test_pod_failing_before_running_fails_the_vmi():
    status, events = desired_vmi_status(vmi("Scheduling"), pod("Failed"), NOW)
    assert status["phase"] == "Failed" and status["reason"] == "PodFailed"
    assert events[0][0] == "Warning"


def test_handler_phases_are_left_alone():
    status, _ = desired_vmi_status(vmi("Running"), pod("Running", node="n", ready=True), NOW)
    assert status["phase"] == "Running"
    assert [c for c in status["conditions"] if c["type"] == "Ready"][0]["status"] == "True"
    status, _ = desired_vmi_status(vmi("Succeeded"), pod("Succeeded", node="n"), NOW)
    assert status["phase"] == "Succeeded"


def test_pod_gone_after_scheduled_fails_the_vmi():
    status, _ = desired_vmi_status(vmi("Running"), None, NOW)
    assert status["phase"] == "Failed" and status["reason"] == "PodNotExists"


def test_pod_succeeded_waits_for_the_handler():
    status, _ = desired_vmi_status(vmi("Running"), pod("Succeeded", node="n"), NOW, pod_succeeded_grace_over=False)
    assert status["phase"] == "Running"
    status, _ = desired_vmi_status(vmi("Running"), pod("Succeeded", node="n"), NOW, pod_succeeded_grace_over=True)
    assert status["phase"] == "Failed"


def test_no_change_is_stable():
    first, _ = desired_vmi_status(vmi(), pod(), NOW)
    again, events = desired_vmi_status({"metadata": {"name": "v"}, "status": first}, pod(), "2030-01-01T00:00:00Z")
    assert again == first and events == []


def stages(status):
    return {e["stage"]: e["time"] for e in status.get("startupTimeline", [])}


def test_startup_stages_ride_along_with_the_phase_writes():
    created = dict(vmi(), metadata={"name": "v", "uid": "u", "creationTimestamp": "2025-01-01T00:00:00Z"})
    just_created = pod()
    status, _ = desired_vmi_status(created, just_created, NOW, pod_created_at="2025-01-01T00:00:00.250Z")
    assert stages(status) == {"VMICreated": "2025-01-01T00:00:00Z", "PodCreated": "2025-01-01T00:00:00.250Z"}
    # binding alone changes nothing (no write of its own) ...
    bound = pod(node="node01")
    bound["status"]["conditions"].append({"type": "PodScheduled", "status": "True",
                                          "lastTransitionTime": "2025-01-01T00:00:01Z"})
    scheduling = dict(created, status=status)
    assert desired_vmi_status(scheduling, bound, NOW)[0] == status
    # ... the scheduler's time is recorded with Scheduled
    bound["status"]["phase"] = "Running"
    status, _ = desired_vmi_status(scheduling, bound, NOW)
    assert status["phase"] == "Scheduled"
    assert stages(status)["PodScheduled"] == "2025-01-01T00:00:01Z"
    assert list(stages(status)) == ["VMICreated", "PodCreated", "PodScheduled"]


@pytest.mark.parametrize("vmi_phase,pod_status,annotation,expected", [
    ("Scheduling", {"phase": "Failed", "reason": "UnexpectedAdmissionError"}, None, 1),
    ("Pending", {"phase": "Failed", "reason": "OutOfcpu"}, "2", 3),
    ("Scheduling", {"phase": "Failed", "reason": "OutOfcpu"}, str(MAX_LAUNCHER_ATTEMPTS - 1), None),  # no more
    ("Scheduling", {"phase": "Pending"}, None, None),
    ("Scheduled", {"phase": "Failed", "reason": "UnexpectedAdmissionError"}, None, None),  # a guest may have run
    ("Scheduling", {"phase": "Failed", "reason": "Error", "containerStatuses": [{"state": {"running": {}}}]},
     None, None),
    ("Scheduling", {"phase": "Failed", "reason": "Error", "initContainerStatuses": [
        {"state": {"terminated": {"exitCode": 1, "startedAt": "2026-11-30T06:00:00Z"}}}]}, None, None),
    ("Scheduling", {"phase": "Failed", "reason": "OutOfcpu", "containerStatuses": [{"state": {"waiting": {}}}]},
     None, 1),
    ("Scheduling", {"phase": "Failed"}, None, None),  # the kubelet always says why it rejected a pod
])
def test_only_a_pod_rejected_before_it_started_is_replaced(vmi_phase, pod_status, annotation, expected):
    pod = {"metadata": {"name": "p", "annotations": {"kubevirt.io/launcher-attempt": annotation} if annotation else {}},
           "status": pod_status}
    assert replacement_attempt({"metadata": {}, "status": {"phase": vmi_phase}}, pod) == expected


@pytest.mark.parametrize("attempt,age,left", [(1, 0, 5.0), (1, 6, -1.0), (2, 4, 6.0), (3, 0, 20.0), (4, 0, 30.0),
                                              (11, 29, 1.0)])
def test_a_replacement_backs_off_from_the_rejected_pods_creation(attempt, age, left):
    created = 1_800_000_000
    pod = {"metadata": {"creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))}}
    assert seconds_until_replacement(pod, attempt, created + age) == left
