"""The VM controller's storage side: DataVolumes from templates, printableStatus from volumes, hotplug carried
to the VMI; pure parts by table, the loop against the in-memory API."""
import copy

import pytest

from kubevirt_runtime.api import cdi
from kubevirt_runtime.controller import vm_storage
from kubevirt_runtime.controller.vm_controller import VMController
from kubevirt_runtime.controller.vm_status import printable_status
from tests.unit.fakeapi import FakeInformer, FakeRecorder, FakeResource

DV_SPEC = {"source": {"http": {"url": "http://server/disk.img"}},
           "storage": {"resources": {"requests": {"storage": "1Gi"}}}}


def vm(strategy="Always", hotplug=()):
    volumes = [{"name": "root", "dataVolume": {"name": "vm-root"}}]
    disks = [{"name": "root", "disk": {"bus": "virtio"}}]
    for name in hotplug:
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": name, "hotpluggable": True}})
        disks.append({"name": name, "disk": {"bus": "scsi"}})
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm", "namespace": "ns", "uid": "vm-uid", "generation": 1},
            "spec": {"runStrategy": strategy,
                     "dataVolumeTemplates": [{"metadata": {"name": "vm-root", "labels": {"a": "b"}},
                                              "spec": copy.deepcopy(DV_SPEC)}],
                     "template": {"metadata": {}, "spec": {"domain": {"memory": {"guest": "64Mi"},
                                                                      "devices": {"disks": disks}},
                                                           "volumes": volumes}}}}


def dv(phase=None, running=None):
    status = {}
    if phase:
        status["phase"] = phase
    if running:
        status["conditions"] = [{"type": "Running", "status": "False", "reason": running[0], "message": running[1]}]
    return {"metadata": {"name": "vm-root", "namespace": "ns"}, "status": status}


def pvc(phase):
    return {"metadata": {"name": "vm-root", "namespace": "ns"}, "status": {"phase": phase}}


@pytest.mark.parametrize("dvs, pvcs, printable", [
    ({}, {}, "Starting"),
    ({"vm-root": dv("ImportInProgress")}, {"vm-root": pvc("Bound")}, "Provisioning"),
    ({"vm-root": dv("Failed")}, {"vm-root": pvc("Bound")}, "DataVolumeError"),
    ({"vm-root": dv("ImportInProgress", ("Error", "got 404"))}, {}, "DataVolumeError"),
    ({"vm-root": dv("Succeeded")}, {"vm-root": pvc("Pending")}, "WaitingForVolumeBinding"),
    ({"vm-root": dv("Succeeded")}, {"vm-root": pvc("Bound")}, "Starting"),
])
def test_printable_status_from_the_volumes(dvs, pvcs, printable):
    facts = vm_storage.facts(vm(), dvs, pvcs)
    assert printable_status(vm(), None, True, False, facts) == printable


def test_a_halted_vm_is_not_waiting_for_binding_but_shows_provisioning():
    halted = vm("Halted")
    assert printable_status(halted, None, False, False,
                            vm_storage.facts(halted, {"vm-root": dv("Succeeded")}, {"vm-root": pvc("Pending")})) == \
        "Stopped"
    assert printable_status(halted, None, False, False,
                            vm_storage.facts(halted, {"vm-root": dv("Pending")}, {})) == "Provisioning"


def test_datavolume_manifest_is_owned_by_the_vm():
    made = vm_storage.datavolume_manifest(vm(), vm()["spec"]["dataVolumeTemplates"][0])
    assert made["metadata"] == {"name": "vm-root", "namespace": "ns", "labels": {"a": "b"},
                                "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                                     "name": "vm", "uid": "vm-uid", "controller": True,
                                                     "blockOwnerDeletion": True}]}
    assert made["spec"] == DV_SPEC


def running_vmi(hotplug=()):
    spec = copy.deepcopy(vm(hotplug=hotplug)["spec"]["template"]["spec"])
    return {"metadata": {"name": "vm", "namespace": "ns", "uid": "vmi-uid"}, "spec": spec,
            "status": {"phase": "Running"}}


@pytest.mark.parametrize("vm_hotplug, vmi_hotplug, wanted", [
    (("extra",), (), ["root", "extra"]),
    ((), ("extra",), ["root"]),
    (("extra",), ("extra",), None),
    (("a", "b"), ("b",), ["root", "b", "a"]),
])
def test_hotplug_patch_carries_the_vms_hotplugged_volumes(vm_hotplug, vmi_hotplug, wanted):
    patch = vm_storage.hotplug_patch(vm(hotplug=vm_hotplug), running_vmi(vmi_hotplug))
    if wanted is None:
        assert patch is None
        return
    assert [op["op"] for op in patch] == ["test", "test", "replace", "replace"]
    assert [v["name"] for v in patch[2]["value"]] == wanted
    assert [d["name"] for d in patch[3]["value"]] == wanted


def test_the_vm_waits_for_its_datavolume_then_starts():
    vms = FakeResource("VirtualMachine", "kubevirt.io/v1")
    vmis = FakeResource("VirtualMachineInstance", "kubevirt.io/v1")
    dvs = FakeResource(cdi.KIND, cdi.API_VERSION)
    pvcs = FakeInformer()
    recorder = FakeRecorder()
    controller = VMController(vms, vmis, vms.informer, vmis.informer, recorder)
    controller.storage = vm_storage.VMStorage(dvs, vmis, dvs.informer, pvcs, vms.informer,
                                              lambda obj: controller.queue.add("ns/vm"), recorder)
    body = vm()
    del body["metadata"]["uid"]
    vms.create(body, "ns")
    controller.sync("ns/vm")
    created = dvs.objects["ns/vm-root"]
    assert created["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"
    assert "ns/vm" not in vmis.objects
    assert vms.objects["ns/vm"]["status"]["printableStatus"] == "Provisioning"
    created["status"] = {"phase": "Succeeded"}
    dvs.informer.deliver("upsert", created)
    controller.sync("ns/vm")
    assert "ns/vm" in vmis.objects
    assert "SuccessfulDataVolumeCreate" in recorder.reasons()


@pytest.mark.parametrize("dvs, waiting", [
    ({}, "DataVolume vm-root does not exist"),
    ({"vm-root": dv("ImportInProgress")}, "DataVolume vm-root is ImportInProgress"),
    ({"vm-root": dv("Succeeded")}, None),
])
def test_a_vmi_waits_for_its_datavolumes(dvs, waiting):
    assert vm_storage.vmi_volumes_waiting(running_vmi(("extra",)), dvs) == waiting
