"""The VMI status virt-controller wants, as a pure function of the VMI and its launcher pod.

virt-controller owns the phases up to Scheduled (Pending: no pod yet; Scheduling: the pod exists but is
not running; Scheduled: the pod runs on a node) and the Ready condition. Running, Succeeded and Failed
from the domain belong to virt-handler; the controller only marks a VMI Failed when its pod failed or
disappeared (before or after Scheduled), and never touches a final VMI.
"""
import copy

from ..api import timeline
from ..api.constants import LAUNCHER_ATTEMPT_ANNOTATION, ConditionType, VMIPhase
from ..api.status import get_condition, remove_condition, set_condition, set_phase

POD_FINAL = ("Succeeded", "Failed")
MAX_LAUNCHER_ATTEMPTS = 12  # pods per VMI the kubelet may reject (about 5 minutes of backoff) before the VMI fails
REPLACEMENT_BACKOFF_SECONDS = (5.0, 30.0)  # first delay (doubling per attempt), cap
_NOT_STARTED = (VMIPhase.UNSET, VMIPhase.PENDING, VMIPhase.SCHEDULING)


def rejected_before_start(pod):
    """The kubelet failed the pod, saying why, without starting any of its containers (admission: e.g. a
    device plugin that was restarting, UnexpectedAdmissionError; or OutOfcpu after a scheduling race)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Failed" or not status.get("reason"):
        return False
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        for state in (container.get("state") or {}, container.get("lastState") or {}):
            if "running" in state or (state.get("terminated") or {}).get("startedAt"):
                return False
    return True


def launcher_attempt(pod):
    try:
        return int(((pod.get("metadata") or {}).get("annotations") or {}).get(LAUNCHER_ATTEMPT_ANNOTATION) or 0)
    except ValueError:
        return 0


def replacement_attempt(vmi, pod):
    """The attempt number of the pod that replaces `pod`, or None when it is not to be replaced: only a pod
    the kubelet rejected before it started, while the VMI was not scheduled yet (no guest ever ran), and
    only MAX_LAUNCHER_ATTEMPTS times; after that the VMI fails as for any failed pod."""
    phase = (vmi.get("status") or {}).get("phase") or VMIPhase.UNSET
    if pod is None or phase not in _NOT_STARTED or pod["metadata"].get("deletionTimestamp") \
            or not rejected_before_start(pod):
        return None
    attempt = launcher_attempt(pod) + 1
    return attempt if attempt < MAX_LAUNCHER_ATTEMPTS else None


def seconds_until_replacement(pod, attempt, now):
    """A rejection usually has a cause that lasts a while (virt-handler restarting with its device plugin), so
    replacement `attempt` waits 5 s, 10 s, 20 s, then 30 s each after the rejected pod was created."""
    first, cap = REPLACEMENT_BACKOFF_SECONDS
    created = timeline.parse_stamp(pod["metadata"].get("creationTimestamp")) or now
    return min(first * 2 ** (attempt - 1), cap) - (now - created)


def pod_is_ready(pod):
    cond = get_condition(pod.get("status"), "Ready")
    return bool(cond and cond.get("status") == "True")


def pod_finished_at(pod):
    """When the compute container terminated (RFC 3339), if it did."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == "compute":
            terminated = (status.get("state") or {}).get("terminated") or {}
            return terminated.get("finishedAt")
    return None


