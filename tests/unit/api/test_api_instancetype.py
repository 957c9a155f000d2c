"""instancetype.kubevirt.io: what an instancetype sets, what a preference fills in, conflicts by field."""
import copy

import pytest

from kubevirt_runtime.api import ValidationContext, validate_vm
from kubevirt_runtime.api import instancetype as it
from kubevirt_runtime.api.validation import validate_instancetype, validate_preference

INSTANCETYPE = {"cpu": {"guest": 2}, "memory": {"guest": "256Mi"}}
TEMPLATE = {"domain": {"devices": {"disks": [{"name": "root"}]}},
            "volumes": [{"name": "root", "containerDisk": {"image": "disk:1"}}]}


def applied(template=None, instancetype=INSTANCETYPE, preference=None, metadata=None):
    spec = copy.deepcopy(template or TEMPLATE)
    metadata = copy.deepcopy(metadata or {})
    conflicts = it.apply(spec, metadata, copy.deepcopy(instancetype), copy.deepcopy(preference))
    return spec, metadata, conflicts


def test_instancetype_sets_cpu_and_memory():
    spec, _, conflicts = applied()
    assert conflicts == []
    assert spec["domain"]["cpu"] == {"sockets": 2, "cores": 1, "threads": 1}
    assert spec["domain"]["memory"] == {"guest": "256Mi"}


@pytest.mark.parametrize("topology, expected", [
    ("sockets", {"sockets": 4, "cores": 1, "threads": 1}),
    ("cores", {"sockets": 1, "cores": 4, "threads": 1}),
    ("threads", {"sockets": 1, "cores": 1, "threads": 4}),
    ("preferCores", {"sockets": 1, "cores": 4, "threads": 1}),
    ("spread", {"sockets": 2, "cores": 2, "threads": 1}),
    ("any", {"sockets": 4, "cores": 1, "threads": 1}),
])
def test_preferred_cpu_topology(topology, expected):
    spec, _, _ = applied(instancetype={"cpu": {"guest": 4}, "memory": {"guest": "1Gi"}},
                         preference={"cpu": {"preferredCPUTopology": topology}})
    assert spec["domain"]["cpu"] == expected


def test_overcommit_lowers_the_memory_request():
    spec, _, _ = applied(instancetype={"cpu": {"guest": 1}, "memory": {"guest": "1Gi", "overcommitPercent": 25}})
    assert spec["domain"]["resources"]["requests"]["memory"] == str(3 * 2**28)


@pytest.mark.parametrize("domain, field", [
    ({"cpu": {"sockets": 2}}, "spec.template.spec.domain.cpu.sockets"),
    ({"memory": {"guest": "1Gi"}}, "spec.template.spec.domain.memory.guest"),
    ({"resources": {"requests": {"cpu": "1"}}}, "spec.template.spec.domain.resources.requests.cpu"),
    ({"resources": {"limits": {"memory": "1Gi"}}}, "spec.template.spec.domain.resources.limits.memory"),
])
def test_conflicts_are_named_by_field_and_change_nothing(domain, field):
    template = copy.deepcopy(TEMPLATE)
    template["domain"].update(domain)
    spec, _, conflicts = applied(template)
    assert [c.field for c in conflicts] == [field]
    assert "conflicts with the selected instance type" in conflicts[0].message
    assert spec == template


def test_instancetype_annotations_conflict():
    _, metadata, conflicts = applied(instancetype=dict(INSTANCETYPE, annotations={"a": "1"}),
                                     metadata={"annotations": {"a": "2"}})
    assert [c.field for c in conflicts] == ["spec.template.metadata.annotations[a]"]


def test_preference_fills_only_what_is_unset():
    template = copy.deepcopy(TEMPLATE)
    template["domain"]["devices"]["disks"].append({"name": "data", "disk": {"bus": "sata"}})
    template["volumes"].append({"name": "data", "emptyDisk": {"capacity": "1Gi"}})
    preference = {"devices": {"preferredDiskBus": "virtio", "preferredRng": {}, "preferredInterfaceModel": "e1000"},
                  "features": {"preferredSmm": {}}, "firmware": {"preferredUseEfi": True},
                  "machine": {"preferredMachineType": "pc-q35-7.2"}, "preferredTerminationGracePeriodSeconds": 7,
                  "clock": {"preferredClockOffset": {"utc": {}}, "preferredTimer": {"hpet": {"present": False}}},
                  "annotations": {"from": "preference"}}
    spec, metadata, conflicts = applied(template, preference=preference)
    assert conflicts == []
    disks = spec["domain"]["devices"]["disks"]
    assert disks[0]["disk"]["bus"] == "virtio" and disks[1]["disk"]["bus"] == "sata"
    assert spec["domain"]["devices"]["rng"] == {}
    assert spec["domain"]["features"]["smm"] == {}
    assert spec["domain"]["firmware"]["bootloader"] == {"efi": {}}
    assert spec["domain"]["machine"]["type"] == "pc-q35-7.2"
    assert spec["terminationGracePeriodSeconds"] == 7
    assert spec["domain"]["clock"] == {"utc": {}, "timer": {"hpet": {"present": False}}}
    assert metadata["annotations"] == {"from": "preference"}


def test_preference_requirements():
    _, _, conflicts = applied(preference={"requirements": {"cpu": {"guest": 4}, "memory": {"guest": "1Gi"}}})
    assert {c.field for c in conflicts} == {"spec.template.spec.domain.cpu", "spec.template.spec.domain.memory.guest"}


