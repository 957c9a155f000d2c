"""virt-controller's migration and evacuation controllers: the I/O around controller/migration.py's decisions.

- MigrationController: one key per VirtualMachineInstanceMigration; its VMI, its target pod and the other
  migrations come from the informer caches; decide() says what to do and sync only does it. Pod and VMI events
  requeue the migrations they concern. Expectations guard the target pod's create.
- EvacuationController: a VMI whose status.evacuationNodeName is the node it runs on (a drain evicted its pod,
  apiserver/eviction.py) gets a migration (``kubevirt-evacuation-``), unless one is active; a failed one is
  retried with the queue's backoff.
"""
from __future__ import annotations

import logging
import time

from ..api import migration as m
from ..api.constants import API_VERSION, CREATED_BY_LABEL
from ..machinery.cluster_config import StaticClusterConfig
from ..machinery.events import NORMAL
from ..machinery.expectations import ControllerExpectations
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError, Resource
from ..machinery.store import label_index, object_key, split_key
from ..machinery.workqueue import RateLimitingQueue
from . import migration as d
from .migration_pod import render_target_pod
from .patches import patch_finalizers

log = logging.getLogger(__name__)
VMIMS = Resource("kubevirt.io", "v1", m.PLURAL, kind=m.KIND)
BY_VMI = "vmi"
BY_UID = "uid"
POD_BY_JOB = "migration-job"


def _by_vmi(migration):
    meta = migration.get("metadata") or {}
    return [f"{meta.get('namespace')}/{(migration.get('spec') or {}).get('vmiName')}"]


def _by_uid(migration):
    return [(migration.get("metadata") or {}).get("uid")]


def _created(obj) -> str:
    return (obj.get("metadata") or {}).get("creationTimestamp") or ""


def current_pod(vmi: dict, pods: list[dict]) -> dict | None:
    """The pod the VMI runs in: on its node, one that has not ended preferred."""
    node = (vmi.get("status") or {}).get("nodeName")
    here = [p for p in pods if (p.get("spec") or {}).get("nodeName") == node] if node else []
    live = [p for p in here if (p.get("status") or {}).get("phase") not in d.POD_FINAL]
    return (live or here or [None])[0]


