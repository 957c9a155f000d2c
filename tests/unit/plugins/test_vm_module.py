"""kubevirt.ops.vm without a cluster: argument handling, the VM it builds, and that check mode predicts a real run
(same changed, same diff) for every lifecycle state, over an in-memory stand-in for the API server."""
import copy
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt import core, runner
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.definition import (
    describes_vm,
    present_wait_condition,
    vm_definition,
    without_nulls,
)
from ansible_collections.kubevirt.ops.plugins.modules import vm as vm_module
from kubevirt_runtime.machinery.resource import ApiError

BASE = {"api_version": "kubevirt.io/v1", "namespace": "ns", "name": "vm1", "generate_name": None, "state": "present",
        "labels": None, "annotations": None, "running": None, "run_strategy": None, "instancetype": None,
        "preference": None, "data_volume_templates": None, "spec": None, "force": False, "wait": False,
        "wait_sleep": 0, "wait_timeout": 1, "hidden_fields": ["metadata.managedFields"], "delete_options": None,
        "grace_period_seconds": None}


def params(**overrides):
    return dict(copy.deepcopy(BASE), **overrides)


# ---------------------------------------------------------------- argument handling

def run_main(args, monkeypatch, capsys):
    """Runs the module's main(); returns (exit code, JSON it printed, params run_vm got)."""
    seen = {}
    monkeypatch.setattr(vm_module, "run_vm", lambda module: (seen.update(module.params), module.exit_json(ok=1)))
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        vm_module.main()
    return exc.value.code, json.loads(capsys.readouterr().out), seen


@pytest.mark.parametrize("args,message", [
    ({"namespace": "ns"}, "one of the following is required: name, generate_name"),
    ({"namespace": "ns", "name": "a", "generate_name": "b"}, "mutually exclusive: name|generate_name"),
    ({"namespace": "ns", "name": "a", "running": True, "run_strategy": "Always"},
     "mutually exclusive: running|run_strategy"),
    ({"namespace": "ns", "generate_name": "a-", "state": "started"},
     "state is started but all of the following are missing: name"),
    ({"namespace": "ns", "generate_name": "a-", "state": "paused"},
     "state is paused but all of the following are missing: name"),
    ({"namespace": "ns", "name": "a", "run_strategy": "Sometimes"}, "value of run_strategy must be one of"),
    ({"name": "a"}, "missing required arguments: namespace"),
    ({"namespace": "ns", "name": "a", "delete_options": {"propagationPolicy": "Now"}},
     "propagationPolicy must be one of"),
])
def test_bad_arguments_name_the_field(args, message, monkeypatch, capsys):
    code, out, _ = run_main(args, monkeypatch, capsys)
    assert code == 1 and out["failed"] and message in out["msg"]


def test_defaults_and_aliases_are_kubevirt_cores(monkeypatch, capsys):
    code, _, seen = run_main({"namespace": "ns", "name": "a", "verify_ssl": False, "ssl_ca_cert": "/ca",
                              "cert_file": "/c", "key_file": "/k"}, monkeypatch, capsys)
    assert code == 0
    assert (seen["state"], seen["wait"], seen["wait_sleep"], seen["wait_timeout"], seen["force"]) == \
        ("present", False, 5, 120, False)
    assert seen["api_version"] == "kubevirt.io/v1"
    assert seen["hidden_fields"] == ["metadata.annotations[kubemacpool.io/transaction-timestamp]",
                                     "metadata.managedFields"]
    assert (seen["validate_certs"], seen["ca_cert"], seen["client_cert"], seen["client_key"]) == \
        (False, "/ca", "/c", "/k")


def test_a_missing_library_is_named_without_a_traceback(monkeypatch, capsys):
    monkeypatch.setattr(core, "RUNTIME_IMPORT_ERROR", "Traceback ... No module named 'kubevirt_runtime'")
    with patch_module_args({"namespace": "ns", "name": "a"}), pytest.raises(SystemExit):
        vm_module.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] and "Failed to import the required Python library (kubevirt-runtime)" in out["msg"]
    assert "pip install" in out["msg"] and "Traceback" not in out["msg"]


# ---------------------------------------------------------------- the object

