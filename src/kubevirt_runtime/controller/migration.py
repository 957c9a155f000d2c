"""What virt-controller does next for one VirtualMachineInstanceMigration: a pure function of the migration,
its VMI, its target pod and the other migrations (decide, then act: migration_controller.py only does I/O).

The phases, as upstream's pkg/virt-controller/watch/migration:
- "" -> Pending once the VMI can migrate (it runs, it is live migratable, no earlier migration of it is active);
  else Failed, saying why.
- Pending: the target launcher pod is created (same VMI, on another node: required anti-affinity to the pod the
  VMI runs in; the VMI's nodeSelector plus the migration's addedNodeSelector), then -> Scheduling. Waits while
  as many migrations as the cluster allows are already under way.
- Scheduling -> Scheduled once the target pod runs. A target pod that stays unschedulable longer than the
  unschedulable timeout (5 min; annotation kubevirt.io/migrationUnschedulablePodTimeoutSeconds), or pending
  longer than the catch-all timeout (15 min), is deleted and the migration fails.
- Scheduled: the VMI's status.migrationState names the migration, both nodes and pods, and the VMI gets the
  label kubevirt.io/migrationTargetNodeName: the target virt-handler takes over -> PreparingTarget.
- PreparingTarget -> TargetReady once the target handler published its address; -> Running once the source
  handler reports the start; -> Succeeded once the migration completed and the VMI's nodeName moved.
- Failed whenever the handlers report a failure, the target pod fails or vanishes, or the VMI ends. A failed
  migration's target pod is deleted; the VMI keeps running where it was.
- Deleting a migration cancels it: before the hand-off its target pod is deleted; after, the VMI's
  migrationState.abortRequested asks the source handler to abort. Its finalizer goes once nothing is left.
After a success the source pod (which completed) is deleted; the VMI's migration label goes in every case.
"""
from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field

from ..api import migration as m
from ..api.constants import VMIPhase
from ..api.status import get_condition

Phase = m.MigrationPhase
ACTIVE_PHASES = (Phase.SCHEDULING, Phase.SCHEDULED, Phase.PREPARING_TARGET, Phase.TARGET_READY, Phase.RUNNING)
POD_FINAL = ("Succeeded", "Failed")
ANOTHER_IN_PROGRESS = "VMI is not eligible for migration because another migration job is in progress."
DEFAULT_PARALLEL_PER_CLUSTER = 5  # upstream's parallelMigrationsPerCluster


@dataclass(frozen=True)
class Limits:
    parallel_per_cluster: int = DEFAULT_PARALLEL_PER_CLUSTER
    unschedulable_timeout: int = m.DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS
    pending_timeout: int = m.DEFAULT_PENDING_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Observed:
    migration: dict
    vmi: dict | None                      # None: no such VMI in the migration's namespace
    target_pods: tuple = ()               # the pods labeled with this migration's uid
    source_pod: dict | None = None        # the pod the VMI runs in
    earlier_active: bool = False          # an older migration of the same VMI is not final
    active_elsewhere: int = 0             # other migrations of the cluster in Scheduling .. Running
    now: float = 0.0
    limits: Limits = field(default_factory=Limits)


# -- actions (performed in order by migration_controller.py)

@dataclass(frozen=True)
class AddFinalizer:
    pass


@dataclass(frozen=True)
class SetStatus:
    status: dict


@dataclass(frozen=True)
class CreateTargetPod:
    pass


@dataclass(frozen=True)
class DeletePods:
    names: tuple
    why: str


@dataclass(frozen=True)
class HandOff:
    """Write the VMI's migrationState and label: the target virt-handler takes over."""
    state: dict
    target_node: str


@dataclass(frozen=True)
class RequestAbort:
    pass


@dataclass(frozen=True)
class ClearVMILabel:
    pass


@dataclass(frozen=True)
class RemoveFinalizer:
    pass


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Requeue:
    after: float


# -- helpers

def epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))


def rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _timeout(migration: dict, annotation: str, default: int) -> int:
    value = ((migration.get("metadata") or {}).get("annotations") or {}).get(annotation)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def vmi_state(vmi: dict | None) -> dict:
    return ((vmi or {}).get("status") or {}).get("migrationState") or {}


def handed_off(obs: Observed) -> bool:
    return vmi_state(obs.vmi).get("migrationUid") == obs.migration["metadata"]["uid"]


def with_phase(migration: dict, phase: str, now: float, **fields) -> dict:
    """The migration's status in `phase` (a transition timestamp recorded on change) plus `fields`."""
    status = dict(migration.get("status") or {})
    if status.get("phase") != phase:
        stamps = list(status.get("phaseTransitionTimestamps") or [])
        stamps.append({"phase": phase, "phaseTransitionTimestamp": rfc3339(now)})
        status["phaseTransitionTimestamps"] = stamps
    status["phase"] = phase
    status.update(fields)
    return status


