"""Pod networking against the real kernel, libvirt and QEMU: virt-handler's phase 1 in a pod-like network
namespace (iproute2, nftables), the launcher's DHCP and tap (phase 2), one boot of the test guest with the
bridge binding. The masquerade binding boots in test_launcher.py and test_launcher_streams.py."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from kubevirt_runtime.handler.launcher_client import open_console
from kubevirt_runtime.handler.network import netns
from kubevirt_runtime.handler.network.plan import NetworkPlanError

try:
    from . import guest as guest_mod
except ImportError:  # tests/integration is not a package: pytest put it on sys.path
    import guest as guest_mod

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(300)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not shutil.which("nft"):
    pytest.skip("needs root, libvirtd, qemu-system-x86_64 and nft (hack/install-node-packages.sh)",
                allow_module_level=True)

GUEST_PORT = 7777
BOOT_TIMEOUT = 180


def masquerade_vmi():
    return {"metadata": {"name": "v", "namespace": "ns", "uid": "u"},
            "spec": {"domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]}},
                     "networks": [{"name": "default", "pod": {}}]}}


@pytest.fixture
def pod():
    network = guest_mod.PodNetwork().create()
    sleeper = subprocess.Popen(network.exec_prefix() + ["sleep", "300"])  # a process in the pod's namespace
    deadline = time.monotonic() + 10
    while os.stat(f"/proc/{sleeper.pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
        assert time.monotonic() < deadline, "the process did not enter the pod's namespace"
        time.sleep(0.01)  # `ip netns exec` enters it, then execs
    yield network, sleeper.pid
    sleeper.kill()
    sleeper.wait()
    network.delete()


def ip_json(network, *args):
    return subprocess.run(["ip", "-n", network.name, "-j", *args], capture_output=True, text=True, check=True).stdout


def test_masquerade_wiring_is_idempotent_and_a_partial_one_is_refused(pod):
    network, pid = pod
    first = netns.setup(masquerade_vmi(), pid)
    assert first == netns.setup(masquerade_vmi(), pid)  # a restarted handler reads the same config back
    ruleset = subprocess.run(["ip", "netns", "exec", network.name, "nft", "list", "table", "ip", "nat"],
                             capture_output=True, text=True, check=True).stdout
    assert ruleset.count("dnat to 10.0.2.2") == 2  # prerouting (every port) and output (loopback), once each
    subprocess.run(["ip", "-n", network.name, "link", "delete", "tap0"], check=True)
    with pytest.raises(NetworkPlanError, match="interrupted"):
        netns.setup(masquerade_vmi(), pid)


def test_the_hosts_namespace_is_never_rewired():
    with pytest.raises(netns.NetworkSetupError, match="refusing to rewire"):
        netns.setup(masquerade_vmi(), os.getpid())


def test_bridge_binding_gives_the_guest_the_pods_address():
    guest = guest_mod.build()
    work = Path(tempfile.mkdtemp(prefix="kvn-", dir="/tmp"))
    uid = str(uuid.uuid4())
    launcher = guest_mod.LocalLauncher(work / "b", guest, "bridged", uid=uid, grace=1,
                                       extra_args=("--accel", "tcg")).start()
    try:
        vmi = guest_mod.vmi("bridged", guest, uid=uid, serve_port=GUEST_PORT)
        iface = vmi["spec"]["domain"]["devices"]["interfaces"][0]
        del iface["masquerade"]
        iface["bridge"] = {}
        iface.pop("ports", None)
        state = launcher.sync(vmi)
        pod_mac = state["interfaces"][0]["mac"]
        links = {link["ifname"]: link for link in json.loads(ip_json(launcher.pod_network, "link"))}
        assert links["eth0"]["address"] == pod_mac  # the placeholder kept the pod's MAC, the guest has it too
        assert links["eth0-nic"]["master"] == "k6t-eth0" and links["tap0"]["master"] == "k6t-eth0"
        console = open_console(launcher.socket, history=True)
        booted = guest_mod.read_until(console, guest_mod.MARKER.encode(), BOOT_TIMEOUT)
        console.sendall(b"ip -4 -o addr show eth0\n")
        assert f"inet {launcher.pod_ip}/30".encode() in guest_mod.read_until(console, b"/30", 30), booted[-2000:]
        console.close()
        reply, deadline = b"", time.monotonic() + 60
        while not reply.startswith(b"hello") and time.monotonic() < deadline:
            try:  # the guest answers at the pod's address itself: no NAT in between
                with socket.create_connection((launcher.pod_ip, GUEST_PORT), timeout=5) as conn:
                    reply = conn.recv(100)
            except OSError:
                time.sleep(1)
        assert reply.startswith(b"hello from"), launcher.log_text()[-2000:]
        neighbours = subprocess.run(["ip", "neigh", "show", launcher.pod_ip], capture_output=True, text=True).stdout
        assert pod_mac in neighbours  # the host reached the pod's address at the guest's (the pod's) MAC
    finally:
        launcher.stop(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
