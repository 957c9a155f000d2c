"""status.volumeStatus of a running VMI, as a pure function of its spec, the domain's disks and what this node
has of its hotplugged volumes (upstream's VolumeStatus: name, target, the PVC, and for hotplugged volumes their
phase, reason, message and attachment pod)."""
from __future__ import annotations

from kubevirt_runtime.api.volumes import claim_name, is_hotpluggable

from .hotplug import HotplugView

# upstream's hotplug volume phases
PENDING, ATTACHED_TO_NODE, MOUNTED_TO_POD, READY, DETACHING = (
    "Pending", "AttachedToNode", "MountedToPod", "Ready", "Detaching")


def _hotplug_fields(name: str, attached: set, hotplug: HotplugView) -> dict:
    out = {}
    pod = hotplug.pods.get(name)
    if pod:
        out["hotplugVolume"] = {"attachPodName": pod[0], "attachPodUID": pod[1]}
    if name in attached:
        phase, reason, message = READY, "VolumeReady", f"Successfully attach hotplugged volume {name} to VM"
    elif name in hotplug.mounted:
        phase, reason = MOUNTED_TO_POD, "VolumeMountedToPod"
        message = f"Volume {name} has been mounted in virt-launcher pod"
    elif name in hotplug.sources:
        phase, reason = ATTACHED_TO_NODE, "SuccessfulCreate"
        message = f"Created hotplug attachment pod {pod[0] if pod else ''}, for volume {name}"
    else:
        phase, reason, message = PENDING, "VolumePending", f"waiting for the attachment pod of volume {name} to " \
                                                           "run on the node"
        if pod and pod[2] not in (None, "Pending", "Running"):
            message = f"the attachment pod {pod[0]} of volume {name} is {pod[2]}"
    out.update(phase=phase, reason=reason, message=message)
    return out


def volume_status(vmi: dict, domain: dict | None, hotplug: HotplugView | None) -> list:
    spec = vmi.get("spec") or {}
    volumes = (domain or {}).get("volumes") or []
    targets = {v["name"]: v.get("target") or "" for v in volumes}
    attached = {v["name"] for v in volumes if v.get("hotplug")}
    hotplug = hotplug or HotplugView()
    out = []
    names = set()
    for volume in spec.get("volumes") or []:
        name = volume.get("name")
        names.add(name)
        entry = {"name": name, "target": targets.get(name, "")}
        claim = claim_name(volume)
        if claim:
            entry["persistentVolumeClaimInfo"] = {"claimName": claim}
        if is_hotpluggable(volume):
            entry.update(_hotplug_fields(name, attached, hotplug))
        out.append(entry)
    for name in sorted((attached | hotplug.mounted) - names):  # removed from the spec, not detached yet
        entry = {"name": name, "target": targets.get(name, ""), "phase": DETACHING, "reason": "VolumeDetaching",
                 "message": f"Detaching volume {name}"}
        pod = hotplug.pods.get(name)
        if pod:
            entry["hotplugVolume"] = {"attachPodName": pod[0], "attachPodUID": pod[1]}
        out.append(entry)
    return out
