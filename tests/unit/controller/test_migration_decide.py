"""The migration controller's decisions, table by table (controller/migration.py is pure)."""
import pytest

from kubevirt_runtime.api import migration as m
from kubevirt_runtime.controller import migration as d
from kubevirt_runtime.controller.launcher_pod import render_launcher_pod
from kubevirt_runtime.controller.migration_pod import render_target_pod

NOW = 1_800_000_000.0
P = m.MigrationPhase


def stamp(offset=0):
    return d.rfc3339(NOW + offset)


def migration(phase="", deleting=False, finalizers=(m.FINALIZER,), annotations=None, uid="mig-1", name="mig"):
    meta = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1", "finalizers": list(finalizers),
            "creationTimestamp": stamp(-100), "annotations": annotations or {}}
    if deleting:
        meta["deletionTimestamp"] = stamp()
    return {"metadata": meta, "spec": {"vmiName": "vm1"}, "status": {"phase": phase} if phase else {}}


def vmi(phase="Running", node="node01", state=None, migratable=True, labels=None):
    status = {"phase": phase, "nodeName": node, "conditions": [
        {"type": "LiveMigratable", "status": "True" if migratable else "False", "reason": "DisksNotLiveMigratable",
         "message": "cannot migrate VMI: volume 'data' is a persistentVolumeClaim"}]}
    if state:
        status["migrationState"] = state
    return {"metadata": {"name": "vm1", "namespace": "ns", "uid": "vmi-1", "resourceVersion": "7",
                         "labels": labels or {}}, "spec": {}, "status": status}


def pod(name="virt-launcher-vm1-tgt", phase="Running", node="node02", unschedulable_since=None, created=-60):
    status = {"phase": phase}
    if unschedulable_since is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/2 nodes are available",
                                 "lastTransitionTime": stamp(unschedulable_since)}]
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": stamp(created)},
            "spec": {"nodeName": node if phase == "Running" else None}, "status": status}


def decide(mig, the_vmi, targets=(), source=None, **kw):
    return d.decide(d.Observed(mig, the_vmi, tuple(targets), source, now=NOW, **kw))


def kinds(actions):
    return [type(a).__name__ for a in actions]


def phase_of(actions):
    return next((a.status["phase"] for a in actions if isinstance(a, d.SetStatus)), None)


@pytest.mark.parametrize("the_vmi,kw,phase,message", [
    (vmi(), {}, P.PENDING, None),
    (None, {}, P.FAILED, "does not exist"),
    (vmi(phase="Scheduled"), {}, P.FAILED, "is not running"),
    (vmi(migratable=False), {}, P.FAILED, "persistentVolumeClaim"),
    (vmi(), {"earlier_active": True}, P.FAILED, "another migration job is in progress"),
])
def test_a_new_migration_is_accepted_only_for_a_running_migratable_vmi(the_vmi, kw, phase, message):
    actions = decide(migration(), the_vmi, **kw)
    assert phase_of(actions) == phase
    if message:
        assert any(isinstance(a, d.Event) and message in a.message for a in actions)


def test_the_finalizer_comes_first():
    assert kinds(decide(migration(finalizers=()), vmi()))[0] == "AddFinalizer"


def test_pending_creates_the_target_pod_unless_the_cluster_is_busy():
    assert "CreateTargetPod" in kinds(decide(migration(P.PENDING), vmi()))
    assert kinds(decide(migration(P.PENDING), vmi(), active_elsewhere=5)) == ["Requeue"]
    assert phase_of(decide(migration(P.PENDING), vmi(), [pod(phase="Pending")])) == P.SCHEDULING


def test_a_running_target_pod_is_scheduled_then_handed_to_the_target_handler():
    assert phase_of(decide(migration(P.SCHEDULING), vmi(), [pod()])) == P.SCHEDULED
    source = pod("virt-launcher-vm1-src", node="node01")
    actions = decide(migration(P.SCHEDULED), vmi(), [pod()], source)
    handoff = next(a for a in actions if isinstance(a, d.HandOff))
    assert handoff.target_node == "node02"
    assert handoff.state == {"migrationUid": "mig-1", "sourceNode": "node01", "targetNode": "node02",
                             "targetPod": "virt-launcher-vm1-tgt", "sourcePod": "virt-launcher-vm1-src",
                             "mode": "PreCopy"}


def test_the_handoff_clears_what_an_earlier_migration_left_in_the_vmi():
    earlier = {"migrationUid": "mig-0", "sourceNode": "node01", "targetNode": "node02", "failed": True,
               "failureReason": "the target node's migration proxy did not answer", "endTimestamp": stamp(-50)}
    actions = decide(migration(P.SCHEDULED), vmi(state=earlier), [pod()])
    state = next(a for a in actions if isinstance(a, d.HandOff)).state
    assert state["migrationUid"] == "mig-1"
    assert state["failed"] is None and state["failureReason"] is None and state["endTimestamp"] is None
    handed = vmi(state={k: v for k, v in state.items() if v is not None})
    assert "DeletePods" not in kinds(decide(migration(P.SCHEDULED), handed, [pod()]))


