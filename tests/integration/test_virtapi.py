"""virt-api against a real etcd + kube-apiserver with the aggregation layer: its webhooks decide what is
stored, and virtctl changes VMs through kube-apiserver -> front-proxy -> virt-api -> kube API."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import ensure_namespace
from virtapi_plane import FrontProxyControlPlane, VirtAPI

from kubevirt_runtime.api.crdgen import load_crds
from kubevirt_runtime.machinery.resource import VMIS, VMS, ApiError, Resource, ResourceClient
from tests.conftest import BIN_DIR

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

VM = {
    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm1"},
    "spec": {"runStrategy": "Halted", "template": {"spec": {
        "domain": {"devices": {"disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}]},
                   "resources": {"requests": {"memory": "64Mi"}}},
        "volumes": [{"name": "rootdisk", "containerDisk": {"image": "example/disk:1"}}]}}},
}


@pytest.fixture(scope="module")
def plane():
    plane = FrontProxyControlPlane(BIN_DIR, Path(tempfile.mkdtemp(prefix="kubevirt-ops-virtapi-")))
    plane.start()
    try:
        plane.install_crds(load_crds())
        ensure_namespace(plane.api_client, "kubevirt")
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def virt_api(plane):
    api = VirtAPI(plane).start()
    try:
        api.register()
        yield api
    finally:
        api.stop()


@pytest.fixture
def ns(plane):
    import uuid
    name = f"test-{uuid.uuid4().hex[:8]}"
    ensure_namespace(plane.api_client, name)
    return name


def virtctl(plane, *args):
    env = dict(os.environ, KUBECONFIG=str(plane.kubeconfig))
    return subprocess.run([sys.executable, "-m", "kubevirt_runtime.virtctl.main", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_invalid_vm_is_rejected_with_the_field_path_and_not_stored(plane, virt_api, ns, tmp_path):
    bad = json.loads(json.dumps(VM))
    # passes the CRD's schema; only virt-api knows a disk needs a volume of its name
    bad["spec"]["template"]["spec"]["domain"]["devices"]["disks"].append({"name": "datadisk", "disk": {}})
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(bad))
    out = subprocess.run([str(BIN_DIR / "kubectl"), f"--kubeconfig={plane.kubeconfig}", "-n", ns, "create", "-f",
                          str(manifest)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert 'The VirtualMachine "vm1" is invalid: spec.template.spec.domain.devices.disks[1].name: disk ' \
        "'datadisk' has no volume" in out.stderr, out.stderr
    with pytest.raises(ApiError) as err:
        ResourceClient(plane.api_client, VMS).get("vm1", ns)
    assert err.value.not_found


def test_valid_vm_is_defaulted(plane, virt_api, ns):
    created = ResourceClient(plane.api_client, VMS).create(VM, ns)
    domain = created["spec"]["template"]["spec"]["domain"]
    assert domain["machine"]["type"] == "q35"
    # a stable firmware identity from creation on; the rest is defaulted in the VMI, as upstream does
    assert len(domain["firmware"]["uuid"]) == 36 and len(domain["firmware"]["serial"]) == 36
    assert "cpu" not in domain


def kubectl_create(plane, ns, obj, tmp_path, *flags):
    manifest = tmp_path / "obj.yaml"
    manifest.write_text(yaml.safe_dump(obj))
    return subprocess.run([str(BIN_DIR / "kubectl"), f"--kubeconfig={plane.kubeconfig}", "-n", ns, "create", "-f",
                           str(manifest), *flags], capture_output=True, text=True, timeout=60)


def test_upstream_field_we_lack_is_refused_by_name_not_unknown(plane, virt_api, ns, tmp_path):
    """kubectl's strict validation passes (the CRD has upstream's schema); the webhook says why it refuses."""
    vm = json.loads(json.dumps(VM))
    vm["spec"]["template"]["spec"]["domain"]["devices"]["gpus"] = [{"name": "gpu1", "deviceName": "nvidia.com/A100"}]
    out = kubectl_create(plane, ns, vm, tmp_path)
    assert out.returncode != 0
    assert "unknown field" not in out.stderr, out.stderr
    assert ("spec.template.spec.domain.devices.gpus: GPU passthrough needs a device plugin for the GPU; none is "
            "available on this cluster") in out.stderr, out.stderr


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["devices"].update(disks=["c"]), "spec.template.spec.domain.devices.disks[0]"),
    (lambda d: d.update(cpu="2"), "spec.template.spec.domain.cpu"),
])
def test_badly_typed_fields_are_422_naming_the_field(plane, virt_api, ns, mutate, field):
    """Issue 8 defect 3: no 500 from the webhook, and no defaulting over the user's value."""
    vm = json.loads(json.dumps(VM))
    mutate(vm["spec"]["template"]["spec"]["domain"])
    with pytest.raises(ApiError) as err:
        ResourceClient(plane.api_client, VMS).create(vm, ns)
    assert err.value.status == 422, err.value.body
    assert field in {c.get("field") for c in err.value.body["details"]["causes"]}, err.value.body


