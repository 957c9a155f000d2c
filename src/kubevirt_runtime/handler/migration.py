"""virt-handler's decisions in a live migration (pure; decide.py calls them, controller.py acts).

virt-controller hands a migration over by writing the VMI's status.migrationState (migrationUid, sourceNode,
targetNode, targetPod) and labeling the VMI kubevirt.io/migrationTargetNodeName=<target node>. Then:

- the target handler (its VMI informer follows that label) connects to the target launcher, wires its pod
  network, has it prepare for the incoming domain, accepts the migration on its TLS proxy and publishes
  migrationState.targetNodeAddress and targetDirectMigrationNodePorts; it reports targetNodeDomainDetected
  and, once the domain runs there, acknowledges the move: status.nodeName and the kubevirt.io/nodeName label
  become the target node, migrationState.targetNodeDomainReadyTimestamp and endTimestamp are set, and the
  VMI is then this handler's as any other;
- the source handler, once the target address is published, opens its proxy listeners in the source
  launcher's directory and has the launcher migrate; it reports startTimestamp, then completed or failed
  (failureReason, abortStatus) from the launcher, asks the launcher to abort when abortRequested is set, and
  never turns the domain's departure ("Migrated") into the end of the VMI.
"""
from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field

from kubevirt_runtime.api.constants import NODE_NAME_LABEL, VMIPhase

SOURCE, TARGET = "source", "target"
# launcher state -> migrationState, on the source
_SOURCE_FIELDS = {"startTimestamp": "startTimestamp", "endTimestamp": "endTimestamp", "completed": "completed",
                  "failed": "failed", "failureReason": "failureReason", "abortStatus": "abortStatus", "mode": "mode"}
MAX_PROXY_FAILURES = 10
# How long a target whose domain runs waits for the source's report (completed, the downtime) before it takes
# the VMI anyway (a source node that went away cannot report).
SOURCE_REPORT_GRACE_SECONDS = 30


@dataclass(frozen=True)
class MigrationView:
    """What the handler has for migrations right now (besides the VMI and its launcher)."""

    endpoint: tuple | None = None      # (address, port) of this handler's migration proxy; None: no migrations
    registered: frozenset = frozenset()  # migration uids this node's proxy accepts as their target
    source_proxies: frozenset = frozenset()  # migration uids with source listeners open here
    proxy_failures: int = 0            # failed attempts to reach the target's proxy for this VMI's migration
    now: float = 0.0                   # epoch seconds (when a target stops waiting for the source's report)


# -- actions

@dataclass(frozen=True)
class PrepareTarget:
    migration_uid: str


@dataclass(frozen=True)
class RegisterTarget:
    migration_uid: str


@dataclass(frozen=True)
class UnregisterTarget:
    migration_uid: str


@dataclass(frozen=True)
class StartMigration:
    migration_uid: str
    address: str
    port: int


@dataclass(frozen=True)
class AbortMigration:
    pass


@dataclass(frozen=True)
class StopSourceProxy:
    migration_uid: str


@dataclass(frozen=True)
class WriteMigrationState:
    fields: dict = field(default_factory=dict)
    note: str = ""  # said in an event too (the source's report of a finished migration)


@dataclass(frozen=True)
class Wait:
    """Look again later (the target waits for the source's report)."""
    seconds: float


@dataclass(frozen=True)
class AckMigration:
    """The domain runs here: the VMI moves to this node."""
    fields: dict = field(default_factory=dict)


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))


def state(vmi: dict) -> dict:
    return (vmi.get("status") or {}).get("migrationState") or {}


def role(vmi: dict, node_name: str) -> str | None:
    """This node's part in the VMI's current migration, if any."""
    current = state(vmi)
    if not current.get("migrationUid") or (vmi.get("status") or {}).get("phase") != VMIPhase.RUNNING:
        return None
    node = (vmi.get("status") or {}).get("nodeName")
    if current.get("targetNode") == node_name and node != node_name:
        return TARGET
    if current.get("sourceNode") == node_name and node == node_name:
        return SOURCE
    return None


def _ended(current: dict) -> bool:
    return bool(current.get("completed") or current.get("failed"))