def _fail(obs: Observed, reason: str, message: str, extra: tuple = ()) -> list:
    status = with_phase(obs.migration, Phase.FAILED, obs.now)
    if handed_off(obs):
        status["migrationState"] = vmi_state(obs.vmi)
    return [*extra, *_clear_label(obs), SetStatus(status), Event("Warning", reason, message)]


def _clear_label(obs: Observed) -> list:
    """The VMI's target-node label goes before the final phase is written: whoever sees the phase sees no label."""
    labels = (obs.vmi or {}).get("metadata", {}).get("labels") or {}
    return [ClearVMILabel()] if handed_off(obs) and m.TARGET_NODE_LABEL in labels else []


def _live_target_pods(obs: Observed) -> list[dict]:
    return [p for p in obs.target_pods if (p.get("status") or {}).get("phase") not in POD_FINAL]


def _pod_trouble(obs: Observed, pod: dict) -> str | None:
    """Why a target pod that does not run yet means the migration must fail (timeouts, failure), or None."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in POD_FINAL:
        return f"migration target pod {pod['metadata']['name']} ended ({phase}) before the migration started"
    created = epoch(pod["metadata"].get("creationTimestamp")) or obs.now
    scheduled = get_condition(pod.get("status"), "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        timeout = _timeout(obs.migration, m.UNSCHEDULABLE_TIMEOUT_ANNOTATION, obs.limits.unschedulable_timeout)
        since = epoch(scheduled.get("lastTransitionTime")) or created
        if obs.now - since >= timeout:
            return (f"migration target pod {pod['metadata']['name']} was unschedulable for {timeout}s: "
                    f"{scheduled.get('message') or 'no node can take it'}")
    timeout = _timeout(obs.migration, m.PENDING_TIMEOUT_ANNOTATION, obs.limits.pending_timeout)
    if phase == "Pending" and obs.now - created >= timeout:
        return f"migration target pod {pod['metadata']['name']} stayed pending for {timeout}s"
    return None


def _next_deadline(obs: Observed, pod: dict) -> float:
    """Seconds until the target pod's next timeout could fire (to requeue)."""
    created = epoch(pod["metadata"].get("creationTimestamp")) or obs.now
    scheduled = get_condition(pod.get("status"), "PodScheduled")
    deadlines = [created + _timeout(obs.migration, m.PENDING_TIMEOUT_ANNOTATION, obs.limits.pending_timeout)]
    if scheduled and scheduled.get("reason") == "Unschedulable":
        since = epoch(scheduled.get("lastTransitionTime")) or created
        deadlines.append(since + _timeout(obs.migration, m.UNSCHEDULABLE_TIMEOUT_ANNOTATION,
                                          obs.limits.unschedulable_timeout))
    return max(min(deadlines) - obs.now, 1.0)


