"""RBAC and authentication probes, each as its own user (client certificates signed by the cluster CA):

- a kubevirt.io:view user reads VMs but cannot start, stop or open the console;
- a kubevirt.io:edit user of namespace A cannot touch namespace B;
- an unauthenticated client gets 401, from kube-apiserver and from virt-api;
- nobody but virt-api can call virt-handler's endpoints (mutual TLS, CA and CN checked).
"""
import json
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest
import yaml

from ansible_collections.kubevirt.ops.plugins.module_utils import pki
from tests.conftest import REPO
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

NS_A, NS_B = "rbac-a", "rbac-b"
CONTROLLER_PKI = c.STATE_DIR / "controller-pki"
KUBEVIRT_PKI = CONTROLLER_PKI / "kubevirt"
VM = "rbac-vm"


def admin_config():
    return yaml.safe_load(c.KUBECONFIG.read_text())


def api_server():
    return admin_config()["clusters"][0]["cluster"]["server"]


def user_kubeconfig(tmp_dir, user, groups=()):
    """A kubeconfig whose client certificate says CN=user, O=groups (what kube-apiserver authenticates)."""
    shutil.copy(CONTROLLER_PKI / "ca.crt", tmp_dir / "ca.crt")
    shutil.copy(CONTROLLER_PKI / "ca.key", tmp_dir / "ca.key")
    pki.ensure_certificate(str(tmp_dir), user, "ca", user, organizations=groups, usages=("client",))
    config = admin_config()
    config["users"] = [{"name": user, "user": {"client-certificate": str(tmp_dir / f"{user}.crt"),
                                               "client-key": str(tmp_dir / f"{user}.key")}}]
    config["contexts"] = [{"name": user, "context": {"cluster": config["clusters"][0]["name"], "user": user}}]
    config["current-context"] = user
    path = tmp_dir / f"{user}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def as_user(kubeconfig, tool, *args, timeout=60):
    binary = str(c.KUBECTL) if tool == "kubectl" else str(REPO / ".venv" / "bin" / "virtctl")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                          env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(kubeconfig.parent)},
                          stdin=subprocess.DEVNULL)


def refused(result):
    text = (result.stdout + result.stderr).lower()
    return result.returncode != 0 and ("forbidden" in text or "403" in text)


@pytest.fixture(scope="module")
def users(cluster, tmp_path_factory):
    c.ensure_kubevirt()
    for ns in (NS_A, NS_B):
        c.kubectl("create", "namespace", ns, check=False)
    vms = [c.demo_vm(VM, ns, memory="96Mi") for ns in (NS_A, NS_B)]
    for vm in vms:
        vm["spec"]["runStrategy"] = "Halted"  # nothing needs to boot: the probes are about who may do what
    c.apply(*vms)
    c.kubectl("create", "rolebinding", "viewer", "--clusterrole=kubevirt.io:view", "--user=viewer", "-n", NS_A,
              check=False)
    c.kubectl("create", "rolebinding", "editor", "--clusterrole=kubevirt.io:edit", "--user=editor", "-n", NS_A,
              check=False)
    tmp = tmp_path_factory.mktemp("rbac")
    yield {"viewer": user_kubeconfig(tmp, "viewer"), "editor": user_kubeconfig(tmp, "editor")}
    for ns in (NS_A, NS_B):
        c.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=320, check=False)


