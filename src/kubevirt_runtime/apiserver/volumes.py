"""The addvolume and removevolume subresources, as upstream's virt-api does them (declarative hotplug):

- on a VM: the disk and volume go into (or out of) spec.template, with JSON-patch tests on the lists it read;
  virt-controller carries hotpluggable volumes to the running VMI (controller/vm_storage.py);
- on a VMI that no VM owns: into its spec directly (it must be Running); a VM's VMI is refused (use the VM's).
Bodies are upstream's AddVolumeOptions {name, disk, volumeSource: {persistentVolumeClaim|dataVolume}, dryRun}
and RemoveVolumeOptions {name, dryRun}; the volume is marked hotpluggable. The answer is 202 Accepted;
virt-handler attaches (or detaches) the disk and reports it in the VMI's status.volumeStatus.
"""
from __future__ import annotations

import copy
import json
import logging

from ..api import upstream
from ..api.volumes import claim_name, is_hotpluggable
from ..api.walk import walk
from ..machinery.resource import JSON_PATCH, VMIS, VMS, ApiError, ResourceClient
from .subresources import SubresourceError, _api_error

log = logging.getLogger(__name__)
VOLUME_SUBRESOURCES = ("addvolume", "removevolume")


def parse_options(sub: str, body: bytes) -> dict:
    """The request's options, checked against upstream's schema; raises SubresourceError(400)."""
    if not body:
        raise SubresourceError(400, "Request with no body, a new name is expected as the request body")
    try:
        opts = json.loads(body)
    except ValueError as exc:
        raise SubresourceError(400, f"the body is not JSON: {exc}") from exc
    errors = []
    walk(upstream.schema("v1.AddVolumeOptions" if sub == "addvolume" else "v1.RemoveVolumeOptions"), None, opts,
         "", errors)
    if errors:
        raise SubresourceError(400, "; ".join(str(e) for e in errors))
    if not opts.get("name"):
        raise SubresourceError(400, f"{'AddVolumeOptions' if sub == 'addvolume' else 'RemoveVolumeOptions'} "
                                    "requires name to be set")
    if sub == "addvolume":
        if opts.get("disk") is None:
            raise SubresourceError(400, "AddVolumeOptions requires disk to not be nil")
        source = opts.get("volumeSource")
        if not source:
            raise SubresourceError(400, "AddVolumeOptions requires VolumeSource to not be nil")
        kinds = [k for k in ("persistentVolumeClaim", "dataVolume") if source.get(k) is not None]
        if len(kinds) != 1:
            raise SubresourceError(400, "AddVolumeOptions.volumeSource needs exactly one of persistentVolumeClaim or "
                                        "dataVolume")
        opts["disk"]["name"] = opts["name"]
        source[kinds[0]]["hotpluggable"] = True
    dry = opts.get("dryRun") or []
    if dry not in ([], ["All"]):
        raise SubresourceError(400, f"invalid dryRun {dry!r}: only All")
    return opts


def _disks(spec: dict) -> list:
    return ((spec.get("domain") or {}).get("devices") or {}).get("disks") or []


def plan_request(spec: dict, sub: str, opts: dict) -> tuple[list, list]:
    """(volumes, disks) of `spec` after the request (pure); raises SubresourceError(409) as upstream's
    verifyVolumeOption does."""
    volumes, disks = copy.deepcopy(spec.get("volumes") or []), copy.deepcopy(_disks(spec))
    name = opts["name"]
    if sub == "addvolume":
        source = opts["volumeSource"]
        kind = "persistentVolumeClaim" if source.get("persistentVolumeClaim") is not None else "dataVolume"
        volume = {"name": name, kind: source[kind]}
        wanted_claim = claim_name(volume)
        for existing in volumes:
            if existing.get("name") == name:
                raise SubresourceError(409, f"Unable to add volume [{name}] because volume with that name already "
                                            "exists")
            if claim_name(existing) == wanted_claim:
                raise SubresourceError(409, f"Unable to add volume source [{wanted_claim}] because it already exists")
        return volumes + [volume], disks + [opts["disk"]]
    found = next((v for v in volumes if v.get("name") == name or claim_name(v) == name), None)
    if found is None:
        raise SubresourceError(409, f"Unable to remove volume [{name}] because it does not exist")
    if not is_hotpluggable(found):
        raise SubresourceError(409, f"Unable to remove volume [{found['name']}] because it is not hotpluggable")
    return ([v for v in volumes if v is not found], [d for d in disks if d.get("name") != found["name"]])


def spec_patch(prefix: str, spec: dict, volumes: list, disks: list) -> list:
    """Test what was read, then replace (or add) both lists."""
    ops = []
    for path, old, new in ((f"{prefix}/spec/volumes", spec.get("volumes"), volumes),
                           (f"{prefix}/spec/domain/devices/disks", _disks(spec) if "disks" in
                            ((spec.get("domain") or {}).get("devices") or {}) else None, disks)):
        if old is None:
            ops.append({"op": "add", "path": path, "value": new})
        else:
            ops += [{"op": "test", "path": path, "value": old}, {"op": "replace", "path": path, "value": new}]
    return ops


def _owned_by_vm(vmi: dict) -> bool:
    return any(ref.get("kind") == "VirtualMachine" and ref.get("controller")
               for ref in vmi["metadata"].get("ownerReferences") or [])


class VolumeActions:
    def __init__(self, api_client):
        self.vms = ResourceClient(api_client, VMS)
        self.vmis = ResourceClient(api_client, VMIS)

    def run(self, resource: str, sub: str, namespace: str, name: str, body: bytes) -> None:
        opts = parse_options(sub, body)
        dry_run = opts.get("dryRun") == ["All"]
        client = self.vms if resource == "virtualmachines" else self.vmis
        try:
            obj = client.get(name, namespace)
        except ApiError as exc:
            raise _api_error(exc) from exc
        if resource == "virtualmachines":
            spec, prefix = (obj.get("spec") or {}).get("template", {}).get("spec") or {}, "/spec/template"
        else:
            if _owned_by_vm(obj):
                raise SubresourceError(400, f"VMI {namespace}/{name} is owned by a VM: use the VM's {sub}")
            if (obj.get("status") or {}).get("phase") != "Running":
                raise SubresourceError(409, f"VMI {name} is not running")
            spec, prefix = obj.get("spec") or {}, ""
        volumes, disks = plan_request(spec, sub, opts)
        try:
            client.patch(name, spec_patch(prefix, spec, volumes, disks), namespace, content_type=JSON_PATCH,
                         dry_run=dry_run)
        except ApiError as exc:
            if exc.status == 422 and "test" in str(exc.body.get("message", "")):
                raise SubresourceError(409, f"{name} changed while the request was applied; try again") from exc
            raise _api_error(exc) from exc
        log.info("%s %s %s/%s: volume %s%s", sub, resource, namespace, name, opts["name"],
                 " (dry run)" if dry_run else "")
