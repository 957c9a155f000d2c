import pytest
from api_samples import vm, vmi

from kubevirt_runtime.api import FieldError, default_vm, default_vmi, validate_vm, validate_vmi


def fields(errors):
    return [e.field for e in errors]


def test_sample_vmi_is_valid():
    assert validate_vmi(vmi()) == []
    assert validate_vmi(default_vmi(vmi())) == []


def test_sample_vm_is_valid():
    assert validate_vm(vm()) == []
    assert validate_vm(default_vm(vm())) == []


def test_unknown_field_is_an_error_with_its_path():
    obj = vmi()
    obj["spec"]["domain"]["devices"]["disks"][0]["lun"] = {}
    obj["spec"]["hostname"] = "x"
    errors = validate_vmi(obj)
    assert "spec.domain.devices.disks[0].lun" in fields(errors)
    assert "spec.hostname" in fields(errors)
    assert all(e.reason == "FieldValueNotSupported" for e in errors)


def test_bridge_binding_is_not_silently_accepted():
    obj = vmi()
    obj["spec"]["domain"]["devices"]["interfaces"][0] = {"name": "default", "bridge": {}}
    assert fields(validate_vmi(obj)) == ["spec.domain.devices.interfaces[0].bridge"]
    obj["spec"]["domain"]["devices"]["interfaces"][0] = {"name": "default"}
    assert fields(validate_vmi(obj)) == ["spec.domain.devices.interfaces[0]"]


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s["domain"]["devices"]["disks"][0]["disk"].update(bus="ide"), "spec.domain.devices.disks[0].disk.bus"),
    (lambda s: s["domain"]["devices"]["disks"][1]["cdrom"].update(bus="virtio"),
     "spec.domain.devices.disks[1].cdrom.bus"),
    (lambda s: s["domain"]["cpu"].update(cores=0), "spec.domain.cpu.cores"),
    (lambda s: s["domain"]["cpu"].update(sockets="2"), "spec.domain.cpu.sockets"),
    (lambda s: s["domain"]["memory"].update(guest="lots"), "spec.domain.memory.guest"),
    (lambda s: s["domain"].pop("memory"), "spec.domain.memory.guest"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(name="nope"), "spec.domain.devices.disks[0].name"),
    (lambda s: s["domain"]["devices"]["disks"][1].update(bootOrder=1), "spec.domain.devices.disks[1].bootOrder"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(cdrom={}), "spec.domain.devices.disks[0]"),
    (lambda s: s["domain"]["devices"]["interfaces"][0].update(macAddress="zz"),
     "spec.domain.devices.interfaces[0].macAddress"),
    (lambda s: s["domain"]["devices"]["interfaces"][0]["ports"][0].update(port=70000),
     "spec.domain.devices.interfaces[0].ports[0].port"),
    (lambda s: s["domain"]["devices"]["interfaces"][0].update(name="other"), "spec.domain.devices.interfaces[0].name"),
    (lambda s: s["volumes"][0].update(emptyDisk={"capacity": "1Gi"}), "spec.volumes[0]"),
    (lambda s: s["volumes"][1]["cloudInitNoCloud"].update(userDataBase64="!!"), "spec.volumes[1].cloudInitNoCloud"),
    (lambda s: s["volumes"][1]["cloudInitNoCloud"].update(userDataBase64="!!"),
     "spec.volumes[1].cloudInitNoCloud.userDataBase64"),
    (lambda s: s["volumes"].append({"name": "containerdisk", "emptyDisk": {"capacity": "1Gi"}}),
     "spec.volumes[2].name"),
    (lambda s: s["volumes"].append({"name": "x"}), "spec.volumes[2]"),
    (lambda s: s.update(terminationGracePeriodSeconds=-1), "spec.terminationGracePeriodSeconds"),
    (lambda s: s.update(tolerations=[{"key": "a", "operator": "Exists", "value": "b"}]), "spec.tolerations[0].value"),
    (lambda s: s.update(affinity={"nodeAffinity": {}, "bogus": 1}), "spec.affinity.bogus"),
    (lambda s: s.update(nodeSelector={"a": 1}), "spec.nodeSelector[a]"),
    (lambda s: s["domain"].update(resources={"requests": {"nvidia.com/gpu": 1}}),
     "spec.domain.resources.requests[nvidia.com/gpu]"),
    (lambda s: s["domain"].update(resources={"limits": {"memory": "64Mi"}}), "spec.domain.memory.guest"),
    (lambda s: s["domain"].update(firmware={"bootloader": {"bios": {}, "efi": {}}}), "spec.domain.firmware.bootloader"),
    (lambda s: s["domain"].update(firmware={"kernelBoot": {"container": {"image": "k"}}}),
     "spec.domain.firmware.kernelBoot.container"),
    (lambda s: s["networks"].append({"name": "unused", "pod": {}}), "spec.networks"),
    (lambda s: s["domain"].pop("devices"), "spec.domain.devices"),
])
def test_invalid_vmi_names_the_field(mutate, field):
    obj = vmi()
    mutate(obj["spec"])
    errors = validate_vmi(obj)
    assert field in fields(errors), [str(e) for e in errors]


def test_firmware_variants_are_valid():
    for firmware in ({"bootloader": {"bios": {"useSerial": True}}}, {"bootloader": {"efi": {"secureBoot": False}}},
                     {"kernelBoot": {"kernelArgs": "console=ttyS0",
                                     "container": {"image": "k", "kernelPath": "/boot/vmlinuz"}}}):
        obj = vmi()
        obj["spec"]["domain"]["firmware"] = firmware
        assert validate_vmi(obj) == [], firmware


def test_placement_fields_are_accepted():
    obj = vmi()
    obj["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "node01"}
    obj["spec"]["tolerations"] = [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]
    obj["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    obj["spec"]["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}})
    obj["spec"]["volumes"].append({"name": "scratch", "emptyDisk": {"capacity": "1Gi"}})
    assert validate_vmi(obj) == []


def test_vm_running_and_run_strategy_are_mutually_exclusive():
    obj = vm()
    obj["spec"]["running"] = True
    assert fields(validate_vm(obj)) == ["spec.running"]


def test_vm_unknown_run_strategy():
    obj = vm()
    obj["spec"]["runStrategy"] = "Sometimes"
    assert fields(validate_vm(obj)) == ["spec.runStrategy"]


def test_vm_template_errors_carry_the_template_path():
    obj = vm()
    obj["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] = 0
    obj["spec"]["dataVolumeTemplates"] = []
    assert set(fields(validate_vm(obj))) == {"spec.template.spec.domain.cpu.cores", "spec.dataVolumeTemplates"}


def test_vm_template_metadata_tolerates_creation_timestamp_null():
    obj = vm()
    obj["spec"]["template"]["metadata"]["creationTimestamp"] = None
    assert validate_vm(obj) == []


def test_invalid_name():
    obj = vmi()
    obj["metadata"]["name"] = "Not_Valid"
    assert fields(validate_vmi(obj)) == ["metadata.name"]


def test_field_error_formats():
    err = FieldError("spec.x", "required value", "FieldValueRequired")
    assert str(err) == "spec.x: required value"
    assert err.as_cause() == {"type": "FieldValueRequired", "field": "spec.x", "message": "spec.x: required value"}
