"""VMI controller: exactly one virt-launcher pod per VMI, and the VMI's phases up to Scheduled.

Level-triggered from the VMI and pod caches. A pod is only created when the cache shows none, the
expectations say no create is in flight, and the VMI has never had one (phase unset or Pending); its
name is derived from the VMI uid, so even a second controller racing this one gets AlreadyExists.
The one exception: a pod the kubelet rejected before it started anything (no guest ran) is replaced, with
backoff, by a pod whose name also derives from the attempt (vmi_status.replacement_attempt).
"""
import logging
import time

from ..api import default_vmi, timeline, validate_vmi
from ..api.constants import CREATED_BY_LABEL, NODE_NAME_LABEL, VMI_FINALIZER, VMIPhase, vmi_is_final
from ..api.migration import JOB_UID_LABEL as MIGRATION_JOB_LABEL
from ..api.status import now_iso, set_condition
from ..machinery.cluster_config import StaticClusterConfig
from ..machinery.events import NORMAL, WARNING
from ..machinery.expectations import ControllerExpectations
from ..machinery.logs import obj_fields
from ..machinery.own_writes import OwnWrites
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError
from ..machinery.store import label_index, object_key
from ..machinery.workqueue import RateLimitingQueue
from .config import ControllerConfig
from .launcher_pod import launcher_pod_name, render_launcher_pod
from .migration_controller import current_pod
from .patches import patch_finalizers
from .vmi_status import (
    POD_FINAL,
    desired_vmi_status,
    launcher_attempt,
    pod_finished_at,
    replacement_attempt,
    seconds_until_replacement,
)

log = logging.getLogger(__name__)
POD_BY_VMI_UID = "created-by"
POD_BY_VMI_KEY = "vmi-key"


