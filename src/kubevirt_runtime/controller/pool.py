"""VirtualMachinePool controller (pool.kubevirt.io): spec.replicas VMs named `<pool>-<index>`, as upstream's.

Decide, then act: `plan` is pure (the pool and the VMs it owns in, the VMs to create and delete and the
status out); the controller only does that I/O. A scale-up fills the lowest free indexes, a scale-down
removes the highest; each VM gets the template's labels plus `kubevirt.io/vmpool: <pool>` and a
controller reference to the pool (so deleting the pool deletes its VMs), and with spec.nameGeneration its
own ConfigMaps and Secrets (`<name>-<index>`). readyReplicas counts VMs whose
status.ready is true. Paused pools change nothing but their status.
"""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field

from ..api.constants import API_VERSION, POOL_GROUP, POOL_KIND, POOL_PLURAL, POOL_VERSION, VM_KIND
from ..api.labels import selector_string
from ..machinery.events import NORMAL, WARNING
from ..machinery.expectations import ControllerExpectations
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError, Resource
from ..machinery.store import object_key
from ..machinery.workqueue import RateLimitingQueue
from .replicaset import FAILURE, OWNER_INDEX, PAUSED, controller_uid, owner_ref, replicas_of, set_or_remove

POOLS = Resource(POOL_GROUP, POOL_VERSION, POOL_PLURAL, kind=POOL_KIND)
POOL_LABEL = "kubevirt.io/vmpool"
log = logging.getLogger(__name__)


@dataclass
class Plan:
    create: list = field(default_factory=list)  # VM names
    delete: list = field(default_factory=list)  # VMs
    status: dict = field(default_factory=dict)


def index_of(pool_name: str, vm: dict) -> int | None:
    match = re.fullmatch(re.escape(pool_name) + r"-(\d+)", vm["metadata"]["name"])
    return int(match.group(1)) if match else None


def plan(pool: dict, vms: list[dict], failure: str | None = None) -> Plan:
    """What to do for `pool` given the VMs it owns (pure)."""
    name = pool["metadata"]["name"]
    live = [v for v in vms if not v["metadata"].get("deletionTimestamp")]
    out = Plan()
    paused = bool((pool.get("spec") or {}).get("paused"))
    if not paused:
        wanted = replicas_of(pool)
        if len(live) < wanted:
            used = {index_of(name, v) for v in vms}
            free = (i for i in range(len(vms) + wanted + 1) if i not in used)
            out.create = [f"{name}-{next(free)}" for _missing in range(wanted - len(live))]
        elif len(live) > wanted:
            # keep the lowest indexes; VMs without a pool name (renamed by hand) go first
            by_index = sorted(live, key=lambda v: (index_of(name, v) is None, index_of(name, v) or 0))
            out.delete = by_index[wanted:][::-1]
    status = {"replicas": len(live),
              "readyReplicas": sum(1 for v in live if (v.get("status") or {}).get("ready")),
              "labelSelector": selector_string((pool.get("spec") or {}).get("selector"))}
    old = copy.deepcopy((pool.get("status") or {}).get("conditions") or [])
    if old:
        status["conditions"] = old
    set_or_remove(status, PAUSED, paused, "Paused", "the pool is paused")
    set_or_remove(status, FAILURE, failure is not None, "FailedCreateOrDelete", failure or "")
    out.status = status
    return out


def _index_refs(spec: dict, name_generation: dict, suffix: str) -> None:
    """spec.nameGeneration: each VM gets its own ConfigMaps / Secrets, `<name>-<index>`, as upstream."""
    for volume in ((spec.get("template") or {}).get("spec") or {}).get("volumes") or []:
        if name_generation.get("appendIndexToConfigMapRefs") and volume.get("configMap"):
            volume["configMap"]["name"] += suffix
        if not name_generation.get("appendIndexToSecretRefs"):
            continue
        if volume.get("secret"):
            volume["secret"]["secretName"] += suffix
        for kind in ("cloudInitNoCloud", "cloudInitConfigDrive"):
            for ref in ("secretRef", "networkDataSecretRef"):
                if ((volume.get(kind) or {}).get(ref) or {}).get("name"):
                    volume[kind][ref]["name"] += suffix


def vm_from_template(pool: dict, name: str) -> dict:
    template = (pool.get("spec") or {}).get("virtualMachineTemplate") or {}
    meta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    _index_refs(spec, (pool.get("spec") or {}).get("nameGeneration") or {}, name[len(pool["metadata"]["name"]):])
    labels = dict(meta.get("labels") or {})
    labels[POOL_LABEL] = pool["metadata"]["name"]
    return {"apiVersion": API_VERSION, "kind": VM_KIND,
            "metadata": {"name": name, "namespace": pool["metadata"]["namespace"], "labels": labels,
                         "annotations": dict(meta.get("annotations") or {}),
                         "ownerReferences": [owner_ref(pool, f"{POOL_GROUP}/{POOL_VERSION}", POOL_KIND)]},
            "spec": spec}


class PoolController(Reconciler):
    name = "pool-controller"

    def __init__(self, pool_client, vm_client, pool_informer, vm_informer, recorder):
        self.pools, self.vms = pool_client, vm_client
        self.pool_store, self.vm_store = pool_informer.store, vm_informer.store
        self.vm_store.add_indexers({OWNER_INDEX: controller_uid})
        self.recorder = recorder
        self.queue = RateLimitingQueue("virt-controller-pool")
        self.expectations = ControllerExpectations()
        pool_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        vm_informer.add_handler(self._vm_added, lambda old, new: self._enqueue_owner(new), self._vm_deleted)

    def _enqueue(self, pool):
        self.queue.add(object_key(pool))

    def _enqueue_owner(self, vm):
        for ref in (vm.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == POOL_KIND:
                key = f"{vm['metadata']['namespace']}/{ref['name']}"
                self.queue.add(key)
                return key
        return None

    def _vm_added(self, vm):
        key = self._enqueue_owner(vm)
        if key:
            self.expectations.creation_observed(key)

    def _vm_deleted(self, vm):
        key = self._enqueue_owner(vm)
        if key:
            self.expectations.deletion_observed(key, vm["metadata"].get("uid"))

    def sync(self, key):
        pool = self.pool_store.get(key)
        if pool is None:
            self.expectations.delete(key)
            return
        if pool["metadata"].get("deletionTimestamp") or not self.expectations.satisfied(key):
            return
        owned = self.vm_store.by_index(OWNER_INDEX, pool["metadata"]["uid"])
        todo = plan(pool, owned)
        failure = None
        try:
            self._act(key, pool, todo)
        except ApiError as exc:
            failure = exc.body.get("message", str(exc))
            todo.status = plan(pool, owned, failure).status
        self._write_status(pool, todo.status)
        if failure:
            raise RuntimeError(f"{key}: {failure}")

    def _act(self, key, pool, todo):
        namespace = pool["metadata"]["namespace"]
        if todo.create:
            self.expectations.expect_creations(key, len(todo.create))
        for name in todo.create:
            try:
                self.vms.create(vm_from_template(pool, name), namespace)
            except ApiError as exc:
                self.expectations.lower(key, adds=1)
                if exc.already_exists:  # a VM of that name exists but is not ours: report, do not adopt
                    self.recorder.event(pool, WARNING, "FailedCreate", f"VM {name} exists and is not in the pool")
                else:
                    self.recorder.event(pool, WARNING, "FailedCreate",
                                        f"Error creating VM {name}: {exc.body.get('message', exc)}")
                raise
            self.recorder.event(pool, NORMAL, "SuccessfulCreate", f"Created virtual machine {name}")
        if todo.delete:
            self.expectations.expect_deletions(key, [v["metadata"]["uid"] for v in todo.delete])
        for vm in todo.delete:
            meta = vm["metadata"]
            try:
                self.vms.delete(meta["name"], namespace, uid=meta["uid"])
            except ApiError as exc:
                self.expectations.deletion_observed(key, meta["uid"])
                if exc.not_found or exc.status == 409:
                    continue
                self.recorder.event(pool, WARNING, "FailedDelete",
                                    f"Error deleting VM {meta['name']}: {exc.body.get('message', exc)}")
                raise
            self.recorder.event(pool, NORMAL, "SuccessfulDelete", f"Deleted virtual machine {meta['name']}")

    def _write_status(self, pool, status):
        if status == (pool.get("status") or {}):
            return
        try:
            self.pools.update(dict(pool, status=status), subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise
