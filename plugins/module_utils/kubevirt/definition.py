"""The VirtualMachine a kubevirt.ops.vm task describes (pure functions of the module parameters).

Same shape as kubevirt.core.kubevirt_vm builds, so a task gives the same object with either module:
- labels and annotations go on the VM and on its template;
- run_strategy sets spec.runStrategy and clears spec.running; otherwise spec.running is `running`, or true
  when neither is given (and spec.runStrategy is cleared);
- spec is the template's spec, {domain: {devices: {}}} when not given;
- for the lifecycle states the run fields are left out unless the task sets them, so the update does not
  fight the start/stop request that follows.
A None value in the result means "remove this field" in the merge patch of an update.
"""
from __future__ import annotations

import copy

KIND = "VirtualMachine"
DEFINITION_OPTIONS = ("labels", "annotations", "running", "run_strategy", "instancetype", "preference",
                      "data_volume_templates", "spec")


def vm_definition(params: dict) -> dict:
    vm = {
        "apiVersion": params["api_version"],
        "kind": KIND,
        "metadata": {"namespace": params["namespace"]},
        "spec": {"template": {"spec": {"domain": {"devices": {}}}}},
    }
    meta = vm["metadata"]
    if params.get("name") is not None:
        meta["name"] = params["name"]
    if params.get("generate_name") is not None:
        meta["generateName"] = params["generate_name"]
    template_meta = {}
    for key in ("annotations", "labels"):
        if params.get(key) is not None:
            meta[key] = copy.deepcopy(params[key])
            template_meta[key] = copy.deepcopy(params[key])
    if template_meta:
        vm["spec"]["template"]["metadata"] = template_meta
    spec = vm["spec"]
    if params.get("run_strategy") is not None:
        spec["runStrategy"] = params["run_strategy"]
        spec["running"] = None
    else:
        spec["runStrategy"] = None
        spec["running"] = True if params.get("running") is None else params["running"]
    for option, field in (("instancetype", "instancetype"), ("preference", "preference"),
                          ("data_volume_templates", "dataVolumeTemplates")):
        if params.get(option) is not None:
            spec[field] = copy.deepcopy(params[option])
    if params.get("spec") is not None:
        spec["template"]["spec"] = copy.deepcopy(params["spec"])
    if params.get("state") not in ("present", "absent") and params.get("running") is None \
            and params.get("run_strategy") is None:
        spec.pop("running")
        spec.pop("runStrategy")
    return vm


def describes_vm(params: dict) -> bool:
    """Whether the task says anything about the VM beyond which one it is."""
    return any(params.get(option) is not None for option in DEFINITION_OPTIONS)


def without_nulls(obj):
    """A copy without None values (what a create or replace sends; None only means something in a patch)."""
    if isinstance(obj, dict):
        return {k: without_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [without_nulls(v) for v in obj]
    return obj


def present_wait_condition(params: dict) -> dict | None:
    """What state=present waits for: Ready=True for a running VM, Ready=False/VMINotExists for a halted one,
    mere existence (None) for Manual."""
    if params.get("running") is False or params.get("run_strategy") == "Halted":
        return {"type": "Ready", "status": False, "reason": "VMINotExists"}
    if params.get("run_strategy") == "Manual":
        return None
    return {"type": "Ready", "status": True}