def test_definition_like_kubevirt_core():
    vm = vm_definition(params(labels={"app": "x"}, spec={"domain": {"memory": {"guest": "64Mi"}}}))
    assert vm["metadata"] == {"namespace": "ns", "name": "vm1", "labels": {"app": "x"}}
    assert vm["spec"]["template"]["metadata"] == {"labels": {"app": "x"}}
    assert vm["spec"]["running"] is True and vm["spec"]["runStrategy"] is None  # None: removed by the merge patch
    assert vm["spec"]["template"]["spec"] == {"domain": {"memory": {"guest": "64Mi"}}}
    assert without_nulls(vm)["spec"].keys() == {"running", "template"}
    halted = vm_definition(params(run_strategy="Halted"))
    assert halted["spec"]["runStrategy"] == "Halted" and halted["spec"]["running"] is None
    assert vm_definition(params())["spec"]["template"]["spec"] == {"domain": {"devices": {}}}


def test_lifecycle_states_leave_the_run_fields_alone_unless_given():
    assert "running" not in vm_definition(params(state="started"))["spec"]
    assert vm_definition(params(state="started", run_strategy="Manual"))["spec"]["runStrategy"] == "Manual"
    assert not describes_vm(params(state="stopped")) and describes_vm(params(state="stopped", labels={"a": "b"}))


def test_present_waits_as_the_run_fields_say():
    assert present_wait_condition(params()) == {"type": "Ready", "status": True}
    assert present_wait_condition(params(running=False))["reason"] == "VMINotExists"
    assert present_wait_condition(params(run_strategy="Halted"))["reason"] == "VMINotExists"
    assert present_wait_condition(params(run_strategy="Manual")) is None


# ---------------------------------------------------------------- check mode predicts the real run

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeService:
    """An API server in memory: merge patches, dry runs, virt-api's lifecycle effects."""

    def __init__(self, vm=None, vmi=None, dry_run=False):
        self.vms = {"vm1": vm} if vm else {}
        self.vmis = {"vm1": vmi} if vmi else {}
        self.dry_run = dry_run
        self.calls = []
        self.rv = 10

    def _stamp(self, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return obj

    def get(self, kind, namespace, name):
        store = self.vms if kind == "VirtualMachine" else self.vmis
        return copy.deepcopy(store.get(name))

    def create(self, definition):
        vm = dict(copy.deepcopy(definition), status={"printableStatus": "Stopped"})
        vm["metadata"]["uid"] = "vm-uid"
        if not self.dry_run:
            self.vms[vm["metadata"]["name"]] = self._stamp(vm)
        return copy.deepcopy(vm)

    def update(self, definition):
        name = definition["metadata"]["name"]
        new = merge_patch(self.vms[name], definition)
        if new == self.vms[name]:
            return copy.deepcopy(new)
        if not self.dry_run:
            self.vms[name] = self._stamp(new)
        return copy.deepcopy(new)

    def replace(self, definition, existing):
        return self.update(definition)

    def delete(self, existing, options):
        if not self.dry_run:
            self.vms.pop(existing["metadata"]["name"])
        return dict(existing, status={})

    def lifecycle(self, target, call, namespace, name, body=None):
        self.calls.append(call)
        if self.dry_run:
            return
        vm = self.vms[name]
        if call == "start":
            vm["spec"]["runStrategy"] = "Always"
        elif call == "stop":
            vm["spec"]["runStrategy"] = "Halted"
        elif call in ("pause", "unpause"):
            conditions = [c for c in self.vmis[name]["status"]["conditions"] if c["type"] != "Paused"]
            if call == "pause":
                conditions.append({"type": "Paused", "status": "True"})
            self.vmis[name]["status"]["conditions"] = conditions


class FakeModule:
    def __init__(self, p, check_mode, diff=True):
        self.params, self.check_mode, self._diff = p, check_mode, diff
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)


def stored_vm(strategy="Halted", printable="Stopped"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "ns", "uid": "vm-uid", "resourceVersion": "5"},
            "spec": {"runStrategy": strategy, "template": {"spec": {"domain": {"devices": {}}}}},
            "status": {"printableStatus": printable}}


def running_vmi(paused=False):
    conditions = [{"type": "Ready", "status": "True"}] + ([{"type": "Paused", "status": "True"}] if paused else [])
    return {"metadata": {"name": "vm1", "namespace": "ns", "uid": "vmi-1"},
            "status": {"phase": "Running", "conditions": conditions}}


def run_task(p, vm, vmi, check_mode):
    svc = FakeService(copy.deepcopy(vm), copy.deepcopy(vmi), dry_run=check_mode)
    result = runner.VMTask(FakeModule(p, check_mode), svc).run()
    return result, svc


