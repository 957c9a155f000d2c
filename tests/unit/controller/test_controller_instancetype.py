"""InstancetypeExpander with fake clients: a revision is recorded once and used for every later start."""
import copy

import pytest

from kubevirt_runtime.api import instancetype as it
from kubevirt_runtime.controller.instancetype import ExpansionError, InstancetypeExpander
from kubevirt_runtime.controller.vm_controller import build_vmi
from kubevirt_runtime.machinery.resource import ApiError


class FakeClient:
    """get/create over a dict keyed by (namespace, name), as ResourceClient answers."""

    def __init__(self, objects=None):
        self.objects = dict(objects or {})
        self.created = []

    def get(self, name, namespace=None):
        try:
            return copy.deepcopy(self.objects[(namespace, name)])
        except KeyError:
            raise ApiError(404, {"reason": "NotFound", "message": f"{name} not found"}) from None

    def create(self, obj, namespace=None):
        key = (namespace, obj["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, {"reason": "AlreadyExists", "message": "exists"})
        self.objects[key] = copy.deepcopy(obj)
        self.created.append(obj)
        return copy.deepcopy(obj)


def cluster_instancetype(guest=2, generation=1):
    return {"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": it.CLUSTER_INSTANCETYPE,
            "metadata": {"name": "u1.small", "uid": "it-uid", "generation": generation},
            "spec": {"cpu": {"guest": guest}, "memory": {"guest": "256Mi"}}}


def preference():
    return {"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": it.PREFERENCE,
            "metadata": {"name": "linux", "namespace": "ns", "uid": "p-uid", "generation": 1},
            "spec": {"devices": {"preferredDiskBus": "virtio"}, "cpu": {"preferredCPUTopology": "cores"}}}


def vm():
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "ns", "uid": "vm-uid", "generation": 1},
            "spec": {"runStrategy": "Always", "instancetype": {"name": "u1.small"},
                     "preference": {"name": "linux", "kind": it.PREFERENCE},
                     "template": {"spec": {"domain": {"devices": {"disks": [{"name": "root"}]}},
                                           "volumes": [{"name": "root", "containerDisk": {"image": "d:1"}}]}}}}


@pytest.fixture
def clients():
    return {it.CLUSTER_INSTANCETYPE: FakeClient({(None, "u1.small"): cluster_instancetype()}),
            it.INSTANCETYPE: FakeClient(), it.CLUSTER_PREFERENCE: FakeClient(),
            it.PREFERENCE: FakeClient({("ns", "linux"): preference()}), "ControllerRevision": FakeClient()}


def test_first_start_records_revisions_and_expands_the_vmi(clients):
    expander = InstancetypeExpander(clients=clients)
    obj = vm()
    vmi = build_vmi(obj, expander.expand(obj))
    assert vmi["spec"]["domain"]["cpu"] == {"sockets": 1, "cores": 2, "threads": 1}
    assert vmi["spec"]["domain"]["memory"]["guest"] == "256Mi"
    assert vmi["spec"]["domain"]["devices"]["disks"][0]["disk"]["bus"] == "virtio"
    assert vmi["metadata"]["annotations"][it.CLUSTER_INSTANCETYPE_ANNOTATION] == "u1.small"
    assert vmi["metadata"]["annotations"][it.PREFERENCE_ANNOTATION] == "linux"
    revisions = clients["ControllerRevision"].created
    assert [r["metadata"]["name"] for r in revisions] == ["vm1-u1.small-v1beta1-it-uid-1", "vm1-linux-v1beta1-p-uid-1"]
    assert revisions[0]["metadata"]["ownerReferences"][0]["uid"] == "vm-uid"
    assert revisions[0]["data"]["spec"] == cluster_instancetype()["spec"]
    assert obj["status"]["instancetypeRef"] == {"name": "u1.small", "kind": it.CLUSTER_INSTANCETYPE,
                                                "controllerRevisionRef": {"name": "vm1-u1.small-v1beta1-it-uid-1"}}


def test_editing_the_instancetype_does_not_change_a_vm_that_uses_it(clients):
    expander = InstancetypeExpander(clients=clients)
    obj = vm()
    expander.expand(obj)  # first start: the status refs are recorded
    clients[it.CLUSTER_INSTANCETYPE].objects[(None, "u1.small")] = cluster_instancetype(guest=8, generation=2)
    again = build_vmi(obj, expander.expand(obj))
    assert again["spec"]["domain"]["cpu"]["cores"] == 2
    assert len(clients["ControllerRevision"].created) == 2
    # a new VM picks up the edited instancetype
    fresh = build_vmi(vm(), expander.expand(vm()))
    assert fresh["spec"]["domain"]["cpu"]["cores"] == 8


def test_changing_the_matcher_picks_a_new_revision(clients):
    expander = InstancetypeExpander(clients=clients)
    obj = vm()
    expander.expand(obj)
    clients[it.INSTANCETYPE].objects[("ns", "big")] = dict(cluster_instancetype(guest=4), kind=it.INSTANCETYPE,
                                                           metadata={"name": "big", "uid": "b", "generation": 1})
    obj["spec"]["instancetype"] = {"name": "big", "kind": it.INSTANCETYPE}
    assert build_vmi(obj, expander.expand(obj))["spec"]["domain"]["cpu"]["cores"] == 4
    assert obj["status"]["instancetypeRef"]["controllerRevisionRef"]["name"] == "vm1-big-v1beta1-b-1"


def test_an_existing_revision_with_the_same_data_is_reused(clients):
    expander = InstancetypeExpander(clients=clients)
    expander.expand(vm())
    expander.expand(vm())  # a second VM object without status refs: AlreadyExists, same data
    assert len(clients["ControllerRevision"].created) == 2


def test_missing_instancetype_and_conflicts_are_errors_naming_the_field(clients):
    expander = InstancetypeExpander(clients=clients)
    obj = vm()
    obj["spec"]["instancetype"]["name"] = "nope"
    with pytest.raises(ExpansionError) as err:
        expander.expand(obj)
    assert err.value.errors[0].field == "spec.instancetype.name"
    obj = vm()
    obj["spec"]["template"]["spec"]["domain"]["memory"] = {"guest": "1Gi"}
    with pytest.raises(ExpansionError) as err:
        build_vmi(obj, expander.expand(obj))
    assert err.value.errors[0].field == "spec.template.spec.domain.memory.guest"


def test_a_vm_without_instancetype_is_not_expanded(clients):
    obj = vm()
    del obj["spec"]["instancetype"], obj["spec"]["preference"]
    assert InstancetypeExpander(clients=clients).expand(obj) is None
