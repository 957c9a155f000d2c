"""Hotplugged disks on this node: what is mounted where, and the mounts themselves (the I/O of the hotplug
actions decide.py asks for).

For each hotplugged volume virt-controller runs an attachment pod on the VMI's node that mounts the PVC
(controller/hotplug.py); the kubelet then bind-mounts the PVC's directory into that pod's volume directory
(<kubelet root>/pods/<attachment pod uid>/volumes/<plugin>/<pv>, a local PV). virt-handler bind-mounts that
directory's disk.img onto <volume>.img in the launcher pod's ``hotplug-disks`` emptyDir. virt-handler's view of
the kubelet's pods directory is mounted Bidirectional, so the new mount reaches the node, and from there the
launcher's container (its emptyDir mount is HostToContainer), where the launcher attaches <volume>.img to the
domain. Detaching goes the other way: the launcher detaches, virt-handler unmounts, virt-controller deletes the
pod. The mount is of the file, as upstream's: the kubelet empties an emptyDir with a recursive remove, which a
file mount point stops (EBUSY) where a directory mount would let it delete the PVC's data; and sweep() unmounts
what a launcher pod that is gone left behind.
"""
from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kubevirt_runtime.api.constants import APP_LABEL, CREATED_BY_LABEL, DOMAIN_ANNOTATION
from kubevirt_runtime.api.volumes import HOTPLUG_APP_VALUE, HOTPLUG_VOLUME_LABEL

log = logging.getLogger(__name__)

EMPTY_DIR = "kubernetes.io~empty-dir"
HOTPLUG_EMPTY_DIR = "hotplug-disks"


class HotplugError(Exception):
    pass


@dataclass(frozen=True)
class HotplugView:
    """What virt-handler sees of a VMI's hotplugged volumes on this node (a snapshot, for decide.py)."""

    launcher_pod_uid: str | None = None
    mounted: frozenset = frozenset()                  # volumes mounted into the launcher pod
    sources: dict = field(default_factory=dict)       # volume -> the PVC's directory of its running attachment pod
    pods: dict = field(default_factory=dict)          # volume -> (attachment pod name, uid, phase)


