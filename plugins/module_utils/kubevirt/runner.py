"""What the VM modules do, from parsed parameters to exit_json / fail_json (the modules only declare options).

kubevirt.ops.vm, in order:
1. absent: delete the VM if it exists (a dry run in check mode); with wait, until it is gone.
2. otherwise the object: create it when missing, replace it with force, else merge-patch it (dry runs in
   check mode); changed = whether the object differs afterwards (hidden fields aside).
3. started/stopped/restarted/paused/unpaused: lifecycle.decide() says whether a request is needed, the same
   way in a real run and in check mode, so both report the same `changed` and diff.
4. wait (never in check mode): for the condition of the state; when the VM ended up running, the VMI and its
   startup timeline are returned too.
"""
from __future__ import annotations

import re

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.client import ConfigurationError, api_client
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.definition import (
    describes_vm,
    present_wait_condition,
    vm_definition,
    without_nulls,
)
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.objects import diff_objects, hide_fields, merge
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.service import ApiError, KubeVirtService
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.waiter import condition_met, wait

try:
    from kubevirt_runtime.client import lifecycle
    from kubevirt_runtime.client.console import ConsoleError, ConsoleSession, run_steps
    from kubevirt_runtime.client.errors import describe
    from kubevirt_runtime.client.timeline import startup_timeline
except ImportError:  # reported by core.missing_requirement before anything calls in here
    lifecycle = None

VM, VMI = "VirtualMachine", "VirtualMachineInstance"
READY = {"type": "Ready", "status": True}
HALTED = {"type": "Ready", "status": False, "reason": "VMINotExists"}


class TaskFailed(Exception):
    def __init__(self, msg: str, **fields):
        super().__init__(msg)
        self.fields = fields


def _error_fields(exc) -> dict:
    fields = {"status": exc.status, "reason": exc.reason}
    causes = (exc.body.get("details") or {}).get("causes")
    if causes:
        fields["causes"] = causes
    return fields


def _run(module, work):
    """Runs work(service) and turns API and connection errors into a failed task that says what went wrong."""
    try:
        service = KubeVirtService(api_client(module.params), module.params.get("api_version") or "kubevirt.io/v1",
                                  dry_run=module.check_mode)
        result = work(service)
    except ApiError as exc:
        module.fail_json(msg=describe(exc), **_error_fields(exc))
    except ConfigurationError as exc:
        module.fail_json(msg=str(exc))
    except TaskFailed as exc:
        module.fail_json(msg=str(exc), **exc.fields)
    module.exit_json(**result)


# ---------------------------------------------------------------- kubevirt.ops.vm

