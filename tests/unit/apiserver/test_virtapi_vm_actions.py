"""start/stop/restart decisions per runStrategy, as upstream virt-api makes them."""
import pytest

from kubevirt_runtime.apiserver.subresources import SubresourceError, check_vmi_for, plan_vm_action


def vm(strategy=None, running=None, requests=None):
    spec = {"template": {"spec": {}}}
    if strategy:
        spec["runStrategy"] = strategy
    if running is not None:
        spec["running"] = running
    obj = {"metadata": {"name": "vm1", "namespace": "ns"}, "spec": spec}
    if requests:
        obj["status"] = {"stateChangeRequests": requests}
    return obj


def vmi(phase="Running", paused=False):
    conditions = [{"type": "Paused", "status": "True"}] if paused else []
    return {"metadata": {"name": "vm1", "namespace": "ns", "uid": "uid-1"},
            "status": {"phase": phase, "conditions": conditions}}


STOP = {"action": "Stop", "uid": "uid-1"}
START = {"action": "Start"}


@pytest.mark.parametrize("action,the_vm,the_vmi,expected", [
    ("start", vm("Halted"), None, ("spec", {"spec": {"runStrategy": "Always"}})),
    ("start", vm(running=False), None, ("spec", {"spec": {"running": True}})),
    ("start", vm("Manual"), None, ("requests", [START])),
    ("start", vm("Manual"), vmi("Succeeded"), ("requests", [STOP, START])),
    ("start", vm("RerunOnFailure"), vmi("Succeeded"), ("requests", [STOP, START])),
    ("stop", vm("Always"), vmi(), ("spec", {"spec": {"runStrategy": "Halted"}})),
    ("stop", vm(running=True), vmi(), ("spec", {"spec": {"running": False}})),
    ("stop", vm("RerunOnFailure"), vmi(), ("spec", {"spec": {"runStrategy": "Halted"}})),
    ("stop", vm("Manual"), vmi(), ("requests", [STOP])),
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
    ("restart", vm("Halted"), None, "Halted does not support manual restart requests"),
    ("restart", vm("Always"), None, "VM vm1 is not running"),
    ("restart", vm("Always", requests=[START]), vmi(), "pending state change requests"),
])
def test_conflicts(action, the_vm, the_vmi, message):
    with pytest.raises(SubresourceError) as err:
        plan_vm_action(action, the_vm, the_vmi)
    assert err.value.code == 409 and message in err.value.message


def test_vmi_preconditions():
    check_vmi_for("pause", vmi())
    check_vmi_for("unpause", vmi(paused=True))
    for verb, obj, message in (("pause", vmi(paused=True), "already paused"), ("unpause", vmi(), "not paused"),
                               ("console", vmi("Scheduled"), "not running")):
        with pytest.raises(SubresourceError, match=message):
            check_vmi_for(verb, obj)
