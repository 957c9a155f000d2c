"""Whether a lifecycle request would change a VM, decided from the VM and its instance before anything is sent.

    decide("started", vm, vmi) -> Decision(call="start", target="vm", error=None)

One pure function answers for a real run and for a check-mode run alike, so `changed` and its prediction
cannot disagree. The rules are upstream virt-api's (kubevirt/kubevirt pkg/virt-api/rest/lifecycle.go), seen
from the client:

| state     | run strategy                | instance            | decision                                  |
|-----------|-----------------------------|---------------------|-------------------------------------------|
| started   | Halted                      | -                   | start (the spec becomes Always)           |
| started   | Manual, RerunOnFailure      | none or finished    | start (a Start request)                   |
| started   | Always, Once; or running    | -                   | nothing (it starts by itself / runs)      |
| stopped   | Halted                      | -                   | nothing                                   |
| stopped   | Manual                      | none                | nothing                                   |
| stopped   | anything else               | -                   | stop                                      |
| restarted | Halted, or no instance      | -                   | refused (as virt-api answers: 409)        |
| restarted | otherwise                   | -                   | restart                                   |
| paused    | -                           | Running, not paused | pause (anything but Running: refused)     |
| unpaused  | -                           | paused              | unpause (otherwise nothing)               |

Pending state change requests (status.stateChangeRequests) make virt-api refuse new ones; started/stopped then
leave the VM to the pending request, restarted is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..api import ConditionType, RunStrategy, VMIPhase, effective_run_strategy, vmi_is_final

VM_ACTIONS = {"started": "start", "stopped": "stop", "restarted": "restart"}
VMI_ACTIONS = {"paused": "pause", "unpaused": "unpause"}
STATES = tuple(VM_ACTIONS) + tuple(VMI_ACTIONS)


@dataclass(frozen=True)
class Decision:
    call: str | None = None  # the subresource to PUT, None when nothing needs doing
    target: str = "vm"  # "vm": virtualmachines/<call>; "vmi": virtualmachineinstances/<call>
    error: str | None = None  # the request would be refused, and why

    @property
    def changes(self) -> bool:
        return self.call is not None and self.error is None


def instance_active(vmi: dict | None) -> bool:
    """An instance exists and has not finished."""
    return vmi is not None and not vmi_is_final(vmi)


def is_paused(vmi: dict | None) -> bool:
    return any(c.get("type") == ConditionType.PAUSED and c.get("status") == "True"
               for c in ((vmi or {}).get("status") or {}).get("conditions") or [])


def phase(vmi: dict | None) -> str | None:
    return ((vmi or {}).get("status") or {}).get("phase") if vmi else None


def decide(state: str, vm: dict, vmi: dict | None) -> Decision:
    name = vm["metadata"]["name"]
    strategy = effective_run_strategy(vm)
    pending = bool((vm.get("status") or {}).get("stateChangeRequests"))
    if state == "started":
        if strategy == RunStrategy.HALTED:
            return Decision("start")
        if strategy in (RunStrategy.MANUAL, RunStrategy.RERUN_ON_FAILURE) and not instance_active(vmi) \
                and not pending:
            return Decision("start")
        return Decision()
    if state == "stopped":
        if strategy == RunStrategy.HALTED:
            return Decision()
        if strategy == RunStrategy.MANUAL and (vmi is None or pending):
            return Decision()
        return Decision("stop")
    if state == "restarted":
        if strategy == RunStrategy.HALTED:
            return Decision("restart", error=f"{strategy} does not support manual restart requests")
        if vmi is None:
            return Decision("restart", error=f"VM {name} is not running")
        if pending:
            return Decision("restart", error=f"VM {name} has pending state change requests; try again once they "
                                             "are done")
        return Decision("restart")
    if state == "paused":
        if phase(vmi) != VMIPhase.RUNNING:
            return Decision("pause", "vmi", f"VMI {name} is not running ({phase(vmi) or 'no instance'})")
        return Decision() if is_paused(vmi) else Decision("pause", "vmi")
    if state == "unpaused":
        return Decision("unpause", "vmi") if phase(vmi) == VMIPhase.RUNNING and is_paused(vmi) else Decision()
    raise ValueError(f"unknown lifecycle state {state!r}")


def view(vm: dict | None, vmi: dict | None) -> dict:
    """What a user sees of a VM's lifecycle: how it is told to run, its printableStatus and its instance."""
    if vm is None:
        return {}
    spec = vm.get("spec") or {}
    out = {"spec": {}, "status": {"printableStatus": (vm.get("status") or {}).get("printableStatus", "")}}
    if spec.get("runStrategy") is not None or spec.get("running") is None:
        out["spec"]["runStrategy"] = effective_run_strategy(vm)
    else:
        out["spec"]["running"] = spec["running"]
    if vmi is not None:
        out["vmi"] = {"uid": vmi["metadata"].get("uid", ""), "phase": phase(vmi) or "", "paused": is_paused(vmi)}
    return out


def predicted_view(state: str, vm: dict, vmi: dict | None) -> dict:
    """The view once the decision for `state` has taken effect (what a check-mode diff shows)."""
    before = view(vm, vmi)
    decision = decide(state, vm, vmi)
    if not decision.changes:
        return before
    after = {"spec": dict(before["spec"]), "status": dict(before["status"])}
    uses_running = "running" in before["spec"]
    if decision.call == "start":
        if effective_run_strategy(vm) == RunStrategy.HALTED:
            after["spec"] = {"running": True} if uses_running else {"runStrategy": RunStrategy.ALWAYS}
        after["status"]["printableStatus"] = "Running"
        after["vmi"] = {"uid": "(new)", "phase": VMIPhase.RUNNING, "paused": False}
    elif decision.call == "stop":
        if effective_run_strategy(vm) != RunStrategy.MANUAL:
            after["spec"] = {"running": False} if uses_running else {"runStrategy": RunStrategy.HALTED}
        after["status"]["printableStatus"] = "Stopped"
    elif decision.call == "restart":
        after["status"]["printableStatus"] = "Running"
        after["vmi"] = {"uid": "(new)", "phase": VMIPhase.RUNNING, "paused": False}
    elif decision.call in ("pause", "unpause"):
        paused = decision.call == "pause"
        after["status"]["printableStatus"] = "Paused" if paused else "Running"
        after["vmi"] = dict(before["vmi"], paused=paused)
    return after