class MigrationController(Reconciler):
    name = "migration-controller"

    def __init__(self, migration_client, vmi_client, pod_client, migration_informer, vmi_informer, pod_informer,
                 recorder, config=None, cluster_config=None, clock=time.time):
        self.migrations, self.vmis, self.pods = migration_client, vmi_client, pod_client
        self.store, self.vmi_store, self.pod_store = migration_informer.store, vmi_informer.store, pod_informer.store
        self.store.add_indexers({BY_VMI: _by_vmi, BY_UID: _by_uid})
        self.pod_store.add_indexers({POD_BY_JOB: label_index(m.JOB_UID_LABEL),
                                     CREATED_BY_LABEL: label_index(CREATED_BY_LABEL)})
        self.recorder = recorder
        self.config = config
        self.cluster_config = cluster_config or StaticClusterConfig()
        self.clock = clock
        self.queue = RateLimitingQueue("virt-controller-migration")
        self.expectations = ControllerExpectations()
        migration_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        vmi_informer.add_handler(self._vmi_changed, lambda old, new: self._vmi_changed(new), self._vmi_changed)
        pod_informer.add_handler(self._pod_added, lambda old, new: self._pod_changed(new), self._pod_deleted)

    # -- events

    def _enqueue(self, migration):
        self.queue.add(object_key(migration))

    def _vmi_changed(self, vmi):
        for migration in self.store.by_index(BY_VMI, object_key(vmi)):
            self.queue.add(object_key(migration))

    def _migration_of(self, pod) -> str | None:
        uid = ((pod.get("metadata") or {}).get("labels") or {}).get(m.JOB_UID_LABEL)
        found = self.store.by_index(BY_UID, uid) if uid else []
        return object_key(found[0]) if found else None

    def _pod_added(self, pod):
        key = self._migration_of(pod)
        if key:
            self.expectations.creation_observed(key)
        self._pod_changed(pod)

    def _pod_changed(self, pod):
        key = self._migration_of(pod)
        if key:
            self.queue.add(key)
        meta = pod.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:  # the VMI's pods (a source pod that completed)
            if ref.get("kind") == "VirtualMachineInstance" and ref.get("controller"):
                for migration in self.store.by_index(BY_VMI, f"{meta.get('namespace')}/{ref['name']}"):
                    self.queue.add(object_key(migration))

    def _pod_deleted(self, pod):
        self._pod_changed(pod)

    # -- sync

    def observe(self, migration: dict) -> d.Observed:
        namespace = migration["metadata"]["namespace"]
        vmi = self.vmi_store.get(f"{namespace}/{(migration.get('spec') or {}).get('vmiName')}")
        uid = migration["metadata"]["uid"]
        targets = tuple(p for p in self.pod_store.by_index(POD_BY_JOB, uid)
                        if p["metadata"].get("namespace") == namespace)
        source = None
        if vmi is not None:
            pods = [p for p in self.pod_store.by_index(CREATED_BY_LABEL, vmi["metadata"]["uid"])
                    if ((p["metadata"].get("labels") or {}).get(m.JOB_UID_LABEL) != uid)]
            state = d.vmi_state(vmi)
            if state.get("migrationUid") == uid and state.get("sourcePod"):
                source = next((p for p in pods if p["metadata"]["name"] == state["sourcePod"]), None)
            else:
                source = current_pod(vmi, pods)
        siblings = [x for x in self.store.by_index(BY_VMI, _by_vmi(migration)[0])
                    if x["metadata"]["uid"] != uid and not m.is_final(x)]
        earlier = any((_created(x), x["metadata"]["name"]) < (_created(migration), migration["metadata"]["name"])
                      for x in siblings)
        active = sum(1 for x in self.store.list() if x["metadata"]["uid"] != uid and m.phase(x) in d.ACTIVE_PHASES)
        config = self.cluster_config.current().migrations
        limits = d.Limits(parallel_per_cluster=config.parallel_per_cluster)
        return d.Observed(migration, vmi, targets, source, earlier, active, self.clock(), limits)

    def sync(self, key):
        migration = self.store.get(key)
        if migration is None:
            self.expectations.delete(key)
            return
        if not self.expectations.satisfied(key):
            return
        obs = self.observe(migration)
        for action in d.decide(obs):
            migration = self._act(key, migration, obs, action)
            if migration is None:
                return

    def _act(self, key, migration, obs, action):
        """Performs one action; returns the migration as it now is (None ends this sync)."""
        namespace, name = split_key(key)
        if isinstance(action, d.AddFinalizer):
            finalizers = migration["metadata"].get("finalizers") or []
            return patch_finalizers(self.migrations, migration, finalizers + [m.FINALIZER])
        if isinstance(action, d.RemoveFinalizer):
            finalizers = migration["metadata"].get("finalizers") or []
            patch_finalizers(self.migrations, migration, [f for f in finalizers if f != m.FINALIZER])
            return None
        if isinstance(action, d.SetStatus):
            if action.status == (migration.get("status") or {}):
                return migration
            old = m.phase(migration)
            body = dict(migration, status=action.status)
            updated = self.migrations.update(body, subresource="status")
            if action.status.get("phase") != old:
                log.info("migration %s: %s -> %s", key, old or "(new)", action.status.get("phase"))
            return updated
        if isinstance(action, d.CreateTargetPod):
            self._create_target_pod(key, migration, obs.vmi)
            return migration
        if isinstance(action, d.DeletePods):
            for pod_name in action.names:
                try:
                    self.pods.delete(pod_name, namespace)
                    log.info("deleted pod %s: %s", pod_name, action.why)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
            return migration
        if isinstance(action, d.HandOff):
            self._patch_vmi_status(obs.vmi, {"migrationState": action.state})
            vmi_meta = obs.vmi["metadata"]
            self.vmis.patch(vmi_meta["name"], {"metadata": {"labels": {m.TARGET_NODE_LABEL: action.target_node}}},
                            vmi_meta["namespace"])
            return migration
        if isinstance(action, d.RequestAbort):
            self._patch_vmi_status(obs.vmi, {"migrationState": {"abortRequested": True}})
            return migration
        if isinstance(action, d.ClearVMILabel):
            vmi_meta = obs.vmi["metadata"]
            self.vmis.patch(vmi_meta["name"], {"metadata": {"labels": {m.TARGET_NODE_LABEL: None}}},
                            vmi_meta["namespace"])
            return migration
        if isinstance(action, d.Event):
            self.recorder.event(migration, action.type, action.reason, action.message)
            if obs.vmi is not None and action.reason in ("SuccessfulMigration", "FailedMigration"):
                self.recorder.event(obs.vmi, action.type, action.reason, action.message)
            return migration
        if isinstance(action, d.Requeue):
            self.queue.add_after(key, action.after)
            return migration
        raise TypeError(f"unknown action {action!r}")

    def _create_target_pod(self, key, migration, vmi):
        pod = render_target_pod(vmi, migration, self.config, self.cluster_config.current())
        self.expectations.expect_creations(key, 1)
        try:
            self.pods.create(pod, vmi["metadata"]["namespace"])
        except ApiError as exc:
            self.expectations.lower(key, adds=1)
            if exc.already_exists:
                return
            raise
        log.info("created migration target pod %s for %s", pod["metadata"]["name"], key)

    def _patch_vmi_status(self, vmi, status):
        meta = vmi["metadata"]
        self.vmis.patch_status(meta["name"], {"metadata": {"resourceVersion": meta["resourceVersion"]},
                                              "status": status}, meta["namespace"])


