"""The remaining subresources on the local cluster with our virtctl, against the demo VM (one boot, reused):
the guest agent (AgentConnected, guestosinfo naming the guest's kernel, userlist, fslist), port-forward to
the guest's port 80, the VNC proxy, soft reboot (a new boot id) and ssh (the demo disk runs dropbear)."""
import calendar
import json
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import REPO
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

VM, NS = "vm-demo", "default"
MARKER = c.DEMO_MARKER
wait_for, get = c.wait_for, c.get
VIRTCTL = str(REPO / "hack" / "virtctl.sh")


def virtctl(*args, timeout=120):
    return subprocess.run([VIRTCTL, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def agent_connected(vmi):
    return any(x.get("type") == "AgentConnected" and x.get("status") == "True"
               for x in ((vmi or {}).get("status") or {}).get("conditions") or [])


def running_vmi():
    vmi = get("vmi", VM, NS)
    return vmi if vmi and vmi["status"].get("phase") == "Running" and not vmi["metadata"].get("deletionTimestamp") \
        else None


def console_line(command: str, timeout=120) -> str:
    return c.console_line(VM, NS, command, timeout)


@pytest.fixture(scope="module")
def demo(cluster):
    vm = get("vm", VM, NS)
    if vm is None:
        c.kubectl("apply", "-f", str(c.DEMO_MANIFEST))
    elif vm["spec"].get("runStrategy") == "Halted":
        virtctl("start", VM, "-n", NS)
    vmi = wait_for("vm-demo Running", running_vmi, c.BOOT_TIMEOUT, 5)
    since = [t["phaseTransitionTimestamp"] for t in vmi["status"].get("phaseTransitionTimestamps") or []
             if t["phase"] == "Running"]
    running_for = time.time() - calendar.timegm(time.strptime(since[-1], "%Y-%m-%dT%H:%M:%SZ")) if since else 0
    try:  # the guest agent answers a few minutes into the boot at most (TCG)
        wait_for("AgentConnected", lambda: agent_connected(running_vmi()), max(30, 400 - running_for), 5)
    except AssertionError:
        # an instance started before this demo disk had an agent (an older image): restart it once
        old = running_vmi()["metadata"]["uid"]
        assert virtctl("restart", VM, "-n", NS).returncode == 0
        wait_for("a new vm-demo instance", lambda: (running_vmi() or {"metadata": {}})["metadata"].get("uid")
                 not in (None, old), c.BOOT_TIMEOUT, 5)
        wait_for("AgentConnected", lambda: agent_connected(running_vmi()), c.BOOT_TIMEOUT, 5)
    return running_vmi()


def test_guestosinfo_names_the_guests_kernel(demo):
    result = virtctl("guestosinfo", VM, "-n", NS)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["os"]["id"] == "kubevirt-ops-demo" and info["guestAgentVersion"]
    assert info["os"]["kernelRelease"] == console_line("uname -r")  # what the guest itself says
    assert running_vmi()["status"]["guestOSInfo"]["kernelRelease"] == info["os"]["kernelRelease"]


def test_userlist_and_fslist_come_from_the_guest(demo):
    users = json.loads(virtctl("userlist", VM, "-n", NS).stdout)
    assert "root" in [u["userName"] for u in users["items"]]  # the console login
    filesystems = {f["mountPoint"]: f for f in json.loads(virtctl("fslist", VM, "-n", NS).stdout)["items"]}
    assert filesystems["/mnt/cidata"]["fileSystemType"] == "iso9660"  # the NoCloud disk the guest mounted
    assert filesystems["/mnt/cidata"]["totalBytes"] > 0


def test_port_forward_reaches_the_guests_port_80(demo):
    proc = subprocess.Popen([VIRTCTL, "port-forward", f"vm/{VM}/{NS}", "0:80"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+) -> 80", line).group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as response:
            assert response.read().decode().strip() == "kubevirt-ops demo"
    finally:
        proc.terminate()
        proc.wait(10)


def test_vnc_proxy_only_prints_the_port_and_speaks_rfb_one_session_at_a_time(demo):
    import socket
    proc = subprocess.Popen([VIRTCTL, "vnc", "--proxy-only", VM, "-n", NS], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        port = json.loads(proc.stdout.readline())["port"]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert sock.recv(12) == b"RFB 003.008\n"
            # upstream's session rule: asking to preserve the active session is refused ...
            kept = virtctl("vnc", "--proxy-only", "--preserve-session", VM, "-n", NS, timeout=60)
            assert kept.returncode == 1 and "Active VNC connection" in kept.stderr, kept.stderr
            # ... and a plain new connection replaces it: the first viewer's stream ends
            second = subprocess.Popen([VIRTCTL, "vnc", "--proxy-only", VM, "-n", NS], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            try:
                json.loads(second.stdout.readline())
                sock.settimeout(30)
                while sock.recv(65536):
                    pass
            finally:
                second.terminate()
                second.wait(10)
    finally:
        proc.terminate()
        proc.wait(10)


def test_soft_reboot_changes_the_boot_id(demo):
    before = console_line("cat /proc/sys/kernel/random/boot_id")
    uid = running_vmi()["metadata"]["uid"]
    result = virtctl("soft-reboot", VM, "-n", NS)
    assert result.returncode == 0, result.stderr
    assert "scheduled to soft-reboot" in result.stdout
    # the agent goes away with the old boot and comes back with the new one
    wait_for("AgentConnected after the reboot", lambda: agent_connected(running_vmi())
             and console_line("cat /proc/sys/kernel/random/boot_id") != before, c.BOOT_TIMEOUT, 10)
    assert running_vmi()["metadata"]["uid"] == uid  # the same instance: the guest rebooted in place


@pytest.mark.skipif(not shutil.which("ssh"), reason="needs the OpenSSH client (openssh-client)")
def test_ssh_runs_a_command_in_the_guest(demo, tmp_path):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text().strip()
    # the demo guest's console is a root shell: authorize the key there
    console_line(f"mkdir -p /root/.ssh; echo '{pub}' >> /root/.ssh/authorized_keys; echo ok")
    result = virtctl("ssh", f"root@vm/{VM}/{NS}", "-i", str(key), "-t", "-o StrictHostKeyChecking=no",
                     "-t", f"-o UserKnownHostsFile={tmp_path / 'known_hosts'}", "-t", "-o BatchMode=yes",
                     "-c", "cat /etc/hostname; uname -r", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0] == VM
