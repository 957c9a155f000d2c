"""The launcher's half of a live migration: libvirt moves the domain, virt-handler carries the bytes.

Both launchers see the same paths: /run/libvirt is the private directory's libvirt/run (a pod mounts that
subPath of its private emptyDir there; a local launcher bind-mounts it in its own mount namespace).
Under /run/libvirt/kubevirt-migration/:

- ``libvirt.sock``: on the source, where its libvirt connects to "the destination libvirtd" (peer to peer):
  the source virt-handler listens there and forwards, over TLS to the target virt-handler, to the target
  launcher's own libvirt socket;
- ``memory.sock``: the QEMU migration stream. libvirt has the target QEMU listen on this path inside the
  target launcher; the source QEMU connects to the same path inside the source launcher, where the source
  virt-handler listens and forwards it to the target's;
- ``disks.sock``: the same for the disk copy (an NBD server in the target QEMU): local writable disks
  (containerDisk overlays, emptyDisks) are copied incrementally (their backing images are in both pods).

virt-handler reaches these sockets through the launcher pod's private emptyDir (a local launcher's private
directory): ``<private>/libvirt/run/kubevirt-migration/``.

Pure helpers here (flags, parameters, the disks to copy, the monitor's decision); domain.py runs them.
"""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import libvirt

DIR = "/run/libvirt/kubevirt-migration"  # inside the launcher's mount namespace
LIBVIRT_SOCKET = "libvirt.sock"
MEMORY_SOCKET = "memory.sock"
DISKS_SOCKET = "disks.sock"
CHANNELS = (LIBVIRT_SOCKET, MEMORY_SOCKET, DISKS_SOCKET)
DOMAIN_HERE = "domain-migrated-in"  # a target's marker in its private directory once the domain runs there

# upstream's defaults (virt-config): seconds without progress, seconds per GiB of guest memory
DEFAULT_PROGRESS_TIMEOUT = 150
DEFAULT_COMPLETION_TIMEOUT_PER_GIB = 150
MONITOR_INTERVAL = 0.5


@dataclass(frozen=True)
class Options:
    """What virt-handler passes to `migrate` (from the KubeVirt CR's spec.configuration.migrations)."""

    bandwidth_mib: int = 0  # MiB/s, 0: unlimited
    progress_timeout: int = DEFAULT_PROGRESS_TIMEOUT
    completion_timeout_per_gib: int = DEFAULT_COMPLETION_TIMEOUT_PER_GIB
    allow_auto_converge: bool = False
    # {source path prefix: target path prefix} for the destination XML; empty in a cluster (same pod layout)
    path_map: tuple = ()

    @classmethod
    def from_dict(cls, options: dict | None) -> "Options":
        options = options or {}
        return cls(bandwidth_mib=int(options.get("bandwidthMiB") or 0),
                   progress_timeout=int(options.get("progressTimeout") or DEFAULT_PROGRESS_TIMEOUT),
                   completion_timeout_per_gib=int(options.get("completionTimeoutPerGiB")
                                                  or DEFAULT_COMPLETION_TIMEOUT_PER_GIB),
                   allow_auto_converge=bool(options.get("allowAutoConverge")),
                   path_map=tuple(sorted((options.get("pathMap") or {}).items())))


def dest_uri() -> str:
    """The destination libvirtd, as the source's libvirt (embedded or a daemon) connects to it (through
    virt-handler)."""
    return f"qemu+unix:///system?socket={DIR}/{LIBVIRT_SOCKET}"


def local_disks(domain_xml: str) -> list[str]:
    """Target names of the writable disks whose data lives in the pod (copied to the target)."""
    out = []
    for disk in ET.fromstring(domain_xml).findall("./devices/disk"):
        if disk.get("device", "disk") != "disk" or disk.find("readonly") is not None:
            continue
        if disk.find("shareable") is not None or disk.get("type") not in ("file", "block"):
            continue
        target = disk.find("target")
        if target is not None and target.get("dev"):
            out.append(target.get("dev"))
    return out


def rewrite_paths(domain_xml: str, path_map) -> str:
    for source, target in path_map:
        domain_xml = domain_xml.replace(source, target)
    return domain_xml


def flags(options: Options, disks: list[str]) -> int:
    value = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
    if disks:
        value |= libvirt.VIR_MIGRATE_NON_SHARED_INC
    if options.allow_auto_converge:
        value |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    return value


def params(domain_xml: str, options: Options, disks: list[str]) -> dict:
    out = {libvirt.VIR_MIGRATE_PARAM_URI: f"unix://{DIR}/{MEMORY_SOCKET}",
           libvirt.VIR_MIGRATE_PARAM_DEST_XML: rewrite_paths(domain_xml, options.path_map)}
    if options.bandwidth_mib:
        out[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = options.bandwidth_mib
    if disks:
        out[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = disks
        out[libvirt.VIR_MIGRATE_PARAM_DISKS_URI] = f"unix://{DIR}/{DISKS_SOCKET}"
    return out


@dataclass
class Progress:
    """What the monitor remembers between polls."""

    started: float
    best_remaining: int | None = None
    last_progress: float = 0.0


def should_abort(progress: Progress, remaining: int | None, now: float, options: Options,
                 memory_bytes: int) -> str | None:
    """Why the migration must be aborted now (progress or completion timeout, as upstream), or None.
    `remaining` is the job's data left to transfer (None: not known yet)."""
    if remaining is not None and (progress.best_remaining is None or remaining < progress.best_remaining):
        progress.best_remaining, progress.last_progress = remaining, now
    if not progress.last_progress:
        progress.last_progress = now
    if now - progress.last_progress > options.progress_timeout:
        return f"no progress for {options.progress_timeout}s (progressTimeout)"
    gib = max(memory_bytes / (1 << 30), 1 / 1024)
    allowed = options.completion_timeout_per_gib * gib
    if now - progress.started > max(allowed, 1):
        return f"not completed within {allowed:.0f}s (completionTimeoutPerGiB {options.completion_timeout_per_gib})"
    return None


def stamp(epoch: float | None = None) -> str:
    """RFC 3339 with the API server's second resolution."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None else epoch))
