"""Three control-plane nodes (NODES=3 CONTROL_PLANE_NODES=3): a three-member etcd, three kube-apiservers behind
HAProxy's fixed address; with one kube-apiserver stopped, kubectl and KubeVirt keep working."""
import json
import ssl
import subprocess
import time
import urllib.request

import pytest

from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

SHAPE = {"NODES": "3", "CONTROL_PLANE_NODES": "3"}
VIP = "10.222.0.254"
PKI = c.STATE_DIR / "controller-pki"


@pytest.fixture(scope="module")
def ha_cluster():
    started = time.monotonic()
    c.run_playbook("cluster-up", env=SHAPE)
    print(f"\ncluster-up NODES=3 CONTROL_PLANE_NODES=3 took {time.monotonic() - started:.0f}s")
    yield
    c.run_playbook("cluster-down")
    leftovers = c.host_traces()
    assert not leftovers["netns"] and not leftovers["cgroups"], leftovers


def _etcd_members(address):
    ctx = ssl.create_default_context(cafile=str(PKI / "etcd" / "ca.crt"))
    ctx.load_cert_chain(str(PKI / "apiserver-etcd-client.crt"), str(PKI / "apiserver-etcd-client.key"))
    ctx.check_hostname = False
    request = urllib.request.Request(f"https://{address}:2379/v3/cluster/member/list", data=b"{}", method="POST")
    with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
        return json.load(response)["members"]


def _readyz(address):
    ctx = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    ctx.check_hostname = False
    try:
        with urllib.request.urlopen(f"https://{address}:6443/readyz", context=ctx, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_three_etcd_members_and_three_apiservers_behind_the_vip(ha_cluster):
    addresses = [c.node_ip(n) for n in c.nodes()]
    assert len(addresses) == 3
    members = _etcd_members(addresses[0])
    assert sorted(m["name"] for m in members) == ["node01", "node02", "node03"]
    assert all(_readyz(a) for a in addresses)
    assert c.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}") == \
        f"https://{VIP}:6443"


def test_the_api_and_kubevirt_keep_working_without_one_apiserver(ha_cluster):
    supervisor = int((c.STATE_DIR / "run" / "kube-apiserver.pid").read_text())
    spec = c.STATE_DIR / "run" / "kube-apiserver.json"
    subprocess.run(["kill", "-TERM", str(supervisor)], check=True)  # its supervisor stops it and exits
    c.wait_for("node01's kube-apiserver to stop", lambda: not _readyz("10.222.0.1"), 60, 0.5)
    try:
        stopped = time.monotonic()
        failures, calls = [], 0
        while time.monotonic() - stopped < 30:
            calls += 1
            proc = subprocess.run([str(c.KUBECTL), "--kubeconfig", str(c.KUBECONFIG), "--request-timeout=5s",
                                   "get", "nodes", "-o", "name"], capture_output=True, text=True)
            if proc.returncode != 0:
                failures.append(proc.stderr.strip())
            time.sleep(0.5)
        print(f"\nwith node01's kube-apiserver stopped: {calls - len(failures)}/{calls} kubectl calls answered")
        assert not failures, failures[:3]
        # KubeVirt: a new VM is admitted by virt-api, scheduled by virt-controller and run by a virt-handler
        vm = c.demo_vm("vm-ha", "default")
        c.apply(vm)
        c.wait_for("vm-ha Running", lambda: (c.get("vmi", "vm-ha", "default") or {}).get("status", {})
                   .get("phase") == "Running", c.BOOT_TIMEOUT, 5)
    finally:
        python = c.REPO / ".venv" / "bin" / "python3"
        subprocess.run([str(python), str(c.STATE_DIR / "bin" / "kvo-supervise.py"), str(spec)], check=True)
        c.wait_for("node01's kube-apiserver back", lambda: _readyz("10.222.0.1"), 120, 1)
