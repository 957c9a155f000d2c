"""start/stop/restart decisions per runStrategy, as upstream virt-api makes them."""
import pytest

from kubevirt_runtime.apiserver.subresources import SubresourceError, check_vmi_for, grace_period_from, plan_vm_action


def vm(strategy=None, running=None, requests=None):
    spec = {"template": {"spec": {}}}
    if strategy:
        spec["runStrategy"] = strategy
    if running is not None:
        spec["running"] = running
    obj = {"metadata": {"name": "vm1", "namespace": "ns", "generation": 4}, "spec": spec}
    if requests:
        obj["status"] = {"stateChangeRequests": requests}
    return obj


def vmi(phase="Running", paused=False):
    conditions = [{"type": "Paused", "status": "True"}] if paused else []
    return {"metadata": {"name": "vm1", "namespace": "ns", "uid": "uid-1"},
            "status": {"phase": phase, "conditions": conditions}}


STOP = {"action": "Stop", "uid": "uid-1"}
START = {"action": "Start", "data": {"kubevirt-ops.io/vm-generation": "4"}}


@pytest.mark.parametrize("action,the_vm,the_vmi,expected", [
    ("start", vm("Halted"), None, ("spec", {"spec": {"runStrategy": "Always"}})),
    ("start", vm(running=False), None, ("spec", {"spec": {"running": True}})),
    ("start", vm("Manual"), None, ("requests", [START])),
    ("start", vm("Manual"), vmi("Succeeded"), ("requests", [STOP, START])),
    ("start", vm("RerunOnFailure"), vmi("Succeeded"), ("requests", [STOP, START])),
    ("stop", vm("Always"), vmi(), ("spec", {"spec": {"runStrategy": "Halted"}})),
    ("stop", vm(running=True), vmi(), ("spec", {"spec": {"running": False}})),
    ("stop", vm("Once"), vmi(), ("spec", {"spec": {"runStrategy": "Halted"}})),
    ("stop", vm("RerunOnFailure"), vmi(), ("requests", [STOP])),
    ("stop", vm("Manual"), vmi(), ("requests", [STOP])),
    # a stop replaces pending requests, e.g. the Start of a restart still in flight
    ("stop", vm("Manual", requests=[STOP, START]), vmi(), ("requests", [STOP])),
    ("stop", vm("Always", requests=[STOP, START]), vmi(), ("spec", {"spec": {"runStrategy": "Halted"}})),
    ("restart", vm("Always"), vmi(), ("requests", [STOP, START])),
    ("restart", vm("Manual"), vmi(), ("requests", [STOP, START])),
])
def test_plans(action, the_vm, the_vmi, expected):
    assert plan_vm_action(action, the_vm, the_vmi) == expected


@pytest.mark.parametrize("action,the_vm,the_vmi,message", [
    ("start", vm("Always"), vmi(), "Always does not support manual start requests"),
    ("start", vm("Manual"), vmi(), "VM vm1 is already running"),
    ("stop", vm("Halted"), None, "VM vm1 is not running"),
    ("stop", vm("Manual"), None, "VM vm1 is not running"),
    ("stop", vm("RerunOnFailure"), vmi("Succeeded"), "VM vm1 is not running"),
    ("restart", vm("Halted"), None, "Halted does not support manual restart requests"),
    ("restart", vm("Always"), None, "VM vm1 is not running"),
    ("restart", vm("Always", requests=[START]), vmi(), "pending state change requests"),
])
def test_conflicts(action, the_vm, the_vmi, message):
    with pytest.raises(SubresourceError) as err:
        plan_vm_action(action, the_vm, the_vmi)
    assert err.value.code == 409 and message in err.value.message


def test_pause_unpause_console_preconditions():
    check_vmi_for("pause", vmi())
    check_vmi_for("unpause", vmi(paused=True))
    for verb, obj, message in (("pause", vmi(paused=True), "already paused"), ("unpause", vmi(), "not paused"),
                               ("console", vmi("Scheduled"), "not running")):
        with pytest.raises(SubresourceError, match=message):
            check_vmi_for(verb, obj)


# ------------------------------------------------------------------ VMI preconditions (upstream's answers)

def _vmi(phase="Running", conditions=(), devices=None, features=None):
    domain = {"devices": devices or {}}
    if features is not None:
        domain["features"] = features
    return {"metadata": {"name": "v"}, "spec": {"domain": domain},
            "status": {"phase": phase, "conditions": [{"type": t, "status": "True"} for t in conditions]}}


@pytest.mark.parametrize("verb, vmi, code, text", [
    ("vnc", _vmi(devices={"autoattachGraphicsDevice": False}), 400, "No graphics devices"),
    ("vnc", _vmi(phase="Scheduled"), 400, "not running"),
    ("console", _vmi(phase="Scheduled"), 409, "not running"),
    ("portforward", _vmi(conditions=["Paused"]), 409, "paused"),
    ("softreboot", _vmi(conditions=["Paused"]), 409, "paused"),
    ("softreboot", _vmi(features={"acpi": {"enabled": False}}), 409, "neither has the guest agent"),
    ("guestosinfo", _vmi(), 409, "guest agent"),
    ("userlist", _vmi(), 409, "guest agent"),
    ("filesystemlist", _vmi(), 409, "guest agent"),
])
def test_vmi_preconditions(verb, vmi, code, text):
    with pytest.raises(SubresourceError) as err:
        check_vmi_for(verb, vmi)
    assert err.value.code == code and text in err.value.message


@pytest.mark.parametrize("verb, vmi", [
    ("vnc", _vmi()), ("portforward", _vmi()), ("softreboot", _vmi()), ("reset", _vmi(conditions=["Paused"])),
    ("softreboot", _vmi(conditions=["AgentConnected"], features={"acpi": {"enabled": False}})),
    ("guestosinfo", _vmi(conditions=["AgentConnected"])),
])
def test_vmi_preconditions_met(verb, vmi):
    check_vmi_for(verb, vmi)


@pytest.mark.parametrize("action,body,expected", [
    ("stop", b"", None),
    ("stop", b"{}", None),
    ("stop", b'{"gracePeriod": 0}', 0),
    ("stop", b'{"gracePeriod": 30}', 30),
    ("restart", b'{"gracePeriodSeconds": 0}', 1),  # a forced restart keeps the shortest safe period
    ("restart", b'{"gracePeriodSeconds": null}', None),
    ("start", b'{"paused": false}', None),
])
def test_grace_periods(action, body, expected):
    assert grace_period_from(action, body) == expected


@pytest.mark.parametrize("action,body,message", [
    ("stop", b'{"gracePeriod": -1}', "greater or equal to 0"),
    ("stop", b'{"gracePeriod": "5"}', "must be an integer"),
    ("restart", b'{"gracePeriodSeconds": 5}', "only gracePeriod=0"),
    ("stop", b"not json", "not JSON"),
])
def test_bad_grace_periods(action, body, message):
    with pytest.raises(SubresourceError) as err:
        grace_period_from(action, body)
    assert err.value.code == 400 and message in err.value.message
