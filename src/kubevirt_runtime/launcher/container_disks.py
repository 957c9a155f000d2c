"""Where a containerDisk's (or kernelBoot's) image is: the root of its idle container, seen through /proc.

The launcher pod shares one PID namespace; each image runs as a container idling in a shell whose script names
its volume, ": CONTAINER_DISK_MARKER=<volume>; ..." (controller/launcher_pod.py). /proc/<pid>/root of that
process is the image's root filesystem, so QEMU opens the disk in place (a qcow2 overlay takes the guest's
writes): nothing is copied. Without such a process (a launcher run as a local process),
<container-disk-dir>/<volume> holds the files instead.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from pathlib import Path

from kubevirt_runtime.api.podpaths import CONTAINER_DISK_MARKER

log = logging.getLogger(__name__)
PROC = Path("/proc")
_resolved: dict[str, int] = {}  # volume -> pid of the containers this launcher reads from
# Set when the launcher shuts down: a sync waiting for a container gives up at once, so the stop does not wait
# for it (the sync holds the domain lock the stop needs).
_shutting_down = threading.Event()
_MARKER = re.compile(rb"^: " + re.escape(CONTAINER_DISK_MARKER.encode()) + rb"=([^;\s]+);")


def cancel_waits() -> None:
    _shutting_down.set()


def find_all(proc: Path = PROC) -> dict[str, int]:
    """{volume name: pid} of the containerDisk containers visible to this process."""
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        marker = _MARKER.match(argv[3]) if len(argv) > 3 and argv[1:3] == [b"sh", b"-c"] else None
        if marker:
            found.setdefault(marker.group(1).decode(errors="replace"), int(entry.name))
    return found


def root_of(volume: str, fallback_dir: Path, timeout: float = 30.0, proc: Path = PROC) -> Path:
    """The directory that holds `volume`'s image files: /proc/<pid>/root of its container, or
    `fallback_dir`/<volume> when that exists (local runs). Waits up to `timeout` for the container (the kubelet
    starts it before the compute container, so normally it is there already)."""
    local = fallback_dir / volume
    if local.is_dir():
        return local
    deadline = time.monotonic() + timeout
    while True:
        pid = find_all(proc).get(volume)
        if pid is not None:
            _resolved[volume] = pid
            # not resolved: /proc/<pid>/root must stay a path the kernel follows into the container
            return proc / str(pid) / "root"
        if time.monotonic() >= deadline:
            raise LookupError(f"the container of containerDisk volume {volume!r} is not running in this pod")
        if _shutting_down.wait(0.1):
            raise LookupError(f"the launcher is shutting down: no longer waiting for containerDisk {volume!r}")


def stop_all(proc: Path = PROC) -> list[int]:
    """SIGTERM (their shell exits 0) to the containerDisk containers this launcher read from, else (it never
    started a domain) to every one it sees: in a pod that is the pod's own, so the pod ends with the launcher."""
    stopped = []
    for volume, pid in (dict(_resolved) or find_all(proc)).items():
        try:
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        except OSError as exc:
            log.warning("could not stop the container of %s (pid %s): %s", volume, pid, exc)
    return stopped
