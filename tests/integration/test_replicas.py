"""VirtualMachineInstanceReplicaSets and VirtualMachinePools against a real kube-apiserver and
virt-controller: `kubectl scale` through the scale subresource, upstream's names and columns."""
import json

import pytest
from apiserver import wait_for

from kubevirt_runtime.controller.pool import POOLS
from kubevirt_runtime.controller.replicaset import VMIRS
from kubevirt_runtime.machinery.resource import VMIS, VMS, ResourceClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

VMI_SPEC = {"domain": {"memory": {"guest": "64Mi"}, "devices": {"disks": [{"name": "root"}]}},
            "volumes": [{"name": "root", "containerDisk": {"image": "example/cirros:latest"}}],
            "terminationGracePeriodSeconds": 0}


def owned(items, uid):
    return [i for i in items if any(r.get("uid") == uid for r in i["metadata"].get("ownerReferences") or [])
            and not i["metadata"].get("deletionTimestamp")]


def test_replica_set_scales_0_3_1_with_kubectl_scale(api_client, namespace, virt_controller, control_plane):
    replicasets, vmis = ResourceClient(api_client, VMIRS), ResourceClient(api_client, VMIS)
    virt_controller()
    rs = replicasets.create({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet",
                             "metadata": {"name": "web"},
                             "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                                      "template": {"metadata": {"labels": {"app": "web"}}, "spec": VMI_SPEC}}},
                            namespace)
    uid = rs["metadata"]["uid"]
    wait_for(lambda: (replicasets.get("web", namespace).get("status") or {}).get("labelSelector") == "app=web",
             message="status.labelSelector")
    control_plane.kubectl("scale", "vmirs", "web", "--replicas=3", "-n", namespace)
    wait_for(lambda: len(owned(vmis.list(namespace)["items"], uid)) == 3, message="3 VMIs")
    wait_for(lambda: replicasets.get("web", namespace)["status"].get("replicas") == 3, message="status 3")
    scale = json.loads(control_plane.kubectl(
        "get", "--raw", f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstancereplicasets/web/scale"))
    assert scale["spec"]["replicas"] == 3 and scale["status"] == {"replicas": 3, "selector": "app=web"}
    columns = control_plane.kubectl("get", "vmirs", "-n", namespace)
    assert columns.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    control_plane.kubectl("scale", "vmirs", "web", "--replicas=1", "-n", namespace)
    wait_for(lambda: replicasets.get("web", namespace)["status"].get("replicas") == 1, message="status 1")
    assert len(owned(vmis.list(namespace)["items"], uid)) == 1


def test_pool_creates_indexed_vms_and_scales(api_client, namespace, virt_controller, control_plane):
    pools, vms = ResourceClient(api_client, POOLS), ResourceClient(api_client, VMS)
    virt_controller()
    pool = pools.create({"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool",
                         "metadata": {"name": "db"},
                         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}},
                                  "virtualMachineTemplate": {"metadata": {"labels": {"app": "db"}}, "spec": {
                                      "runStrategy": "Halted", "template": {"spec": VMI_SPEC}}}}}, namespace)
    names = wait_for(lambda: (n := sorted(v["metadata"]["name"] for v in owned(vms.list(namespace)["items"],
                                                                                 pool["metadata"]["uid"])))
                     == ["db-0", "db-1", "db-2"] and n, message="db-0..2")
    assert names == ["db-0", "db-1", "db-2"]
    assert vms.get("db-0", namespace)["metadata"]["labels"] == {"app": "db", "kubevirt.io/vmpool": "db"}
    # v1alpha1 is still served, with the same object
    old = json.loads(control_plane.kubectl("get", "virtualmachinepools.v1alpha1.pool.kubevirt.io", "db", "-n",
                                           namespace, "-o", "json"))
    assert old["apiVersion"] == "pool.kubevirt.io/v1alpha1" and old["spec"]["replicas"] == 3
    control_plane.kubectl("scale", "vmpool", "db", "--replicas=1", "-n", namespace)
    wait_for(lambda: [v["metadata"]["name"] for v in owned(vms.list(namespace)["items"], pool["metadata"]["uid"])]
             == ["db-0"], message="only db-0 left", timeout=60)
    wait_for(lambda: pools.get("db", namespace)["status"].get("replicas") == 1, message="status 1")