SCENARIOS = [
    ("started", stored_vm("Halted"), None, True),
    ("started", stored_vm("Always", "Running"), running_vmi(), False),
    ("stopped", stored_vm("Always", "Running"), running_vmi(), True),
    ("stopped", stored_vm("Halted"), None, False),
    ("restarted", stored_vm("Always", "Running"), running_vmi(), True),
    ("paused", stored_vm("Always", "Running"), running_vmi(), True),
    ("paused", stored_vm("Always", "Paused"), running_vmi(paused=True), False),
    ("unpaused", stored_vm("Always", "Paused"), running_vmi(paused=True), True),
    ("unpaused", stored_vm("Always", "Running"), running_vmi(), False),
    ("present", stored_vm("Always"), None, True),  # the task's defaults say running: true
    ("absent", stored_vm("Halted"), None, True),
]


@pytest.mark.parametrize("state,vm,vmi,changes", SCENARIOS)
def test_check_mode_predicts_the_real_run(state, vm, vmi, changes):
    p = params(state=state)
    predicted, dry = run_task(p, vm, vmi, check_mode=True)
    real, live = run_task(p, vm, vmi, check_mode=False)
    assert predicted["changed"] is real["changed"] is changes
    assert predicted.get("diff", {}).get("after") == real.get("diff", {}).get("after")
    assert dry.vms == {"vm1": vm}  # check mode stored nothing
    if changes and state in ("started", "stopped", "restarted", "paused", "unpaused"):
        assert live.calls and live.calls == dry.calls  # decided the same request
    if not changes:
        assert not live.calls


def test_second_identical_run_is_unchanged():
    for state in ("started", "stopped", "paused", "unpaused"):
        vm, vmi = stored_vm("Always", "Running"), running_vmi()
        svc = FakeService(vm, vmi)
        first = runner.VMTask(FakeModule(params(state=state), False), svc).run()
        second = runner.VMTask(FakeModule(params(state=state), False), svc).run()
        assert second["changed"] is False, (state, first, second)


def test_diff_of_a_start_shows_strategy_and_status():
    result, _ = run_task(params(state="started"), stored_vm("Halted"), None, check_mode=True)
    assert result["diff"]["before"]["spec"] == {"runStrategy": "Halted"}
    assert result["diff"]["after"]["spec"] == {"runStrategy": "Always"}
    assert result["diff"]["after"]["status"]["printableStatus"] == "Running"
    assert result["method"] == "update" and "(before)" in result["diff"]["before_header"]


def test_diff_of_an_update_is_the_changed_fields_only():
    result, _ = run_task(params(labels={"team": "a"}, run_strategy="Halted"), stored_vm("Halted"), None, True)
    assert result["changed"] and result["diff"]["after"]["metadata"] == {"labels": {"team": "a"}}
    assert "runStrategy" not in result["diff"]["after"].get("spec", {})


def test_restart_of_a_stopped_vm_is_refused_in_check_mode_too():
    for check_mode in (True, False):
        svc = FakeService(stored_vm("Halted"), None, dry_run=check_mode)
        with pytest.raises(runner.TaskFailed, match="Halted does not support manual restart requests"):
            runner.VMTask(FakeModule(params(state="restarted"), check_mode), svc).run()


def test_lifecycle_state_of_a_missing_vm_says_so():
    with pytest.raises(runner.TaskFailed, match="does not exist"):
        runner.VMTask(FakeModule(params(state="started"), False), FakeService()).run()


def test_a_race_lost_to_virt_api_is_no_change():
    class Racing(FakeService):
        def lifecycle(self, target, call, namespace, name, body=None):
            raise ApiError(409, {"reason": "Conflict", "message": "Always does not support manual start requests"})
    result = runner.VMTask(FakeModule(params(state="started"), False), Racing(stored_vm("Halted"))).run()
    assert result["changed"] is False


def test_grace_period_goes_into_the_request_and_restart_takes_only_zero():
    task = runner.VMTask(FakeModule(params(grace_period_seconds=5), False), FakeService())
    assert task._body("stop") == {"gracePeriod": 5} and task._body("restart") == {"gracePeriodSeconds": 5}
    with pytest.raises(runner.TaskFailed, match="grace_period_seconds"):
        runner.VMTask(FakeModule(params(state="restarted", grace_period_seconds=5), False),
                      FakeService(stored_vm("Always"), running_vmi())).run()
