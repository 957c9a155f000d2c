"""VM snapshots and restores (snapshot.kubevirt.io, v1beta1 stored, v1alpha1 served): names, phases, indications.

Upstream takes each PVC's snapshot through a CSI VolumeSnapshot. This cluster has no CSI snapshotter (the
kubernetes-csi modules are refused), so a snapshot here is taken at the disk-image level: the disk.img of
every PVC-backed volume is copied, as qcow2, into a PVC of the same StorageClass named after the snapshot
(VolumeBackup.volumeSnapshotName names that PVC). A stopped VM's disks are copied as they are; a running VM's
by a libvirt block copy, the guest's filesystems frozen through the guest agent while the copy is cut.
Restoring converts each copy back into a disk.img. The controllers are controller/snapshot.py and
controller/restore.py.
"""
from __future__ import annotations

GROUP = "snapshot.kubevirt.io"
VERSION = "v1beta1"
OLD_VERSION = "v1alpha1"  # still served, same schema
API_VERSION = f"{GROUP}/{VERSION}"

SNAPSHOT_KIND, SNAPSHOT_PLURAL = "VirtualMachineSnapshot", "virtualmachinesnapshots"
CONTENT_KIND, CONTENT_PLURAL = "VirtualMachineSnapshotContent", "virtualmachinesnapshotcontents"
RESTORE_KIND, RESTORE_PLURAL = "VirtualMachineRestore", "virtualmachinerestores"
SHORT_NAMES = {SNAPSHOT_KIND: ["vmsnapshot", "vmsnapshots"], CONTENT_KIND: ["vmsnapshotcontent", "vmsnapshotcontents"],
               RESTORE_KIND: ["vmrestore", "vmrestores"]}

DEFAULT_FAILURE_DEADLINE_SECONDS = 300
SNAPSHOT_FINALIZER = "snapshot.kubevirt.io/vmsnapshot-protection"
CONTENT_FINALIZER = "snapshot.kubevirt.io/vmsnapshotcontent-protection"
RESTORE_FINALIZER = "snapshot.kubevirt.io/vmrestore-protection"
# On the VM while a snapshot or restore works on its disks (the VM is not started meanwhile).
SNAPSHOT_IN_PROGRESS = "snapshotInProgress"
RESTORE_IN_PROGRESS = "restoreInProgress"
SNAPSHOT_DISK = "disk.qcow2"  # the copy in the snapshot PVC
# Labels of the helper pods and PVCs.
SNAPSHOT_LABEL = "snapshot.kubevirt.io/source-vm-name"
CONTENT_LABEL = "snapshot.kubevirt.io/content"
RESTORE_LABEL = "restore.kubevirt.io/source-vm-name"


class Phase:
    UNSET = ""
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"
    UNKNOWN = "Unknown"


class Indication:
    ONLINE = "Online"
    NO_GUEST_AGENT = "NoGuestAgent"
    GUEST_AGENT = "GuestAgent"
    PAUSED = "Paused"


class Condition:
    READY = "Ready"
    PROGRESSING = "Progressing"
    FAILURE = "Failure"


def parse_duration(text: str) -> float:
    """Seconds of a Go duration such as 5m, 1h30m, 90s or 1.5h."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"invalid duration {text!r}")
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total, number, i = 0.0, "", 0
    while i < len(text):
        char = text[i]
        if char.isdigit() or char == ".":
            number += char
            i += 1
            continue
        unit = next((u for u in ("ms", "us", "µs", "ns", "h", "m", "s") if text.startswith(u, i)), None)
        if unit is None or not number:
            raise ValueError(f"invalid duration {text!r}: use e.g. 5m, 90s or 1h30m")
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    if number:
        raise ValueError(f"invalid duration {text!r}: a unit (h, m, s) is missing")
    return total


def failure_deadline(snapshot: dict) -> float:
    value = (snapshot.get("spec") or {}).get("failureDeadline")
    return DEFAULT_FAILURE_DEADLINE_SECONDS if value in (None, "") else parse_duration(value)


def content_name(snapshot: dict) -> str:
    """Upstream's name of a snapshot's content object."""
    return f"vmsnapshot-content-{snapshot['metadata']['uid']}"


def volume_snapshot_name(content_uid: str, volume: str) -> str:
    """The PVC that keeps one volume's copy (upstream's VolumeSnapshot name)."""
    return f"vmsnapshot-{content_uid}-volume-{volume}"


def restore_claim_name(restore_uid: str, volume: str) -> str:
    return f"restore-{restore_uid}-{volume}"
