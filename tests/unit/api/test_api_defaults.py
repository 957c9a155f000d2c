"""Defaulting: upstream KubeVirt's amd64 defaults, one test per default; user values are never changed."""
import pytest
from api_samples import vm, vmi

from kubevirt_runtime.api import default_vm, default_vmi, effective_run_strategy


def spec_of(**domain):
    obj = vmi()
    obj["spec"]["domain"].update(domain)
    return default_vmi(obj)["spec"]


def test_default_vmi_is_pure():
    original = vmi()
    defaulted = default_vmi(original)
    assert original == vmi()
    assert defaulted is not original


def test_default_vmi_keeps_user_values_and_fills_the_rest():
    spec = default_vmi(vmi())["spec"]
    assert spec["domain"]["cpu"] == {"cores": 2, "sockets": 1, "threads": 1}
    assert spec["domain"]["machine"] == {"type": "q35"}
    assert spec["domain"]["devices"]["autoattachSerialConsole"] is True
    disks = spec["domain"]["devices"]["disks"]
    assert disks[0]["disk"] == {"bus": "virtio"}  # the user's bus stays
    assert disks[1]["cdrom"] == {"bus": "sata", "readonly": True}
    iface = spec["domain"]["devices"]["interfaces"][0]
    assert iface["model"] == "virtio" and iface["ports"][0]["protocol"] == "TCP"
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["architecture"] == "amd64"


@pytest.mark.parametrize("disk, expected", [
    ({"name": "d"}, {"disk": {"bus": "sata"}}),
    ({"name": "d", "disk": {}}, {"disk": {"bus": "sata"}}),
    ({"name": "d", "disk": {"bus": ""}}, {"disk": {"bus": "sata"}}),
    ({"name": "d", "disk": {"bus": "virtio"}}, {"disk": {"bus": "virtio"}}),
    ({"name": "d", "cdrom": {}}, {"cdrom": {"bus": "sata", "readonly": True}}),
    ({"name": "d", "cdrom": {"readonly": False}}, {"cdrom": {"bus": "sata", "readonly": False}}),
])
def test_disk_bus_defaults_to_sata_on_x86_64(disk, expected):
    obj = vmi()
    obj["spec"]["volumes"] = [{"name": "d", "emptyDisk": {"capacity": "1Gi"}}]
    obj["spec"]["domain"]["devices"]["disks"] = [disk]
    got = default_vmi(obj)["spec"]["domain"]["devices"]["disks"][0]
    assert {k: v for k, v in got.items() if k != "name"} == expected


def test_a_volume_without_a_disk_gets_a_sata_disk():
    obj = vmi()
    del obj["spec"]["domain"]["devices"]["disks"]
    disks = default_vmi(obj)["spec"]["domain"]["devices"]["disks"]
    assert disks == [{"name": "containerdisk", "disk": {"bus": "sata"}},
                     {"name": "cloudinitdisk", "disk": {"bus": "sata"}}]


@pytest.mark.parametrize("resources, sockets", [
    ({}, 1),
    ({"requests": {"cpu": "2"}}, 2),
    ({"requests": {"cpu": "500m"}}, 1),
    ({"requests": {"cpu": "1500m"}}, 2),
    ({"limits": {"cpu": "3"}}, 3),
    ({"requests": {"cpu": "1"}, "limits": {"cpu": "4"}}, 4),
])
def test_sockets_come_from_cpu_limits_else_requests_without_a_topology(resources, sockets):
    obj = vmi()
    del obj["spec"]["domain"]["cpu"]
    obj["spec"]["domain"]["resources"] = resources
    assert default_vmi(obj)["spec"]["domain"]["cpu"] == {"sockets": sockets, "cores": 1, "threads": 1}


def test_a_given_topology_is_not_replaced_by_the_cpu_request():
    obj = vmi()
    obj["spec"]["domain"]["cpu"] = {"threads": 2}
    obj["spec"]["domain"]["resources"] = {"requests": {"cpu": "4"}}
    assert default_vmi(obj)["spec"]["domain"]["cpu"] == {"threads": 2, "cores": 1, "sockets": 1}


def test_cpu_limit_becomes_the_request():
    spec = spec_of(resources={"limits": {"cpu": "2"}})
    assert spec["domain"]["resources"]["requests"]["cpu"] == "2"


@pytest.mark.parametrize("machine, expected", [(None, "q35"), ({}, "q35"), ({"type": ""}, "q35"),
                                                ({"type": "pc-q35-7.2"}, "pc-q35-7.2")])
def test_machine_type(machine, expected):
    obj = vmi()
    if machine is not None:
        obj["spec"]["domain"]["machine"] = machine
    assert default_vmi(obj)["spec"]["domain"]["machine"]["type"] == expected