def test_matcher_kinds_default_to_cluster_kinds():
    assert it.matcher_kind("instancetype", {"name": "x"}) == it.CLUSTER_INSTANCETYPE
    assert it.matcher_kind("instancetype", {"name": "x", "kind": "virtualmachineinstancetype"}) == it.INSTANCETYPE
    assert it.matcher_kind("preference", {"name": "x"}) == it.CLUSTER_PREFERENCE
    assert it.matcher_kind("preference", {"name": "x", "kind": "Other"}) is None


def test_revision_name_as_upstream():
    obj = {"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": it.CLUSTER_INSTANCETYPE,
           "metadata": {"name": "u1.small", "uid": "abc", "generation": 3}}
    assert it.revision_name("vm1", obj) == "vm1-u1.small-v1beta1-abc-3"


# ---------------------------------------------------------------- admission of VMs and the kinds themselves

def lookup_from(objects):
    return lambda kind, namespace, name: objects.get((kind, namespace, name))


def vm_with(**spec):
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm1", "namespace": "ns"},
          "spec": {"runStrategy": "Halted", "template": {"spec": copy.deepcopy(TEMPLATE)}}}
    vm["spec"].update(spec)
    return vm


OBJECTS = {(it.CLUSTER_INSTANCETYPE, None, "u1.small"): {"spec": INSTANCETYPE},
           (it.PREFERENCE, "ns", "linux"): {"spec": {"devices": {"preferredDiskBus": "virtio"}}}}
CTX = ValidationContext(lookup=lookup_from(OBJECTS))


def test_vm_with_instancetype_and_preference_is_valid_without_memory_of_its_own():
    vm = vm_with(instancetype={"name": "u1.small"}, preference={"name": "linux", "kind": "VirtualMachinePreference"})
    assert validate_vm(vm, CTX) == []
    assert validate_vm(vm) == []  # virt-controller's re-check without lookups


@pytest.mark.parametrize("spec, field", [
    ({"instancetype": {"name": "nope"}}, "spec.instancetype.name"),
    ({"preference": {"name": "linux"}}, "spec.preference.name"),  # the cluster kind by default: not found
    ({"instancetype": {"name": "u1.small", "kind": "Flavor"}}, "spec.instancetype.kind"),
    ({"instancetype": {"name": "u1.small", "inferFromVolume": "root"}}, "spec.instancetype.inferFromVolume"),
])
def test_vm_matcher_errors(spec, field):
    assert field in [e.field for e in validate_vm(vm_with(**spec), CTX)]


def test_vm_conflicting_with_its_instancetype_is_refused_by_field():
    vm = vm_with(instancetype={"name": "u1.small"})
    vm["spec"]["template"]["spec"]["domain"]["cpu"] = {"cores": 2}
    assert [e.field for e in validate_vm(vm, CTX)] == ["spec.template.spec.domain.cpu.cores"]


@pytest.mark.parametrize("spec, field", [
    ({"cpu": {"guest": 0}, "memory": {"guest": "1Gi"}}, "spec.cpu.guest"),
    ({"cpu": {"guest": 1}, "memory": {"guest": "1k"}}, "spec.memory.guest"),
    ({"cpu": {"guest": 1}}, "spec.memory"),
    ({"cpu": {"guest": 1, "dedicatedCPUPlacement": True}, "memory": {"guest": "1Gi"}},
     "spec.cpu.dedicatedCPUPlacement"),
    ({"cpu": {"guest": 1}, "memory": {"guest": "1Gi"}, "gpus": [{"name": "g", "deviceName": "x"}]}, "spec.gpus"),
])
def test_invalid_instancetypes(spec, field):
    errors = validate_instancetype({"kind": it.INSTANCETYPE, "metadata": {"name": "x"}, "spec": spec})
    assert field in [e.field for e in errors], [str(e) for e in errors]


@pytest.mark.parametrize("spec, field", [
    ({"cpu": {"preferredCPUTopology": "diagonal"}}, "spec.cpu.preferredCPUTopology"),
    ({"devices": {"preferredDiskBus": "ide"}}, "spec.devices.preferredDiskBus"),
    ({"machine": {"preferredMachineType": "pc"}}, "spec.machine.preferredMachineType"),
    ({"clock": {"preferredClockOffset": {"timezone": "Mars/Base"}}}, "spec.clock.preferredClockOffset.timezone"),
    ({"devices": {"preferredTPM": {"persistent": True}}}, "spec.devices.preferredTPM.persistent"),
])
def test_invalid_preferences(spec, field):
    errors = validate_preference({"kind": it.PREFERENCE, "metadata": {"name": "x"}, "spec": spec})
    assert field in [e.field for e in errors], [str(e) for e in errors]


def test_valid_preference():
    spec = {"cpu": {"preferredCPUTopology": "cores"}, "devices": {"preferredDiskBus": "virtio", "preferredRng": {}},
            "features": {"preferredHyperv": {"relaxed": {}}}, "firmware": {"preferredUseBios": True},
            "preferredTerminationGracePeriodSeconds": 10, "requirements": {"cpu": {"guest": 1}}}
    assert validate_preference({"kind": it.PREFERENCE, "metadata": {"name": "x"}, "spec": spec}) == []


def test_preferred_bus_reaches_disks_added_for_volumes():
    template = {"domain": {"devices": {}}, "volumes": [{"name": "root", "containerDisk": {"image": "d:1"}}]}
    spec, _, _ = applied(template, preference={"devices": {"preferredDiskBus": "virtio"}})
    assert spec["domain"]["devices"]["disks"] == [{"name": "root", "disk": {"bus": "virtio"}}]