def hotplug_dir(kubelet_root: str, launcher_pod_uid: str) -> Path:
    return Path(kubelet_root) / "pods" / launcher_pod_uid / "volumes" / EMPTY_DIR / HOTPLUG_EMPTY_DIR


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_points(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    with open(mountinfo) as f:
        return [_unescape(line.split()[4]) for line in f if len(line.split()) > 4]


def is_mount(path, points=None) -> bool:
    """From the mount table: os.path.ismount compares devices, and misses a bind mount from the same filesystem
    (a local PV on the node's disk, or the disk file bind-mounted into the emptyDir)."""
    return str(path) in set(mount_points() if points is None else points)


def mounted_volumes(kubelet_root: str, launcher_pod_uid: str, points=None) -> frozenset:
    base = str(hotplug_dir(kubelet_root, launcher_pod_uid)) + "/"
    points = mount_points() if points is None else points
    return frozenset(p[len(base):-len(".img")] for p in points
                     if p.startswith(base) and p.endswith(".img") and "/" not in p[len(base):])


def mounted_launchers(kubelet_root: str, points=None) -> dict[str, set]:
    """{launcher pod uid: volumes} of every hotplug mount on this node."""
    pods = Path(kubelet_root) / "pods"
    out: dict[str, set] = {}
    for point in mount_points() if points is None else points:
        path = Path(point)
        try:
            rel = path.relative_to(pods)
        except ValueError:
            continue
        parts = rel.parts
        if len(parts) == 5 and parts[1:4] == ("volumes", EMPTY_DIR, HOTPLUG_EMPTY_DIR) and parts[4].endswith(".img"):
            out.setdefault(parts[0], set()).add(parts[4][:-len(".img")])
    return out


def attachment_source(kubelet_root: str, pod_uid: str, points=None) -> str | None:
    """The PVC's directory in an attachment pod's volume directory (a local or hostPath-like plugin mounts
    it at volumes/<plugin>/<pv>, CSI at volumes/<plugin>/<pv>/mount); None until the kubelet mounted it."""
    volumes = Path(kubelet_root) / "pods" / pod_uid / "volumes"
    if not volumes.is_dir():
        return None
    points = set(mount_points() if points is None else points)
    for plugin in sorted(volumes.iterdir()):
        for entry in sorted(plugin.iterdir()) if plugin.is_dir() else []:
            for candidate in (entry / "mount", entry):
                if is_mount(candidate, points):
                    return str(candidate)
    return None


def _run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HotplugError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")


def mount(source: str, kubelet_root: str, launcher_pod_uid: str, volume: str) -> None:
    """Bind-mounts <source>/disk.img onto <volume>.img in the launcher pod's hotplug-disks emptyDir."""
    disk = Path(source) / "disk.img"
    if not disk.is_file():
        raise HotplugError(f"{disk} does not exist: the PVC holds no disk image (fill it with a DataVolume)")
    directory = hotplug_dir(kubelet_root, launcher_pod_uid)
    if not directory.is_dir():
        raise HotplugError(f"{directory} does not exist: the launcher pod has no hotplug-disks emptyDir")
    target = directory / f"{volume}.img"
    if is_mount(target):
        return
    target.touch()
    _run("mount", "--bind", str(disk), str(target))
    log.info("mounted %s on %s", disk, target)


def unmount(kubelet_root: str, launcher_pod_uid: str, volume: str) -> None:
    target = hotplug_dir(kubelet_root, launcher_pod_uid) / f"{volume}.img"
    if is_mount(target):
        _run("umount", str(target))
        log.info("unmounted %s", target)
    target.unlink(missing_ok=True)


class HotplugLookup:
    """Builds a VMI's HotplugView from virt-handler's pod cache (launcher and attachment pods of this node)
    and the node's mounts."""

    def __init__(self, pod_store, kubelet_root: str):
        self.pod_store = pod_store
        self.kubelet_root = kubelet_root

    def launcher_pod(self, vmi: dict) -> dict | None:
        uid = (vmi.get("metadata") or {}).get("uid")
        pods = [p for p in self.pod_store.list()
                if ((p.get("metadata") or {}).get("labels") or {}).get(CREATED_BY_LABEL) == uid]
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        return (running or pods or [None])[0]

    def view(self, vmi: dict) -> HotplugView:
        launcher = self.launcher_pod(vmi)
        if launcher is None:
            return HotplugView()
        launcher_uid = launcher["metadata"]["uid"]
        sources, pods = {}, {}
        for pod in self.pod_store.list():
            meta = pod.get("metadata") or {}
            labels = meta.get("labels") or {}
            if labels.get(APP_LABEL) != HOTPLUG_APP_VALUE or not any(
                    ref.get("uid") == launcher_uid for ref in meta.get("ownerReferences") or []):
                continue
            volume = labels.get(HOTPLUG_VOLUME_LABEL)
            phase = (pod.get("status") or {}).get("phase")
            pods[volume] = (meta["name"], meta["uid"], phase)
            if phase == "Running" and not meta.get("deletionTimestamp"):
                source = attachment_source(self.kubelet_root, meta["uid"])
                if source:
                    sources[volume] = source
        return HotplugView(launcher_uid, mounted_volumes(self.kubelet_root, launcher_uid), sources, pods)

    def vmi_key(self, pod: dict) -> str | None:
        """namespace/name of the VMI an attachment pod serves (its owner is the VMI's launcher pod, which names
        the VMI): its VMI must sync when the pod runs, as only then is the PVC mounted."""
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(APP_LABEL) != HOTPLUG_APP_VALUE:
            return None
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or []}
        for launcher in self.pod_store.list():
            if (launcher.get("metadata") or {}).get("uid") in owners:
                name = (launcher["metadata"].get("annotations") or {}).get(DOMAIN_ANNOTATION)
                return f"{meta.get('namespace')}/{name}" if name else None
        return None

    def sweep(self) -> list[str]:
        """Unmounts the hotplug mounts of launcher pods that are gone or ended (their VMI cannot ask any more);
        returns what it unmounted."""
        live = {p["metadata"]["uid"] for p in self.pod_store.list()
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")}
        done = []
        for pod_uid, volumes in mounted_launchers(self.kubelet_root).items():
            if pod_uid in live:
                continue
            for volume in sorted(volumes):
                try:
                    unmount(self.kubelet_root, pod_uid, volume)
                    done.append(f"{pod_uid}/{volume}")
                except HotplugError as exc:
                    log.warning("leftover hotplug mount %s/%s: %s", pod_uid, volume, exc)
        return done
