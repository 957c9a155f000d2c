"""Admission decisions of virt-api's webhooks: what a user sees when creating or changing VMs and VMIs."""
import base64
import copy
import json

import pytest

from kubevirt_runtime.api import default_vm, default_vmi
from kubevirt_runtime.apiserver import admission

VMI_SPEC = {
    "domain": {"devices": {"disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}]},
               "resources": {"requests": {"memory": "64Mi"}}},
    "volumes": [{"name": "rootdisk", "containerDisk": {"image": "example/disk:1"}}],
}
VMI = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
       "metadata": {"name": "v", "namespace": "default"}, "spec": VMI_SPEC}
VM = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm1", "namespace": "default"},
      "spec": {"runStrategy": "Halted", "template": {"spec": VMI_SPEC}}}


def review(obj, plural, operation="CREATE", old=None, sub=None):
    request = {"uid": "u-1", "kind": {"group": "kubevirt.io", "version": "v1", "kind": obj.get("kind")},
               "resource": {"group": "kubevirt.io", "version": "v1", "resource": plural},
               "operation": operation, "object": copy.deepcopy(obj), "name": obj["metadata"]["name"]}
    if old is not None:
        request["oldObject"] = old
    if sub:
        request["subResource"] = sub
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def patch_of(answer):
    return json.loads(base64.b64decode(answer["response"]["patch"]))


@pytest.mark.parametrize("obj,plural,defaulter", [(VM, "virtualmachines", default_vm),
                                                   (VMI, "virtualmachineinstances", default_vmi)])
def test_mutation_patch_turns_the_object_into_the_defaulted_one(obj, plural, defaulter):
    answer = admission.mutate(review(obj, plural, operation="UPDATE"))
    assert answer["kind"] == "AdmissionReview" and answer["response"]["uid"] == "u-1"
    assert answer["response"]["allowed"] and answer["response"]["patchType"] == "JSONPatch"
    assert admission.apply_patch(obj, patch_of(answer)) == defaulter(obj)


def test_a_created_vm_gets_a_firmware_uuid_and_serial():
    answer = admission.mutate(review(VM, "virtualmachines"))
    firmware = admission.apply_patch(VM, patch_of(answer))["spec"]["template"]["spec"]["domain"]["firmware"]
    assert len(firmware["uuid"]) == 36 and len(firmware["serial"]) == 36 and firmware["uuid"] != firmware["serial"]


@pytest.mark.parametrize("plural, obj, field", [
    ("virtualmachineinstances", {"spec": {"domain": {"devices": {"disks": ["c"]}}}}, "spec.domain.devices.disks[0]"),
    ("virtualmachineinstances", {"spec": {"domain": {"cpu": "2", "devices": {}}}}, "spec.domain.cpu"),
    ("virtualmachines", {"spec": {"template": {"spec": {"domain": {"cpu": "2", "devices": {}}}}}},
     "spec.template.spec.domain.cpu"),
    ("virtualmachines", {"spec": "yes"}, "spec"),
])
def test_badly_typed_objects_are_422_naming_the_field_not_500(plural, obj, field):
    """Issue 8 defect 3: `disks: ["c"]` made the mutating webhook raise; `cpu: "2"` was overwritten."""
    obj = dict(obj, apiVersion="kubevirt.io/v1", metadata={"name": "bad", "namespace": "default"})
    for call in (admission.mutate, admission.validate):
        response = call(review(obj, plural))["response"]
        assert response["allowed"] is False
        assert response["status"]["code"] == 422
        assert field in {c["field"] for c in response["status"]["details"]["causes"]}
        assert "patch" not in response


def test_an_already_defaulted_object_gets_no_patch():
    vmi = default_vmi(VMI)
    vmi["metadata"]["finalizers"] = ["foregroundDeleteVirtualMachine"]
    answer = admission.mutate(review(vmi, "virtualmachineinstances"))
    assert answer["response"] == {"uid": "u-1", "allowed": True}


