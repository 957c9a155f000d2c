"""virt-controller against a real API server: VM -> VMI -> pod, stop/start, deletion cascades."""
import pytest
from apiserver import bind_pod, force_delete_pod, set_pod_phase, wait_for

from kubevirt_runtime.machinery.resource import PODS, VMIS, VMS, ResourceClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def vm_body(name, strategy="Always"):
    return {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
        "spec": {"runStrategy": strategy, "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "domain": {"memory": {"guest": "64Mi"}, "devices": {"disks": [{"name": "root", "disk": {}}]}},
            "volumes": [{"name": "root", "containerDisk": {"image": "example/cirros:latest"}}],
            "terminationGracePeriodSeconds": 0}}},
    }


class Cluster:
    def __init__(self, api_client, namespace):
        self.ns = namespace
        self.vms = ResourceClient(api_client, VMS)
        self.vmis = ResourceClient(api_client, VMIS)
        self.pods = ResourceClient(api_client, PODS)
        self.api = api_client

    def vm(self, name):
        return self.vms.get(name, self.ns)

    def vmi(self, name):
        return self.vmis.get(name, self.ns)

    def launcher_pods(self, vmi_uid=None):
        selector = "kubevirt.io=virt-launcher" + (f",kubevirt.io/created-by={vmi_uid}" if vmi_uid else "")
        return self.pods.list(self.ns, label_selector=selector)["items"]

    def printable(self, name):
        return (self.vm(name).get("status") or {}).get("printableStatus")

    def run_pod(self, vmi_uid, node="node01", ready=True):
        """Play scheduler and kubelet for the VMI's launcher pod."""
        pod = wait_for(lambda: self.launcher_pods(vmi_uid), message="launcher pod")[0]
        bind_pod(self.api, self.ns, pod["metadata"]["name"], node)
        set_pod_phase(self.api, self.ns, pod["metadata"]["name"], "Running", ready=ready)
        return pod

    def handler_reports_running(self, name):
        """Play virt-handler: the domain runs."""
        vmi = self.vmi(name)
        status = vmi["status"]
        status["phase"] = "Running"
        status.setdefault("phaseTransitionTimestamps", []).append(
            {"phase": "Running", "phaseTransitionTimestamp": "2030-01-01T00:00:00Z"})
        self.vmis.update(vmi, subresource="status")

    def kubelet_removes_pods(self, vmi_uid):
        for pod in self.launcher_pods(vmi_uid):
            if pod["metadata"].get("deletionTimestamp"):
                force_delete_pod(self.api, self.ns, pod["metadata"]["name"])
        return not self.launcher_pods(vmi_uid)


@pytest.fixture
def cluster(api_client, namespace):
    return Cluster(api_client, namespace)


