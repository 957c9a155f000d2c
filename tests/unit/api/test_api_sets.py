"""Admission of VirtualMachineInstanceReplicaSets and VirtualMachinePools: their templates are checked like
the VMIs and VMs they make, and the selector must match the template's labels."""
import copy

import pytest

from kubevirt_runtime.api.validation import validate_pool, validate_replicaset

VMI_SPEC = {"domain": {"memory": {"guest": "64Mi"}, "devices": {}}}
RS = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet",
      "metadata": {"name": "web", "namespace": "ns"},
      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
               "template": {"metadata": {"labels": {"app": "web"}}, "spec": VMI_SPEC}}}
POOL = {"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool",
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}}, "virtualMachineTemplate": {
            "metadata": {"labels": {"app": "db"}}, "spec": {"runStrategy": "Always", "template": {"spec": VMI_SPEC}}}}}


def fields(errors):
    return [e.field for e in errors]


def test_valid_replica_set_and_pool():
    assert validate_replicaset(copy.deepcopy(RS)) == []
    assert validate_pool(copy.deepcopy(POOL)) == []


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s.update(replicas=-1), "spec.replicas"),
    (lambda s: s.update(selector={"matchLabels": {"app": "other"}}), "spec.selector"),
    (lambda s: s.update(selector={}), "spec.selector"),
    (lambda s: s["template"]["spec"]["domain"].update(cpu={"cores": 0}), "spec.template.spec.domain.cpu.cores"),
    (lambda s: s["template"]["spec"]["domain"]["devices"].update(gpus=[{"name": "g", "deviceName": "x"}]),
     "spec.template.spec.domain.devices.gpus"),
])
def test_invalid_replica_sets(mutate, field):
    rs = copy.deepcopy(RS)
    mutate(rs["spec"])
    assert field in fields(validate_replicaset(rs))


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s.update(selector={"matchLabels": {"app": "web"}}), "spec.selector"),
    (lambda s: s["virtualMachineTemplate"]["spec"].update(runStrategy="Sometimes"),
     "spec.virtualMachineTemplate.spec.runStrategy"),
    (lambda s: s["virtualMachineTemplate"]["spec"]["template"]["spec"]["domain"].pop("memory"),
     "spec.virtualMachineTemplate.spec.template.spec.domain.memory.guest"),
    (lambda s: s.update(scaleInStrategy={"proactive": {}}), "spec.scaleInStrategy"),
])
def test_invalid_pools(mutate, field):
    pool = copy.deepcopy(POOL)
    mutate(pool["spec"])
    assert field in fields(validate_pool(pool))


def test_pool_names_leave_room_for_the_index():
    pool = copy.deepcopy(POOL)
    pool["metadata"]["name"] = "p" * 55
    assert "metadata.name" in fields(validate_pool(pool))