def test_discovery_through_kube_apiserver(plane, virt_api):
    resources = json.loads(plane.kubectl("get", "--raw", "/apis/subresources.kubevirt.io/v1"))
    names = {r["name"] for r in resources["resources"]}
    assert {"virtualmachines/start", "virtualmachines/stop", "virtualmachineinstances/console"} <= names


def test_virtctl_start_and_stop_change_the_vm(plane, virt_api, ns):
    vms = ResourceClient(plane.api_client, VMS)
    vms.create(VM, ns)
    result = virtctl(plane, "-n", ns, "start", "vm1")
    assert result.returncode == 0, result.stderr + virt_api.log()[-2000:]
    assert vms.get("vm1", ns)["spec"]["runStrategy"] == "Always"
    # Always starts by itself: upstream's conflict, passed through the aggregator to the user
    result = virtctl(plane, "-n", ns, "start", "vm1")
    assert result.returncode == 1 and "Always does not support manual start requests" in result.stderr
    result = virtctl(plane, "stop", "vm1", "-n", ns)
    assert result.returncode == 0, result.stderr
    assert vms.get("vm1", ns)["spec"]["runStrategy"] == "Halted"
    result = virtctl(plane, "-n", ns, "restart", "vm1")
    assert result.returncode == 1 and "does not support manual restart requests" in result.stderr


def test_a_forced_stop_shortens_the_instances_grace_period(plane, virt_api, ns):
    vms, vmis = ResourceClient(plane.api_client, VMS), ResourceClient(plane.api_client, VMIS)
    running = json.loads(json.dumps(VM))
    running["spec"]["runStrategy"] = "Always"
    vms.create(running, ns)
    vmis.create({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": "vm1"},
                 "spec": running["spec"]["template"]["spec"]}, ns)  # what virt-controller would have started
    result = virtctl(plane, "-n", ns, "stop", "vm1", "--grace-period", "0")
    assert result.returncode != 0 and "--grace-period needs --force" in result.stderr
    result = virtctl(plane, "-n", ns, "stop", "vm1", "--force", "--grace-period", "0")
    assert result.returncode == 0, result.stderr + virt_api.log()[-2000:]
    assert vmis.get("vm1", ns)["spec"]["terminationGracePeriodSeconds"] == 0
    assert vms.get("vm1", ns)["spec"]["runStrategy"] == "Halted"


def test_manual_vm_gets_a_start_request(plane, virt_api, ns):
    vms = ResourceClient(plane.api_client, VMS)
    manual = json.loads(json.dumps(VM))
    manual["spec"]["runStrategy"] = "Manual"
    vms.create(manual, ns)
    result = virtctl(plane, "-n", ns, "start", "vm1")
    assert result.returncode == 0, result.stderr
    created = vms.get("vm1", ns)
    assert created["status"]["stateChangeRequests"] == [
        {"action": "Start", "data": {"kubevirt-ops.io/vm-generation": str(created["metadata"]["generation"])}}]


def test_missing_vm_and_vmi_are_not_found(plane, virt_api, ns):
    result = virtctl(plane, "-n", ns, "stop", "nope")
    assert result.returncode == 1 and "not found" in result.stderr
    result = virtctl(plane, "-n", ns, "pause", "vmi", "nope")
    assert result.returncode == 1 and "not found" in result.stderr