def test_vm_to_vmi_to_pod_to_running(cluster, virt_controller, control_plane):
    virt_controller()
    cluster.vms.create(vm_body("vm1"), cluster.ns)
    vmi = wait_for(lambda: cluster.vmi("vm1"), message="VMI")
    assert vmi["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"
    assert vmi["metadata"]["labels"] == {"app": "vm1"}
    uid = vmi["metadata"]["uid"]
    pod = wait_for(lambda: cluster.launcher_pods(uid), message="launcher pod")[0]
    labels = pod["metadata"]["labels"]
    assert labels["kubevirt.io"] == "virt-launcher" and labels["kubevirt.io/created-by"] == uid
    assert pod["metadata"]["name"].startswith("virt-launcher-vm1-")
    compute = next(ct for ct in pod["spec"]["containers"] if ct["name"] == "compute")
    assert compute["resources"]["requests"]["memory"] == "214Mi"
    wait_for(lambda: cluster.vmi("vm1").get("status", {}).get("phase") == "Scheduling", message="Scheduling")
    assert cluster.printable("vm1") == "Starting"

    cluster.run_pod(uid)
    vmi = wait_for(lambda: (v := cluster.vmi("vm1"))["status"].get("phase") == "Scheduled" and v, message="Scheduled")
    assert vmi["status"]["nodeName"] == "node01"
    wait_for(lambda: cluster.vmi("vm1")["metadata"]["labels"].get("kubevirt.io/nodeName") == "node01",
             message="nodeName label")
    assert [t["phase"] for t in vmi["status"]["phaseTransitionTimestamps"]] == ["Pending", "Scheduling", "Scheduled"]

    cluster.handler_reports_running("vm1")
    wait_for(lambda: cluster.printable("vm1") == "Running", message="VM Running")
    vm = wait_for(lambda: (v := cluster.vm("vm1"))["status"].get("ready") and v, message="VM ready")
    assert vm["status"]["created"] is True
    assert len(cluster.launcher_pods()) == 1

    out = control_plane.kubectl("get", "vm,vmi", "-n", cluster.ns)
    assert "Running" in out and "node01" in out and "True" in out
    explain = control_plane.kubectl("explain", "vm.spec.runStrategy")
    assert "RerunOnFailure" in explain
    events = control_plane.kubectl("get", "events", "-n", cluster.ns, "-o", "name")
    assert events.strip()


def test_stop_and_start_through_run_strategy_and_requests(cluster, virt_controller):
    virt_controller()
    cluster.vms.create(vm_body("vm2"), cluster.ns)
    uid = wait_for(lambda: cluster.vmi("vm2"), message="VMI")["metadata"]["uid"]
    cluster.run_pod(uid)
    wait_for(lambda: cluster.vmi("vm2").get("status", {}).get("phase") == "Scheduled", message="Scheduled")

    cluster.vms.patch("vm2", {"spec": {"runStrategy": "Halted"}}, cluster.ns)
    wait_for(lambda: cluster.kubelet_removes_pods(uid), message="pod deleted")
    wait_for(lambda: not cluster.vmis.list(cluster.ns)["items"], message="VMI deleted")
    wait_for(lambda: cluster.printable("vm2") == "Stopped", message="VM Stopped")

    # virtctl start on a Manual VM: virt-api appends a Start request to status.stateChangeRequests
    cluster.vms.patch("vm2", {"spec": {"runStrategy": "Manual"}}, cluster.ns)
    cluster.vms.patch_status("vm2", {"status": {"stateChangeRequests": [{"action": "Start"}]}}, cluster.ns)
    vmi = wait_for(lambda: cluster.vmi("vm2"), message="VMI after start request")
    wait_for(lambda: not cluster.vm("vm2")["status"].get("stateChangeRequests"), message="start request trimmed")

    # virtctl stop: a Stop request naming the running VMI
    cluster.vms.patch_status("vm2", {"status": {"stateChangeRequests": [
        {"action": "Stop", "uid": vmi["metadata"]["uid"]}]}}, cluster.ns)
    wait_for(lambda: (cluster.kubelet_removes_pods(vmi["metadata"]["uid"])
                      and not cluster.vmis.list(cluster.ns)["items"]), message="VMI stopped")
    wait_for(lambda: not cluster.vm("vm2")["status"].get("stateChangeRequests"), message="stop request trimmed")
    assert cluster.printable("vm2") == "Stopped"


def test_failed_pod_fails_vmi_and_always_restarts_with_backoff(cluster, virt_controller):
    virt_controller()
    cluster.vms.create(vm_body("vm3"), cluster.ns)
    first = wait_for(lambda: cluster.vmi("vm3"), message="VMI")["metadata"]["uid"]
    pod = wait_for(lambda: cluster.launcher_pods(first), message="pod")[0]
    set_pod_phase(cluster.api, cluster.ns, pod["metadata"]["name"], "Failed")
    wait_for(lambda: (cluster.vmi("vm3").get("status", {}).get("phase") == "Failed")
             or cluster.vmi("vm3")["metadata"]["uid"] != first, message="VMI Failed")
    vm = wait_for(lambda: (v := cluster.vm("vm3"))["status"].get("startFailure") and v, message="startFailure")
    assert vm["status"]["startFailure"]["consecutiveFailCount"] == 1
    wait_for(lambda: cluster.printable("vm3") in ("CrashLoopBackOff", "Starting"), message="backoff status")
    # the failed VMI is replaced once the backoff (10-15 s) has passed
    second = wait_for(lambda: (v := cluster.vmi("vm3"))["metadata"]["uid"] != first and v, timeout=40,
                      message="restarted VMI")
    assert second["metadata"]["uid"] != first


def test_a_pod_the_kubelet_rejected_is_replaced_and_the_vmi_keeps_its_uid(cluster, virt_controller):
    virt_controller()
    cluster.vms.create(vm_body("vm5"), cluster.ns)
    uid = wait_for(lambda: cluster.vmi("vm5"), message="VMI")["metadata"]["uid"]
    first = wait_for(lambda: cluster.launcher_pods(uid), message="pod")[0]["metadata"]["name"]
    bind_pod(cluster.api, cluster.ns, first, "node01")
    set_pod_phase(cluster.api, cluster.ns, first, "Failed", reason="UnexpectedAdmissionError",
                  message="Allocate failed due to no healthy devices present")
    # after the first backoff (5 s): a pod of the next attempt, and the rejected one goes
    second = wait_for(lambda: next((p for p in cluster.launcher_pods(uid) if p["metadata"]["name"] != first), None),
                      timeout=30, message="a replacement pod")
    assert second["metadata"]["annotations"]["kubevirt.io/launcher-attempt"] == "1"
    wait_for(lambda: first not in [p["metadata"]["name"] for p in cluster.launcher_pods(uid)],
             message="the rejected pod gone")
    vmi = cluster.vmi("vm5")
    assert vmi["metadata"]["uid"] == uid and vmi["status"].get("phase") != "Failed"
    cluster.run_pod(uid)
    wait_for(lambda: cluster.vmi("vm5").get("status", {}).get("phase") == "Scheduled", message="Scheduled")


def test_deleting_the_vm_cascades(cluster, virt_controller):
    virt_controller()
    cluster.vms.create(vm_body("vm4"), cluster.ns)
    uid = wait_for(lambda: cluster.vmi("vm4"), message="VMI")["metadata"]["uid"]
    cluster.run_pod(uid)
    wait_for(lambda: cluster.vmi("vm4").get("status", {}).get("phase") == "Scheduled", message="Scheduled")
    cluster.vms.delete("vm4", cluster.ns)
    wait_for(lambda: cluster.kubelet_removes_pods(uid), message="pod deleted")
    wait_for(lambda: not cluster.vmis.list(cluster.ns)["items"], message="VMI deleted")
    wait_for(lambda: not cluster.vms.list(cluster.ns)["items"], message="VM deleted")
