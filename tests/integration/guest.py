"""Builds the small test guest: Debian's kernel and a busybox initramfs.

The kernel comes from Debian's linux-image package (downloaded with `apt-get download`, unpacked
with `dpkg-deb -x`, never installed); the initramfs is busybox-static plus an /init that prints
MARKER on the serial console, then runs a shell there (so a test can type `poweroff -f`). With
`kvops.poweroff=N` on the kernel command line the guest powers itself off after N seconds.

Cached under ~/.cache/kubevirt-ops/test-guest/<kernel version>_<busybox version>/ (never in the
clone). Usable as a script too: `python tests/integration/guest.py` prints the paths.
"""
from __future__ import annotations

import fcntl
import glob
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

MARKER = "KUBEVIRT-OPS-GUEST-READY"
CACHE = Path(os.environ.get("KUBEVIRT_OPS_CACHE", Path.home() / ".cache" / "kubevirt-ops")) / "test-guest"
# virtio-net, virtio-blk and virtio-rng are modules in Debian's kernel; loaded in this order by /init
MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
           "failover", "net_failover", "virtio_net", "virtio_blk", "virtio-rng"]
LAYOUT = "8"  # bump when the initramfs changes
KERNEL_ARGS = "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off tsc=unstable"

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in {' '.join(MODULES)}; do [ -e /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null; done
ip link set lo up 2>/dev/null
if [ -e /sys/class/net/eth0 ]; then  # DHCP from the launcher (pod network); masquerade's address without one
  ip link set eth0 up
  # its output goes to the console: with it sent to /dev/null, udhcpc never got a lease at boot here
  udhcpc -i eth0 -n -q -t 5 -T 1 -s /etc/udhcpc.script 2>&1 || {{
    ip addr add 10.0.2.2/24 dev eth0; ip route add default via 10.0.2.1; }}
fi
echo "{MARKER} $(cat /proc/uptime)"
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    kvops.poweroff=*) (sleep "${{arg#kvops.poweroff=}}"; poweroff -f) & ;;
    kvops.serve=*) (while true; do echo "hello from $(hostname) guest" | nc -l -p "${{arg#kvops.serve=}}"; done) & ;;
  esac
done
while true; do setsid cttyhack sh; done
"""


UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip -4 addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    : >/etc/resolv.conf; for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done ;;
esac
"""


def _run(*cmd, cwd=None) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd).stdout.strip()


def _candidate(package: str) -> str:
    out = _run("apt-cache", "policy", package)
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(f"no candidate for {package}")


def _kernel_package() -> str:
    for line in _run("apt-cache", "depends", "linux-image-amd64").splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("cannot resolve linux-image-amd64")


def _download(package: str, dest: Path) -> Path:
    try:
        _run("apt-get", "download", package, cwd=str(dest))
    except subprocess.CalledProcessError:
        _run("apt-get", "update", "-qq")
        _run("apt-get", "download", package, cwd=str(dest))
    debs = glob.glob(str(dest / f"{package}_*.deb"))
    if not debs:
        raise RuntimeError(f"apt-get download {package} left no .deb")
    return Path(debs[0])


def _cpio_newc(entries) -> bytes:
    """An uncompressed newc archive; entries are (name, mode, data, rdev_major, rdev_minor)."""
    out = io.BytesIO()

    def pad(n):
        out.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (name, mode, data, major, minor) in enumerate(list(entries) + [("TRAILER!!!", 0, b"", 0, 0)], 1):
        raw = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08x}" for v in (
            ino if name != "TRAILER!!!" else 0, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(raw), 0))
        out.write(header.encode() + raw)
        pad(110 + len(raw))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def build(cache: Path = CACHE) -> dict:
    """Builds (or finds) the guest; returns {'kernel', 'initrd', 'cmdline', 'marker'}."""
    kpkg = _kernel_package()
    key = f"v{LAYOUT}_{kpkg}_{_candidate(kpkg)}_busybox_{_candidate('busybox-static')}".replace(":", "-")
    target = cache / key
    result = {"kernel": str(target / "vmlinuz"), "initrd": str(target / "initrd.cpio"),
              "cmdline": KERNEL_ARGS, "marker": MARKER, "dir": str(target)}
    if (target / "initrd.cpio").exists():
        return result
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "initrd.cpio").exists():
            return result
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            tmp = Path(tmp)
            for pkg in (kpkg, "busybox-static"):
                deb = _download(pkg, tmp)
                _run("dpkg-deb", "-x", str(deb), str(tmp / "root"))
            kernels = glob.glob(str(tmp / "root" / "boot" / "vmlinuz-*"))
            busybox = (tmp / "root" / "bin" / "busybox").read_bytes()
            stage = tmp / "out"
            stage.mkdir()
            shutil.copy(kernels[0], stage / "vmlinuz")
            entries = [(d, 0o040755, b"", 0, 0) for d in ("bin", "dev", "proc", "sys", "tmp", "sbin", "lib",
                                                          "lib/modules")]
            for module in MODULES:
                found = glob.glob(str(tmp / "root" / "lib" / "modules" / "*" / "kernel" / "**" / f"{module}.ko"),
                                  recursive=True)
                if found:
                    entries.append((f"lib/modules/{module}.ko", 0o100644, Path(found[0]).read_bytes(), 0, 0))
            entries += [("dev/console", 0o020600, b"", 5, 1),
                        ("bin/busybox", 0o100755, busybox, 0, 0),
                        ("bin/sh", 0o120777, b"busybox", 0, 0),
                        ("etc", 0o040755, b"", 0, 0),
                        ("etc/udhcpc.script", 0o100755, UDHCPC_SCRIPT.encode(), 0, 0),
                        ("init", 0o100755, INIT.encode(), 0, 0)]
            (stage / "initrd.cpio").write_bytes(_cpio_newc(entries))
            if target.exists():
                shutil.rmtree(target)
            stage.rename(target)
    return result