def test_users_need_rbac_on_the_subresource(plane, virt_api, ns, tmp_path):
    """The user (not virt-api) is who is authorized: alice with a Role on virtualmachines/start may start,
    mallory without one may not; the change itself is made with virt-api's own credentials."""
    ResourceClient(plane.api_client, VMS).create(VM, ns)
    roles = ResourceClient(plane.api_client, Resource("rbac.authorization.k8s.io", "v1", "roles"))
    roles.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "starter"},
                  "rules": [{"apiGroups": ["subresources.kubevirt.io"], "resources": ["virtualmachines/start"],
                             "verbs": ["update"]}]}, ns)
    plane.kubectl("-n", ns, "create", "rolebinding", "alice-starts", "--role=starter", "--user=alice")
    body = tmp_path / "body.json"
    body.write_text("{}")
    path = f"/apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/vm1/start"

    def put_as(user):
        return subprocess.run([str(BIN_DIR / "kubectl"), f"--kubeconfig={plane.kubeconfig}", f"--as={user}",
                               "replace", "--raw", path, "-f", str(body)], capture_output=True, text=True, timeout=60)

    denied = put_as("mallory")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    assert ResourceClient(plane.api_client, VMS).get("vm1", ns)["spec"]["runStrategy"] == "Halted"
    allowed = put_as("alice")
    assert allowed.returncode == 0, allowed.stderr + virt_api.log()[-2000:]
    assert ResourceClient(plane.api_client, VMS).get("vm1", ns)["spec"]["runStrategy"] == "Always"
    # alice herself may not change VMs, so the change was made with virt-api's credentials
    can_i = subprocess.run([str(BIN_DIR / "kubectl"), f"--kubeconfig={plane.kubeconfig}", "--as=alice", "-n", ns,
                            "auth", "can-i", "patch", "virtualmachines.kubevirt.io"],
                           capture_output=True, text=True, timeout=60)
    assert can_i.stdout.strip() == "no", can_i.stdout + can_i.stderr


def test_instancetypes_are_checked_and_vm_conflicts_named_by_field(plane, virt_api, ns):
    from kubevirt_runtime.api import instancetype as it
    from kubevirt_runtime.controller.instancetype import RESOURCES
    types = ResourceClient(plane.api_client, RESOURCES[it.INSTANCETYPE])
    with pytest.raises(ApiError) as err:
        types.create({"apiVersion": it.API_VERSION, "kind": it.INSTANCETYPE, "metadata": {"name": "tiny"},
                      "spec": {"cpu": {"guest": 1}, "memory": {"guest": "1k"}}}, ns)
    assert err.value.status == 422 and "spec.memory.guest" in str(err.value.body)
    types.create({"apiVersion": it.API_VERSION, "kind": it.INSTANCETYPE, "metadata": {"name": "small"},
                  "spec": {"cpu": {"guest": 2}, "memory": {"guest": "128Mi"}}}, ns)
    vm = json.loads(json.dumps(VM))
    vm["spec"]["instancetype"] = {"name": "small", "kind": it.INSTANCETYPE}
    with pytest.raises(ApiError) as err:  # the template sets memory the instancetype sets
        ResourceClient(plane.api_client, VMS).create(vm, ns)
    assert {c["field"] for c in err.value.body["details"]["causes"]} == {
        "spec.template.spec.domain.resources.requests.memory"}
    del vm["spec"]["template"]["spec"]["domain"]["resources"]
    created = ResourceClient(plane.api_client, VMS).create(vm, ns)
    assert created["spec"]["instancetype"] == {"name": "small", "kind": it.INSTANCETYPE}
    vm["metadata"]["name"] = "vm2"
    vm["spec"]["instancetype"]["name"] = "missing"
    with pytest.raises(ApiError) as err:
        ResourceClient(plane.api_client, VMS).create(vm, ns)
    assert "spec.instancetype.name" in {c["field"] for c in err.value.body["details"]["causes"]}


def test_replica_sets_and_pools_are_checked_like_what_they_make(plane, virt_api, ns):
    from kubevirt_runtime.controller.pool import POOLS
    from kubevirt_runtime.controller.replicaset import VMIRS
    template_spec = json.loads(json.dumps(VM["spec"]["template"]["spec"]))
    template_spec["domain"]["devices"]["gpus"] = [{"name": "g", "deviceName": "nvidia.com/A100"}]
    with pytest.raises(ApiError) as err:
        ResourceClient(plane.api_client, VMIRS).create({
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "metadata": {"name": "rs"},
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "y"}}, "spec": template_spec}}}, ns)
    assert {c["field"] for c in err.value.body["details"]["causes"]} == {"spec.template.spec.domain.devices.gpus"}
    with pytest.raises(ApiError) as err:
        ResourceClient(plane.api_client, POOLS).create({
            "apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool", "metadata": {"name": "p"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "virtualMachineTemplate": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"runStrategy": "Sometimes", "template": VM["spec"]["template"]}}}}, ns)
    assert "spec.virtualMachineTemplate.spec.runStrategy" in {c["field"] for c in err.value.body["details"]["causes"]}


def test_upstream_style_manifests_are_accepted_or_refused_by_name(plane, virt_api, ns):
    """Issue 11's conformance check: kubectl's default strict validation, then our webhooks."""
    from tests.conformance.check import report, run
    results = run([str(BIN_DIR / "kubectl"), f"--kubeconfig={plane.kubeconfig}"], ns)
    print(report(results))
    assert all(ok for _, ok, _ in results), report(results)
