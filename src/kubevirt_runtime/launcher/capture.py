"""A consistent copy of a running guest's PVC disks, for a VM snapshot (virt-controller's snapshot controller
asks through virt-api and virt-handler; controller/snapshot.py copies the result into the snapshot's PVCs).

For every disk at once: libvirt's block copy (QEMU's drive-mirror) into ``.vmsnapshot-<id>.qcow2`` beside the
disk's image in its PVC, until every mirror is in sync (the READY event); then the guest's filesystems are
frozen through the guest agent when one is connected, every copy is cut at that instant (the job aborted
without a pivot leaves its destination as a point-in-time image), and the guest is thawed: it stays frozen only
for the cut, not the copy. A copy is written to ``.part`` and renamed when complete, so a retry with the same id
finds the finished copies and returns them.
"""
from __future__ import annotations

import logging
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from .hotplug import ALIAS_PREFIX

log = logging.getLogger(__name__)
READY_TIMEOUT = 600


class CaptureError(Exception):
    pass


def staged_name(snapshot_id: str) -> str:
    return f".vmsnapshot-{snapshot_id}.qcow2"


def _disks(domain_xml: str, volumes) -> dict:
    """{volume: (target dev, source file)} of the named volumes' disks."""
    found = {}
    for disk in ET.fromstring(domain_xml).iter("disk"):
        alias, target, source = disk.find("alias"), disk.find("target"), disk.find("source")
        name = (alias.get("name") or "")[len(ALIAS_PREFIX):] if alias is not None else ""
        if name in volumes and target is not None and source is not None and source.get("file"):
            found[name] = (target.get("dev"), source.get("file"))
    missing = sorted(set(volumes) - set(found))
    if missing:
        raise CaptureError(f"no file-backed disk for volume(s) {', '.join(missing)} in the running domain")
    return found


def capture(conn, dom, snapshot_id: str, volumes, freeze: bool) -> dict:
    """Copies the named volumes' disks; returns {"files": {volume: staged file name}, "frozen": bool,
    "seconds": float}."""
    started = time.monotonic()
    disks = _disks(dom.XMLDesc(0), list(volumes))
    name = staged_name(snapshot_id)
    final = {vol: Path(src).parent / name for vol, (_dev, src) in disks.items()}
    if all(path.exists() for path in final.values()):
        return {"files": {vol: name for vol in disks}, "frozen": False, "frozenFilesystems": 0, "seconds": 0.0,
                "reused": True}
    ready, failed = set(), {}
    cond = threading.Condition()

    def on_job(_conn, _dom, disk, _type, status, _opaque):
        with cond:
            if status == libvirt.VIR_DOMAIN_BLOCK_JOB_READY:
                ready.add(disk)
            elif status in (libvirt.VIR_DOMAIN_BLOCK_JOB_FAILED, libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED):
                failed[disk] = status
            cond.notify_all()

    callback = conn.domainEventRegisterAny(dom, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, on_job, None)
    started_jobs = []
    frozen, frozen_count = False, 0
    try:
        for vol, (dev, _src) in disks.items():
            part = final[vol].with_name(name + ".part")
            part.unlink(missing_ok=True)
            dest = f"<disk type='file'><source file='{part}'/><driver type='qcow2'/></disk>"
            dom.blockCopy(dev, dest, None, 0)
            started_jobs.append((vol, dev))
        targets = {dev for _vol, dev in started_jobs}
        deadline = time.monotonic() + READY_TIMEOUT
        with cond:
            while not targets <= ready and not failed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CaptureError(f"the block copies did not get in sync within {READY_TIMEOUT}s")
                cond.wait(min(left, 1.0))
        if failed:
            raise CaptureError(f"block copy of {', '.join(sorted(failed))} failed")
        if freeze:
            try:
                frozen_count = dom.fsFreeze()
                frozen = True
            except libvirt.libvirtError as exc:
                log.warning("freezing the guest's filesystems failed: %s", exc)
        try:
            for _vol, dev in started_jobs:
                dom.blockJobAbort(dev, 0)  # READY: the destination is now a point-in-time copy
            started_jobs.clear()
        finally:
            if frozen:
                try:
                    dom.fsThaw()
                except libvirt.libvirtError as exc:
                    log.error("thawing the guest's filesystems failed: %s", exc)
        for vol in disks:
            final[vol].with_name(name + ".part").rename(final[vol])
    finally:
        for _vol, dev in started_jobs:  # an error before the cut: stop the copies, keep the guest's disk
            try:
                dom.blockJobAbort(dev, 0)
            except libvirt.libvirtError:
                pass
        conn.domainEventDeregisterAny(callback)
    took = time.monotonic() - started
    log.info("captured %s in %.1fs (guest %s)", ", ".join(sorted(disks)), took, "frozen" if frozen else "not frozen")
    return {"files": {vol: name for vol in disks}, "frozen": frozen, "frozenFilesystems": frozen_count or 0,
            "seconds": round(took, 2)}