def vmi(name: str, guest: dict, *, namespace: str = "default", uid: str | None = None, memory: str = "256Mi",
        ports=(), poweroff_after: int | None = None, serve_port: int | None = None, volumes=(), disks=(),
        grace: int = 5, labels: dict | None = None) -> dict:
    """A defaulted VMI that boots this guest by kernelBoot (plus optional extra disks)."""
    import uuid as uuidlib

    from kubevirt_runtime.api.defaults import default_vmi

    args = guest["cmdline"]
    if poweroff_after is not None:
        args += f" kvops.poweroff={poweroff_after}"
    if serve_port is not None:
        args += f" kvops.serve={serve_port}"
    return default_vmi({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuidlib.uuid4()),
                     "labels": dict(labels or {})},
        "spec": {
            "terminationGracePeriodSeconds": grace,
            "domain": {
                "resources": {"requests": {"memory": memory}},
                "firmware": {"kernelBoot": {"kernelArgs": args, "container": {
                    "image": "test-guest", "kernelPath": "/boot/vmlinuz", "initrdPath": "/boot/initrd.cpio"}}},
                "devices": {"disks": list(disks), "interfaces": [
                    {"name": "default", "masquerade": {}, "ports": [{"port": p} for p in ports]}]},
            },
            "networks": [{"name": "default", "pod": {}}],
            "volumes": list(volumes),
        },
    })


class PodNetwork:
    """A network namespace standing in for a launcher pod's: an `eth0` (one end of a veth pair, as the CNI
    bridge plugin makes it) with a /30 address whose other end, on the host, is its gateway. Named kvo-it-*,
    deleted with its veth pair by delete()."""

    def __init__(self):
        import random
        for _ in range(20):
            tag = f"{random.randrange(16 ** 8):08x}"
            third, fourth = random.randrange(256), random.randrange(64) * 4
            self.name, self.host_link = f"kvo-it-{tag}", f"kvo-it{tag}"
            self.gateway, self.pod_ip = f"10.251.{third}.{fourth + 1}", f"10.251.{third}.{fourth + 2}"
            if f" {self.gateway}/" not in _run("ip", "-o", "-4", "addr"):
                break
        self.created = False

    def create(self) -> "PodNetwork":
        ns = ["ip", "-n", self.name]
        steps = [["ip", "netns", "add", self.name],
                 ["ip", "link", "add", self.host_link, "type", "veth", "peer", "name", "eth0", "netns", self.name],
                 [*ns, "addr", "add", f"{self.pod_ip}/30", "dev", "eth0"], [*ns, "link", "set", "eth0", "up"],
                 [*ns, "link", "set", "lo", "up"], [*ns, "route", "add", "default", "via", self.gateway],
                 ["ip", "addr", "add", f"{self.gateway}/30", "dev", self.host_link],
                 ["ip", "link", "set", self.host_link, "up"]]
        self.created = True
        try:
            for step in steps:
                _run(*step)
        except subprocess.CalledProcessError as exc:
            self.delete()
            raise RuntimeError(f"{' '.join(exc.cmd)}: {exc.stderr}") from None
        return self

    def exec_prefix(self) -> list:
        return ["ip", "netns", "exec", self.name]

    def delete(self) -> None:
        if self.created:
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)  # takes the veth pair along
            subprocess.run(["ip", "link", "delete", self.host_link], capture_output=True)
            self.created = False