def test_a_viewer_reads_but_cannot_act(users):
    viewer = users["viewer"]
    listed = as_user(viewer, "kubectl", "get", "vm", VM, "-n", NS_A, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["metadata"]["name"] == VM
    for verb in ("start", "stop", "restart"):
        result = as_user(viewer, "virtctl", verb, VM, "-n", NS_A)
        assert refused(result), f"viewer could {verb}: {result.stdout} {result.stderr}"
    console = as_user(viewer, "virtctl", "console", VM, "-n", NS_A, "--timeout", "10")
    assert refused(console), console.stderr
    patch = as_user(viewer, "kubectl", "patch", "vm", VM, "-n", NS_A, "--type=merge", "-p",
                    '{"spec":{"runStrategy":"Always"}}')
    assert refused(patch), patch.stderr


def test_an_editor_acts_in_its_namespace_only(users):
    editor = users["editor"]
    started = as_user(editor, "virtctl", "start", VM, "-n", NS_A)
    assert started.returncode == 0, started.stderr
    stopped = as_user(editor, "virtctl", "stop", VM, "-n", NS_A)
    assert stopped.returncode == 0, stopped.stderr
    for args in (("kubectl", "get", "vm", VM, "-n", NS_B),
                 ("kubectl", "delete", "vm", VM, "-n", NS_B),
                 ("virtctl", "start", VM, "-n", NS_B),
                 ("kubectl", "get", "vmi", "-n", NS_B)):
        result = as_user(editor, *args)
        assert refused(result), f"editor could {' '.join(args)}: {result.stdout}"
    assert c.get("vm", VM, NS_B)["spec"]["runStrategy"] == "Halted"


def _anonymous(url, method="GET"):
    context = ssl.create_default_context(cafile=str(CONTROLLER_PKI / "ca.crt"))
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("path,method", [
    (f"/apis/kubevirt.io/v1/namespaces/{NS_A}/virtualmachines", "GET"),
    (f"/apis/subresources.kubevirt.io/v1/namespaces/{NS_A}/virtualmachines/{VM}/start", "PUT"),
    ("/api/v1/namespaces", "GET"),
])
def test_unauthenticated_clients_get_401_from_kube_apiserver(users, path, method):
    assert _anonymous(api_server() + path, method) == 401


def test_unauthenticated_clients_get_401_from_virt_api(users):
    """Straight to a virt-api pod, without the front proxy's client certificate."""
    pod = c.kubectl_json("get", "pods", "-n", c.KUBEVIRT_NAMESPACE, "-l", "kubevirt.io=virt-api")["items"][0]
    url = f"https://{pod['status']['podIP']}:8443/apis/subresources.kubevirt.io/v1/namespaces/{NS_A}/virtualmachines/{VM}/start"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(url, method="PUT", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, context=context, timeout=30)
    assert err.value.code == 401


def handler_address():
    pod = c.kubectl_json("get", "pods", "-n", c.KUBEVIRT_NAMESPACE, "-l", "kubevirt.io=virt-handler")["items"][0]
    return pod["status"]["podIP"], 8186


def handler_call(cert=None, key=None):
    """GET a handler endpoint over TLS with the given client certificate: the HTTP status, or 'refused' when
    the TLS handshake itself fails."""
    context = ssl.create_default_context(cafile=str(KUBEVIRT_PKI / "ca.crt"))
    context.check_hostname = False
    if cert:
        context.load_cert_chain(cert, key)
    host, port = handler_address()
    path = f"/v1/namespaces/{NS_A}/virtualmachineinstances/{VM}/guestosinfo"
    try:
        with socket.create_connection((host, port), timeout=15) as raw, \
                context.wrap_socket(raw, server_hostname="virt-handler") as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: virt-handler\r\nConnection: close\r\n\r\n".encode())
            head = tls.recv(4096).decode(errors="replace")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return "refused"
    if not head:
        return "refused"  # TLS 1.3 reports a rejected client certificate on the first read
    return int(head.split()[1])


def test_only_virt_api_may_call_virt_handler(users, tmp_path):
    shutil.copy(KUBEVIRT_PKI / "ca.crt", tmp_path / "ca.crt")
    shutil.copy(KUBEVIRT_PKI / "ca.key", tmp_path / "ca.key")
    pki.ensure_certificate(str(tmp_path), "intruder", "ca", "intruder", usages=("client",))
    shutil.copy(CONTROLLER_PKI / "ca.crt", tmp_path / "cluster-ca.crt")
    shutil.copy(CONTROLLER_PKI / "ca.key", tmp_path / "cluster-ca.key")
    pki.ensure_certificate(str(tmp_path), "fake-virt-api", "cluster-ca", "virt-api", usages=("client",))

    assert handler_call() == "refused"  # no client certificate
    assert handler_call(tmp_path / "fake-virt-api.crt", tmp_path / "fake-virt-api.key") == "refused"  # wrong CA
    assert handler_call(tmp_path / "intruder.crt", tmp_path / "intruder.key") == 403  # right CA, wrong name
    # the control: virt-api's own certificate is let through (the VMI is not on the node, hence not 403)
    status = handler_call(KUBEVIRT_PKI / "virt-api.crt", KUBEVIRT_PKI / "virt-api.key")
    assert status not in ("refused", 401, 403), status
