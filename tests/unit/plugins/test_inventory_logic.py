"""What the kubevirt inventory makes of API objects: host variables, the address to connect to, extra groups."""
import pytest

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt import inventory as inv

OPTS = {"network_name": None, "kube_secondary_dns": False, "use_service": True, "unset_ansible_port": True,
        "base_domain": None, "append_base_domain": False, "default_win_ansible_connection": "winrm"}


def vmi(interfaces, annotations=None, guest=None, node="node01"):
    status = {"interfaces": interfaces, "nodeName": node, "phase": "Running"}
    if guest:
        status["guestOSInfo"] = guest
    return {"metadata": {"name": "vm1", "namespace": "ns", "uid": "u", "labels": {"kubevirt.io/domain": "vm1"},
                         "annotations": annotations or {}}, "status": status}


def service(kind, target, port=22, node_port=None, ingress=None):
    svc = {"metadata": {"name": "s", "namespace": "ns", "uid": "s"},
           "spec": {"type": kind, "selector": {"kubevirt.io/domain": "vm1"},
                    "ports": [{"port": port, "targetPort": target, "nodePort": node_port}]}}
    if ingress:
        svc["status"] = {"loadBalancer": {"ingress": [ingress]}}
    return svc


@pytest.mark.parametrize("host,name", [("https://api.example.com:6443", "api-example-com_6443"),
                                       ("http://127.0.0.1:8080", "127-0-0-1_8080")])
def test_cluster_name(host, name):
    assert inv.cluster_name(host) == name


def test_object_vars_snake_case_every_status_key():
    obj = {"metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "5", "labels": {"x": "y"}},
           "status": {"printableStatus": "Running", "volumeSnapshotStatuses": [], "guestOSInfo": {},
                      "phaseTransitionTimestamps": []}}
    assert inv.object_vars("vm", obj) == {
        "vm_name": "a", "vm_namespace": "ns", "vm_uid": "u", "vm_resource_version": "5", "vm_labels": {"x": "y"},
        "vm_printable_status": "Running", "vm_volume_snapshot_statuses": [], "vm_guest_os_info": {},
        "vm_phase_transition_timestamps": []}


def test_address_from_the_first_or_the_named_interface():
    two = vmi([{"name": "default", "ipAddress": "10.0.0.1"}, {"name": "data", "ipAddress": "192.0.2.1"}])
    assert inv.connection_vars(two, {}, OPTS) == {"ansible_host": "10.0.0.1", "ansible_port": None}
    assert inv.connection_vars(two, {}, dict(OPTS, network_name="data"))["ansible_host"] == "192.0.2.1"
    assert inv.connection_vars(two, {}, dict(OPTS, network_name="none")) == {}
    assert inv.connection_vars(vmi([{"name": "default"}]), {}, OPTS) == {}  # no address reported yet
    assert "ansible_port" not in inv.connection_vars(two, {}, dict(OPTS, unset_ansible_port=False))


def test_services_for_ssh_win_rm_and_their_endpoints():
    services = inv.connection_services([
        service("NodePort", 22, node_port=30022),
        service("ClusterIP", 22),
        service("LoadBalancer", 5986, port=5986, ingress={"hostname": "win.example.com"}),
        dict(service("NodePort", 22), spec=dict(service("NodePort", 22)["spec"], ports=[{}, {}]))])
    assert [s["spec"]["type"] for s in services["vm1"]] == ["NodePort", "LoadBalancer"]
    linux = vmi([{"name": "default", "ipAddress": "10.0.0.1"}])
    assert inv.connection_vars(linux, services, dict(OPTS, base_domain="lab", append_base_domain=True)) == \
        {"ansible_host": "node01.lab", "ansible_port": 30022}
    windows = vmi([{"name": "default", "ipAddress": "10.0.0.1"}], guest={"id": "mswindows"})
    assert inv.connection_vars(windows, services, OPTS) == \
        {"ansible_connection": "winrm", "ansible_host": "win.example.com", "ansible_port": 5986}
    # a service is not used with network_name; kubesecondarydns names the interface
    assert inv.connection_vars(linux, services, dict(OPTS, network_name="default"))["ansible_host"] == "10.0.0.1"
    dns = dict(OPTS, network_name="default", kube_secondary_dns=True, base_domain="lab")
    assert inv.connection_vars(linux, services, dns)["ansible_host"] == "default.vm1.ns.vm.lab"


def test_windows_from_annotations_and_an_explicit_connection_wins():
    preferred = vmi([{"ipAddress": "10.0.0.1"}], annotations={"kubevirt.io/preference-name": "windows.2k22"})
    assert inv.is_windows(preferred)
    assert "ansible_connection" not in inv.connection_vars(preferred, {}, OPTS, ansible_connection="ssh")
    assert not inv.is_windows(vmi([], annotations={"vm.kubevirt.io/os": "fedora"}))


def test_extra_groups():
    running = vmi([])
    assert inv.extra_groups({"metadata": {}}, running) == [("node", "node01"), ("phase", "running")]
    assert inv.extra_groups({"metadata": {}}, None) == [("phase", "stopped")]