def test_an_unschedulable_target_times_out_and_is_deleted():
    waiting = decide(migration(P.SCHEDULING), vmi(), [pod(phase="Pending", unschedulable_since=-30)])
    assert kinds(waiting) == ["Requeue"] and 269 <= waiting[0].after <= 271
    late = decide(migration(P.SCHEDULING), vmi(), [pod(phase="Pending", unschedulable_since=-301)])
    assert phase_of(late) == P.FAILED and "DeletePods" in kinds(late)
    custom = migration(P.SCHEDULING, annotations={m.UNSCHEDULABLE_TIMEOUT_ANNOTATION: "20"})
    assert phase_of(decide(custom, vmi(), [pod(phase="Pending", unschedulable_since=-30)])) == P.FAILED


def test_after_the_handoff_the_phase_follows_the_handlers():
    base = {"migrationUid": "mig-1", "sourceNode": "node01", "targetNode": "node02"}
    cases = [
        (P.SCHEDULED, {}, P.PREPARING_TARGET),
        (P.PREPARING_TARGET, {"targetNodeAddress": "10.244.1.5"}, P.TARGET_READY),
        (P.TARGET_READY, {"targetNodeAddress": "10.244.1.5", "startTimestamp": stamp()}, P.RUNNING),
        # one phase per step, even when the handlers were faster: every phase is recorded, in order
        (P.SCHEDULED, {"targetNodeAddress": "10.244.1.5", "startTimestamp": stamp()}, P.PREPARING_TARGET),
        (P.PREPARING_TARGET, {"targetNodeAddress": "10.244.1.5", "startTimestamp": stamp()}, P.TARGET_READY),
    ]
    for before, extra, phase in cases:
        actions = decide(migration(before), vmi(state={**base, **extra}), [pod()])
        assert phase_of(actions) == phase
        written = next(a for a in actions if isinstance(a, d.SetStatus)).status
        assert written["migrationState"]["migrationUid"] == "mig-1"
    done = {**base, "startTimestamp": stamp(), "completed": True}
    assert phase_of(decide(migration(P.RUNNING), vmi(state=done), [pod()])) == P.RUNNING  # nodeName did not move yet
    assert phase_of(decide(migration(P.RUNNING), vmi(node="node02", state=done), [pod()])) == P.SUCCEEDED
    # the target-node label goes before Succeeded is written: a reader of Succeeded never sees it
    labeled = decide(migration(P.RUNNING), vmi(node="node02", state=done, labels={m.TARGET_NODE_LABEL: "node02"}),
                     [pod()])
    assert kinds(labeled)[:2] == ["ClearVMILabel", "SetStatus"]


def test_a_reported_failure_fails_the_migration_and_removes_the_target():
    state = {"migrationUid": "mig-1", "failed": True, "failureReason": "no progress", "completed": True}
    actions = decide(migration(P.RUNNING), vmi(state=state), [pod()])
    assert phase_of(actions) == P.FAILED and "DeletePods" in kinds(actions)
    assert any("no progress" in a.message for a in actions if isinstance(a, d.Event))


def test_a_finished_migration_cleans_up():
    state = {"migrationUid": "mig-1", "completed": True, "targetNode": "node02"}
    labels = {m.TARGET_NODE_LABEL: "node02"}
    source = pod("virt-launcher-vm1-src", phase="Succeeded", node="node01")
    actions = decide(migration(P.SUCCEEDED), vmi(node="node02", state=state, labels=labels), [pod()], source)
    assert kinds(actions) == ["ClearVMILabel", "DeletePods"]
    failed = decide(migration(P.FAILED), vmi(state={**state, "failed": True}, labels=labels), [pod()])
    assert kinds(failed) == ["DeletePods", "ClearVMILabel"]


def test_deleting_cancels():
    # before the handoff: the target pod goes, then the finalizer
    assert kinds(decide(migration(P.SCHEDULING, deleting=True), vmi(), [pod()])) == ["DeletePods"]
    assert kinds(decide(migration(P.SCHEDULING, deleting=True), vmi(), [])) == ["RemoveFinalizer"]
    # while it runs: an abort request, and nothing else until the source handler reports
    running = {"migrationUid": "mig-1", "startTimestamp": stamp(), "targetNode": "node02"}
    assert kinds(decide(migration(P.RUNNING, deleting=True), vmi(state=running), [pod()])) == \
        ["RequestAbort", "Event"]
    asked = {**running, "abortRequested": True}
    assert kinds(decide(migration(P.RUNNING, deleting=True), vmi(state=asked), [pod()])) == []


def test_the_target_pod_is_the_vmis_on_another_node():
    the_vmi = vmi()
    the_vmi["spec"] = {"domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}},
                       "nodeSelector": {"zone": "a"}}
    mig = migration()
    mig["spec"]["addedNodeSelector"] = {"zone": "b", "disk": "ssd"}
    target = render_target_pod(the_vmi, mig)
    assert target["metadata"]["name"].startswith("virt-launcher-vm1-")
    assert target["metadata"]["labels"][m.JOB_UID_LABEL] == "mig-1"
    assert target["spec"]["nodeSelector"] == {"zone": "a", "disk": "ssd"}  # the VMI's own keys win
    term = target["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {"kubevirt.io/created-by": "vmi-1"}
    # the source's libvirt connects to the target's daemon; an ordinary launcher embeds the QEMU driver
    (compute,) = [c for c in target["spec"]["containers"] if c["name"] == "compute"]
    assert compute["command"][-1] == "--libvirt-daemon"
    assert "--libvirt-daemon" not in render_launcher_pod(the_vmi)["spec"]["containers"][0]["command"]