class VMTask:
    def __init__(self, module, service: KubeVirtService):
        self.params = module.params
        self.check_mode = module.check_mode
        self.diff_mode = module._diff
        self.warn = module.warn
        self.svc = service
        self.hidden = self.params["hidden_fields"]
        self.namespace = self.params["namespace"]
        self.result = {"changed": False, "result": {}}
        self.diff = {"before": {}, "after": {}}
        self.old_vmi_uid = None  # the instance a restart replaces

    @property
    def label(self) -> str:
        return f"{VM} {self.namespace}/{self.params.get('name') or self.params.get('generate_name')}"

    def run(self) -> dict:
        state = self.params["state"]
        if state == "restarted" and self.params.get("grace_period_seconds") not in (None, 0):
            raise TaskFailed("grace_period_seconds: a restart takes only 0 (force) or nothing (the VM's own grace "
                             "period)")
        if state == "absent":
            self.absent()
        else:
            vm = self.apply()
            vmi = None
            if state in lifecycle.STATES:
                vm, vmi = self.lifecycle(state, vm)
            if self.params["wait"] and not self.check_mode:
                vm = self.wait(state, vm, vmi)
            self.result["result"] = hide_fields(vm, self.hidden)
        if self.diff_mode and (self.diff["before"] or self.diff["after"]):
            self.result["diff"] = dict(self.diff, before_header=f"{self.label} (before)",
                                       after_header=f"{self.label} (after)")
        return self.result

    def _record(self, before: dict, after: dict) -> None:
        self.diff = {"before": merge(self.diff["before"], before), "after": merge(self.diff["after"], after)}

    # -- state=absent

    def absent(self):
        self.result["method"] = "delete"
        name = self.params.get("name")
        existing = self.svc.get(VM, self.namespace, name) if name else None
        if existing is None:
            return
        answer = self.svc.delete(existing, self.params.get("delete_options"))
        self.result.update(changed=True, result=hide_fields(answer, self.hidden))
        self._record(hide_fields(existing, self.hidden), {})
        if self.params["wait"] and not self.check_mode:
            done, _last, took = wait(lambda: self.svc.get(VM, self.namespace, name), lambda vm: vm is None,
                                     self.params["wait_timeout"], self.params["wait_sleep"])
            self.result["duration"] = int(took)
            if not done:
                raise TaskFailed(f"{self.label}: timed out after {self.params['wait_timeout']}s waiting for it to be "
                                 "deleted", **self.result)

    # -- the object

    def apply(self) -> dict:
        definition = vm_definition(self.params)
        name = definition["metadata"].get("name")
        existing = self.svc.get(VM, self.namespace, name) if name else None
        if existing is None:
            if self.params["state"] in lifecycle.STATES and not describes_vm(self.params):
                raise TaskFailed(f"{self.label} does not exist; to create it, give its spec (and the other VM "
                                 "options) in this task", status=404, reason="NotFound")
            vm = self.svc.create(without_nulls(definition))
            self.result.update(method="create", changed=True)
            self._record({}, hide_fields(vm, self.hidden))
            return vm
        if self.params["force"]:
            vm = self.svc.replace(without_nulls(definition), existing)
            self.result["method"] = "replace"
        else:
            vm = self.svc.update(definition)
            self.result["method"] = "update"
        changed, diff = diff_objects(existing, vm, self.hidden)
        if diff and not changed:
            self.warn("No meaningful diff was generated, but the API may not be idempotent (only "
                      "metadata.generation or metadata.resourceVersion were changed)")
        if changed:
            self.result["changed"] = True
            self._record(diff["before"], diff["after"])
        return vm

    # -- started / stopped / restarted / paused / unpaused

    def lifecycle(self, state: str, vm: dict):
        name = vm["metadata"]["name"]
        created_now = self.result.get("method") == "create"
        vmi = None if created_now and self.check_mode else self.svc.get(VMI, self.namespace, name)
        decision = lifecycle.decide(state, vm, vmi)
        if decision.error and state == "paused" and self._starting(vmi) and self.params["wait"] \
                and not self.check_mode:
            def settled(current):
                return lifecycle.phase(current) == "Running" or not self._starting(current)
            _done, vmi, _took = wait(lambda: self.svc.get(VMI, self.namespace, name), settled,
                                     self.params["wait_timeout"], self.params["wait_sleep"])
            decision = lifecycle.decide(state, vm, vmi)
        if decision.error:
            raise TaskFailed(f"{self.label}: cannot be {state}: {decision.error}", status=409, reason="Conflict",
                             result=hide_fields(vm, self.hidden), **self.result_fields())
        self.old_vmi_uid = (vmi or {}).get("metadata", {}).get("uid")
        if not decision.changes:
            return vm, vmi
        before, after = lifecycle.view(vm, vmi), lifecycle.predicted_view(state, vm, vmi)
        try:
            self.svc.lifecycle(decision.target, decision.call, self.namespace, name, self._body(decision.call))
        except ApiError as exc:
            if exc.status == 409 and decision.call in ("start", "stop"):
                # it got there meanwhile, as virt-api says (kubevirt.core reads 409 the same way)
                return self.svc.get(VM, self.namespace, name) or vm, vmi
            raise
        self.result["changed"] = True
        self._record(before, after)
        if self.check_mode:
            return vm, vmi
        return self.svc.get(VM, self.namespace, name) or vm, vmi

    def result_fields(self) -> dict:
        return {k: v for k, v in self.result.items() if k in ("changed", "method")}

    @staticmethod
    def _starting(vmi) -> bool:
        return vmi is not None and lifecycle.instance_active(vmi) and lifecycle.phase(vmi) != "Running"

    def _body(self, call: str):
        grace = self.params.get("grace_period_seconds")
        if grace is None:
            return None
        if call == "stop":
            return {"gracePeriod": grace}
        if call == "restart":
            return {"gracePeriodSeconds": grace}
        return None

    # -- wait

    def _wait_goal(self, state: str):
        """(description, predicate on (vm, vmi), whether the VMI is needed to decide)."""
        old_uid = self.old_vmi_uid
        if state == "started":
            return "Ready=True", lambda vm, vmi: condition_met(vm, READY), False
        if state == "stopped":
            return "Ready=False (VMINotExists)", lambda vm, vmi: condition_met(vm, HALTED), False
        if state == "restarted":
            return ("a new instance and Ready=True",
                    lambda vm, vmi: vmi is not None and vmi["metadata"].get("uid") != old_uid
                    and condition_met(vm, READY), True)
        if state == "paused":  # the VM's printableStatus follows the instance's condition a moment later
            return ("the instance Paused",
                    lambda vm, vmi: lifecycle.is_paused(vmi) and _printable(vm) == "Paused", True)
        if state == "unpaused":
            return ("the instance running unpaused",
                    lambda vm, vmi: not lifecycle.is_paused(vmi) and _printable(vm) != "Paused", True)
        condition = present_wait_condition(self.params)
        if condition is None:
            return "it to exist", lambda vm, vmi: vm is not None, False
        text = "Ready=True" if condition["status"] else "Ready=False (VMINotExists)"
        return text, lambda vm, vmi: condition_met(vm, condition), False

    def wait(self, state: str, vm: dict, vmi) -> dict:
        name = vm["metadata"]["name"]
        goal, predicate, needs_vmi = self._wait_goal(state)

        def fetch():
            current = self.svc.get(VM, self.namespace, name)
            return current, (self.svc.get(VMI, self.namespace, name) if needs_vmi else None)

        done, (vm_now, _vmi_now), took = wait(fetch, lambda pair: predicate(*pair), self.params["wait_timeout"],
                                              self.params["wait_sleep"])
        self.result["duration"] = int(took)
        vm = vm_now or vm
        if not done:
            status = (vm.get("status") or {}).get("printableStatus", "unknown")
            self.result["result"] = hide_fields(vm, self.hidden)
            raise TaskFailed(f"{self.label}: timed out after {self.params['wait_timeout']}s waiting for {goal} "
                             f"(printableStatus {status})", **self.result)
        if condition_met(vm, READY):
            self._add_instance(vm)
        return vm

    def _add_instance(self, vm: dict) -> None:
        vmi = self.svc.get(VMI, self.namespace, vm["metadata"]["name"])
        if vmi is None:
            return
        self.result["vmi"] = hide_fields(vmi, self.hidden)
        self.result["timeline"] = startup_timeline(vmi, self.svc.launcher_pod(vmi), self.svc.events_of(vmi))


