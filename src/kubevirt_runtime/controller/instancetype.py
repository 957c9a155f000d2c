"""A VM's instancetype and preference, frozen in ControllerRevisions and applied to the VMIs it starts.

When a VM with spec.instancetype / spec.preference starts the first time, the object it names is copied
into a ControllerRevision owned by the VM (named as upstream: <vm>-<object>-<version>-<uid>-<generation>)
and the VM's status.instancetypeRef / preferenceRef record it. Every later start uses that copy, so
editing or deleting the instancetype does not change a VM that already uses it; changing the VM's
matcher (another name or kind, or spec.*.revisionName) picks a new revision.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from ..api import instancetype as it
from ..api.constants import API_VERSION, VM_KIND
from ..api.walk import FieldError
from ..machinery.resource import ApiError, Resource, ResourceClient

log = logging.getLogger(__name__)

CONTROLLER_REVISIONS = Resource("apps", "v1", "controllerrevisions", kind="ControllerRevision")
RESOURCES = {kind: Resource(it.GROUP, it.VERSION, plural, namespaced=kind not in it.CLUSTER_SCOPED, kind=kind)
             for kind, plural in it.PLURALS.items()}
_STATUS_KEYS = {"instancetype": "instancetypeRef", "preference": "preferenceRef"}


class ExpansionError(Exception):
    """The VM cannot be started with its instancetype/preference; `errors` name the fields."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


@dataclass
class Expansion:
    """The specs to apply and the annotations naming them."""

    instancetype: dict | None
    preference: dict | None
    annotations: dict

    def apply(self, spec: dict, metadata: dict) -> None:
        conflicts = it.apply(spec, metadata, self.instancetype, self.preference)
        if conflicts:
            raise ExpansionError(conflicts)
        metadata.setdefault("annotations", {}).update(self.annotations)


def revision_body(vm: dict, obj: dict) -> dict:
    """The ControllerRevision holding a copy of `obj` for `vm` (what upstream stores: the object without
    its labels, annotations, finalizers, owners and managed fields)."""
    meta = obj["metadata"]
    data = {"apiVersion": obj.get("apiVersion", it.API_VERSION), "kind": obj["kind"],
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "generation") if meta.get(k) is not None},
            "spec": copy.deepcopy(obj.get("spec") or {})}
    labels = dict(zip(it.REVISION_LABELS, (obj["kind"], meta["name"], meta.get("uid", ""),
                                           str(meta.get("generation", 1)), it.VERSION), strict=True))
    owner = {"apiVersion": API_VERSION, "kind": VM_KIND, "name": vm["metadata"]["name"], "uid": vm["metadata"]["uid"],
             "controller": True, "blockOwnerDeletion": True}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": it.revision_name(vm["metadata"]["name"], obj),
                         "namespace": vm["metadata"]["namespace"], "labels": labels, "ownerReferences": [owner]},
            "data": data, "revision": 1}


class InstancetypeExpander:
    """Resolves and records a VM's instancetype and preference (the VM controller's hook)."""

    def __init__(self, api_client=None, counters=(), clients=None):
        resources = dict(RESOURCES, ControllerRevision=CONTROLLER_REVISIONS)
        self.clients = clients or {kind: ResourceClient(api_client, resource, counters)
                                   for kind, resource in resources.items()}

    def expand(self, vm: dict) -> Expansion | None:
        """The expansion for `vm`, recording revision refs in vm["status"] (the caller writes the status).
        Raises ExpansionError when a referenced object is missing or clashes with the template."""
        spec = vm["spec"]
        if spec.get("instancetype") is None and spec.get("preference") is None:
            return None
        found, annotations = {}, {}
        for which in ("instancetype", "preference"):
            matcher = spec.get(which)
            if matcher is None:
                vm.get("status", {}).pop(_STATUS_KEYS[which], None)
                found[which] = None
                continue
            kind = it.matcher_kind(which, matcher)
            if kind is None:
                raise ExpansionError([FieldError(f"spec.{which}.kind", f"unsupported kind {matcher.get('kind')!r}")])
            found[which] = self._spec_for(vm, which, kind, matcher)
            annotations[it.annotation_for(kind)] = matcher["name"]
        return Expansion(found["instancetype"], found["preference"], annotations)

    def _spec_for(self, vm, which, kind, matcher) -> dict:
        status = vm.setdefault("status", {})
        ref = status.get(_STATUS_KEYS[which]) or {}
        same_target = ref.get("name") == matcher["name"] and ref.get("kind") == kind
        revision_name = matcher.get("revisionName") or (
            (ref.get("controllerRevisionRef") or {}).get("name") if same_target else None)
        if revision_name:
            revision = self._get("ControllerRevision", vm["metadata"]["namespace"], revision_name)
            if revision is None:
                raise ExpansionError([FieldError(f"spec.{which}", f"ControllerRevision {revision_name!r} not found")])
        else:
            namespace = None if kind in it.CLUSTER_SCOPED else vm["metadata"]["namespace"]
            obj = self._get(kind, namespace, matcher["name"])
            if obj is None:
                raise ExpansionError([FieldError(f"spec.{which}.name", f"{kind} {matcher['name']!r} not found")])
            revision = self._store(vm, obj)
            revision_name = revision["metadata"]["name"]
        status[_STATUS_KEYS[which]] = {"name": matcher["name"], "kind": kind,
                                       "controllerRevisionRef": {"name": revision_name}}
        return copy.deepcopy((revision.get("data") or {}).get("spec") or {})

    def _get(self, kind, namespace, name):
        try:
            return self.clients[kind].get(name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def _store(self, vm, obj):
        body = revision_body(vm, obj)
        revisions = self.clients["ControllerRevision"]
        try:
            created = revisions.create(body, vm["metadata"]["namespace"])
            log.info("VM %s/%s: recorded %s %s in ControllerRevision %s", vm["metadata"]["namespace"],
                     vm["metadata"]["name"], obj["kind"], obj["metadata"]["name"], body["metadata"]["name"])
            return created
        except ApiError as exc:
            if not exc.already_exists:
                raise
        existing = revisions.get(body["metadata"]["name"], vm["metadata"]["namespace"])
        if (existing.get("data") or {}).get("spec") != body["data"]["spec"]:
            raise ExpansionError([FieldError("spec", f"ControllerRevision {body['metadata']['name']!r} exists with "
                                                     "other data")])
        return existing
