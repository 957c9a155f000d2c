"""VirtualMachineInstanceReplicaSet controller: spec.replicas VMIs from the template, as upstream's.

Decide, then act: `plan` is a pure function from the replica set and the VMIs it owns to the VMIs to
create and delete and the status to write; `ReplicaSetController.sync` only does that I/O. VMIs are named
from generateName `<replica set>` and carry a controller reference to it; finished ones (Succeeded or
Failed) are deleted and replaced. On scale-down the VMIs that are not ready go first, then the youngest.
Paused replica sets change nothing but their status. Expectations guard against acting on a cache that
has not seen our own creates and deletes yet.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from ..api.constants import API_VERSION, GROUP, VMIRS_KIND, VMIPhase
from ..api.labels import selector_string
from ..api.status import remove_condition, set_condition
from ..machinery.events import NORMAL, WARNING
from ..machinery.expectations import ControllerExpectations
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError, Resource
from ..machinery.store import object_key
from ..machinery.workqueue import RateLimitingQueue

VMIRS = Resource(GROUP, "v1", "virtualmachineinstancereplicasets", kind=VMIRS_KIND)
OWNER_INDEX = "controller-uid"
FAILURE = "ReplicaFailure"
PAUSED = "ReplicaPaused"
log = logging.getLogger(__name__)


def controller_uid(obj) -> list[str]:
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
            if ref.get("controller") and ref.get("uid")]


def owner_ref(owner: dict, api_version: str, kind: str) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"], "controller": True,
            "blockOwnerDeletion": True}


def is_ready(vmi: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (vmi.get("status") or {}).get("conditions") or [])


def replicas_of(obj: dict) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def set_or_remove(status: dict, kind: str, active: bool, reason: str, message: str) -> None:
    if active:
        set_condition(status, kind, "True", reason, message)
    else:
        remove_condition(status, kind)


@dataclass
class Plan:
    create: int = 0
    delete: list = field(default_factory=list)
    status: dict = field(default_factory=dict)


def _scale_down_order(vmis):
    """Not ready first, then the youngest (the API server's timestamps sort as strings)."""
    ordered = sorted(vmis, key=lambda v: v["metadata"].get("creationTimestamp") or "", reverse=True)
    return sorted(ordered, key=is_ready)


def plan(rs: dict, vmis: list[dict], failure: str | None = None) -> Plan:
    """What to do for replica set `rs` given the VMIs it owns (pure)."""
    live = [v for v in vmis if not v["metadata"].get("deletionTimestamp")]
    finished = [v for v in live if (v.get("status") or {}).get("phase") in VMIPhase.FINAL]
    active = [v for v in live if v not in finished]
    out = Plan()
    paused = bool((rs.get("spec") or {}).get("paused"))
    if not paused:
        out.delete = list(finished)
        diff = replicas_of(rs) - len(active)
        if diff > 0:
            out.create = diff
        elif diff < 0:
            out.delete += _scale_down_order(active)[:-diff]
    status = {"replicas": len(active), "readyReplicas": sum(1 for v in active if is_ready(v)),
              "labelSelector": selector_string((rs.get("spec") or {}).get("selector"))}
    old = copy.deepcopy((rs.get("status") or {}).get("conditions") or [])
    if old:
        status["conditions"] = old
    set_or_remove(status, PAUSED, paused, "Paused", "the replica set is paused")
    set_or_remove(status, FAILURE, failure is not None, "FailedCreateOrDelete", failure or "")
    out.status = status
    return out


def vmi_from_template(rs: dict) -> dict:
    template = (rs.get("spec") or {}).get("template") or {}
    meta = template.get("metadata") or {}
    return {"apiVersion": API_VERSION, "kind": "VirtualMachineInstance",
            "metadata": {"generateName": rs["metadata"]["name"], "namespace": rs["metadata"]["namespace"],
                         "labels": dict(meta.get("labels") or {}), "annotations": dict(meta.get("annotations") or {}),
                         "ownerReferences": [owner_ref(rs, API_VERSION, VMIRS_KIND)]},
            "spec": copy.deepcopy(template.get("spec") or {})}


class ReplicaSetController(Reconciler):
    name = "replicaset-controller"

    def __init__(self, rs_client, vmi_client, rs_informer, vmi_informer, recorder):
        self.replicasets, self.vmis = rs_client, vmi_client
        self.rs_store, self.vmi_store = rs_informer.store, vmi_informer.store
        self.vmi_store.add_indexers({OWNER_INDEX: controller_uid})
        self.recorder = recorder
        self.queue = RateLimitingQueue("virt-controller-vmirs")
        self.expectations = ControllerExpectations()
        self._keys_by_uid = {}
        rs_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        vmi_informer.add_handler(self._vmi_added, lambda old, new: self._enqueue_owner(new), self._vmi_deleted)

    def _enqueue(self, rs):
        self._keys_by_uid[rs["metadata"].get("uid")] = object_key(rs)
        self.queue.add(object_key(rs))

    def _owner_key(self, vmi):
        for ref in (vmi.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == VMIRS_KIND:
                return f"{vmi['metadata']['namespace']}/{ref['name']}"
        return None

    def _enqueue_owner(self, vmi):
        key = self._owner_key(vmi)
        if key:
            self.queue.add(key)
        return key

    def _vmi_added(self, vmi):
        key = self._enqueue_owner(vmi)
        if key:
            self.expectations.creation_observed(key)

    def _vmi_deleted(self, vmi):
        key = self._enqueue_owner(vmi)
        if key:
            self.expectations.deletion_observed(key, vmi["metadata"].get("uid"))

    def sync(self, key):
        rs = self.rs_store.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        if rs["metadata"].get("deletionTimestamp") or not self.expectations.satisfied(key):
            return
        owned = self.vmi_store.by_index(OWNER_INDEX, rs["metadata"]["uid"])
        todo = plan(rs, owned)
        failure = None
        try:
            self._act(key, rs, todo)
        except ApiError as exc:
            failure = exc.body.get("message", str(exc))
        if failure:
            todo.status = plan(rs, owned, failure).status
        self._write_status(rs, todo.status)
        if failure:
            raise RuntimeError(f"{key}: {failure}")

    def _act(self, key, rs, todo):
        namespace = rs["metadata"]["namespace"]
        if todo.create:
            self.expectations.expect_creations(key, todo.create)
        for _instance in range(todo.create):
            try:
                created = self.vmis.create(vmi_from_template(rs), namespace)
            except ApiError as exc:
                self.expectations.lower(key, adds=1)
                self.recorder.event(rs, WARNING, "FailedCreate", f"Error creating VMI: {exc.body.get('message', exc)}")
                raise
            self.recorder.event(rs, NORMAL, "SuccessfulCreate",
                                f"Created virtual machine instance {created['metadata']['name']}")
        if todo.delete:
            self.expectations.expect_deletions(key, [v["metadata"]["uid"] for v in todo.delete])
        for vmi in todo.delete:
            meta = vmi["metadata"]
            try:
                self.vmis.delete(meta["name"], namespace, uid=meta["uid"])
            except ApiError as exc:
                self.expectations.deletion_observed(key, meta["uid"])
                if exc.not_found or exc.status == 409:
                    continue
                self.recorder.event(rs, WARNING, "FailedDelete", f"Error deleting VMI: {exc.body.get('message', exc)}")
                raise
            self.recorder.event(rs, NORMAL, "SuccessfulDelete", f"Deleted virtual machine instance {meta['name']}")

    def _write_status(self, rs, status):
        if status == (rs.get("status") or {}):
            return
        body = dict(rs, status=status)
        try:
            self.replicasets.update(body, subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise
