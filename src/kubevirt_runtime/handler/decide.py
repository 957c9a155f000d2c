"""What virt-handler does next for one VMI: a pure function of the VMI, what the handler knows of its
launcher, and where the locator says that launcher is.

As upstream's handler sync: decide first, then act. The loop in controller.py performs the actions
in order and never decides anything itself.

A launcher is declared gone only on positive evidence:
- its pod terminated (the pod's phase says how), or the pod is absent from a synced cache while the
  VMI is Running (it was deleted);
- or its pod is Running but the launcher's socket is missing or refuses MAX_MISSES times in a row.
An unsynced cache, a pod that is still starting, or a Scheduled VMI whose pod the cache has not seen
yet only ever lead to a retry.
"""
from __future__ import annotations

from dataclasses import dataclass

from kubevirt_runtime.api.constants import DEFAULT_GRACE_PERIOD_SECONDS, NODE_NAME_LABEL, VMIPhase
from kubevirt_runtime.api.volumes import hotpluggable_names

from . import migration as mig
from .hotplug import HotplugView
from .network.plan import needs_setup

MAX_MISSES = 3
MISS_RETRY_SECONDS = 1.0
STARTING_RETRY_SECONDS = 0.5


# -- what the handler knows of a VMI's launcher (a snapshot of its registry entry)

@dataclass(frozen=True)
class LauncherView:
    watching: bool = False      # a subscription to the launcher's domain events is open
    domain: dict | None = None  # the launcher's last pushed domain state
    gone: bool = False          # the launcher ended without reporting the guest's end
    gone_outcome: str | None = None  # how its pod ended, when known (Succeeded / Failed)
    stopping: bool = False      # a shutdown or kill was already sent
    misses: int = 0             # consecutive failed connects while its pod was Running


# -- where the locator says the launcher is

class Where:
    UNSYNCED = "unsynced"    # the pod cache has not synced: nothing can be concluded
    READY = "ready"          # the pod runs and its socket exists
    NO_SOCKET = "no-socket"  # the pod runs but its socket does not exist
    STARTING = "starting"    # the pod exists and has not started running
    ENDED = "ended"          # the pod terminated
    ABSENT = "absent"        # no pod in the synced cache


@dataclass(frozen=True)
class Lookup:
    where: str
    path: str | None = None
    outcome: str | None = None  # the pod's final phase, for ENDED


# -- actions, performed in order by the loop

@dataclass(frozen=True)
class Watch:
    path: str


@dataclass(frozen=True)
class CountMiss:
    pass


@dataclass(frozen=True)
class MarkGone:
    outcome: str | None


@dataclass(frozen=True)
class Retry:
    after: float


@dataclass(frozen=True)
class SetupNetwork:
    """Wire the launcher pod's network namespace for the guest (phase 1, handler/network); before Sync."""


@dataclass(frozen=True)
class Sync:
    pass


@dataclass(frozen=True)
class Shutdown:
    grace_seconds: int


@dataclass(frozen=True)
class Kill:
    pass


@dataclass(frozen=True)
class WriteStatus:
    pass


# hotplugged volumes (handler/hotplug.py): mount into the launcher pod, attach to the domain, and back

@dataclass(frozen=True)
class MountVolume:
    volume: str
    source: str


@dataclass(frozen=True)
class AttachVolume:
    volume: str


@dataclass(frozen=True)
class DetachVolume:
    volume: str


@dataclass(frozen=True)
class UnmountVolume:
    volume: str


def decide(vmi: dict, node_name: str, view: LauncherView, lookup: Lookup | None,
           mview: mig.MigrationView | None = None, hotplug: HotplugView | None = None) -> list:
    """The actions for one VMI. `lookup` is only consulted when no subscription is open; `mview` is what the
    handler has for live migrations (handler/migration.py decides those actions); `hotplug` is what this node
    has of the VMI's hotplugged volumes (None: hotplug is not handled here)."""
    meta, status = vmi["metadata"], vmi.get("status") or {}
    phase = status.get("phase")
    mview = mview or mig.MigrationView()
    role = mig.role(vmi, node_name)
    if role == mig.TARGET:
        target = mig.decide_target(vmi, view, lookup or Lookup(Where.UNSYNCED), mview,
                                   lambda found: _connect(VMIPhase.SCHEDULED, view, found))
        # the target launcher needs the pod network before it can take the domain
        if target and isinstance(target[0], mig.PrepareTarget) and needs_setup(vmi):
            return [SetupNetwork(), *target]
        return target
    if phase in VMIPhase.FINAL:
        live = view.watching and view.domain and not view.domain.get("final")
        # e.g. the controller failed the VMI: never leave its guest running
        actions = [Kill()] if live and not view.gone and not view.stopping else []
        return actions + _unmount_all(hotplug)
    if phase not in (VMIPhase.SCHEDULED, VMIPhase.RUNNING):
        return []
    node = status.get("nodeName") or (meta.get("labels") or {}).get(NODE_NAME_LABEL)
    if node not in (None, node_name):
        return []
    if mig.departed(view.domain):  # the domain left for the migration's target: the VMI did not end
        fields = mig.source_fields(vmi, view.domain)
        uid = mig.state(vmi).get("migrationUid")
        note = mig.departure_note(view.domain) if fields.get("completed") else ""
        return ([mig.WriteMigrationState(fields, note)] if fields else []) + \
            ([mig.StopSourceProxy(uid)] if uid in mview.source_proxies else [])
    if view.gone or (view.domain or {}).get("final"):
        return _unmount_all(hotplug) + [WriteStatus()]
    if not view.watching:
        return _connect(phase, view, lookup or Lookup(Where.UNSYNCED))
    if view.domain is None:
        return []  # the launcher's first pushed state requeues the VMI
    deleting = bool(meta.get("deletionTimestamp"))
    if deleting and not view.stopping:
        return [Shutdown(_grace_seconds(vmi)), WriteStatus()]
    if view.domain.get("status") == "Missing" and phase == VMIPhase.SCHEDULED and not deleting:
        return [SetupNetwork(), Sync(), WriteStatus()] if needs_setup(vmi) else [Sync(), WriteStatus()]
    if role == mig.SOURCE and not deleting:
        return mig.decide_source(vmi, view, mview) + [WriteStatus()]
    if hotplug is not None and not deleting and not view.stopping and view.domain.get("status") != "Missing":
        return hotplug_actions(vmi, view.domain, hotplug) + [WriteStatus()]
    return [WriteStatus()]


def hotplug_actions(vmi: dict, domain: dict, hotplug: HotplugView) -> list:
    """Attach what the VMI's spec hotplugs and the domain lacks (mounting it into the launcher pod first, once
    its attachment pod runs), detach what the spec no longer has, unmount what nothing uses any more."""
    wanted = hotpluggable_names(vmi.get("spec") or {})
    attached = {v["name"] for v in domain.get("volumes") or [] if v.get("hotplug")}
    actions = []
    for name in sorted(wanted - attached):
        if name in hotplug.mounted:
            actions.append(AttachVolume(name))
        elif name in hotplug.sources:
            actions += [MountVolume(name, hotplug.sources[name]), AttachVolume(name)]
    actions += [DetachVolume(name) for name in sorted(attached - wanted)]
    actions += [UnmountVolume(name) for name in sorted(hotplug.mounted - wanted - attached)]
    return actions


def _unmount_all(hotplug: HotplugView | None) -> list:
    """The guest has ended: nothing may stay mounted in its pod's emptyDir (the kubelet could not remove it)."""
    return [UnmountVolume(name) for name in sorted(hotplug.mounted)] if hotplug else []


def _connect(phase: str, view: LauncherView, lookup: Lookup) -> list:
    running = phase == VMIPhase.RUNNING
    if lookup.where == Where.ENDED:
        return [MarkGone(lookup.outcome), WriteStatus()]
    if lookup.where == Where.ABSENT and running:
        return [MarkGone(None), WriteStatus()]
    if lookup.where in (Where.READY, Where.NO_SOCKET) and running and view.misses >= MAX_MISSES:
        return [MarkGone(None), WriteStatus()]
    if lookup.where == Where.READY:
        return [Watch(lookup.path)]
    if lookup.where == Where.NO_SOCKET and running:
        return [CountMiss(), Retry(MISS_RETRY_SECONDS)]
    return [Retry(STARTING_RETRY_SECONDS)]


def _grace_seconds(vmi: dict) -> int:
    meta, spec = vmi["metadata"], vmi.get("spec") or {}
    for value in (meta.get("deletionGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")):
        if value is not None:
            return int(value)
    return DEFAULT_GRACE_PERIOD_SECONDS