def _printable(vm) -> str:
    return ((vm or {}).get("status") or {}).get("printableStatus", "")


def run_vm(module) -> None:
    _run(module, lambda service: VMTask(module, service).run())


# ---------------------------------------------------------------- kubevirt.ops.vm_info / vmi_info

def run_info(module, kind: str, condition: dict) -> None:
    params = module.params

    def work(service):
        def find():
            return service.find(kind, params.get("namespace"), params.get("name"), params["label_selectors"],
                                params["field_selectors"])
        try:
            items = find()
        except ApiError as exc:
            if exc.status == 404 and not (exc.body.get("details") or {}).get("name"):
                return {"changed": False, "api_found": False, "resources": [],
                        "msg": f'Failed to find API for resource with apiVersion "{params["api_version"]}" and kind '
                               f'"{kind}"'}
            raise
        if params.get("wait"):
            timeout, sleep = params["wait_timeout"], params["wait_sleep"]
            if not items:  # as kubernetes.core: first wait for something to match
                _found, items, _took = wait(find, bool, timeout, sleep)
            waited = []
            for item in items:
                meta = item["metadata"]
                done, current, took = wait(lambda m=meta: service.get(kind, m["namespace"], m["name"]),
                                           lambda obj: condition_met(obj, condition), timeout, sleep)
                if not done:
                    raise TaskFailed(f"Failed to gather information about {kind}(s) even after waiting for {int(took)} "
                                     f"seconds ({meta['namespace']}/{meta['name']} never had {condition['type']}="
                                     f"{condition['status']})")
                waited.append(current)
            items = waited
        return {"changed": False, "api_found": True,
                "resources": [hide_fields(item, params["hidden_fields"]) for item in items]}
    _run(module, work)


# ---------------------------------------------------------------- kubevirt.ops.vm_console

def run_console(module) -> None:
    params = module.params
    steps = params["steps"]
    for index, step in enumerate(steps):
        if step.get("expect") is not None:
            try:
                re.compile(step["expect"])
            except re.error as exc:
                module.fail_json(msg=f"steps[{index}].expect: not a regular expression: {exc}")
    sends = any(step.get("send") is not None for step in steps)
    if module.check_mode:
        module.exit_json(changed=sends, transcript="", steps=[], msg="check mode: the console was not opened")

    def work(service):
        ws = service.subresources.open_console(params["namespace"], params["name"], params["connect_timeout"])
        session = ConsoleSession(ws)
        try:
            results = run_steps(session, steps, params["timeout"])
        except ConsoleError as exc:
            raise TaskFailed(f"{params['namespace']}/{params['name']} console: {exc}; last output:\n"
                             f"{session.transcript[-1500:]}", changed=sends, transcript=session.transcript) from None
        finally:
            ws.close()
        return {"changed": sends, "transcript": session.transcript, "steps": results,
                "matches": [r["groups"] for r in results if r["matched"] is not None]}
    _run(module, work)
