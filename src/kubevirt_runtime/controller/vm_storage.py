"""The storage side of the VM controller: the DataVolumes of spec.dataVolumeTemplates, what the VM's volumes
say about printableStatus, and hotpluggable volumes carried from the VM to its running VMI.

As upstream's VM controller:
- every dataVolumeTemplate becomes a DataVolume of the template's name, owned by the VM (so it is deleted
  with it), created as soon as the VM exists (even Halted); a VM that should run waits until they all
  Succeeded before its VMI is created;
- printableStatus DataVolumeError (a DataVolume of the VM Failed or its importer stopped on an error),
  Provisioning (a DataVolume still filling its PVC) and WaitingForVolumeBinding (a PVC of the VM not bound
  yet while the VM should run);
- hotpluggable volumes (virtctl addvolume on the VM) are added to, or removed from, the running VMI's spec,
  where virt-handler attaches or detaches them.
`facts()`, `datavolume_manifest()` and `hotplug_patch()` are pure.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from ..api import cdi
from ..api.constants import API_VERSION, VM_KIND, PrintableStatus
from ..api.volumes import claim_name, is_hotpluggable
from ..machinery.events import NORMAL, WARNING
from ..machinery.resource import JSON_PATCH, ApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VolumeFacts:
    datavolume_error: str | None = None  # why a DataVolume of the VM cannot become ready
    provisioning: bool = False           # a DataVolume of the VM is still being filled
    unbound_claim: bool = False          # a PVC of the VM is not Bound yet

    def printable_status(self, set_to_start: bool) -> str | None:
        """The storage-related printableStatus, in upstream's order (None: none applies)."""
        if self.datavolume_error:
            return PrintableStatus.DATA_VOLUME_ERROR
        if self.provisioning:
            return PrintableStatus.PROVISIONING
        if self.unbound_claim and set_to_start:
            return PrintableStatus.WAITING_FOR_VOLUME_BINDING
        return None


