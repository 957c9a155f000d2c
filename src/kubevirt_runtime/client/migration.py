"""Live migration from the client side, as upstream's virtctl does it (pkg/virtctl/vm/migrate*.go).

- migrate: PUT virtualmachines/<vm>/migrate with MigrateOptions (addedNodeSelector, dryRun); virt-api creates
  the VirtualMachineInstanceMigration and answers 202; this does not wait for it.
- cancel: the VM's migrations (label kubevirt.io/vmi-name=<vm>): the first one not finished is deleted, which
  cancels it (virt-controller aborts it); "Found no migration to cancel for <vm>" when there is none.
"""
from __future__ import annotations

from ..api import migration as m
from ..api.constants import GROUP, VERSION
from ..machinery.resource import Resource, ResourceClient

VMIMS = Resource(GROUP, VERSION, m.PLURAL, kind=m.KIND)


class NothingToCancel(Exception):
    pass


def migrate_options(added_node_selector: dict | None = None, dry_run: bool = False) -> dict:
    body = {"apiVersion": "subresources.kubevirt.io/v1", "kind": "MigrateOptions"}
    if added_node_selector:
        body["addedNodeSelector"] = dict(added_node_selector)
    if dry_run:
        body["dryRun"] = ["All"]
    return body


def to_cancel(migrations: list[dict]) -> dict | None:
    """The migration a cancel deletes: the oldest one that has not finished (pure)."""
    active = [x for x in migrations if not m.is_final(x) and not x["metadata"].get("deletionTimestamp")]
    active.sort(key=lambda x: (x["metadata"].get("creationTimestamp") or "", x["metadata"]["name"]))
    return active[0] if active else None


def cancel(api_client, namespace: str, vm_name: str) -> str:
    """Deletes the VM's running migration; returns its name."""
    client = ResourceClient(api_client, VMIMS)
    found = to_cancel(client.list(namespace, label_selector=f"{m.VMI_NAME_LABEL}={vm_name}").get("items", []))
    if found is None:
        raise NothingToCancel(f"Found no migration to cancel for {vm_name}")
    client.delete(found["metadata"]["name"], namespace)
    return found["metadata"]["name"]
