"""What a VMI volume says about its storage (shared by virt-controller, virt-handler and virt-launcher)."""
from __future__ import annotations

CLAIM_SOURCES = ("persistentVolumeClaim", "dataVolume")
# Attachment pods of hotplugged volumes (virt-controller makes them, virt-handler finds their mounts).
HOTPLUG_APP_VALUE = "hotplug-disk"  # their kubevirt.io label
HOTPLUG_VOLUME_LABEL = "kubevirt.io/hotplug-volume"  # the VMI volume one mounts


def claim_name(volume: dict) -> str | None:
    """The PVC behind a volume: a persistentVolumeClaim's claimName, or a dataVolume's name (its PVC has the
    DataVolume's name); None for any other source."""
    if volume.get("persistentVolumeClaim"):
        return volume["persistentVolumeClaim"].get("claimName")
    if volume.get("dataVolume"):
        return volume["dataVolume"].get("name")
    return None


def is_hotpluggable(volume: dict) -> bool:
    """Attached to the running guest (virtctl addvolume) rather than at boot."""
    return any(isinstance(volume.get(kind), dict) and volume[kind].get("hotpluggable") for kind in CLAIM_SOURCES)


def hotpluggable_names(spec: dict) -> set[str]:
    return {v.get("name") for v in (spec or {}).get("volumes") or [] if is_hotpluggable(v)}