def facts(vm: dict, datavolumes: dict, claims: dict) -> VolumeFacts:
    """From the VM's volumes and the DataVolumes / PVCs of its namespace ({name: object})."""
    volumes = ((vm.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
    error, provisioning, unbound = None, False, False
    for volume in volumes:
        name = claim_name(volume)
        if not name:
            continue
        dv = datavolumes.get(name) if volume.get("dataVolume") else None
        if dv is not None:
            status = dv.get("status") or {}
            running = next((c for c in status.get("conditions") or [] if c.get("type") == cdi.Condition.RUNNING), {})
            if status.get("phase") == cdi.Phase.FAILED:
                error = error or f"DataVolume {name} is in Failed phase"
            elif running.get("status") == "False" and running.get("reason") in ("Error", "ImagePullFailed"):
                error = error or f"DataVolume {name} importer has stopped running due to an error: " \
                                 f"{running.get('message', '')}"
            elif status.get("phase") != cdi.Phase.SUCCEEDED:
                provisioning = True
        claim = claims.get(name)
        if claim is not None and (claim.get("status") or {}).get("phase") != "Bound":
            unbound = True
    return VolumeFacts(error, provisioning, unbound)


def datavolume_manifest(vm: dict, template: dict) -> dict:
    """The DataVolume a dataVolumeTemplate asks for, owned by the VM."""
    meta = copy.deepcopy(template.get("metadata") or {})
    vm_meta = vm["metadata"]
    body = {"apiVersion": cdi.API_VERSION, "kind": cdi.KIND,
            "metadata": {"name": meta["name"], "namespace": vm_meta["namespace"],
                         "ownerReferences": [{"apiVersion": API_VERSION, "kind": VM_KIND, "name": vm_meta["name"],
                                              "uid": vm_meta["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": copy.deepcopy(template["spec"])}
    for key in ("labels", "annotations"):
        if meta.get(key):
            body["metadata"][key] = meta[key]
    return body


def templates_ready(vm: dict, datavolumes: dict) -> bool:
    """Every DataVolume of the VM's templates exists and Succeeded (what a start waits for)."""
    return all(cdi.succeeded(datavolumes.get((t.get("metadata") or {}).get("name")))
               for t in (vm.get("spec") or {}).get("dataVolumeTemplates") or [])


def hotplug_patch(vm: dict, vmi: dict) -> list | None:
    """A JSON patch that makes the VMI's hotpluggable volumes (and their disks) those of the VM's template, or
    None when they already are. Volumes the VMI started with are never touched."""
    template = (vm.get("spec") or {}).get("template", {}).get("spec") or {}
    spec = vmi.get("spec") or {}
    wanted = {v["name"]: v for v in template.get("volumes") or [] if is_hotpluggable(v)}
    current = {v["name"]: v for v in spec.get("volumes") or [] if is_hotpluggable(v)}
    if set(wanted) == set(current):
        return None
    fixed = {v["name"] for v in spec.get("volumes") or [] if not is_hotpluggable(v)}
    wanted = {name: v for name, v in wanted.items() if name not in fixed}
    disks = {d["name"]: d for d in (template.get("domain") or {}).get("devices", {}).get("disks") or []}
    old_volumes = spec.get("volumes") or []
    old_disks = ((spec.get("domain") or {}).get("devices") or {}).get("disks") or []
    volumes = [v for v in old_volumes if not is_hotpluggable(v) or v["name"] in wanted]
    new_disks = [d for d in old_disks if d.get("name") not in current or d["name"] in wanted]
    for name, volume in wanted.items():
        if name not in current:
            volumes.append(copy.deepcopy(volume))
            new_disks.append(copy.deepcopy(disks.get(name) or {"name": name, "disk": {"bus": "scsi"}}))
    return [{"op": "test", "path": "/spec/volumes", "value": old_volumes},
            {"op": "test", "path": "/spec/domain/devices/disks", "value": old_disks},
            {"op": "replace", "path": "/spec/volumes", "value": volumes},
            {"op": "replace", "path": "/spec/domain/devices/disks", "value": new_disks}]


class VMStorage:
    """What the VM controller calls: `ensure(vm)` before it starts anything, `facts(vm)` for its status,
    `sync_hotplug(vm, vmi)` for a running VMI."""

    def __init__(self, dv_client, vmi_client, dv_informer, pvc_informer, vm_informer, enqueue, recorder):
        self.dvs, self.vmis = dv_client, vmi_client
        self.dv_store, self.pvc_store, self.vm_store = dv_informer.store, pvc_informer.store, vm_informer.store
        self.enqueue = enqueue
        self.recorder = recorder
        dv_informer.add_handler(self._changed, lambda old, new: self._changed(new), self._changed)
        pvc_informer.add_handler(self._changed, lambda old, new: self._changed(new), self._changed)

    def _changed(self, obj):
        """A DataVolume or PVC changed: requeue the VMs that use it (by its name, in its namespace)."""
        meta = obj.get("metadata") or {}
        for vm in self.vm_store.list():
            if vm["metadata"].get("namespace") != meta.get("namespace"):
                continue
            volumes = ((vm.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
            if any(claim_name(v) == meta.get("name") for v in volumes):
                self.enqueue(vm)

    def _namespace_objects(self, store, vm):
        namespace = vm["metadata"]["namespace"]
        volumes = ((vm.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
        templates = (vm.get("spec") or {}).get("dataVolumeTemplates") or []
        names = {claim_name(v) for v in volumes} | {(t.get("metadata") or {}).get("name") for t in templates}
        return {name: obj for name in names if name and (obj := store.get(f"{namespace}/{name}")) is not None}

    def facts(self, vm) -> VolumeFacts:
        return facts(vm, self._namespace_objects(self.dv_store, vm), self._namespace_objects(self.pvc_store, vm))

    def ensure(self, vm) -> bool:
        """Creates the DataVolumes of the VM's templates that do not exist; True when all have Succeeded."""
        existing = self._namespace_objects(self.dv_store, vm)
        for template in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            name = (template.get("metadata") or {}).get("name")
            if not name or name in existing:
                continue
            try:
                self.dvs.create(datavolume_manifest(vm, template), vm["metadata"]["namespace"])
            except ApiError as exc:
                if exc.already_exists:
                    continue
                self.recorder.event(vm, WARNING, "FailedDataVolumeCreate",
                                    f"Error creating DataVolume {name}: {exc.body.get('message', exc)}")
                raise
            self.recorder.event(vm, NORMAL, "SuccessfulDataVolumeCreate", f"Created DataVolume {name}")
        return templates_ready(vm, existing)

    def sync_hotplug(self, vm, vmi) -> None:
        if vmi is None or vmi["metadata"].get("deletionTimestamp") or \
                (vmi.get("status") or {}).get("phase") != "Running":
            return
        patch = hotplug_patch(vm, vmi)
        if patch is None:
            return
        try:
            self.vmis.patch(vmi["metadata"]["name"], patch, vmi["metadata"]["namespace"], content_type=JSON_PATCH)
        except ApiError as exc:
            if exc.status in (404, 409, 422):  # changed or gone meanwhile: the next event brings it back
                return
            raise
        log.info("VM %s/%s: hotplugged volumes carried to the VMI", vm["metadata"]["namespace"], vm["metadata"]["name"])


def vmi_volumes_waiting(vmi: dict, datavolumes: dict) -> str | None:
    """Why a VMI's launcher pod must wait: a dataVolume volume (not hotplugged) whose DataVolume has not
    Succeeded (upstream's VMI controller waits the same way); None when nothing is missing."""
    for volume in (vmi.get("spec") or {}).get("volumes") or []:
        if not volume.get("dataVolume") or is_hotpluggable(volume):
            continue
        name = volume["dataVolume"].get("name")
        found = datavolumes.get(name)
        if found is None:
            return f"DataVolume {name} does not exist"
        if not cdi.succeeded(found):
            return f"DataVolume {name} is {(found.get('status') or {}).get('phase') or 'Pending'}"
    return None


class VMIVolumeGate:
    """`waiting(vmi)` for the VMI controller, and its VMIs requeued when a DataVolume they use changes."""

    def __init__(self, dv_informer, vmi_informer, enqueue):
        self.dv_store, self.vmi_store = dv_informer.store, vmi_informer.store
        self.enqueue = enqueue
        dv_informer.add_handler(self._changed, lambda old, new: self._changed(new), self._changed)

    def _changed(self, dv):
        meta = dv.get("metadata") or {}
        for vmi in self.vmi_store.list():
            if vmi["metadata"].get("namespace") == meta.get("namespace") and any(
                    (v.get("dataVolume") or {}).get("name") == meta.get("name")
                    for v in (vmi.get("spec") or {}).get("volumes") or []):
                self.enqueue(vmi)

    def waiting(self, vmi) -> str | None:
        namespace = vmi["metadata"]["namespace"]
        names = {(v.get("dataVolume") or {}).get("name") for v in (vmi.get("spec") or {}).get("volumes") or []}
        return vmi_volumes_waiting(vmi, {n: obj for n in names if n and
                                         (obj := self.dv_store.get(f"{namespace}/{n}")) is not None})