def test_created_objects_come_with_their_controllers_finalizer():
    """So neither controller spends a PATCH adding it."""
    for obj, plural, finalizer in ((VM, "virtualmachines", "kubevirt.io/virtualMachineControllerFinalize"),
                                   (VMI, "virtualmachineinstances", "foregroundDeleteVirtualMachine")):
        patch = json.loads(base64.b64decode(admission.mutate(review(obj, plural))["response"]["patch"]))
        assert {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]} in patch, plural
        update = admission.mutate(review(obj, plural, operation="UPDATE"))["response"]
        assert finalizer not in json.dumps(update), plural  # an update is never given one


def test_delete_and_foreign_resources_are_let_through():
    req = review(VMI, "virtualmachineinstances", operation="DELETE")
    assert admission.mutate(req)["response"]["allowed"]
    other = review(VMI, "pods")
    other["request"]["resource"]["group"] = ""
    assert "patch" not in admission.mutate(other)["response"]


def test_valid_objects_are_allowed():
    for obj, plural in ((VM, "virtualmachines"), (VMI, "virtualmachineinstances")):
        assert admission.validate(review(obj, plural))["response"]["allowed"]


def test_invalid_vm_is_rejected_naming_each_field():
    bad = copy.deepcopy(VM)
    bad["spec"]["template"]["spec"]["domain"]["devices"]["disks"][0]["disk"]["bus"] = "floppy"
    bad["spec"]["runStrategy"] = "Sometimes"
    response = admission.validate(review(bad, "virtualmachines"))["response"]
    assert response["allowed"] is False
    status = response["status"]
    assert status["code"] == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert "spec.template.spec.domain.devices.disks[0].disk.bus" in fields
    assert "spec.runStrategy" in fields
    assert 'VirtualMachine "vm1" is invalid' in status["message"]
    assert "spec.template.spec.domain.devices.disks[0].disk.bus" in status["message"]


def test_unknown_field_is_rejected_not_dropped():
    bad = copy.deepcopy(VMI)
    bad["spec"]["domain"]["frobnicate"] = True
    status = admission.validate(review(bad, "virtualmachineinstances"))["response"]["status"]
    assert any(c["field"].startswith("spec.domain.frobnicate") for c in status["details"]["causes"])


def test_update_without_spec_change_is_allowed_so_finalizers_can_go():
    bad = copy.deepcopy(VM)
    bad["spec"]["runStrategy"] = "Sometimes"
    assert admission.validate(review(bad, "virtualmachines", "UPDATE", old=copy.deepcopy(bad)))["response"]["allowed"]
    assert not admission.validate(review(bad, "virtualmachines", "UPDATE", old=VM))["response"]["allowed"]
    assert admission.validate(review(bad, "virtualmachines", "UPDATE", old=VM, sub="status"))["response"]["allowed"]


def test_review_dispatch_and_bad_bodies():
    body = json.dumps(review(VMI, "virtualmachineinstances")).encode()
    assert admission.review(admission.VALIDATE_VMI_PATH, body)["response"]["allowed"]
    with pytest.raises(admission.BadReview):
        admission.review(admission.MUTATE_VM_PATH, b"not json")
    with pytest.raises(admission.BadReview):
        admission.review(admission.MUTATE_VM_PATH, b'{"kind": "Pod"}')
    with pytest.raises(KeyError):
        admission.review("/nope", body)


@pytest.mark.parametrize("before,after", [
    ({}, {"a": 1}),
    ({"a": 1, "b": 2}, {"a": 1}),
    ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2, 3]}}),
    ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}),
    ({"a": [1, 2, 3]}, {"a": [3]}),
    ({"a/b~c": 1}, {"a/b~c": 2}),
    ({"a": 1}, {"a": True}),
    ({"a": None}, {"a": {}}),
])
def test_json_patch_round_trips(before, after):
    assert admission.apply_patch(before, admission.json_patch(before, after)) == after


def test_json_patch_escapes_pointer_tokens():
    assert admission.json_patch({}, {"a/b": 1}) == [{"op": "add", "path": "/a~1b", "value": 1}]