@pytest.mark.parametrize("image, policy", [
    ("quay.io/containerdisks/fedora:latest", "Always"),
    ("quay.io/containerdisks/fedora", "Always"),
    ("quay.io/containerdisks/fedora:41", "IfNotPresent"),
    ("registry:5000/disk@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_container_disk_pull_policy(image, policy):
    obj = vmi()
    obj["spec"]["volumes"][0]["containerDisk"] = {"image": image}
    assert default_vmi(obj)["spec"]["volumes"][0]["containerDisk"]["imagePullPolicy"] == policy


def test_container_disk_pull_policy_set_by_the_user_stays():
    obj = vmi()
    obj["spec"]["volumes"][0]["containerDisk"] = {"image": "x:latest", "imagePullPolicy": "Never"}
    assert default_vmi(obj)["spec"]["volumes"][0]["containerDisk"]["imagePullPolicy"] == "Never"


def test_a_vmi_without_interfaces_gets_bridge_on_the_pod_network():
    obj = vmi()
    del obj["spec"]["networks"], obj["spec"]["domain"]["devices"]["interfaces"]
    spec = default_vmi(obj)["spec"]
    assert spec["networks"] == [{"name": "default", "pod": {}}]
    assert spec["domain"]["devices"]["interfaces"] == [{"name": "default", "bridge": {}, "model": "virtio"}]


def test_no_default_interface_when_the_pod_interface_is_not_wanted():
    obj = vmi()
    del obj["spec"]["networks"], obj["spec"]["domain"]["devices"]["interfaces"]
    obj["spec"]["domain"]["devices"]["autoattachPodInterface"] = False
    spec = default_vmi(obj)["spec"]
    assert "networks" not in spec and "interfaces" not in spec["domain"]["devices"]


def test_guest_memory_from_requests_else_limits():
    assert spec_of(memory=None, resources={"requests": {"memory": "1Gi"}})["domain"]["memory"] == {"guest": "1Gi"}
    assert spec_of(memory=None, resources={"limits": {"memory": "2Gi"}})["domain"]["memory"] == {"guest": "2Gi"}


def test_efi_secure_boot_defaults_true():
    spec = spec_of(firmware={"bootloader": {"efi": {}}})
    assert spec["domain"]["firmware"]["bootloader"]["efi"] == {"secureBoot": True}


def test_hyperv_dependencies_are_enabled():
    spec = spec_of(features={"hyperv": {"synictimer": {}, "tlbflush": {"enabled": True}}})
    hyperv = spec["domain"]["features"]["hyperv"]
    assert hyperv["synic"] == {} and hyperv["vpindex"] == {}


def test_a_disabled_hyperv_dependency_is_left_for_validation():
    spec = spec_of(features={"hyperv": {"synic": {}, "vpindex": {"enabled": False}}})
    assert spec["domain"]["features"]["hyperv"]["vpindex"] == {"enabled": False}


def test_badly_typed_values_are_left_alone():
    obj = vmi()
    obj["spec"]["domain"]["cpu"] = "2"
    obj["spec"]["domain"]["devices"]["disks"] = ["c"]
    spec = default_vmi(obj)["spec"]
    assert spec["domain"]["cpu"] == "2"
    assert spec["domain"]["devices"]["disks"][0] == "c"


def test_vm_without_run_strategy_defaults_to_halted():
    obj = vm()
    del obj["spec"]["runStrategy"]
    assert default_vm(obj)["spec"]["runStrategy"] == "Halted"
    obj["spec"]["running"] = True
    assert "runStrategy" not in default_vm(obj)["spec"]


def test_vm_template_is_not_defaulted_beyond_the_machine_type():
    """As upstream: the VMI is defaulted when it is created, so instancetypes and preferences can fill it."""
    defaulted = default_vm(vm())
    template = defaulted["spec"]["template"]["spec"]
    assert template["domain"]["machine"] == {"type": "q35"}
    assert "autoattachSerialConsole" not in template["domain"]["devices"]
    assert "firmware" not in template["domain"]


def test_vm_firmware_uuid_and_serial_are_set_once_on_create():
    ids = iter(["11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"])
    created = default_vm(vm(), create=True, new_id=lambda: next(ids))
    firmware = created["spec"]["template"]["spec"]["domain"]["firmware"]
    assert firmware == {"uuid": "11111111-1111-1111-1111-111111111111",
                        "serial": "22222222-2222-2222-2222-222222222222"}
    assert default_vm(created, create=True)["spec"]["template"]["spec"]["domain"]["firmware"] == firmware
    assert "firmware" not in default_vm(vm(), create=False)["spec"]["template"]["spec"]["domain"]


def test_vm_instancetype_and_preference_kinds_default_to_the_cluster_kinds():
    obj = vm()
    obj["spec"]["instancetype"] = {"name": "u1.small"}
    obj["spec"]["preference"] = {"name": "fedora", "kind": "VirtualMachinePreference"}
    spec = default_vm(obj)["spec"]
    assert spec["instancetype"]["kind"] == "VirtualMachineClusterInstancetype"
    assert spec["preference"]["kind"] == "VirtualMachinePreference"
    assert "machine" not in spec["template"]["spec"]["domain"]  # the preference may choose it


def test_effective_run_strategy():
    assert effective_run_strategy({"spec": {"runStrategy": "Manual"}}) == "Manual"
    assert effective_run_strategy({"spec": {"running": True}}) == "Always"
    assert effective_run_strategy({"spec": {"running": False}}) == "Halted"
    assert effective_run_strategy({"spec": {}}) == "Halted"
