"""Pure pieces of the VM controller: what should run, printableStatus, conditions, crash-loop backoff,
and when a state change request is done. Semantics follow upstream KubeVirt's VM controller."""
import copy
import datetime
import random

from ..api.constants import (
    REQUEST_GENERATION_KEY,
    ConditionType,
    PrintableStatus,
    RunStrategy,
    StateChangeAction,
    VMIPhase,
    vmi_is_final,
)
from ..api.defaults import effective_run_strategy
from ..api.status import format_time, get_condition, parse_time, set_condition

MAX_CRASH_LOOP_BACKOFF_SECONDS = 300  # upstream's default cap
_MIN_BACKOFF_INTERVAL = 10
_SYNCED_FROM_VMI_IGNORED = (ConditionType.READY, ConditionType.FAILURE, "RestartRequired")


# -- state change requests

def first_request(vm):
    requests = (vm.get("status") or {}).get("stateChangeRequests") or []
    return requests[0] if requests else None


def has_start_request(vm):
    """A Start request is first in line and still wanted."""
    request = first_request(vm)
    return bool(request and request.get("action") == StateChangeAction.START and not start_superseded(vm, request))


def start_superseded(vm, request):
    """A Start queued before the VM was set to Halted (e.g. the Start of a restart, then a stop): the
    user's later spec change wins. Requests without a recorded generation are taken as they are."""
    recorded = (request.get("data") or {}).get(REQUEST_GENERATION_KEY)
    if recorded is None or not str(recorded).isdigit():
        return False
    return effective_run_strategy(vm) == RunStrategy.HALTED and int(recorded) < vm["metadata"].get("generation", 0)


def has_stop_request_for(vm, vmi):
    request = first_request(vm)
    return bool(request and vmi and request.get("action") == StateChangeAction.STOP
                and request.get("uid") == vmi["metadata"].get("uid"))


def first_request_done(vm, vmi, stopping=False):
    """A Start is done once an instance exists (and is not being stopped); a Stop once the instance it
    named is gone."""
    request = first_request(vm)
    if request is None:
        return False
    if request.get("action") == StateChangeAction.START:
        if start_superseded(vm, request):
            return True
        return vmi is not None and not vmi["metadata"].get("deletionTimestamp") and not stopping
    if request.get("action") == StateChangeAction.STOP:
        return vmi is None or (request.get("uid") is not None and request.get("uid") != vmi["metadata"].get("uid"))
    return True  # unknown action: drop it rather than block the queue


# -- crash-loop backoff

