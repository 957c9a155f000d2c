"""DataVolume controller (cdi.kubevirt.io/v1beta1): the PVC of each DataVolume and the pod that fills it.

As CDI's: a DataVolume gets a PVC of its own name (owned by it), then an importer pod (storage_pods.py) that
writes disk.img into it; the phase goes Pending -> ImportScheduled (CloneScheduled, UploadScheduled) ->
ImportInProgress (CloneInProgress, UploadReady) -> Succeeded, or Failed. While the pod runs, its progress is
read from its /metrics (as CDI's controller does) into status.progress. A failure the importer calls
permanent (HTTP 404, an image larger than the PVC) or too many restarts fail the DataVolume with the
importer's message; otherwise the kubelet restarts the container and status.restartCount counts it.
The DataVolumes of one VM are imported on one node, as the VM's pod needs all its disks on node-local
storage: once one of them is placed (the scheduler's selected-node on its PVC), the others' importers are
pinned there; until then only the first by name starts (`placement()`).
Once done the PVC is annotated cdi.kubevirt.io/storage.populatedFor, so the DataVolume stays Succeeded,
and the importer pod is deleted. A PVC that already exists and carries that annotation (or
storage.prePopulated) for this DataVolume, e.g. one a VM restore wrote, is adopted without an import.

`plan()` decides from the caches alone; the loop only writes.
"""
from __future__ import annotations

import copy
import json
import logging
import urllib.request
from dataclasses import dataclass, field

from ..api import cdi
from ..api.status import get_condition, now_iso, set_condition
from ..machinery.events import NORMAL, WARNING
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError, Resource
from ..machinery.store import object_key
from ..machinery.workqueue import RateLimitingQueue
from . import storage_pods

log = logging.getLogger(__name__)

DATAVOLUMES = Resource(cdi.GROUP, cdi.VERSION, cdi.PLURAL, kind=cdi.KIND)
PVCS = Resource("", "v1", "persistentvolumeclaims", kind="PersistentVolumeClaim")
STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False, kind="StorageClass")
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
POD_BY_OWNER = "owner-uid"
DV_BY_OWNER = "owner-uid"  # a VM's dataVolumeTemplates: the DataVolumes it controls
STORAGE_POD_SELECTOR = f"{storage_pods.APP_LABEL}={cdi.APP_LABEL_VALUE}"
MAX_RESTARTS = 3  # retries of failures the importer thinks worth one
PROGRESS_POLL_SECONDS = 2.0
PLACEMENT_POLL_SECONDS = 1.0
SELECTED_NODE = "volume.kubernetes.io/selected-node"  # the scheduler's, on a WaitForFirstConsumer claim


def controller_owner_uid(obj: dict) -> list[str]:
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
            if ref.get("controller") and ref.get("uid")]


def default_storage_class(classes) -> str | None:
    """The StorageClass annotated as the default (the newest if several, as the API server picks)."""
    defaults = [c for c in classes
                if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    defaults.sort(key=lambda c: (c["metadata"].get("creationTimestamp") or "", c["metadata"]["name"]))
    return defaults[-1]["metadata"]["name"] if defaults else None


# ---------------------------------------------------------------- what the importer pod says

@dataclass(frozen=True)
class PodOutcome:
    phase: str                 # Pending | Running | Succeeded | Failed
    ready: bool = False
    restarts: int = 0
    message: str = ""          # the last termination message (or the scheduler's, while pending)
    permanent: bool = False    # the importer said a retry cannot help
    terminated_ok: bool = False


def _termination(state: dict) -> tuple[str, bool, int | None]:
    terminated = (state or {}).get("terminated") or {}
    if not terminated:
        return "", False, None
    text = terminated.get("message") or terminated.get("reason") or ""
    try:
        parsed = json.loads(text)
        message, permanent = parsed.get("message", text), bool(parsed.get("permanent"))
    except (ValueError, AttributeError):
        message, permanent = text.strip(), False
    return message, permanent or terminated.get("exitCode") == 2, terminated.get("exitCode")


def pod_outcome(pod: dict) -> PodOutcome:
    status = pod.get("status") or {}
    container = next((c for c in status.get("containerStatuses") or [] if c.get("name") == "importer"), {})
    now_message, now_permanent, now_code = _termination(container.get("state"))
    last_message, last_permanent, _code = _termination(container.get("lastState"))
    message = now_message or last_message
    if status.get("phase") == "Pending":
        scheduled = get_condition(status, "PodScheduled") or {}
        if scheduled.get("status") == "False":
            message = scheduled.get("message") or scheduled.get("reason") or ""
        for init in status.get("initContainerStatuses") or []:
            waiting = (init.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
                                         "InvalidImageName", "CrashLoopBackOff"):
                message = f"{init['name']}: {waiting['reason']}: {waiting.get('message', '')}".strip()
                return PodOutcome("Pending", message=message, permanent=waiting["reason"] != "CrashLoopBackOff")
    return PodOutcome(status.get("phase") or "Pending", ready=bool(container.get("ready")),
                      restarts=int(container.get("restartCount") or 0), message=message,
                      permanent=now_permanent or last_permanent, terminated_ok=now_code == 0)


# ---------------------------------------------------------------- placement

@dataclass(frozen=True)
class Placement:
    node: str | None = None  # where a sibling's disk already is: the import goes there too
    wait: str | None = None  # the sibling whose placement decides first


def placement(dv: dict, siblings: list[tuple[dict, dict | None, dict | None]]) -> Placement:
    """Where the import of `dv` must run, given the (DataVolume, PVC, importer pod) of the other DataVolumes of
    its VM (pure)."""
    for _sibling, pvc, pod in siblings:
        node = (((pvc or {}).get("metadata") or {}).get("annotations") or {}).get(SELECTED_NODE) \
            or ((pod or {}).get("spec") or {}).get("nodeName")
        if node:
            return Placement(node=node)
    name = dv["metadata"]["name"]
    for sibling, _pvc, pod in siblings:
        other = sibling["metadata"]["name"]
        if pod is not None and not pod["metadata"].get("deletionTimestamp"):
            return Placement(wait=other)
        if other < name and ((sibling.get("status") or {}).get("phase") or "") not in cdi.Phase.FINAL:
            return Placement(wait=other)
    return Placement()


# ---------------------------------------------------------------- the plan

@dataclass
class Plan:
    status: dict
    create_pvc: dict | None = None
    create_pod: dict | None = None
    delete_pod: bool = False
    annotate_pvc: dict | None = None  # metadata merge patch of the PVC (populatedFor, adoption)
    poll_progress: bool = False
    wait_for_placement: bool = False
    events: list = field(default_factory=list)


def _progress(percent: float | None) -> str:
    return "N/A" if percent is None else f"{percent:.2f}%"


def _owned(pvc: dict, dv: dict) -> bool:
    return dv["metadata"]["uid"] in controller_owner_uid(pvc)


def _populated_for(pvc: dict, name: str) -> bool:
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    return name in (annotations.get(cdi.POPULATED_FOR), annotations.get(cdi.PRE_POPULATED))


def target_size(dv: dict, source_pvc: dict | None) -> int | None:
    """The disk's virtual size: the claim's request less CDI's filesystem overhead (a clone without a size
    takes the source's)."""
    requested = cdi.requested_bytes(dv["spec"])
    if requested is None and source_pvc is not None:
        requested = cdi.requested_bytes({"pvc": source_pvc.get("spec") or {}})
    return cdi.image_size(requested) if requested else None


def new_pvc(dv: dict, default_class: str | None) -> dict:
    meta = dv["metadata"]
    # as CDI's, the claim carries the DataVolume's annotations (e.g. the scheduler's selected-node, which
    # places a claim of node-local storage on a given node)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    annotations[cdi.CONTENT_TYPE] = dv["spec"].get("contentType") or "kubevirt"
    labels = {"app": cdi.APP_LABEL_VALUE}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels,
                         "annotations": annotations,
                         "ownerReferences": [{"apiVersion": cdi.API_VERSION, "kind": cdi.KIND, "name": meta["name"],
                                              "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": cdi.pvc_spec(dv["spec"], default_class)}


def plan(dv: dict, pvc: dict | None, pod: dict | None, *, default_class: str | None = None,
         source_pvc: dict | None = None, progress: float | None = None, image: str = "",
         pull_policy: str = "IfNotPresent", now: str | None = None, place: Placement = Placement()) -> Plan:
    """What to do for one DataVolume, from the caches (pure)."""
    now = now or now_iso()
    meta, spec = dv["metadata"], dv["spec"]
    status = copy.deepcopy(dv.get("status") or {})
    status["claimName"] = meta["name"]
    out = Plan(status)
    kind = cdi.source_kind(spec)
    phase = status.get("phase") or cdi.Phase.UNSET

    def conditions(bound: tuple, running: tuple, ready: tuple):
        for cond_type, (value, reason, message) in ((cdi.Condition.BOUND, bound), (cdi.Condition.RUNNING, running),
                                                    (cdi.Condition.READY, ready)):
            set_condition(status, cond_type, value, reason, message, now)

    def bound_condition():
        if pvc is None:
            return "False", "NotFound", f"PVC {meta['name']} not found"
        pvc_phase = (pvc.get("status") or {}).get("phase") or "Pending"
        if pvc_phase == "Bound":
            return "True", "Bound", f"PVC {meta['name']} Bound"
        return "False", pvc_phase, f"PVC {meta['name']} {pvc_phase}"

    if meta.get("deletionTimestamp"):
        return out
    if phase in cdi.Phase.FINAL:
        out.delete_pod = pod is not None
        if pvc is not None:
            set_condition(status, cdi.Condition.BOUND, *bound_condition(), now)
        return out
    if pvc is not None and not _owned(pvc, dv):
        if _populated_for(pvc, meta["name"]):  # prepopulated (a restore): adopt it, nothing to import
            refs = list(pvc["metadata"].get("ownerReferences") or [])
            refs.append(new_pvc(dv, None)["metadata"]["ownerReferences"][0])
            out.annotate_pvc = {"metadata": {"ownerReferences": refs,
                                             "annotations": {cdi.POPULATED_FOR: meta["name"]}}}
            return _succeeded(out, status, bound_condition(), "the PVC was populated before", now)
        status["phase"] = cdi.Phase.PENDING
        conditions(bound_condition(), ("False", "", ""), ("False", "ErrResourceExists",
                   f"PVC {meta['name']} already exists and is not owned by the DataVolume"))
        return out
    if kind == "pvc" and source_pvc is None:
        status["phase"] = cdi.Phase.PENDING
        source = spec["source"]["pvc"]
        missing = f"source PVC {source.get('namespace')}/{source.get('name')} not found"
        conditions(bound_condition(), ("False", "", ""), ("False", "CloneSourceNotFound", missing))
        return out
    if pvc is None:
        out.create_pvc = new_pvc(dv, default_class)
        status["phase"] = cdi.Phase.PENDING
        status.setdefault("progress", "N/A")
        conditions(("False", "Pending", f"PVC {meta['name']} Pending"), ("False", "", ""), ("False", "", ""))
        out.events.append((NORMAL, "Pending", f"PVC {meta['name']} Pending"))
        return out
    if _populated_for(pvc, meta["name"]):
        out.delete_pod = pod is not None
        return _succeeded(out, status, bound_condition(), "", now)
    if pod is None and place.wait:
        status["phase"] = cdi.Phase.PENDING
        conditions(bound_condition(), ("False", "Pending", f"waiting for DataVolume {place.wait} to be placed: a "
                                       "VM's disks share one node"), ("False", "", ""))
        out.wait_for_placement = True
        return out
    if pod is None:
        out.create_pod = storage_pods.importer_pod(dv, target_size(dv, source_pvc), image, pull_policy, place.node)
        status["phase"] = cdi.scheduled_phase(kind)
        status["progress"] = "N/A"
        conditions(bound_condition(), ("False", "Pending", "the importer pod is being created"), ("False", "", ""))
        out.events.append((NORMAL, status["phase"], f"{_what(kind)} into {meta['name']} scheduled"))
        return out
    seen = pod_outcome(pod)
    status["restartCount"] = seen.restarts
    if seen.phase == "Succeeded" or seen.terminated_ok:
        out.delete_pod = True
        out.annotate_pvc = {"metadata": {"annotations": {cdi.POPULATED_FOR: meta["name"],
                                                         cdi.POD_PHASE: "Succeeded"}}}
        out.events.append((NORMAL, _done_reason(kind), _DONE_MESSAGES.get(kind, "Successfully imported into PVC {}")
                           .format(meta["name"])))
        return _succeeded(out, status, bound_condition(), seen.message, now)
    if seen.permanent or seen.restarts >= MAX_RESTARTS:
        out.delete_pod = True
        status["phase"] = cdi.Phase.FAILED
        message = seen.message or "the importer failed"
        conditions(bound_condition(), ("False", "Error", message), ("False", "Error", message))
        out.events.append((WARNING, "Error", message))
        return out
    if seen.phase == "Failed":  # the pod itself failed (evicted, its node lost): a new one tries again
        out.delete_pod = True
        return out
    if seen.phase == "Running" and (kind != "upload" or seen.ready):
        status["phase"] = cdi.in_progress_phase(kind)
        if progress is not None or status.get("progress") in (None, ""):
            status["progress"] = _progress(progress)
        running = ("True", "", "") if not seen.message else ("True", "Restarted", seen.message)
        conditions(bound_condition(), running, ("False", "", ""))
        out.poll_progress = True
        return out
    status["phase"] = cdi.scheduled_phase(kind)
    conditions(bound_condition(), ("False", "Pending", seen.message), ("False", "", ""))
    return out


_DONE_MESSAGES = {"pvc": "Successfully cloned into PVC {}", "upload": "Upload Successful into PVC {}"}


def _what(kind):
    return {"pvc": "Clone", "upload": "Upload"}.get(kind, "Import")


def _done_reason(kind):
    return {"pvc": "CloneSucceeded", "upload": "UploadSucceeded"}.get(kind, "ImportSucceeded")


def _succeeded(out: Plan, status: dict, bound: tuple, message: str, now: str) -> Plan:
    status["phase"] = cdi.Phase.SUCCEEDED
    status["progress"] = "100.0%"
    set_condition(status, cdi.Condition.BOUND, *bound, now)
    set_condition(status, cdi.Condition.RUNNING, "False", "Completed", message, now)
    set_condition(status, cdi.Condition.READY, "True", "", "", now)
    return out


# ---------------------------------------------------------------- the loop

def read_progress(pod: dict, timeout: float = 2.0) -> float | None:
    """The importer's progress from its /metrics (None when it does not answer or has no figure yet)."""
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    try:
        with urllib.request.urlopen(f"http://{ip}:8443/metrics", timeout=timeout) as response:
            text = response.read().decode()
    except (OSError, ValueError):
        return None
    for line in text.splitlines():
        if line.startswith("kubevirt_cdi_import_progress_total"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


class DataVolumeController(Reconciler):
    name = "datavolume-controller"

    def __init__(self, dv_client, pvc_client, pod_client, dv_informer, pvc_informer, pod_informer, class_informer,
                 recorder, image: str, pull_policy: str = "IfNotPresent", progress_reader=read_progress):
        self.dvs, self.pvcs, self.pods = dv_client, pvc_client, pod_client
        self.dv_store, self.pvc_store = dv_informer.store, pvc_informer.store
        self.pod_store, self.class_store = pod_informer.store, class_informer.store
        self.pod_store.add_indexers({POD_BY_OWNER: controller_owner_uid})
        self.dv_store.add_indexers({DV_BY_OWNER: controller_owner_uid})
        self.recorder = recorder
        self.image, self.pull_policy = image, pull_policy
        self.progress_reader = progress_reader
        self.queue = RateLimitingQueue("virt-controller-datavolume")
        dv_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        pvc_informer.add_handler(self._pvc_changed, lambda old, new: self._pvc_changed(new), self._pvc_changed)
        pod_informer.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_changed)

    def _enqueue(self, obj):
        self.queue.add(object_key(obj))

    def _pvc_changed(self, pvc):
        self._enqueue(pvc)  # a DataVolume's PVC has its name
        for dv in self.dv_store.list():  # clones waiting for this PVC as their source
            source = ((dv.get("spec") or {}).get("source") or {}).get("pvc") or {}
            if source.get("name") == pvc["metadata"]["name"] and \
                    source.get("namespace") == pvc["metadata"].get("namespace"):
                self._enqueue(dv)

    def _pod_changed(self, pod):
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == cdi.KIND and ref.get("controller"):
                self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    def sync(self, key):
        dv = self.dv_store.get(key)
        if dv is None:
            return
        pvc = self.pvc_store.get(key)
        pods = list(self.pod_store.by_index(POD_BY_OWNER, dv["metadata"]["uid"]))
        pod = pods[0] if pods else None
        source = ((dv.get("spec") or {}).get("source") or {}).get("pvc")
        source_pvc = self.pvc_store.get(f"{source.get('namespace')}/{source.get('name')}") if source else None
        progress = None
        if pod is not None and (pod.get("status") or {}).get("phase") == "Running":
            progress = self.progress_reader(pod)
        todo = plan(dv, pvc, pod, default_class=default_storage_class(self.class_store.list()),
                    source_pvc=source_pvc, progress=progress, image=self.image, pull_policy=self.pull_policy,
                    place=placement(dv, self._siblings(dv)) if pod is None else Placement())
        self._act(dv, pod, todo)
        if todo.poll_progress:
            self.queue.add_after(key, PROGRESS_POLL_SECONDS)
        if todo.wait_for_placement:
            self.queue.add_after(key, PLACEMENT_POLL_SECONDS)

    def _siblings(self, dv):
        """(DataVolume, PVC, importer pod) of the other DataVolumes of the VM that controls `dv`."""
        out = []
        for owner in controller_owner_uid(dv):
            for other in self.dv_store.by_index(DV_BY_OWNER, owner):
                meta = other["metadata"]
                if meta["uid"] == dv["metadata"]["uid"]:
                    continue
                pods = list(self.pod_store.by_index(POD_BY_OWNER, meta["uid"]))
                claim = self.pvc_store.get(f"{meta['namespace']}/{meta['name']}")
                out.append((other, claim, pods[0] if pods else None))
        return out

    def _act(self, dv, pod, todo: Plan):
        meta = dv["metadata"]
        if todo.create_pvc is not None:
            try:
                self.pvcs.create(todo.create_pvc, meta["namespace"])
            except ApiError as exc:
                if not exc.already_exists:
                    message = f"PVC {meta['name']}: {exc.body.get('message', exc)}"
                    self.recorder.event(dv, WARNING, "ErrClaimNotValid", message)
                    raise
        if todo.annotate_pvc is not None:
            self.pvcs.patch(meta["name"], todo.annotate_pvc, meta["namespace"])
        if todo.create_pod is not None:
            try:
                self.pods.create(todo.create_pod, meta["namespace"])
            except ApiError as exc:
                if not exc.already_exists:
                    raise
        if todo.delete_pod and pod is not None and not pod["metadata"].get("deletionTimestamp"):
            try:
                self.pods.delete(pod["metadata"]["name"], pod["metadata"]["namespace"], uid=pod["metadata"]["uid"])
            except ApiError as exc:
                if not exc.not_found and exc.status != 409:
                    raise
        for event in todo.events:
            self.recorder.event(dv, *event)
        if todo.status != (dv.get("status") or {}):
            body = dict(dv, status=todo.status)
            try:
                self.dvs.update(body, subresource="status")
            except ApiError as exc:
                if not exc.not_found:
                    raise
            if todo.status.get("phase") != (dv.get("status") or {}).get("phase"):
                log.info("DataVolume %s/%s: %s", meta["namespace"], meta["name"], todo.status.get("phase"))