def decide_target(vmi: dict, view, lookup, mview: MigrationView, connect) -> list:
    """The target node's actions; `connect` is decide's way to reach a launcher (Watch / Retry)."""
    current = state(vmi)
    uid = current["migrationUid"]
    if current.get("failed") or mview.endpoint is None:
        return [UnregisterTarget(uid)] if uid in mview.registered else []
    if not view.watching:
        return connect(lookup)
    domain = view.domain
    if domain is None:
        return []
    info = domain.get("migration") or {}
    if info.get("role") != TARGET or info.get("migrationUid") != uid:
        if domain.get("final") or domain.get("status") != "Missing":
            return []  # not a fresh launcher: nothing to prepare (the controller fails the migration)
        return [PrepareTarget(uid)]
    actions = [] if uid in mview.registered else [RegisterTarget(uid)]
    fields = {}
    address, port = mview.endpoint
    if current.get("targetNodeAddress") != address:
        fields.update(targetNodeAddress=address, targetDirectMigrationNodePorts={str(port): 0})
    if info.get("domainDetected") and not current.get("targetNodeDomainDetected"):
        fields["targetNodeDomainDetected"] = True
    if info.get("completed") and domain.get("status") == "Running":
        ready = info.get("domainReadyTimestamp")
        waited = mview.now - (_epoch(ready) or mview.now)
        if not current.get("completed") and waited < SOURCE_REPORT_GRACE_SECONDS:
            # the source reports first (its end of the migration, the downtime), as upstream's target waits
            return actions + ([WriteMigrationState(fields)] if fields else []) + [Wait(1.0)]
        # the domain resumed here: the migration succeeded
        fields.update(targetNodeDomainReadyTimestamp=ready, endTimestamp=current.get("endTimestamp") or ready,
                      completed=True)
        return actions + [AckMigration(fields)]
    if domain.get("final"):
        return actions  # the incoming domain failed here; the source reports the failure
    return actions + ([WriteMigrationState(fields)] if fields else [])


def source_fields(vmi: dict, domain: dict | None) -> dict:
    """The migrationState fields the source launcher's report changes."""
    current = state(vmi)
    info = (domain or {}).get("migration") or {}
    if info.get("role") != SOURCE or info.get("migrationUid") != current.get("migrationUid"):
        return {}
    return {ours: info[theirs] for theirs, ours in _SOURCE_FIELDS.items()
            if info.get(theirs) not in (None, "") and current.get(ours) != info[theirs]}


def decide_source(vmi: dict, view, mview: MigrationView) -> list:
    """The source node's actions for a VMI whose launcher is watched and whose domain has not ended."""
    current = state(vmi)
    uid = current.get("migrationUid")
    if not uid or current.get("sourceNode") != (vmi.get("status") or {}).get("nodeName"):
        return []
    info = (view.domain or {}).get("migration") or {}
    mine = info.get("role") == SOURCE and info.get("migrationUid") == uid
    actions = []
    if _ended(current):
        if uid in mview.source_proxies:
            actions.append(StopSourceProxy(uid))
    elif not mine:
        if current.get("targetNodeAddress") and not current.get("abortRequested"):
            if mview.proxy_failures >= MAX_PROXY_FAILURES:
                return [WriteMigrationState({"failed": True, "completed": True,
                                             "failureReason": "the target node's migration proxy did not answer"})]
            port = int(next(iter(current.get("targetDirectMigrationNodePorts") or {"0": 0})))
            actions.append(StartMigration(uid, current["targetNodeAddress"], port))
    elif current.get("abortRequested") and not info.get("completed") and not info.get("abortStatus"):
        actions.append(AbortMigration())
    fields = source_fields(vmi, view.domain)
    if fields:
        actions.append(WriteMigrationState(fields))
    return actions


def departure_note(domain: dict | None) -> str:
    """What the source reports of a completed migration: how long it took and how long the guest was paused."""
    info = (domain or {}).get("migration") or {}
    downtime = info.get("downtimeMs")
    text = "The VirtualMachineInstance left this node: live migration completed"
    if downtime is not None:
        text += f", guest paused for {downtime} ms (QEMU's measure of the downtime)"
    return text + "."


def departed(domain: dict | None) -> bool:
    """The launcher's domain left for another node (the source side of a completed migration)."""
    return bool(domain and domain.get("final") and domain.get("reason") == "Migrated")


def ack_patch(vmi: dict, node_name: str, fields: dict) -> tuple[dict, dict]:
    """(status merge patch, metadata merge patch) that move the VMI to this node."""
    meta = vmi["metadata"]
    status = {"metadata": {"resourceVersion": meta.get("resourceVersion")},
              "status": {"nodeName": node_name, "migrationState": fields, "evacuationNodeName": None}}
    return status, {"metadata": {"labels": {NODE_NAME_LABEL: node_name}}}
