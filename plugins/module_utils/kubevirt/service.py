"""The API work of the VM modules: reads, writes (server-side dry runs in check mode) and lifecycle requests.

Every write goes to the API server, also in check mode (with dryRun=All), so admission webhooks and
validation answer exactly as they would for the real write: a check-mode run reports the same `changed`,
the same object and the same refusals.
"""
from __future__ import annotations

try:
    from kubevirt_runtime.client.subresources import Subresources
    from kubevirt_runtime.machinery.resource import EVENTS, MERGE_PATCH, PODS, ApiError, Resource, ResourceClient
except ImportError:  # reported by core.missing_requirement before anything calls in here
    Subresources = ResourceClient = Resource = PODS = EVENTS = MERGE_PATCH = None

    class ApiError(Exception):  # noqa: N818 - the name kubevirt_runtime gives it
        status = 0


def api_resource(api_version: str, kind: str):
    """The Resource of a KubeVirt kind at api_version (group/version)."""
    group, version = api_version.rsplit("/", 1) if "/" in api_version else ("", api_version)
    plural = {"VirtualMachine": "virtualmachines", "VirtualMachineInstance": "virtualmachineinstances"}[kind]
    return Resource(group, version, plural, kind=kind)


class KubeVirtService:
    def __init__(self, api_client, api_version: str = "kubevirt.io/v1", dry_run: bool = False):
        self.api = api_client
        self.dry_run = dry_run
        self.vms = ResourceClient(api_client, api_resource(api_version, "VirtualMachine"))
        self.vmis = ResourceClient(api_client, api_resource(api_version, "VirtualMachineInstance"))
        self.pods = ResourceClient(api_client, PODS)
        self.events = ResourceClient(api_client, EVENTS)
        self.subresources = Subresources(api_client)

    def client(self, kind: str):
        return self.vms if kind == "VirtualMachine" else self.vmis

    # -- reads

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.client(kind).get(name, namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def find(self, kind: str, namespace=None, name=None, label_selectors=(), field_selectors=()) -> list[dict]:
        """Objects matching; a name with selectors must match them too (as kubernetes.core's k8s_info)."""
        selectors = list(field_selectors or [])
        if name:
            selectors.append(f"metadata.name={name}")
        listing = self.client(kind).list(namespace or None, label_selector=",".join(label_selectors or []) or None,
                                         field_selector=",".join(selectors) or None)
        items = listing.get("items") or []
        api_version = listing.get("apiVersion", "kubevirt.io/v1")
        for item in items:  # lists leave them out of their items
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def launcher_pod(self, vmi: dict) -> dict | None:
        """The VMI's virt-launcher pod, None when there is none or the user may not read pods."""
        try:
            pods = self.pods.list(vmi["metadata"]["namespace"],
                                  label_selector=f"kubevirt.io/created-by={vmi['metadata']['uid']}").get("items")
        except ApiError:
            return None
        pods = sorted(pods or [], key=lambda p: p["metadata"].get("creationTimestamp", ""))
        return pods[-1] if pods else None

    def events_of(self, obj: dict) -> list[dict]:
        """Events recorded on obj ([] when none or not readable)."""
        meta = obj["metadata"]
        try:
            return self.events.list(meta["namespace"],
                                    field_selector=f"involvedObject.uid={meta['uid']}").get("items") or []
        except ApiError:
            return []

    # -- writes (dry runs in check mode)

    def create(self, definition: dict) -> dict:
        return self.vms.create(definition, definition["metadata"]["namespace"], dry_run=self.dry_run)

    def replace(self, definition: dict, existing: dict) -> dict:
        body = dict(definition, metadata=dict(definition["metadata"],
                                              resourceVersion=existing["metadata"]["resourceVersion"]))
        return self.vms.update(body, dry_run=self.dry_run)

    def update(self, definition: dict) -> dict:
        meta = definition["metadata"]
        return self.vms.patch(meta["name"], definition, meta["namespace"], content_type=MERGE_PATCH,
                              dry_run=self.dry_run)

    def delete(self, existing: dict, delete_options: dict | None) -> dict:
        options = delete_options or {}
        preconditions = options.get("preconditions") or {}
        meta = existing["metadata"]
        return self.vms.delete(meta["name"], meta["namespace"], uid=preconditions.get("uid"),
                               resource_version=preconditions.get("resourceVersion"),
                               propagation_policy=options.get("propagationPolicy"), dry_run=self.dry_run)

    def lifecycle(self, target: str, call: str, namespace: str, name: str, body: dict | None = None) -> None:
        """PUT the start/stop/restart (VM) or pause/unpause (VMI) subresource; never in check mode."""
        if self.dry_run:
            return
        if target == "vm":
            self.subresources.vm(namespace, name, call, body)
        else:
            self.subresources.vmi(namespace, name, call, body)