def desired_vmi_status(vmi, pod, now, pod_succeeded_grace_over=True, pod_created_at=None):
    """(new status, [(event type, reason, message)]). `pod` is None when the VMI has no pod (and the
    caller's expectations say the cache is current). `pod_succeeded_grace_over` tells whether a pod that
    exited 0 has waited long enough for virt-handler to record the guest's end. `pod_created_at` is when the
    caller's create of `pod` returned (milliseconds; else the pod's creationTimestamp is the stage's time)."""
    status = copy.deepcopy(vmi.get("status") or {})
    events = []
    phase = status.get("phase") or VMIPhase.UNSET
    if phase in VMIPhase.FINAL:
        _ready(status, vmi, None, now)
        return status, events
    pod_phase = (pod or {}).get("status", {}).get("phase")
    before_scheduled = phase in _NOT_STARTED
    if pod is None:
        if phase in (VMIPhase.UNSET, VMIPhase.PENDING):
            set_phase(status, VMIPhase.PENDING, now)
        else:
            _fail(status, "PodNotExists", "the virt-launcher pod disappeared", now, events)
    elif pod_phase == "Failed" or (pod_phase == "Succeeded" and (before_scheduled or pod_succeeded_grace_over)):
        reason = "PodFailed" if pod_phase == "Failed" else "PodSucceeded"
        _fail(status, reason, f"the virt-launcher pod {pod['metadata']['name']} ended ({pod_phase}) "
                              f"{'before the VMI was scheduled' if before_scheduled else 'while the VMI was active'}",
              now, events)
    elif before_scheduled:
        node = (pod.get("spec") or {}).get("nodeName")
        if pod_phase == "Running" and node and not pod["metadata"].get("deletionTimestamp"):
            if phase == VMIPhase.UNSET:
                set_phase(status, VMIPhase.PENDING, now)
            set_phase(status, VMIPhase.SCHEDULED, now)
            _timeline(status, vmi, pod, pod_created_at, scheduled=True)
            status["nodeName"] = node
            status["activePods"] = {pod["metadata"]["uid"]: node}
            remove_condition(status, ConditionType.POD_SCHEDULED)
            events.append(("Normal", "Scheduled", f"VMI scheduled to node {node}"))
        else:
            if phase == VMIPhase.UNSET:
                set_phase(status, VMIPhase.PENDING, now)
            set_phase(status, VMIPhase.SCHEDULING, now)
            _timeline(status, vmi, pod, pod_created_at)
            scheduled = get_condition(pod.get("status"), "PodScheduled")
            if scheduled and scheduled.get("status") == "False":
                set_condition(status, ConditionType.POD_SCHEDULED, "False", scheduled.get("reason", ""),
                              scheduled.get("message", ""), now)
            else:
                remove_condition(status, ConditionType.POD_SCHEDULED)
    _ready(status, vmi, pod, now)
    return status, events


def _timeline(status, vmi, pod, pod_created_at, scheduled=False):
    """The stages up to the pod's scheduling (api/timeline.py). They ride along with the phase writes
    (Scheduling, Scheduled) and never cost a write of their own: PodScheduled carries the scheduler's time,
    so recording it with Scheduled loses nothing."""
    stamps = {"VMICreated": vmi["metadata"].get("creationTimestamp"),
              "PodCreated": pod_created_at or pod["metadata"].get("creationTimestamp")}
    condition = get_condition(pod.get("status"), "PodScheduled")
    if scheduled and condition and condition.get("status") == "True":
        stamps["PodScheduled"] = condition.get("lastTransitionTime")
    timeline.record(status, stamps)


def _fail(status, reason, message, now, events):
    set_phase(status, VMIPhase.FAILED, now)
    status["reason"] = reason
    events.append(("Warning", reason, f"VMI failed: {message}"))


def _ready(status, vmi, pod, now):
    phase = status.get("phase")
    if phase == VMIPhase.RUNNING and pod is not None and pod_is_ready(pod):
        set_condition(status, ConditionType.READY, "True", "", "", now)
    elif phase in VMIPhase.FINAL:
        set_condition(status, ConditionType.READY, "False", "PodTerminating" if pod else "PodNotExists",
                      "the VMI is in a final phase", now)
    elif pod is None:
        set_condition(status, ConditionType.READY, "False", "PodNotExists", "the virt-launcher pod does not exist",
                      now)
    elif phase == VMIPhase.RUNNING:
        set_condition(status, ConditionType.READY, "False", "PodNotReady", "the virt-launcher pod is not ready", now)
    else:
        set_condition(status, ConditionType.READY, "False", "GuestNotRunning", "the guest is not running yet", now)