def pod_vmi_key(pod):
    """namespace/name of the VMI that controls a launcher pod, or None."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "VirtualMachineInstance" and ref.get("controller"):
            return f"{meta.get('namespace')}/{ref['name']}"
    return None


def pod_indexers():
    return {POD_BY_VMI_UID: label_index(CREATED_BY_LABEL),
            POD_BY_VMI_KEY: lambda pod: [k] if (k := pod_vmi_key(pod)) else []}


class VMIController(Reconciler):
    name = "vmi-controller"

    def __init__(self, vmi_client, pod_client, vmi_informer, pod_informer, recorder, config=None,
                 cluster_config=None, volumes_waiting=None):
        """`vmi_client` / `pod_client`: ResourceClients (or fakes with the same methods); `cluster_config`: where
        the KubeVirt CR's configuration comes from (machinery/cluster_config.py; default: upstream's defaults);
        `volumes_waiting(vmi)`: why the VMI's DataVolumes are not ready for its pod yet (None: they are)."""
        self.volumes_waiting = volumes_waiting
        self.config = config or ControllerConfig()
        self.cluster_config = cluster_config or StaticClusterConfig()
        self.vmis, self.pods = vmi_client, pod_client
        self.vmi_store, self.pod_store = vmi_informer.store, pod_informer.store
        self.recorder = recorder
        self.queue = RateLimitingQueue("virt-controller-vmi")
        self.expectations = ControllerExpectations()
        self.own_writes = OwnWrites()
        vmi_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        pod_informer.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- event handlers

    def _enqueue(self, vmi):
        self.queue.add(object_key(vmi))

    def _pod_added(self, pod):
        key = pod_vmi_key(pod)
        if key:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_updated(self, old, new):
        key = pod_vmi_key(new)
        if key:
            self.queue.add(key)

    def _pod_deleted(self, pod):
        key = pod_vmi_key(pod)
        if key:
            self.expectations.deletion_observed(key, pod["metadata"].get("uid"))
            self.queue.add(key)

    # -- sync

    def sync(self, key):
        vmi = self.vmi_store.get(key)
        if vmi is None:
            self._delete_pods(key, self.pod_store.by_index(POD_BY_VMI_KEY, key), "VMI is gone")
            self.expectations.delete(key)
            self.own_writes.forget(key)
            return
        pods = [p for p in self.pod_store.by_index(POD_BY_VMI_UID, vmi["metadata"]["uid"])
                if p["metadata"].get("namespace") == vmi["metadata"]["namespace"]]
        if not self.expectations.satisfied(key):
            return  # an event we wait for will requeue the key
        if self.own_writes.superseded(key, vmi["metadata"].get("resourceVersion")):
            return  # the cache is older than our own last write: its watch event requeues the key
        if vmi["metadata"].get("deletionTimestamp"):
            self._sync_deleted(key, vmi, pods)
            return
        if VMI_FINALIZER not in (vmi["metadata"].get("finalizers") or []):
            vmi = self._add_finalizer(vmi)
        if vmi_is_final(vmi):
            live = [p for p in pods if (p.get("status") or {}).get("phase") not in POD_FINAL]
            self._delete_pods(key, live, "VMI is final")
            self._write_status(vmi, desired_vmi_status(vmi, pods[0] if pods else None, now_iso())[0])
            return
        pod = self._pick_pod(vmi, pods)
        attempt = replacement_attempt(vmi, pod)
        if attempt is not None:
            wait = seconds_until_replacement(pod, attempt, time.time())
            if wait > 0:
                self.queue.add_after(key, wait)
            else:
                self._replace_rejected_pod(key, vmi, pod, attempt)
            return
        phase = (vmi.get("status") or {}).get("phase") or VMIPhase.UNSET
        created_at = None
        if pod is None and phase in (VMIPhase.UNSET, VMIPhase.PENDING):
            waiting = self.volumes_waiting(vmi) if self.volumes_waiting is not None else None
            if waiting:  # a DataVolume event requeues the VMI
                log.info("waiting for volumes: %s", waiting, extra=obj_fields(vmi))
                self._write_status(vmi, desired_vmi_status(vmi, None, now_iso())[0])
                return
            pod = self._create_pod(key, vmi)
            if pod is None:
                return
            created_at = timeline.format_stamp(time.time())
        elif pod is None and self._pod_exists_uncached(vmi):  # past Pending: it had a pod
            self.queue.add_after(key, 0.5)  # a racing replica made it; our pod cache catches up
            return
        grace_over = True
        not_started = (VMIPhase.UNSET, VMIPhase.PENDING, VMIPhase.SCHEDULING)
        if pod is not None and (pod.get("status") or {}).get("phase") == "Succeeded" and phase not in not_started:
            finished = pod_finished_at(pod)
            left = self.config.handler_grace_seconds - (time.time() - timeline.parse_stamp(finished)) if finished else 0
            if left > 0:
                grace_over = False
                self.queue.add_after(key, left)
        status, events = desired_vmi_status(vmi, pod, now_iso(), grace_over, created_at)
        vmi = self._write_status(vmi, status)
        for event in events:
            self.recorder.event(vmi, *event)
        node = status.get("nodeName")
        if status.get("phase") in (VMIPhase.SCHEDULED, VMIPhase.RUNNING) and node and \
                (vmi["metadata"].get("labels") or {}).get(NODE_NAME_LABEL) != node:
            self.vmis.patch(vmi["metadata"]["name"], {"metadata": {"labels": {NODE_NAME_LABEL: node}}},
                            vmi["metadata"]["namespace"])
            self.own_writes.wrote(key, vmi["metadata"].get("resourceVersion"))

    def _pod_exists_uncached(self, vmi):
        """Whether the API server holds a launcher pod for the VMI. Only a pod gone from the server, not one
        missing from a cache that lags another replica's create, fails a VMI with PodNotExists."""
        meta = vmi["metadata"]
        found = self.pods.list(meta["namespace"], label_selector=f"{CREATED_BY_LABEL}={meta['uid']}", limit=1)
        return bool(found.get("items"))

    def _pick_pod(self, vmi, pods):
        """The pod the VMI runs in. Once it is on a node: the pod on that node (a live migration's target pod
        becomes it when the VMI's nodeName moves; the source pod it leaves behind is no longer it)."""
        if not pods:
            return None
        node = (vmi.get("status") or {}).get("nodeName")
        if node:
            return current_pod(vmi, pods)
        pods = [p for p in pods if MIGRATION_JOB_LABEL not in (p["metadata"].get("labels") or {})] or pods

        def rank(pod):  # a replacement of a rejected pod supersedes it; among equals, the name this VMI gives
            attempt = launcher_attempt(pod)
            return attempt, pod["metadata"]["name"] == launcher_pod_name(vmi, attempt)
        return max(pods, key=rank)

    def _replace_rejected_pod(self, key, vmi, pod, attempt):
        """The kubelet rejected the launcher pod before it started anything: no guest ran, so a new pod (a
        new name, derived from the attempt) takes its place and the VMI keeps its uid."""
        status = pod.get("status") or {}
        why = f"{status.get('reason') or 'Failed'}: {status.get('message') or 'no message'}"
        self.recorder.event(vmi, WARNING, "PodRejected", f"the kubelet rejected virtual machine pod "
                                                         f"{pod['metadata']['name']} ({why}); creating another")
        if self._create_pod(key, vmi, attempt) is not None:
            self._delete_pods(key, [pod], f"replaced after the kubelet rejected it ({why})", vmi)

    def _create_pod(self, key, vmi, attempt=0):
        defaulted = default_vmi(vmi)
        errors = validate_vmi(defaulted)
        if errors:
            message = "; ".join(str(e) for e in errors)
            status = dict(vmi.get("status") or {})
            set_condition(status, "Synchronized", "False", "FailedCreate", message)
            self._write_status(vmi, status)
            self.recorder.event(vmi, WARNING, "FailedCreate", f"invalid VMI, no pod created: {message}")
            return None
        pod = render_launcher_pod(defaulted, self.config, self.cluster_config.current(), attempt)
        self.expectations.expect_creations(key, 1)
        try:
            created = self.pods.create(pod, vmi["metadata"]["namespace"])
        except ApiError as exc:
            self.expectations.lower(key, adds=1)
            if exc.already_exists:
                log.info("launcher pod %s already exists; waiting for the cache", pod["metadata"]["name"],
                         extra=obj_fields(vmi))
                self.queue.add_after(key, 0.5)
                return None
            self.recorder.event(vmi, WARNING, "FailedCreate", f"Error creating pod: {exc.body.get('message', exc)}")
            raise
        log.info("created launcher pod %s", created["metadata"]["name"], extra=obj_fields(vmi))
        self.recorder.event(vmi, NORMAL, "SuccessfulCreate",
                            f"Created virtual machine pod {created['metadata']['name']}")
        return created

    def _sync_deleted(self, key, vmi, pods):
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if live:
            self._delete_pods(key, live, "VMI is being deleted", vmi)
            return
        if pods:
            return  # still terminating; its deletion event requeues us
        finalizers = vmi["metadata"].get("finalizers") or []
        if VMI_FINALIZER in finalizers:
            self._patch_finalizers(vmi, [f for f in finalizers if f != VMI_FINALIZER])

    def _delete_pods(self, key, pods, why, vmi=None):
        for pod in pods:
            meta = pod["metadata"]
            self.expectations.expect_deletions(key, [meta["uid"]])
            try:
                self.pods.delete(meta["name"], meta["namespace"], uid=meta["uid"])
            except ApiError as exc:
                self.expectations.deletion_observed(key, meta["uid"])
                if not exc.not_found and exc.status != 409:
                    raise
                continue
            log.info("deleted launcher pod %s: %s", meta["name"], why)
            if vmi is not None:
                self.recorder.event(vmi, NORMAL, "SuccessfulDelete", f"Deleted virtual machine pod {meta['name']}")

    def _add_finalizer(self, vmi):
        return self._patch_finalizers(vmi, (vmi["metadata"].get("finalizers") or []) + [VMI_FINALIZER])

    def _patch_finalizers(self, vmi, finalizers):
        updated = patch_finalizers(self.vmis, vmi, finalizers)
        self.own_writes.wrote(object_key(vmi), vmi["metadata"]["resourceVersion"])
        return updated

    def _write_status(self, vmi, status):
        if status == (vmi.get("status") or {}):
            return vmi
        body = dict(vmi)
        body["status"] = status
        updated = self.vmis.update(body, subresource="status")
        self.own_writes.wrote(object_key(vmi), vmi["metadata"].get("resourceVersion"))
        return updated