def _pod_runs(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool((pod.get("spec") or {}).get("nodeName")) \
        and not pod["metadata"].get("deletionTimestamp")


def _names(pods) -> tuple:
    return tuple(p["metadata"]["name"] for p in pods)


# -- decide

def decide(obs: Observed) -> list:
    migration = obs.migration
    meta = migration["metadata"]
    phase = m.phase(migration)
    finalizers = meta.get("finalizers") or []
    if meta.get("deletionTimestamp"):
        return _deleting(obs, phase, finalizers)
    actions = [] if m.FINALIZER in finalizers else [AddFinalizer()]
    if phase in Phase.FINAL:
        return actions + _finished(obs, phase)
    return actions + _progress(obs, phase)


def _deleting(obs: Observed, phase: str, finalizers: list) -> list:
    actions = []
    live = _live_target_pods(obs)
    state = vmi_state(obs.vmi)
    migrating = handed_off(obs) and not state.get("completed") and not state.get("failed") \
        and (obs.vmi or {}).get("status", {}).get("phase") == VMIPhase.RUNNING
    if phase not in Phase.FINAL and migrating and state.get("startTimestamp"):
        if not state.get("abortRequested"):
            actions += [RequestAbort(), Event("Normal", "MigrationAbortRequested",
                                              "The migration was deleted: its abort is requested")]
        return actions  # the source handler reports how the abort ended; then the migration finishes
    if live:
        actions.append(DeletePods(_names(live), "the migration was deleted"))
    actions += _clear_label(obs)
    if not live and m.FINALIZER in finalizers:
        actions.append(RemoveFinalizer())
    return actions


def _finished(obs: Observed, phase: str) -> list:
    actions = []
    live = _live_target_pods(obs)
    if phase == Phase.FAILED and live:
        actions.append(DeletePods(_names(live), "the migration failed"))
    actions += _clear_label(obs)
    source = obs.source_pod
    if phase == Phase.SUCCEEDED and source is not None and (source.get("status") or {}).get("phase") == "Succeeded" \
            and not source["metadata"].get("deletionTimestamp"):
        actions.append(DeletePods(_names([source]), "its VMI migrated away"))
    return actions


def _progress(obs: Observed, phase: str) -> list:
    migration, vmi = obs.migration, obs.vmi
    uid = migration["metadata"]["uid"]
    if vmi is None:
        return _fail(obs, "FailedMigration", f"VMI {migration['spec'].get('vmiName')} does not exist")
    vmi_phase = (vmi.get("status") or {}).get("phase")
    live = _live_target_pods(obs)
    state = vmi_state(vmi)
    if vmi_phase in VMIPhase.FINAL or vmi["metadata"].get("deletionTimestamp"):
        return _fail(obs, "FailedMigration", f"VMI {vmi['metadata']['name']} ended or is being deleted",
                     (DeletePods(_names(live), "its VMI ended"),) if live else ())
    if handed_off(obs) and state.get("failed"):
        why = state.get("failureReason") or "the migration failed"
        return _fail(obs, "FailedMigration", f"Source node reported migration failed: {why}",
                     (DeletePods(_names(live), "the migration failed"),) if live else ())

    if phase == Phase.UNSET:
        if obs.earlier_active:
            return _fail(obs, "FailedMigration", ANOTHER_IN_PROGRESS)
        why = m.vmi_can_migrate(vmi)
        if why:
            return _fail(obs, "FailedMigration", f"Migration rejected: {why}")
        return [SetStatus(with_phase(migration, Phase.PENDING, obs.now))]

    if phase == Phase.PENDING:
        if obs.target_pods:
            return [SetStatus(with_phase(migration, Phase.SCHEDULING, obs.now))]
        if obs.active_elsewhere >= obs.limits.parallel_per_cluster:
            return [Requeue(5.0)]
        return [CreateTargetPod(), Event("Normal", "SuccessfulCreate", "Created migration target pod")]

    if not handed_off(obs):  # Scheduling or Scheduled: the target pod decides
        if not live:
            gone = obs.target_pods[0] if obs.target_pods else None
            why = _pod_trouble(obs, gone) if gone else "the migration target pod disappeared"
            return _fail(obs, "FailedMigration", why or "the migration target pod ended")
        pod = live[0]
        if not _pod_runs(pod):
            trouble = _pod_trouble(obs, pod)
            if trouble:
                return _fail(obs, "FailedMigration", trouble, (DeletePods(_names(live), trouble),))
            return [Requeue(_next_deadline(obs, pod))] if phase == Phase.SCHEDULING else \
                [SetStatus(with_phase(migration, Phase.SCHEDULING, obs.now))]
        if phase != Phase.SCHEDULED:
            return [SetStatus(with_phase(migration, Phase.SCHEDULED, obs.now))]
        node = pod["spec"]["nodeName"]
        source = (vmi.get("status") or {}).get("nodeName")
        handoff = {"migrationUid": uid, "sourceNode": source, "targetNode": node, "targetPod": pod["metadata"]["name"],
                   "mode": "PreCopy"}
        if obs.source_pod is not None:
            handoff["sourcePod"] = obs.source_pod["metadata"]["name"]
        # the VMI status is merge-patched: an earlier migration's fields (failed, completed, ...) must be nulled
        handoff.update({field: None for field in state if field not in handoff})
        return [HandOff(handoff, node), Event("Normal", "PreparingTarget",
                                              "Migration target pod is ready for preparation by virt-handler.")]

    # handed off: the handlers drive it; the phase follows what they report
    if not live and not state.get("completed"):
        return _fail(obs, "FailedMigration", "the migration target pod ended before the migration completed",
                     (RequestAbort(),) if state.get("startTimestamp") else ())
    fields = {"migrationState": state}
    step = _next_phase(phase, state, vmi)
    if step == Phase.SUCCEEDED:
        return [*_clear_label(obs), SetStatus(with_phase(migration, step, obs.now, **fields)),
                Event("Normal", "SuccessfulMigration", "Source node reported migration succeeded")]
    status = with_phase(migration, step, obs.now, **fields)
    return [SetStatus(status)] if status != (migration.get("status") or {}) else []


def _next_phase(phase: str, state: dict, vmi: dict) -> str:
    """One phase at a time, as upstream records them (a fast handler still shows every phase, in order)."""
    if phase == Phase.SCHEDULED:
        return Phase.PREPARING_TARGET
    if phase == Phase.PREPARING_TARGET and state.get("targetNodeAddress"):
        return Phase.TARGET_READY
    if phase == Phase.TARGET_READY and state.get("startTimestamp"):
        return Phase.RUNNING
    if phase == Phase.RUNNING and state.get("completed") and \
            (vmi.get("status") or {}).get("nodeName") == state.get("targetNode"):
        return Phase.SUCCEEDED
    return phase
