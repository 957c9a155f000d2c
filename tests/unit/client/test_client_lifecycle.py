"""The lifecycle decisions (what started/stopped/restarted/paused/unpaused would do), as a table, and the
predicted view a check-mode diff shows."""
import pytest

from kubevirt_runtime.client.lifecycle import Decision, decide, predicted_view, view


def vm(strategy=None, running=None, pending=False):
    spec = {}
    if strategy:
        spec["runStrategy"] = strategy
    if running is not None:
        spec["running"] = running
    status = {"printableStatus": "Stopped"}
    if pending:
        status["stateChangeRequests"] = [{"action": "Start"}]
    return {"metadata": {"name": "vm1"}, "spec": spec, "status": status}


def vmi(phase="Running", paused=False):
    conditions = [{"type": "Ready", "status": "True"}]
    if paused:
        conditions.append({"type": "Paused", "status": "True"})
    return {"metadata": {"name": "vm1", "uid": "u1"}, "status": {"phase": phase, "conditions": conditions}}


START, STOP, RESTART = Decision("start"), Decision("stop"), Decision("restart")
NOTHING = Decision()


@pytest.mark.parametrize("state,the_vm,the_vmi,expected", [
    ("started", vm("Halted"), None, START),
    ("started", vm(running=False), None, START),
    ("started", vm("Always"), None, NOTHING),  # starts by itself: virt-api answers 409, nothing changes
    ("started", vm("Always"), vmi(), NOTHING),
    ("started", vm("Once"), vmi("Succeeded"), NOTHING),
    ("started", vm("Manual"), None, START),
    ("started", vm("Manual"), vmi("Succeeded"), START),  # a finished instance is replaced
    ("started", vm("Manual"), vmi(), NOTHING),
    ("started", vm("Manual", pending=True), None, NOTHING),
    ("started", vm("RerunOnFailure"), vmi("Scheduling"), NOTHING),
    ("stopped", vm("Halted"), None, NOTHING),
    ("stopped", vm("Halted"), vmi(), NOTHING),  # already told to stop: only waiting is left
    ("stopped", vm("Always"), vmi(), STOP),
    ("stopped", vm(running=True), None, STOP),  # the spec still says run
    ("stopped", vm("Manual"), None, NOTHING),
    ("stopped", vm("Manual"), vmi(), STOP),
    ("restarted", vm("Always"), vmi(), RESTART),
    ("restarted", vm("Manual"), vmi("Succeeded"), RESTART),
    ("paused", vm("Always"), vmi(), Decision("pause", "vmi")),
    ("paused", vm("Always"), vmi(paused=True), NOTHING),
    ("unpaused", vm("Always"), vmi(paused=True), Decision("unpause", "vmi")),
    ("unpaused", vm("Always"), vmi(), NOTHING),
    ("unpaused", vm("Halted"), None, NOTHING),  # a stopped VM is not paused
])
def test_decisions(state, the_vm, the_vmi, expected):
    assert decide(state, the_vm, the_vmi) == expected


@pytest.mark.parametrize("state,the_vm,the_vmi,message", [
    ("restarted", vm("Halted"), None, "Halted does not support manual restart requests"),
    ("restarted", vm("Always"), None, "VM vm1 is not running"),
    ("restarted", vm("Manual", pending=True), vmi(), "pending state change requests"),
    ("paused", vm("Halted"), None, "VMI vm1 is not running (no instance)"),
    ("paused", vm("Always"), vmi("Scheduling"), "VMI vm1 is not running (Scheduling)"),
])
def test_refusals_say_why_and_change_nothing(state, the_vm, the_vmi, message):
    decision = decide(state, the_vm, the_vmi)
    assert message in decision.error
    assert not decision.changes


def test_unknown_state():
    with pytest.raises(ValueError):
        decide("exploded", vm("Always"), None)


def test_predicted_view_of_a_start_shows_the_new_strategy_and_status():
    before = view(vm("Halted"), None)
    after = predicted_view("started", vm("Halted"), None)
    assert before == {"spec": {"runStrategy": "Halted"}, "status": {"printableStatus": "Stopped"}}
    assert after["spec"] == {"runStrategy": "Always"} and after["status"]["printableStatus"] == "Running"


def test_predicted_view_keeps_the_running_field_when_the_vm_uses_it():
    assert predicted_view("stopped", vm(running=True), vmi())["spec"] == {"running": False}
    assert predicted_view("started", vm(running=False), None)["spec"] == {"running": True}


def test_predicted_view_of_pause_restart_and_nothing():
    assert predicted_view("paused", vm("Always"), vmi())["vmi"]["paused"] is True
    assert predicted_view("paused", vm("Always"), vmi())["status"]["printableStatus"] == "Paused"
    assert predicted_view("restarted", vm("Always"), vmi())["vmi"]["uid"] == "(new)"
    assert predicted_view("started", vm("Always"), vmi()) == view(vm("Always"), vmi())
