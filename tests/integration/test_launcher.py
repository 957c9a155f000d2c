"""virt-launcher as a local process against real libvirt + QEMU, booting the small test guest."""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from kubevirt_runtime.handler.launcher_client import LauncherClient, LauncherError, open_console, subscribe

try:
    from . import guest as guest_mod
except ImportError:  # tests/integration is not a package: pytest put it on sys.path
    import guest as guest_mod

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(240)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd"):
    pytest.skip("needs root, libvirtd and qemu-system-x86_64 (hack/install-node-packages.sh)",
                allow_module_level=True)

MARKER = guest_mod.MARKER.encode()
BOOT_TIMEOUT = 120


@pytest.fixture(scope="module")
def guest():
    return guest_mod.build()


@pytest.fixture
def workdir():
    # short path: unix socket paths are limited to 108 bytes
    d = tempfile.mkdtemp(prefix="kvl-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def launch(workdir, guest):
    started = []

    def start(name, uid, grace=3, extra_args=()):
        launcher = guest_mod.LocalLauncher(workdir / name, guest, name, uid=uid, grace=grace,
                                           extra_args=extra_args).start()
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.stop(timeout=20)


class Events:
    """Collects pushed domain states in a thread."""

    def __init__(self, path):
        self.states = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self.thread.start()

    def _run(self, path):
        for state in subscribe(path):
            with self.cond:
                self.states.append(state)
                self.cond.notify_all()
        with self.cond:
            self.states.append(None)
            self.cond.notify_all()

    def wait(self, pred, timeout=60):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for s in self.states:
                    if s is not None and pred(s):
                        return s
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [s and (s["status"], s["reason"]) for s in self.states]
                    raise TimeoutError(f"no matching state; saw {seen}")
                self.cond.wait(left)


IDLE = (": kubevirt-container-disk={volume}; trap 'kill $! 2>/dev/null; exit 0' TERM; "
        "while :; do /bin/busybox sleep 3600 & wait $!; done")


@pytest.fixture
def image_container():
    """What a containerDisk container is to the launcher: a shell idling in the image (here chroot gives it that
    root) whose script names the volume, as controller/launcher_pod.py makes it."""
    started = []

    def start(root: Path, volume: str) -> subprocess.Popen:
        (root / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy("/bin/busybox", root / "bin" / "busybox")  # Debian's busybox-static
        started.append(subprocess.Popen(["chroot", str(root), "/bin/busybox", "sh", "-c", IDLE.format(volume=volume)]))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_guest_runs_under_tcg():
    from kubevirt_runtime.launcher.accel import probe_guest
    ok, detail = probe_guest("tcg", timeout=20)
    assert ok, detail


def test_boot_to_console_marker_then_guest_poweroff(launch, guest):
    uid = str(uuid.uuid4())
    launcher = launch("boot", uid)
    client = LauncherClient(launcher.socket)
    assert client.state()["status"] == "Missing"
    events = Events(launcher.socket)
    vmi = guest_mod.vmi("boot", guest, uid=uid)  # no accel option: the launcher probes KVM itself

    start = time.monotonic()
    state = launcher.sync(vmi)
    assert state["status"] == "Running"
    console = open_console(launcher.socket, history=True)
    output = guest_mod.read_until(console, MARKER, BOOT_TIMEOUT)
    print(f"sync -> console marker: {time.monotonic() - start:.1f}s, accel {state['accel']}")
    assert state["accel"] in ("kvm", "tcg")
    assert list(state["timeline"]) == ["ContainersStarted", "LauncherReady", "DomainDefined", "DomainStarted"]
    assert "FirstConsoleOutput" in client.state()["timeline"]
    assert launcher.sync(vmi)["status"] == "Running"  # idempotent (the network setup too)

    # the guest shell on the serial console powers the guest off
    guest_mod.read_until(console, b"# ", 30) if b"# " not in output.split(MARKER)[-1] else None
    console.sendall(b"poweroff -f\n")
    final = events.wait(lambda s: s["final"])
    assert final["status"] == "Shutoff" and final["reason"] == "Shutdown" and final["outcome"] == "Succeeded"
    assert launcher.proc.wait(30) == 0
    assert not os.path.exists(launcher.socket)
    console.close()


def test_ports_pause_and_graceful_stop(launch, guest, workdir, image_container):
    uid = str(uuid.uuid4())
    port = free_port()
    # a containerDisk (read in place from its image's container, nothing copied), a cloud-init disk and an empty
    # disk ride along; the volume name is unique: other test runs on this host may have image containers too
    rootdisk = f"rootdisk{uid[:6]}"
    image = workdir / "image"
    (image / "disk").mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image / "disk" / "disk.qcow2"), "64M"], check=True)
    before = hashlib.sha256((image / "disk" / "disk.qcow2").read_bytes()).hexdigest()
    container = image_container(image, rootdisk)
    launcher = launch("net", uid, grace=2, extra_args=("--accel", "tcg", "--stop-container-disks"))
    vmi = guest_mod.vmi(
        "net", guest, uid=uid, ports=[port], serve_port=port,
        disks=[{"name": rootdisk, "disk": {"bus": "virtio"}}, {"name": "cloudinit", "disk": {"bus": "virtio"}},
               {"name": "scratch", "disk": {"bus": "virtio"}}],
        volumes=[{"name": rootdisk, "containerDisk": {"image": "example/disk:1"}},
                 {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\npassword: x\n"}},
                 {"name": "scratch", "emptyDisk": {"capacity": "16Mi"}}])
    client = LauncherClient(launcher.socket)
    events = Events(launcher.socket)
    launcher.sync(vmi)
    console = open_console(launcher.socket, history=True)
    guest_mod.read_until(console, MARKER, BOOT_TIMEOUT)

    # the three disks are visible in the guest
    console.sendall(b"ls /sys/block; echo DISKS-$((40+2))\n")
    out = guest_mod.read_until(console, b"DISKS-42", 30)
    assert b"vda" in out and b"vdb" in out and b"vdc" in out
    overlay = launcher.private / "disks" / f"{rootdisk}.qcow2"
    info = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(overlay)], capture_output=True, text=True,
                          check=True).stdout
    assert f'"/proc/{container.pid}/root/disk/disk.qcow2"' in info  # the image itself is the backing file
    assert not any(launcher.base.rglob("disk.qcow2"))  # and it was never copied
    assert (launcher.private / "disks" / "cloudinit.iso").exists()
    # the domain stats virt-handler's metrics come from: disks by their VMI names
    answer = client.call("stats")
    assert answer["drives"] == {"vda": rootdisk, "vdb": "cloudinit", "vdc": "scratch"}
    raw = answer["stats"]
    reads = {raw[f"block.{i}.name"]: raw.get(f"block.{i}.rd.bytes", 0) for i in range(raw["block.count"])}
    assert reads["vda"] > 0 and raw["vcpu.0.time"] > 0 and raw["balloon.rss"] > 0

    # traffic to the declared port of the pod's address reaches the guest (virt-handler's NAT in the pod)
    deadline = time.monotonic() + 30
    reply = b""
    while b"hello" not in reply and time.monotonic() < deadline:
        try:
            with socket.create_connection((launcher.pod_ip, port), timeout=5) as s:
                reply = s.recv(100)
        except OSError:
            time.sleep(0.5)
    assert reply.startswith(b"hello from")

    client.pause()
    assert events.wait(lambda s: s["status"] == "Paused")["reason"] == "PausedByUser"
    client.unpause()
    events.wait(lambda s: s["status"] == "Running" and events.states.index(s) > 1)

    # SIGTERM (the pod is deleted, nobody asked virt-handler): ACPI power button; busybox ignores it, so
    # destroy after the grace period; the VMI fails, as upstream's does when its pod goes away
    start = time.monotonic()
    launcher.proc.send_signal(signal.SIGTERM)
    final = events.wait(lambda s: s["final"], timeout=30)
    took = time.monotonic() - start
    assert final["reason"] == "PodTerminated" and final["outcome"] == "Failed"
    assert 1.5 <= took < 15
    assert launcher.proc.wait(30) == 1
    assert container.wait(10) == 0  # the launcher stopped the image's container on its way out (status 0)
    assert hashlib.sha256((image / "disk" / "disk.qcow2").read_bytes()).hexdigest() == before  # never written
    console.close()


