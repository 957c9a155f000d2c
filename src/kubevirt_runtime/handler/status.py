"""The VMI status virt-handler wants, as a pure function of the VMI and its domain's state.

virt-handler owns the phases from Scheduled on: Running while the domain exists (also paused), then
Succeeded (the guest powered off, or it was stopped on request) or Failed (QEMU died, libvirt failed, the
launcher vanished); the Paused, AgentConnected and LiveMigratable conditions; Ready when the guest starts and ends;
status.interfaces and status.guestOSInfo. Conditions are only rewritten when their value changes, so
the controller's reasons are kept and the two components never undo each other's writes.
"""
from __future__ import annotations

import copy
import time

from kubevirt_runtime.api import timeline
from kubevirt_runtime.api.constants import ConditionType, VMIPhase
from kubevirt_runtime.api.migration import live_migratable
from kubevirt_runtime.api.status import get_condition, now_iso, remove_condition, set_condition, set_phase

HANDLER_PHASES = (VMIPhase.SCHEDULED, VMIPhase.RUNNING)
# Final reasons a launcher reports about its pod rather than its domain (kept as they are).
LAUNCHER_REASONS = ("PodTerminated",)


def desired_status(vmi: dict, domain: dict | None, launcher_gone: bool = False, now=None,
                   gone_outcome: str | None = None, stamp: str | None = None) -> dict:
    """The status to write. `domain` is the launcher's last pushed state (None: not known yet);
    `launcher_gone` means the launcher went away without reporting a final state; `gone_outcome` is
    how its pod ended, when known (Succeeded: exit 0). `stamp` is this moment with milliseconds (the
    Running stage of the startup timeline; default: the clock)."""
    status = copy.deepcopy(vmi.get("status") or {})
    phase = status.get("phase")
    if phase not in HANDLER_PHASES:
        return status
    now = now or now_iso()
    if launcher_gone and not (domain and domain.get("final")):
        if phase == VMIPhase.RUNNING or (domain and domain.get("status") != "Missing"):
            if gone_outcome == VMIPhase.SUCCEEDED:
                set_phase(status, VMIPhase.SUCCEEDED, now)
                _ended(status, now, "the virt-launcher pod completed")
            else:
                set_phase(status, VMIPhase.FAILED, now)
                status["reason"] = "LauncherGone"
                _ended(status, now, "the virt-launcher went away without reporting the guest's end")
        return status
    if not domain:
        return status
    state = domain.get("status")
    if domain.get("final"):
        outcome = domain.get("outcome") or VMIPhase.FAILED
        set_phase(status, outcome, now)
        if outcome == VMIPhase.FAILED:
            reason = domain.get("reason") or "Failed"
            status["reason"] = reason if reason in LAUNCHER_REASONS else f"Domain{reason}"
        _ended(status, now, f"the guest ended: {state}/{domain.get('reason')}")
        return status
    if state == "Missing":
        return status
    # the launcher's stages ride along with the Running write; a later one (its first console output)
    # is written when it arrives
    timeline.record(status, domain.get("timeline") or {})
    if status.get("phase") != VMIPhase.RUNNING:
        timeline.record(status, {"Running": stamp or timeline.format_stamp(time.time())})
    set_phase(status, VMIPhase.RUNNING, now)
    set_condition(status, ConditionType.READY, "True", "", "", now)
    migratable, reason, message = live_migratable(vmi)
    set_condition(status, ConditionType.LIVE_MIGRATABLE, "True" if migratable else "False", reason, message, now)
    remove_condition(status, ConditionType.SYNCHRONIZED)
    if state == "Paused":
        reason = domain.get("reason") or "PausedByUser"
        message = "VMI was paused by user" if reason == "PausedByUser" else f"VMI was paused ({reason})"
        set_condition(status, ConditionType.PAUSED, "True", reason, message, now)
    else:
        remove_condition(status, ConditionType.PAUSED)
    if domain.get("agentConnected"):
        set_condition(status, ConditionType.AGENT_CONNECTED, "True", "", "", now)
    else:
        remove_condition(status, ConditionType.AGENT_CONNECTED)
    if domain.get("interfaces") is not None and domain.get("interfaces") != status.get("interfaces"):
        if domain["interfaces"]:
            status["interfaces"] = domain["interfaces"]
        else:
            status.pop("interfaces", None)
    if domain.get("guestOSInfo"):
        status["guestOSInfo"] = domain["guestOSInfo"]
    if not status.get("conditions"):
        status.pop("conditions", None)
    return status


def _ended(status: dict, now, message: str):
    ready = get_condition(status, ConditionType.READY)
    if ready and ready.get("status") == "True":
        set_condition(status, ConditionType.READY, "False", "GuestNotRunning", message, now)
    remove_condition(status, ConditionType.PAUSED)
    remove_condition(status, ConditionType.AGENT_CONNECTED)
    if not status.get("conditions"):
        status.pop("conditions", None)


def status_patch(vmi: dict, new_status: dict) -> dict | None:
    """A merge patch (with a resourceVersion precondition) that turns the VMI's status into `new_status`,
    or None when nothing changes."""
    old = vmi.get("status") or {}
    if old == new_status:
        return None
    patch = {key: value for key, value in new_status.items() if old.get(key) != value}
    for key in old:
        if key not in new_status:
            patch[key] = None
    return {"metadata": {"resourceVersion": vmi["metadata"].get("resourceVersion")}, "status": patch}
