"""libvirt's QEMU driver for one launcher: embedded in the launcher's own process, or a private libvirtd.

A launcher runs its domain through libvirt's embedded QEMU driver (``qemu:///embed?root=...``, libvirt 6.1+):
the driver lives in the launcher's process, under its own root directory, so there is no daemon to start,
wait for, or keep in memory (about 26 MiB RSS and a process start per VM). Only the target of a live
migration runs a daemon: the source's libvirt connects to it (peer to peer, through virt-handler), and an
embedded driver takes no connections. Upstream runs virtqemud in every launcher.

Debian 12 ships only the monolithic libvirtd (no virtqemud), so a migration target runs libvirtd, trimmed:
- in the launcher's own mount namespace, with libvirt's runtime, state, log and config directories
  bind-mounted from the launcher's private directory, so launchers never share a daemon, a socket
  or a domain list, neither in a pod nor as local processes on one host (tests);
- loading only the QEMU driver (LIBVIRT_DRIVER_DIR points at a directory holding just that module),
  which saves memory and start time (no network, storage, nodedev... drivers);
- with stdio_handler = "file", so no virtlogd; no cgroups, no namespaces for QEMU, no security
  driver: the pod is the sandbox, as in KubeVirt;
- QEMU's capability cache in /var/cache/libvirt stays shared (an image can carry it pre-warmed).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

LIBVIRTD = "/usr/sbin/libvirtd"
DRIVER_DIR = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver"
QEMU_ACCOUNT = "libvirt-qemu"
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MS_BIND = 0x4000, 1 << 18, 4096
# libvirt's fixed (privileged) directories -> subdirectory of the private dir
BIND_DIRS = {"/run/libvirt": "run", "/var/lib/libvirt": "lib", "/var/log/libvirt": "log", "/etc/libvirt": "etc"}

LIBVIRTD_CONF = """\
# written by virt-launcher
listen_tls = 0
listen_tcp = 0
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
min_workers = 1
max_workers = 4
prio_workers = 1
admin_min_workers = 1
admin_max_workers = 1
log_outputs = "{log_level}:file:/var/log/libvirt/libvirtd.log"
"""

QEMU_CONF = """\
# written by virt-launcher
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
set_process_name = 1
swtpm_user = "root"
swtpm_group = "root"
"""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def enter_private_mount_namespace(private_dir: Path) -> None:
    """Unshares the mount namespace of this (still single-threaded) process and bind-mounts libvirt's
    directories from `private_dir`/libvirt. Everything the launcher starts afterwards sees them."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNS): {os.strerror(err)}")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"making / private: {os.strerror(err)}")
    base = private_dir / "libvirt"
    for target, sub in BIND_DIRS.items():
        src = base / sub
        src.mkdir(parents=True, exist_ok=True)
        os.makedirs(target, exist_ok=True)
        if libc.mount(str(src).encode(), target.encode(), None, MS_BIND, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"bind-mounting {src} on {target}: {os.strerror(err)}")
    _ensure_qemu_account(base, libc)


def _qemu_account_files() -> dict:
    """/etc file name -> its content with libvirt's QEMU account added, for each file that lacks it.
    libvirt's QEMU driver refuses to start unless its build-time user/group (Debian: libvirt-qemu) exist,
    even with user = "root" in qemu.conf."""
    out = {}
    for name, line in (("passwd", f"{QEMU_ACCOUNT}:x:64055:64055:libvirt qemu:/var/lib/libvirt:/usr/sbin/nologin\n"),
                       ("group", f"{QEMU_ACCOUNT}:x:64055:\n")):
        current = Path("/etc", name).read_text()
        if any(entry.split(":", 1)[0] == QEMU_ACCOUNT for entry in current.splitlines()):
            continue
        out[name] = current + ("" if current.endswith("\n") or not current else "\n") + line
    return out


