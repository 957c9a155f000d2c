"""The kubevirt.ops.kubevirt inventory plugin, run by ansible-inventory against a real kube-apiserver.

VMs, VMIs (their status as virt-handler would report it) and Services are created directly; users with less
than cluster-admin are impersonated with the plugin's impersonate_user option.
"""
import json
import os
import subprocess
import uuid

import pytest
import yaml
from conftest import ensure_namespace

from kubevirt_runtime.machinery.resource import VMIS, VMS, Resource, ResourceClient
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SERVICES = Resource("", "v1", "services", kind="Service")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
CLUSTER_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)
READ_VMS = [{"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
             "verbs": ["get", "list", "watch"]}]


def vm(name, labels=None, strategy="Always", printable="Running"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "labels": labels or {}, "annotations": {"owner": "team-a"}},
            "spec": {"runStrategy": strategy, "template": {"spec": {"domain": {"devices": {}}}}},
            "status": {"printableStatus": printable, "ready": printable == "Running"}}


def vmi(name, interfaces, node="node01", phase="Running", labels=None):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "labels": dict(labels or {}, **{"kubevirt.io/domain": name})},
            "spec": {"domain": {"devices": {}}},
            "status": {"phase": phase, "nodeName": node, "interfaces": interfaces,
                       "guestOSInfo": {"id": "debian"}}}


def create(api_client, resource, namespace, obj):
    client = ResourceClient(api_client, resource)
    created = client.create(obj, namespace)
    if obj.get("status"):
        created["status"] = obj["status"]
        client.update(created, namespace, subresource="status")


def inventory(control_plane, tmp_path, **config):
    config = {"plugin": "kubevirt.ops.kubevirt", "kubeconfig": str(control_plane.kubeconfig), **config}
    source = tmp_path / "cluster.kubevirt.yml"
    source.write_text(yaml.safe_dump(config))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_FAILED="1")
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-inventory"), "-i", str(source), "--list", "--export"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return _plain(json.loads(proc.stdout)), proc.stderr