def test_qemu_killed_is_a_failure(launch, guest):
    uid = str(uuid.uuid4())
    launcher = launch("crash", uid, extra_args=("--accel", "tcg"))
    events = Events(launcher.socket)
    launcher.sync(guest_mod.vmi("crash", guest, uid=uid))
    events.wait(lambda s: s["status"] == "Running")
    qemu = launcher.qemu_pid()
    # libvirtd daemonizes QEMU; the launcher is its subreaper (as PID 1 of a pod would be) and reaps it
    ppid = int(Path(f"/proc/{qemu}/status").read_text().split("PPid:")[1].split()[0])
    assert ppid == launcher.proc.pid
    start = time.monotonic()
    os.kill(qemu, signal.SIGKILL)
    final = events.wait(lambda s: s["final"])
    assert final["outcome"] == "Failed"
    assert time.monotonic() - start < 10  # no zombie for libvirt to wait on (that took 80 s)
    assert launcher.proc.wait(30) == 1


def test_protocol_version_and_wrong_uid(launch, guest):
    launcher = launch("proto", str(uuid.uuid4()), extra_args=("--accel", "tcg"))
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(launcher.socket)
        s.sendall(b'{"version": 99}\n')
        assert b'"ok":false' in s.recv(1000)
    client = LauncherClient(launcher.socket)
    with pytest.raises(LauncherError, match="does not match"):
        launcher.sync(guest_mod.vmi("proto", guest, uid="someone-else"))
    with pytest.raises(LauncherError, match="no domain"):
        client.pause()