def start_backoff_seconds(fail_count, max_delay=MAX_CRASH_LOOP_BACKOFF_SECONDS, rand=random.randint):
    """Seconds before the next start after `fail_count` consecutive failed starts: interval * count^2
    plus up to 50% jitter, capped at max_delay (interval = max(10s, max_delay/30))."""
    fail_count = max(fail_count, 1)
    interval = max(max_delay // 30, _MIN_BACKOFF_INTERVAL)
    delay = interval * fail_count ** 2
    delay += rand(0, delay // 2)
    return min(delay, max_delay)


def was_running(vmi):
    return any(t.get("phase") == VMIPhase.RUNNING for t in ((vmi or {}).get("status") or {}).get(
        "phaseTransitionTimestamps") or [])


def failed_early(vmi):
    """The instance ended without ever running: a failed start."""
    return vmi is not None and vmi_is_final(vmi) and not was_running(vmi)


def sync_start_failure(status, vm, vmi, now):
    strategy = effective_run_strategy(vm)
    if was_running(vmi) or strategy not in (RunStrategy.ALWAYS, RunStrategy.RERUN_ON_FAILURE, RunStrategy.ONCE):
        status.pop("startFailure", None)
        return
    if not failed_early(vmi):
        return
    previous = status.get("startFailure") or {}
    if previous.get("lastFailedVMIUID") == vmi["metadata"]["uid"]:
        return
    count = previous.get("consecutiveFailCount", 0) + 1
    retry_after = now + datetime.timedelta(seconds=start_backoff_seconds(count))
    status["startFailure"] = {"consecutiveFailCount": count, "lastFailedVMIUID": vmi["metadata"]["uid"],
                              "retryAfterTimestamp": format_time(retry_after)}


def backoff_left(vm, now):
    """Seconds until a start is allowed again (0: now)."""
    failure = (vm.get("status") or {}).get("startFailure") or {}
    if not failure.get("retryAfterTimestamp"):
        return 0.0
    return max(0.0, (parse_time(failure["retryAfterTimestamp"]) - now).total_seconds())


# -- what should run

def is_set_to_start(vm, vmi):
    strategy = effective_run_strategy(vm)
    if strategy == RunStrategy.ALWAYS:
        return True
    if strategy == RunStrategy.MANUAL:
        return not has_stop_request_for(vm, vmi) if vmi else has_start_request(vm)
    if strategy == RunStrategy.RERUN_ON_FAILURE:
        return (vmi.get("status") or {}).get("phase") != VMIPhase.SUCCEEDED if vmi else True
    if strategy == RunStrategy.ONCE:
        return vmi is None
    return False


# -- printable status

def printable_status(vm, vmi, start_expected, stop_expected, volumes=None):
    """First match wins, in upstream's order. `volumes`: vm_storage.VolumeFacts of the VM's DataVolumes/PVCs."""
    vmi_status = (vmi or {}).get("status") or {}
    phase = vmi_status.get("phase") or VMIPhase.UNSET
    final = vmi is not None and vmi_is_final(vmi)
    paused = (get_condition(vmi_status, ConditionType.PAUSED) or {}).get("status") == "True"
    scheduled_cond = get_condition(vmi_status, ConditionType.POD_SCHEDULED) or {}
    synced = get_condition(vmi_status, ConditionType.SYNCHRONIZED) or {}
    if vm["metadata"].get("deletionTimestamp"):
        return PrintableStatus.TERMINATING
    if vmi is not None and not final and (vmi["metadata"].get("deletionTimestamp") or stop_expected):
        return PrintableStatus.STOPPING
    if vmi is not None and phase == VMIPhase.RUNNING:
        return PrintableStatus.PAUSED if paused else PrintableStatus.RUNNING
    if synced.get("status") == "False" and synced.get("reason") == "FailedPvcNotFound":
        return PrintableStatus.PVC_NOT_FOUND
    if volumes is not None and volumes.datavolume_error:
        return PrintableStatus.DATA_VOLUME_ERROR
    if scheduled_cond.get("status") == "False" and scheduled_cond.get("reason") == "Unschedulable":
        return PrintableStatus.UNSCHEDULABLE
    if volumes is not None and volumes.provisioning:
        return PrintableStatus.PROVISIONING
    if volumes is not None and volumes.unbound_claim and is_set_to_start(vm, vmi):
        return PrintableStatus.WAITING_FOR_VOLUME_BINDING
    if synced.get("status") == "False" and synced.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
        return synced["reason"]
    if vmi is None and start_expected:
        return PrintableStatus.STARTING
    if vmi is not None and phase in (VMIPhase.UNSET, VMIPhase.PENDING, VMIPhase.SCHEDULING, VMIPhase.SCHEDULED):
        return PrintableStatus.STARTING
    if (vmi is None or final) and not start_expected:
        failure = (vm.get("status") or {}).get("startFailure") or {}
        if failure.get("consecutiveFailCount", 0) > 0 and effective_run_strategy(vm) in (
                RunStrategy.ALWAYS, RunStrategy.RERUN_ON_FAILURE, RunStrategy.ONCE):
            return PrintableStatus.CRASH_LOOP_BACK_OFF
    if vmi is not None:
        if final:
            return PrintableStatus.STOPPED
    elif not start_expected:
        return PrintableStatus.STOPPED
    return PrintableStatus.UNKNOWN


# -- conditions

def sync_conditions(status, vmi, sync_error, now):
    """Ready mirrors the VMI's Ready (False/VMINotExists without one); Failure reports a sync error; the
    VMI's other conditions are copied."""
    previous = {c.get("type"): c for c in status.get("conditions") or []}
    status["conditions"] = []
    if vmi is None:
        _keep(status, previous, ConditionType.READY, "False", "VMINotExists", "VMI does not exist", now)
    else:
        ready = get_condition(vmi.get("status"), ConditionType.READY)
        if ready is None:
            _keep(status, previous, ConditionType.READY, "False", "VMIConditionMissing",
                  "VMI is missing the Ready condition", now)
        else:
            status["conditions"].append(copy.deepcopy(ready))
        for cond in (vmi.get("status") or {}).get("conditions") or []:
            if cond.get("type") not in _SYNCED_FROM_VMI_IGNORED:
                status["conditions"].append(copy.deepcopy(cond))
    if sync_error:
        _keep(status, previous, ConditionType.FAILURE, "True", sync_error[0], sync_error[1], now)


def _keep(status, previous, cond_type, value, reason, message, now):
    holder = {"conditions": [previous[cond_type]] if cond_type in previous else []}
    set_condition(holder, cond_type, value, reason, message, now)
    status["conditions"].append(holder["conditions"][0])


def desired_vm_status(vm, vmi, start_expected, stop_expected, sync_error=None, now=None, volumes=None):
    """The VM status to write after a sync (pure); `volumes` as printable_status takes them."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = format_time(now)
    status = copy.deepcopy(vm.get("status") or {})
    status["created"] = vmi is not None
    status["ready"] = vmi is not None and (get_condition(vmi.get("status"), ConditionType.READY) or {}).get(
        "status") == "True"
    if status.get("runStrategy") or status["created"]:
        status["runStrategy"] = effective_run_strategy(vm)
    if first_request_done(vm, vmi, stopping=stop_expected):
        status["stateChangeRequests"] = status["stateChangeRequests"][1:]
    if not status.get("stateChangeRequests"):
        status.pop("stateChangeRequests", None)
    sync_start_failure(status, vm, vmi, now)
    sync_conditions(status, vmi, sync_error, stamp)
    generation = (vmi or {}).get("metadata", {}).get("annotations", {}).get("kubevirt.io/vm-generation")
    if generation and generation.isdigit():
        status["observedGeneration"] = int(generation)
    status["desiredGeneration"] = vm["metadata"].get("generation", 0)
    view = dict(vm, status=status)
    status["printableStatus"] = printable_status(view, vmi, start_expected, stop_expected, volumes)
    return status