def _plain(value):
    """ansible-inventory marks strings from outside as {"__ansible_unsafe": ...}; the tests compare the values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def hostvars(inv):
    return inv["_meta"]["hostvars"]


def members(inv, group):
    """Hosts of a group; group names are sanitized as Ansible does (- and / become _)."""
    return set(inv.get(group.replace("-", "_").replace("/", "_"), {}).get("hosts", []))


@pytest.fixture
def vms(api_client, namespace):
    create(api_client, VMS, namespace, vm("web", {"app": "web"}))
    create(api_client, VMIS, namespace, vmi("web", [
        {"name": "default", "ipAddress": "10.244.0.21", "ipAddresses": ["10.244.0.21"]},
        {"name": "storage", "ipAddress": "192.168.10.5"}], labels={"app": "web"}))
    create(api_client, VMS, namespace, vm("db", {"app": "db"}, strategy="Halted", printable="Stopped"))
    create(api_client, VMIS, namespace, vmi("lonely", [{"name": "default", "ipAddress": "10.244.0.30"}],
                                            node="node02", phase="Scheduled"))
    return namespace


def test_every_vm_with_its_variables_groups_and_address(control_plane, vms, tmp_path):
    ns = vms
    inv, _ = inventory(control_plane, tmp_path, namespaces=[ns], create_groups=True, name="lab",
                       keyed_groups=[{"key": "vmi_guest_os_info.id", "prefix": "os"}],
                       compose={"ansible_user": "'root'", "owner": "vm_annotations.owner | default('none')"})
    hv = hostvars(inv)
    web, db, lonely = f"{ns}-web", f"{ns}-db", f"{ns}-lonely"
    assert set(hv) == {web, db, lonely}
    assert members(inv, f"namespace_{ns}") == {web, db, lonely}
    assert f"namespace_{ns}".replace("-", "_") in inv["lab"]["children"]
    # the running VM: vm_* and vmi_* variables, its interface's address
    assert hv[web]["ansible_host"] == "10.244.0.21" and hv[web]["ansible_port"] is None
    assert hv[web]["vm_printable_status"] == "Running" and hv[web]["vm_labels"] == {"app": "web"}
    assert hv[web]["vmi_phase"] == "Running" and hv[web]["vmi_node_name"] == "node01"
    assert hv[web]["vmi_guest_os_info"] == {"id": "debian"} and hv[web]["vm_uid"] and hv[web]["vmi_uid"]
    assert hv[web]["vm_namespace"] == ns and hv[web]["ansible_user"] == "root" and hv[web]["owner"] == "team-a"
    # the stopped VM: listed, with vm_* only and no address
    assert hv[db]["vm_printable_status"] == "Stopped" and "ansible_host" not in hv[db]
    assert not any(k.startswith("vmi_") for k in hv[db])
    # a VMI without a VM
    assert hv[lonely]["ansible_host"] == "10.244.0.30" and "vm_uid" not in hv[lonely]
    # groups by label, node, phase and by keyed_groups
    assert members(inv, "label_app_web") == {web} and members(inv, "label_app_db") == {db}
    assert members(inv, "node_node01") == {web} and members(inv, "node_node02") == {lonely}
    assert members(inv, "phase_running") == {web} and members(inv, "phase_stopped") == {db}
    assert members(inv, "phase_scheduled") == {lonely}
    assert members(inv, "os_debian") == {web, lonely}


def test_network_name_and_services_choose_the_address(control_plane, api_client, vms, tmp_path):
    ns = vms
    inv, _ = inventory(control_plane, tmp_path, namespaces=[ns], interface_name="storage", host_format="{name}")
    assert hostvars(inv)["web"]["ansible_host"] == "192.168.10.5"
    assert "ansible_host" not in hostvars(inv)["lonely"]  # it has no interface of that name
    create(api_client, SERVICES, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-ssh"},
                                      "spec": {"type": "NodePort", "selector": {"kubevirt.io/domain": "web"},
                                               "ports": [{"port": 22, "targetPort": 22, "nodePort": 30022}]}})
    create(api_client, SERVICES, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lonely-ssh"},
                                      "spec": {"type": "LoadBalancer", "selector": {"kubevirt.io/domain": "lonely"},
                                               "ports": [{"port": 2222, "targetPort": 22}]},
                                      "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})
    inv, _ = inventory(control_plane, tmp_path, namespaces=[ns], host_format="{name}", base_domain="example.com",
                       append_base_domain=True)
    hv = hostvars(inv)
    assert (hv["web"]["ansible_host"], hv["web"]["ansible_port"]) == ("node01.example.com", 30022)
    assert (hv["lonely"]["ansible_host"], hv["lonely"]["ansible_port"]) == ("203.0.113.7", 2222)
    inv, _ = inventory(control_plane, tmp_path, namespaces=[ns], host_format="{name}", use_service=False,
                       unset_ansible_port=False)
    assert hostvars(inv)["web"]["ansible_host"] == "10.244.0.21" and "ansible_port" not in hostvars(inv)["web"]


def _bind(api_client, namespace, user, rules, cluster=False):
    name = f"{user}-{uuid.uuid4().hex[:6]}"
    kind = "ClusterRole" if cluster else "Role"
    roles = ResourceClient(api_client, CLUSTER_ROLES if cluster else ROLES)
    bindings = ResourceClient(api_client, CLUSTER_BINDINGS if cluster else BINDINGS)
    roles.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name},
                  "rules": rules}, None if cluster else namespace)
    bindings.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": f"{kind}Binding",
                     "metadata": {"name": name},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                     "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]},
                    None if cluster else namespace)


def test_without_namespace_rights_it_reads_what_it_may_and_says_what_it_skipped(control_plane, api_client, vms,
                                                                                 tmp_path):
    ns = vms
    other = f"test-{uuid.uuid4().hex[:8]}"
    ensure_namespace(api_client, other)
    create(api_client, VMS, other, vm("secret"))
    user = f"dev-{uuid.uuid4().hex[:6]}"
    _bind(api_client, ns, user, READ_VMS + [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}])
    # named namespaces: the readable one is listed, the other skipped with the reason
    inv, stderr = inventory(control_plane, tmp_path, namespaces=[ns, other], impersonate_user=user, name="c")
    assert set(hostvars(inv)) == {f"{ns}-web", f"{ns}-db", f"{ns}-lonely"}
    skipped = hostvars_of_group(inv, "c")["kubevirt_skipped_namespaces"]
    assert list(skipped) == [other] and skipped[other].startswith("forbidden: list on virtualmachines.kubevirt.io")
    assert f"skipped namespace {other}" in stderr
    # no namespaces named, no right to list them: the kubeconfig context's namespace ("default" here), said so
    inv, stderr = inventory(control_plane, tmp_path, impersonate_user=user, name="c")
    assert "cannot list namespaces (forbidden: list on namespaces" in stderr
    assert hostvars_of_group(inv, "c")["kubevirt_namespace_source"] == "the kubeconfig context's namespace"
    # with the right to list VMs everywhere: the namespaces that have VMs
    _bind(api_client, None, user, READ_VMS, cluster=True)
    inv, stderr = inventory(control_plane, tmp_path, impersonate_user=user, name="c")
    assert {f"{ns}-web", f"{other}-secret"} <= set(hostvars(inv))
    assert "namespaces of the VMs and VMIs" in hostvars_of_group(inv, "c")["kubevirt_namespace_source"]


def hostvars_of_group(inv, group):
    """ansible-inventory --list puts group variables under the group's "vars"."""
    return inv[group].get("vars", {})