def _ensure_qemu_account(base: Path, libc) -> None:
    """Inside our mount namespace: bind-mounts copies of /etc/passwd and /etc/group with the account."""
    for name, content in _qemu_account_files().items():
        copy = base / name
        copy.write_text(content)
        if libc.mount(str(copy).encode(), f"/etc/{name}".encode(), None, MS_BIND, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"bind-mounting {copy} on /etc/{name}: {os.strerror(err)}")


def prepare_container() -> None:
    """In a pod the container is already the launcher's own mount namespace, and an unprivileged launcher
    (no CAP_SYS_ADMIN) could not unshare one: libvirt uses its fixed directories in the container's file
    system (the pod mounts its private emptyDir's libvirt/run on /run/libvirt, where virt-handler reaches the
    sockets), and the QEMU account goes into the container's own /etc files."""
    for target in BIND_DIRS:
        os.makedirs(target, exist_ok=True)
    for name, content in _qemu_account_files().items():
        Path("/etc", name).write_text(content)


def log_level(debug: bool) -> int:
    """libvirt's level: 1 logs everything, 3 warnings and errors."""
    return 1 if debug else 3


def write_config(debug: bool = False) -> None:
    etc = Path("/etc/libvirt")
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "libvirtd.conf").write_text(LIBVIRTD_CONF.format(log_level=log_level(debug)))
    (etc / "qemu.conf").write_text(QEMU_CONF)


EMBED_ROOT = "/var/lib/libvirt/embed"  # short: QEMU's sockets under it must fit a unix address


class EmbeddedDriver:
    """The QEMU driver inside this process; same interface as Libvirtd. The caller must have entered the
    private mount namespace (local runs) and registered libvirt's event loop before opening `uri`."""

    uri = f"qemu:///embed?root={EMBED_ROOT}"
    embedded = True
    pid = None
    capabilities_cache = Path(EMBED_ROOT, "cache/qemu/capabilities")

    def __init__(self, debug: bool = False):
        self.debug = debug

    def start(self) -> None:
        etc = Path(EMBED_ROOT, "etc")
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "qemu.conf").write_text(QEMU_CONF)
        os.environ["LIBVIRT_DRIVER_DIR"] = _qemu_driver_only()
        # read when libvirt initializes: the driver logs where a daemon would, not on the launcher's stderr
        os.environ["LIBVIRT_LOG_OUTPUTS"] = f"{log_level(self.debug)}:file:/var/log/libvirt/libvirt.log"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready once opened."""

    def stop(self, timeout: float = 10.0) -> None:
        """Goes with the process."""


def _qemu_driver_only() -> str:
    """A directory holding only the QEMU driver module, for LIBVIRT_DRIVER_DIR."""
    drivers = Path("/run/libvirt/drivers")
    drivers.mkdir(parents=True, exist_ok=True)
    link = drivers / "libvirt_driver_qemu.so"
    if not link.exists():
        link.symlink_to(Path(DRIVER_DIR) / "libvirt_driver_qemu.so")
    return str(drivers)


class Libvirtd:
    """The daemon process; the caller must have entered the private mount namespace."""

    capabilities_cache = Path("/var/cache/libvirt/qemu/capabilities")

    uri = "qemu:///system"
    embedded = False
    socket_path = "/run/libvirt/libvirt-sock"

    def __init__(self, debug: bool = False):
        self.debug = debug
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        write_config(self.debug)
        env = dict(os.environ, LIBVIRT_DRIVER_DIR=_qemu_driver_only())
        self.proc = subprocess.Popen([LIBVIRTD, "--config", "/etc/libvirt/libvirtd.conf",
                                      "--pid-file", "/run/libvirt/libvirtd.pid"], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open("/var/log/libvirt/libvirtd.stderr", "ab"))

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"libvirtd exited with {self.proc.returncode}: {self.stderr_tail()}")
            if os.path.exists(self.socket_path):
                return
            time.sleep(0.02)
        raise RuntimeError("libvirtd did not create its socket in time")

    def stderr_tail(self) -> str:
        try:
            return Path("/var/log/libvirt/libvirtd.stderr").read_text()[-2000:]
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