def evacuation_migration(vmi: dict) -> dict:
    meta = vmi["metadata"]
    node = (vmi.get("status") or {}).get("evacuationNodeName")
    return {"apiVersion": API_VERSION, "kind": m.KIND,
            "metadata": {"generateName": "kubevirt-evacuation-", "namespace": meta["namespace"],
                         "labels": {m.VMI_NAME_LABEL: meta["name"]},
                         "annotations": {m.EVACUATION_ANNOTATION: node}},
            "spec": {"vmiName": meta["name"]}}


def needs_evacuation(vmi: dict, migrations: list[dict]) -> bool:
    """Pure: the VMI's node is being drained (its pod was evicted) and no migration of it is under way."""
    status = vmi.get("status") or {}
    node = status.get("evacuationNodeName")
    if not node or node != status.get("nodeName") or vmi["metadata"].get("deletionTimestamp"):
        return False
    if status.get("phase") != "Running":
        return False
    return not any(not m.is_final(x) for x in migrations)


class EvacuationController(Reconciler):
    name = "evacuation-controller"

    def __init__(self, migration_client, migration_store, vmi_informer, recorder):
        self.migrations = migration_client
        self.store = migration_store  # indexed BY_VMI by the MigrationController
        self.vmi_store = vmi_informer.store
        self.recorder = recorder
        self.queue = RateLimitingQueue("virt-controller-evacuation")
        vmi_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), None)

    def _enqueue(self, vmi):
        if (vmi.get("status") or {}).get("evacuationNodeName"):
            self.queue.add(object_key(vmi))

    def sync(self, key):
        vmi = self.vmi_store.get(key)
        if vmi is None:
            return
        migrations = self.store.by_index(BY_VMI, key)
        if not needs_evacuation(vmi, migrations):
            draining = (vmi.get("status") or {}).get("evacuationNodeName")
            idle = not any(not m.is_final(x) for x in migrations)
            if draining and idle and any(m.phase(x) == m.MigrationPhase.FAILED for x in migrations):
                self.queue.add_rate_limited(key)  # retried with backoff while the node drains
            return
        failed_before = sum(1 for x in migrations if x["metadata"].get("annotations", {}).get(m.EVACUATION_ANNOTATION)
                            and m.phase(x) == m.MigrationPhase.FAILED)
        if failed_before and self.queue.num_requeues(key) < failed_before:
            self.queue.add_rate_limited(key)
            return
        created = self.migrations.create(evacuation_migration(vmi), vmi["metadata"]["namespace"])
        log.info("node %s drains: migrating %s (%s)", vmi["status"]["evacuationNodeName"], key,
                 created["metadata"]["name"])
        self.recorder.event(vmi, NORMAL, "EvictionMigration",
                            f"Eviction of its pod on node {vmi['status']['evacuationNodeName']} started migration "
                            f"{created['metadata']['name']}")
