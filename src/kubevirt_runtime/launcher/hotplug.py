"""Disks attached to and detached from the running domain (virtctl addvolume / removevolume).

virt-handler bind-mounts the PVC's disk.img into the pod's hotplug-disks emptyDir (podpaths.HOTPLUG_DISK_DIR/
<volume>.img), then asks the launcher to attach it as the disk the VMI spec names; the launcher
picks the next free target of the disk's bus from the live domain. Every disk carries the alias
``ua-<volume>`` (as the boot disks do), by which it is found again to detach it and to report targets.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from . import disks
from .converter import ConversionError, DiskSource, hotplug_disk_xml

ALIAS_PREFIX = "ua-"
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


def disk_targets(domain_xml: str) -> dict[str, str]:
    """{volume name: target dev} of the domain's disks (from their ua-<volume> aliases)."""
    out = {}
    for disk in ET.fromstring(domain_xml).iter("disk"):
        alias, target = disk.find("alias"), disk.find("target")
        if alias is not None and target is not None and alias.get("name", "").startswith(ALIAS_PREFIX):
            out[alias.get("name")[len(ALIAS_PREFIX):]] = target.get("dev")
    return out


def _disk_element(domain_xml: str, volume: str):
    for disk in ET.fromstring(domain_xml).iter("disk"):
        alias = disk.find("alias")
        if alias is not None and alias.get("name") == ALIAS_PREFIX + volume:
            return disk
    return None


def attach(dom, disk: dict, volume: dict, path: Path) -> str:
    """Attaches the image at `path` as `disk` (the VMI's disk entry); returns its target (e.g. sdb).
    Attaching a volume that is already attached returns its target."""
    current = dom.XMLDesc(0)
    targets = disk_targets(current)
    if disk["name"] in targets:
        return targets[disk["name"]]
    if not path.is_file():
        raise ConversionError(f"volume {disk['name']}: {path} is not there (is the PVC mounted and filled?)")
    # an empty file is the mount point before virt-handler's bind mount covers it
    if path.stat().st_size == 0:
        raise ConversionError(f"volume {disk['name']}: {path} is empty (not mounted yet?)")
    source = DiskSource(str(path), disks.image_format(path), direct_io=disks.supports_direct_io(path),
                        readonly=bool((volume.get("persistentVolumeClaim") or {}).get("readOnly")))
    xml, target = hotplug_disk_xml(disk, volume, source, targets.values())
    dom.attachDeviceFlags(xml, LIVE)
    return target


def detach(dom, volume: str) -> bool:
    """Detaches the disk of `volume`; False when it was not attached."""
    element = _disk_element(dom.XMLDesc(0), volume)
    if element is None:
        return False
    dom.detachDeviceFlags(ET.tostring(element, encoding="unicode"), LIVE)
    return True
