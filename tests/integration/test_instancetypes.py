"""instancetype.kubevirt.io against a real kube-apiserver: virt-controller expands a VM's instancetype and
preference into its VMI from a ControllerRevision, so editing the instancetype leaves the VM alone."""
import pytest
from apiserver import wait_for

from kubevirt_runtime.api import instancetype as it
from kubevirt_runtime.controller.instancetype import CONTROLLER_REVISIONS, RESOURCES
from kubevirt_runtime.machinery.resource import VMIS, VMS, ResourceClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def vm_body(name):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"runStrategy": "Always", "instancetype": {"name": f"{name}-type"},
                     "preference": {"name": "linux", "kind": it.PREFERENCE},
                     "template": {"spec": {
                         "domain": {"devices": {"disks": [{"name": "root"}]}},
                         "volumes": [{"name": "root", "containerDisk": {"image": "example/cirros:latest"}},
                                     {"name": "scratch", "emptyDisk": {"capacity": "1Gi"}}]}}}}


def test_vm_from_a_cluster_instancetype_and_a_preference(api_client, namespace, virt_controller):
    types = ResourceClient(api_client, RESOURCES[it.CLUSTER_INSTANCETYPE])
    prefs = ResourceClient(api_client, RESOURCES[it.PREFERENCE])
    vms, vmis = ResourceClient(api_client, VMS), ResourceClient(api_client, VMIS)
    name = f"it-{namespace[-8:]}"
    types.create({"apiVersion": it.API_VERSION, "kind": it.CLUSTER_INSTANCETYPE, "metadata": {"name": f"{name}-type"},
                  "spec": {"cpu": {"guest": 2}, "memory": {"guest": "128Mi"}}})
    prefs.create({"apiVersion": it.API_VERSION, "kind": it.PREFERENCE, "metadata": {"name": "linux"},
                  "spec": {"cpu": {"preferredCPUTopology": "cores"}, "devices": {"preferredDiskBus": "virtio"}}},
                 namespace)
    virt_controller()
    vms.create(vm_body(name), namespace)
    vmi = wait_for(lambda: vmis.get(name, namespace), message="VMI")
    domain = vmi["spec"]["domain"]
    assert domain["cpu"] == {"sockets": 1, "cores": 2, "threads": 1}
    assert domain["memory"]["guest"] == "128Mi"
    assert [d["disk"]["bus"] for d in domain["devices"]["disks"]] == ["virtio", "virtio"]  # "scratch" has no disk
    assert vmi["metadata"]["annotations"]["kubevirt.io/cluster-instancetype-name"] == f"{name}-type"
    vm = wait_for(lambda: (v := vms.get(name, namespace)).get("status", {}).get("instancetypeRef") and v,
                  message="instancetypeRef")
    revision_name = vm["status"]["instancetypeRef"]["controllerRevisionRef"]["name"]
    revision = ResourceClient(api_client, CONTROLLER_REVISIONS).get(revision_name, namespace)
    assert revision["data"]["spec"]["cpu"]["guest"] == 2
    assert revision["metadata"]["ownerReferences"][0]["uid"] == vm["metadata"]["uid"]

    # the instancetype changes; the VM's next VMI still has what it started with
    current = types.get(f"{name}-type")
    current["spec"]["cpu"]["guest"] = 4
    types.update(current)
    old_uid = vmi["metadata"]["uid"]
    vmis.delete(name, namespace)
    restarted = wait_for(lambda: (v := vmis.get(name, namespace))["metadata"]["uid"] != old_uid and v,
                         message="restarted VMI", timeout=60)
    assert restarted["spec"]["domain"]["cpu"]["cores"] == 2