class LocalLauncher:
    """virt-launcher as a local process, with the directories and the network namespace its pod would have.
    `sync()` does what virt-handler does first: wire the pod network (handler/network), then sync."""

    def __init__(self, base: Path, guest: dict, name: str, namespace: str = "default", uid: str = "",
                 grace: int = 5, extra_args=()):
        self.base = Path(base)
        self.sockets = self.base / "sockets"
        self.private = self.base / "private"
        self.container_disks = self.base / "container-disks"
        kb = self.container_disks / "kernel-boot"
        kb.mkdir(parents=True, exist_ok=True)
        for src, dst in ((guest["kernel"], "vmlinuz"), (guest["initrd"], "initrd.cpio")):
            if not (kb / dst).exists():
                os.symlink(src, kb / dst)
        self.socket = str(self.sockets / "launcher.sock")
        self.log = open(self.base / "launcher.log", "ab")
        self.pod_network = PodNetwork()
        self.pod_ip = self.pod_network.pod_ip
        self.cmd = [sys.executable, "-m", "kubevirt_runtime.launcher.main", "--name", name, "--namespace", namespace,
                    "--uid", uid, "--socket-dir", str(self.sockets), "--private-dir", str(self.private),
                    "--container-disk-dir", str(self.container_disks), "--grace-period", str(grace), *extra_args]
        self.proc = None

    def sync(self, vmi: dict, options: dict | None = None) -> dict:
        from kubevirt_runtime.handler.launcher_client import LauncherClient, peer_pid
        from kubevirt_runtime.handler.network import netns
        network = netns.setup(vmi, peer_pid(self.socket))
        return LauncherClient(self.socket).sync(vmi, {**(options or {}), "network": network})

    def start(self, timeout: float = 30.0) -> "LocalLauncher":
        import time
        self.pod_network.create()
        self.proc = subprocess.Popen(self.pod_network.exec_prefix() + self.cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket):
            failure = None
            if self.proc.poll() is not None:
                failure = f"launcher exited {self.proc.returncode}: {self.log_text()[-3000:]}"
            elif time.monotonic() > deadline:
                failure = "launcher socket did not appear"
            if failure:
                self.stop(timeout=5)
                raise RuntimeError(failure)
            time.sleep(0.05)
        return self

    def log_text(self) -> str:
        return (self.base / "launcher.log").read_text(errors="replace")

    def qemu_pid(self) -> int:
        # the embedded QEMU driver's run dir (libvirtd's, with --libvirt-daemon); the launcher sees them under
        # /var/lib/libvirt/embed and /run/libvirt, its private dir's libvirt/lib and libvirt/run. The embedded
        # driver also keeps its lock there, driver.pid, which holds the launcher's own pid.
        pids = (glob.glob(str(self.private / "libvirt" / "lib" / "embed" / "run" / "qemu" / "*.pid"))
                or glob.glob(str(self.private / "libvirt" / "run" / "qemu" / "*.pid")))
        (domain,) = [p for p in pids if Path(p).name != "driver.pid"]
        return int(Path(domain).read_text().strip())

    def libvirtd_pid(self) -> int | None:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if Path(f"/proc/{pid}/status").read_text().split("PPid:")[1].split()[0] == str(self.proc.pid):
                        if "libvirtd" in Path(f"/proc/{pid}/comm").read_text():
                            return int(pid)
                except (OSError, IndexError):
                    continue
        return None

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            self.pod_network.delete()
            return None
        if self.proc.poll() is None:
            libvirtd = self.libvirtd_pid()
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if libvirtd:  # the launcher stops its libvirtd itself; killed, it leaves it to PID 1
                    _kill_if(libvirtd, "libvirtd")
        self.log.close()
        self.pod_network.delete()
        return self.proc.returncode


def _kill_if(pid: int, name: str) -> None:
    try:
        if name in Path(f"/proc/{pid}/comm").read_text():
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def read_until(console, marker: bytes, timeout: float) -> bytes:
    """Reads a console stream until `marker` appears; returns everything read."""
    import select
    import time
    deadline = time.monotonic() + timeout
    seen = b""
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{marker!r} not seen on the console; got {seen[-2000:]!r}")
        ready, _, _ = select.select([console.sock], [], [], min(left, 1.0)) if not console._pending else (1, 0, 0)
        if ready:
            data = console.recv()
            if not data:
                raise EOFError(f"console closed before {marker!r}; got {seen[-2000:]!r}")
            seen += data
    return seen


if __name__ == "__main__":
    info = build()
    for k, v in info.items():
        print(f"{k}={v}")
    sys.exit(0)
