"""Writes several controllers share: an object's finalizers (a JSON patch guarded by its resourceVersion) and
a VM status field that marks the VM as locked by a snapshot or restore."""
from __future__ import annotations

from ..machinery.resource import JSON_PATCH, ApiError


def patch_finalizers(client, obj: dict, finalizers: list) -> dict:
    """Sets the finalizers of `obj` as read; a 409/422 if it changed meanwhile (the caller retries)."""
    meta = obj["metadata"]
    patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
             {"op": "add", "path": "/metadata/finalizers", "value": finalizers}]
    return client.patch(meta["name"], patch, meta["namespace"], content_type=JSON_PATCH)


def set_finalizer(client, obj: dict, finalizer: str, present: bool) -> dict:
    """Adds or removes one finalizer; an object already gone is returned as it was."""
    finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
    if present:
        finalizers.append(finalizer)
    try:
        return patch_finalizers(client, obj, finalizers)
    except ApiError as exc:
        if exc.not_found:
            return obj
        raise


def lock_vm(vms, vm: dict, field: str, holder: str) -> None:
    """status.<field> = holder (snapshotInProgress / restoreInProgress), unless it already is."""
    if (vm.get("status") or {}).get(field) == holder:
        return
    vms.patch_status(vm["metadata"]["name"], {"status": {field: holder}}, vm["metadata"]["namespace"])


def unlock_vm(vms, vm: dict | None, field: str, holder: str) -> None:
    """Clears status.<field> if `holder` holds it; a VM already gone needs nothing."""
    if vm is None or (vm.get("status") or {}).get(field) != holder:
        return
    try:
        vms.patch_status(vm["metadata"]["name"], {"status": {field: None}}, vm["metadata"]["namespace"])
    except ApiError as exc:
        if not exc.not_found:
            raise
