"""VirtualMachineInstanceReplicaSet and VirtualMachinePool controllers against an in-memory API: the pure
plans by table, the loops by what they create, delete and write."""
import copy

import pytest

from kubevirt_runtime.api.labels import matches, selector_string
from kubevirt_runtime.controller import pool as pool_mod
from kubevirt_runtime.controller import replicaset as rs_mod
from kubevirt_runtime.controller.pool import PoolController
from kubevirt_runtime.controller.replicaset import ReplicaSetController
from tests.unit.fakeapi import FakeRecorder, FakeResource

SELECTOR = {"matchLabels": {"app": "web"}}
VMI_SPEC = {"domain": {"memory": {"guest": "64Mi"}, "devices": {}}}


def vmi(name, phase="Running", ready=True, deleting=False, created="2026-01-01T00:00:00Z"):
    meta = {"name": name, "namespace": "ns", "uid": f"u-{name}", "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:05Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def replicaset(replicas=3, paused=False):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid"},
            "spec": {"replicas": replicas, "paused": paused, "selector": SELECTOR,
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": copy.deepcopy(VMI_SPEC)}}}


@pytest.mark.parametrize("replicas, vmis, creates, deletes, ready", [
    (3, [], 3, [], 0),
    (3, [vmi("a"), vmi("b", ready=False)], 1, [], 1),
    (1, [vmi("a"), vmi("b", ready=False), vmi("c", created="2026-01-02T00:00:00Z")], 0, ["b", "c"], 2),
    (2, [vmi("a"), vmi("b", phase="Failed")], 1, ["b"], 1),
    (2, [vmi("a"), vmi("b", deleting=True)], 1, [], 1),
    (0, [vmi("a")], 0, ["a"], 1),
])
def test_replicaset_plan(replicas, vmis, creates, deletes, ready):
    todo = rs_mod.plan(replicaset(replicas), vmis)
    assert todo.create == creates
    assert [v["metadata"]["name"] for v in todo.delete] == deletes
    assert todo.status["readyReplicas"] == ready
    assert todo.status["labelSelector"] == "app=web"


def test_paused_replicaset_changes_nothing_but_says_so():
    todo = rs_mod.plan(replicaset(5, paused=True), [vmi("a")])
    assert todo.create == 0 and todo.delete == []
    assert [c["type"] for c in todo.status["conditions"]] == ["ReplicaPaused"]


def test_replicaset_loop_scales_up_and_down():
    replicasets = FakeResource("VirtualMachineInstanceReplicaSet", "kubevirt.io/v1")
    vmis = FakeResource("VirtualMachineInstance", "kubevirt.io/v1")
    controller = ReplicaSetController(replicasets, vmis, replicasets.informer, vmis.informer, FakeRecorder())
    body = replicaset(3)
    del body["metadata"]["uid"]
    replicasets.create(body, "ns")
    controller.sync("ns/web")
    controller.sync("ns/web")  # the cache has seen the creates: nothing more
    created = list(vmis.objects.values())
    assert len(created) == 3
    assert all(v["metadata"]["name"].startswith("web") and v["metadata"]["labels"] == {"app": "web"} for v in created)
    assert all(v["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachineInstanceReplicaSet" for v in created)
    assert replicasets.get("web", "ns")["status"]["replicas"] == 3
    current = replicasets.get("web", "ns")
    current["spec"]["replicas"] = 1
    replicasets.update(current)
    controller.sync("ns/web")
    assert vmis.verbs().count("delete") == 2
    controller.sync("ns/web")
    assert replicasets.get("web", "ns")["status"]["replicas"] == 1


def vm(name, ready=True, deleting=False):
    meta = {"name": name, "namespace": "ns", "uid": f"u-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:05Z"
    return {"metadata": meta, "status": {"ready": ready}}


def pool(replicas=3):
    return {"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool",
            "metadata": {"name": "db", "namespace": "ns", "uid": "pool-uid"},
            "spec": {"replicas": replicas, "selector": SELECTOR, "virtualMachineTemplate": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"runStrategy": "Always", "template": {"spec": copy.deepcopy(VMI_SPEC)}}}}}


@pytest.mark.parametrize("replicas, vms, creates, deletes", [
    (3, [], ["db-0", "db-1", "db-2"], []),
    (3, [vm("db-1")], ["db-0", "db-2"], []),
    (2, [vm("db-0"), vm("db-1", deleting=True)], ["db-2"], []),
    (1, [vm("db-0"), vm("db-1"), vm("db-2")], [], ["db-2", "db-1"]),
    (1, [vm("db-0"), vm("renamed")], [], ["renamed"]),
])
def test_pool_plan(replicas, vms, creates, deletes):
    todo = pool_mod.plan(pool(replicas), vms)
    assert todo.create == creates
    assert [v["metadata"]["name"] for v in todo.delete] == deletes


def test_pool_vm_from_template():
    vm_body = pool_mod.vm_from_template(pool(), "db-0")
    assert vm_body["metadata"]["labels"] == {"app": "web", "kubevirt.io/vmpool": "db"}
    assert vm_body["metadata"]["ownerReferences"][0] == {
        "apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool", "name": "db", "uid": "pool-uid",
        "controller": True, "blockOwnerDeletion": True}
    assert vm_body["spec"]["runStrategy"] == "Always"


def test_pool_name_generation_gives_each_vm_its_own_configmaps_and_secrets():
    body = pool()
    body["spec"]["nameGeneration"] = {"appendIndexToConfigMapRefs": True, "appendIndexToSecretRefs": True}
    body["spec"]["virtualMachineTemplate"]["spec"]["template"]["spec"]["volumes"] = [
        {"name": "cm", "configMap": {"name": "app"}}, {"name": "s", "secret": {"secretName": "creds"}},
        {"name": "ci", "cloudInitNoCloud": {"secretRef": {"name": "ud"}}}]
    volumes = pool_mod.vm_from_template(body, "db-2")["spec"]["template"]["spec"]["volumes"]
    assert [volumes[0]["configMap"]["name"], volumes[1]["secret"]["secretName"],
            volumes[2]["cloudInitNoCloud"]["secretRef"]["name"]] == ["app-2", "creds-2", "ud-2"]
    untouched = pool_mod.vm_from_template(pool(), "db-2")["spec"]["template"]["spec"]
    assert "volumes" not in untouched


def test_pool_loop_creates_indexed_vms_and_counts_ready_ones():
    pools = FakeResource("VirtualMachinePool", "pool.kubevirt.io/v1beta1")
    vms = FakeResource("VirtualMachine", "kubevirt.io/v1")
    controller = PoolController(pools, vms, pools.informer, vms.informer, FakeRecorder())
    body = pool(3)
    del body["metadata"]["uid"]
    pools.create(body, "ns")
    controller.sync("ns/db")
    assert sorted(v["metadata"]["name"] for v in vms.objects.values()) == ["db-0", "db-1", "db-2"]
    vms.patch_status("db-1", {"status": {"ready": True}}, "ns")
    controller.sync("ns/db")
    status = pools.get("db", "ns")["status"]
    assert status["replicas"] == 3 and status["readyReplicas"] == 1 and status["labelSelector"] == "app=web"


@pytest.mark.parametrize("selector, labels, expected", [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
])
def test_label_selector(selector, labels, expected):
    assert matches(selector, labels) is expected


def test_selector_string_for_hpa():
    assert selector_string({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [
        {"key": "t", "operator": "In", "values": ["y", "x"]}, {"key": "l", "operator": "DoesNotExist"}]}) == \
        "a=1,b=2,t in (x,y),!l"
