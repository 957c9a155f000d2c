"""VirtualMachineSnapshot controller (snapshot.kubevirt.io): disk-image snapshots of a VM's PVCs.

There is no CSI snapshotter here (api/snapshot.py says why), so each PVC-backed volume of the VM is copied as
qcow2 into a PVC of the same StorageClass, named as upstream names the VolumeSnapshot
(vmsnapshot-<snapshot uid>-volume-<volume>) and owned by the VirtualMachineSnapshotContent:
1. the VM is locked (status.snapshotInProgress: a stopped VM is not started meanwhile) and the content is
   written: the VM as it is, and a volumeBackup per volume with its PVC's spec;
2. a stopped VM's disks are copied as they are; a running VM's are first copied beside themselves by libvirt
   (virt-api's snapshotvolumes: block copy, the guest frozen through its agent for the cut), indications Online
   and GuestAgent or NoGuestAgent;
3. a copy pod per volume (storage_pods.copy_pod) converts the disk into the snapshot PVC; the content's
   volumeSnapshotStatus records each one done;
4. all done: the content and the snapshot are readyToUse, phase Succeeded; the VM is unlocked. A copy that
   fails for good, or the failureDeadline passing first, fails the snapshot.
Deleting the snapshot deletes its content (deletionPolicy Delete, the default) and so its PVCs.
The decisions are pure functions below the class's helpers; the loop reads caches and writes.
"""
from __future__ import annotations

import copy
import datetime
import logging

from ..api import cdi
from ..api import snapshot as snap
from ..api.constants import ConditionType, VMIPhase
from ..api.status import now_iso, parse_time, set_condition
from ..api.volumes import claim_name, is_hotpluggable
from ..machinery.events import NORMAL, WARNING
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError, Resource
from ..machinery.store import object_key
from ..machinery.workqueue import RateLimitingQueue
from . import storage_pods
from .datavolume import MAX_RESTARTS, POD_BY_OWNER, pod_outcome
from .patches import lock_vm, set_finalizer, unlock_vm

log = logging.getLogger(__name__)

SNAPSHOTS = Resource(snap.GROUP, snap.VERSION, snap.SNAPSHOT_PLURAL, kind=snap.SNAPSHOT_KIND)
CONTENTS = Resource(snap.GROUP, snap.VERSION, snap.CONTENT_PLURAL, kind=snap.CONTENT_KIND)
SUBRESOURCE_VMIS = Resource("subresources.kubevirt.io", "v1", "virtualmachineinstances")
CAPTURE_TIMEOUT = 55  # the API server's own limit on a proxied request is 60s


# ---------------------------------------------------------------- pure pieces

def split_volumes(vm: dict, online: bool) -> tuple[list, list]:
    """(volumes to copy, volumes left out) of the VM's template: PVC-backed ones are copied; the rest
    (containerDisk, cloud-init, ...) are part of the VM spec the content keeps. A running guest's hotplugged
    disks are left out: they are bind-mounted files, with no room beside them for the block copy."""
    included, excluded = [], []
    for volume in (vm.get("spec") or {}).get("template", {}).get("spec", {}).get("volumes") or []:
        if claim_name(volume) and not (online and is_hotpluggable(volume)):
            included.append(volume)
        else:
            excluded.append(volume)
    return included, excluded


def _clean_claim(pvc: dict) -> dict:
    """The PVC as a volumeBackup keeps it: what a restore needs to make a new one."""
    meta = pvc.get("metadata") or {}
    spec = copy.deepcopy(pvc.get("spec") or {})
    for key in ("volumeName", "dataSource", "dataSourceRef"):
        spec.pop(key, None)
    kept = {"name": meta.get("name")}
    for key in ("labels", "annotations"):
        if meta.get(key):
            kept[key] = {k: v for k, v in meta[key].items() if not k.startswith(("pv.kubernetes.io",
                                                                                 "volume.kubernetes.io",
                                                                                 "volume.beta.kubernetes.io"))}
    return {"metadata": kept, "spec": spec}


def content_body(snapshot: dict, vm: dict, volumes: list, claims: dict) -> dict:
    meta = snapshot["metadata"]
    vm_meta = vm["metadata"]
    body = {"apiVersion": snap.API_VERSION, "kind": snap.CONTENT_KIND,
            "metadata": {"name": snap.content_name(snapshot), "namespace": meta["namespace"],
                         "labels": {snap.SNAPSHOT_LABEL: vm_meta["name"]}},
            "spec": {"virtualMachineSnapshotName": meta["name"],
                     "source": {"virtualMachine": {
                         "metadata": {k: vm_meta[k] for k in ("name", "namespace", "uid", "generation", "labels",
                                                              "annotations") if vm_meta.get(k) is not None},
                         "spec": copy.deepcopy(vm["spec"])}},
                     "volumeBackups": [{"volumeName": v["name"],
                                        "persistentVolumeClaim": _clean_claim(claims[claim_name(v)]),
                                        "volumeSnapshotName": snap.volume_snapshot_name(meta["uid"], v["name"])}
                                       for v in volumes]}}
    if ((snapshot.get("spec") or {}).get("deletionPolicy") or "Delete") == "Delete":
        body["metadata"]["ownerReferences"] = [{"apiVersion": snap.API_VERSION, "kind": snap.SNAPSHOT_KIND,
                                                "name": meta["name"], "uid": meta["uid"], "controller": True,
                                                "blockOwnerDeletion": True}]
    return body


def snapshot_claim(content: dict, backup: dict) -> dict:
    """The PVC that keeps one volume's copy: the source's class, modes and size; owned by the content."""
    source = backup["persistentVolumeClaim"].get("spec") or {}
    spec = {"accessModes": source.get("accessModes") or ["ReadWriteOnce"], "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": ((source.get("resources") or {}).get("requests") or {})
                                       .get("storage", "1Gi")}}}
    if source.get("storageClassName"):
        spec["storageClassName"] = source["storageClassName"]
    meta = content["metadata"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": backup["volumeSnapshotName"], "namespace": meta["namespace"],
                         "labels": {snap.CONTENT_LABEL: meta["name"][:63]},
                         "ownerReferences": [{"apiVersion": snap.API_VERSION, "kind": snap.CONTENT_KIND,
                                              "name": meta["name"], "uid": meta["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec}


def copy_pod_name(backup: dict) -> str:
    return f"{backup['volumeSnapshotName']}-copy"


def done_volumes(content: dict) -> set:
    return {s.get("volumeSnapshotName") for s in (content.get("status") or {}).get("volumeSnapshotStatus") or []
            if s.get("readyToUse")}


def deadline_passed(snapshot: dict, now: datetime.datetime) -> bool:
    created = (snapshot.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return False
    return (now - parse_time(created)).total_seconds() > snap.failure_deadline(snapshot)


def progressing_status(status: dict, now: str, message: str) -> dict:
    status["phase"] = snap.Phase.IN_PROGRESS
    status["readyToUse"] = False
    set_condition(status, snap.Condition.PROGRESSING, "True", "Operation in progress", message, now)
    set_condition(status, snap.Condition.READY, "False", "Not ready", message, now)
    return status


def failed_status(status: dict, now: str, message: str) -> dict:
    status["phase"] = snap.Phase.FAILED
    status["readyToUse"] = False
    status["error"] = {"time": now, "message": message}
    set_condition(status, snap.Condition.PROGRESSING, "False", "Operation failed", message, now)
    set_condition(status, snap.Condition.READY, "False", "Operation failed", message, now)
    set_condition(status, snap.Condition.FAILURE, "True", "Operation failed", message, now)
    return status


def succeeded_status(status: dict, now: str, created: str) -> dict:
    status["phase"] = snap.Phase.SUCCEEDED
    status["readyToUse"] = True
    status["creationTime"] = created
    status.pop("error", None)
    set_condition(status, snap.Condition.PROGRESSING, "False", "Operation complete", "Operation complete", now)
    set_condition(status, snap.Condition.READY, "True", "Operation complete", "Operation complete", now)
    return status


def indications(online: bool, capture: dict | None) -> tuple[list, list]:
    """(indications, sourceIndications) as upstream words them."""
    if not online:
        return [], []
    found = [(snap.Indication.ONLINE, "Snapshot was taken while the VM was running")]
    if capture is not None and capture.get("guestAgent"):
        found.append((snap.Indication.GUEST_AGENT, "The guest agent froze the guest's filesystems for the "
                                                   "snapshot"))
    else:
        found.append((snap.Indication.NO_GUEST_AGENT, "No guest agent: the disks were copied at one instant "
                                                      "without quiescing the guest's filesystems"))
    return [i for i, _m in found], [{"indication": i, "message": m} for i, m in found]


def agent_connected(vmi: dict | None) -> bool:
    return any(c.get("type") == ConditionType.AGENT_CONNECTED and c.get("status") == "True"
               for c in ((vmi or {}).get("status") or {}).get("conditions") or [])


# ---------------------------------------------------------------- the loop

class SnapshotController(Reconciler):
    name = "snapshot-controller"

    def __init__(self, snapshot_client, content_client, pvc_client, pod_client, vm_client, request_client,
                 snapshot_informer, content_informer, vm_informer, vmi_informer, pvc_informer, pod_informer,
                 recorder, image: str, pull_policy: str = "IfNotPresent"):
        """`request_client`: a ResourceClient used for virt-api's snapshotvolumes subresource."""
        self.snapshots, self.contents, self.pvcs, self.pods, self.vms = (
            snapshot_client, content_client, pvc_client, pod_client, vm_client)
        self.request_client = request_client
        self.snapshot_store, self.content_store = snapshot_informer.store, content_informer.store
        self.vm_store, self.vmi_store = vm_informer.store, vmi_informer.store
        self.pvc_store, self.pod_store = pvc_informer.store, pod_informer.store
        self.recorder = recorder
        self.image, self.pull_policy = image, pull_policy
        self.queue = RateLimitingQueue("virt-controller-snapshot")
        snapshot_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        content_informer.add_handler(self._owner, lambda old, new: self._owner(new), self._owner)
        pod_informer.add_handler(self._pod, lambda old, new: self._pod(new), self._pod)

    def _enqueue(self, obj):
        self.queue.add(object_key(obj))

    def _owner(self, content):
        name = (content.get("spec") or {}).get("virtualMachineSnapshotName")
        if name:
            self.queue.add(f"{content['metadata']['namespace']}/{name}")

    def _pod(self, pod):
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == snap.CONTENT_KIND:
                content = self.content_store.get(f"{pod['metadata']['namespace']}/{ref['name']}")
                if content is not None:
                    self._owner(content)

    def sync(self, key):
        snapshot = self.snapshot_store.get(key)
        if snapshot is None:
            return
        snapshot = copy.deepcopy(snapshot)
        namespace = snapshot["metadata"]["namespace"]
        source_name = ((snapshot.get("spec") or {}).get("source") or {}).get("name")
        vm = self.vm_store.get(f"{namespace}/{source_name}")
        content = self.content_store.get(f"{namespace}/{snap.content_name(snapshot)}")
        if snapshot["metadata"].get("deletionTimestamp"):
            return self._delete(snapshot, vm, content)
        if snap.SNAPSHOT_FINALIZER not in (snapshot["metadata"].get("finalizers") or []):
            snapshot = set_finalizer(self.snapshots, snapshot, snap.SNAPSHOT_FINALIZER, True)
        status = copy.deepcopy(snapshot.get("status") or {})
        phase = status.get("phase")
        now = now_iso()
        if phase in (snap.Phase.SUCCEEDED, snap.Phase.FAILED):
            self._unlock(vm, snapshot)
            return
        if deadline_passed(snapshot, datetime.datetime.now(datetime.timezone.utc)):
            limit = snap.failure_deadline(snapshot)
            return self._fail(snapshot, status, vm, content,
                              f"snapshot did not finish within its failureDeadline ({limit:.0f}s)")
        if vm is None:
            self._write(snapshot, progressing_status(status, now, f"Source VirtualMachine {source_name} does not "
                                                                  "exist"))
            return self.queue.add_after(key, 5)
        vmi = self.vmi_store.get(f"{namespace}/{source_name}")
        online = vmi is not None and (vmi.get("status") or {}).get("phase") == VMIPhase.RUNNING
        if content is None:
            return self._start(snapshot, status, vm, online, agent_connected(vmi))
        self._lock(vm, snapshot)
        self._progress(snapshot, status, vm, vmi, content, online)

    # -- steps

    def _start(self, snapshot, status, vm, online, agent):
        """Lock the VM, record what is in the snapshot and write the content. The indications are written here,
        from the VMI as it is now (as upstream): the sync that copies the running disks may have to be retried,
        and its retry no longer sees the copy."""
        namespace = snapshot["metadata"]["namespace"]
        self._lock(vm, snapshot)
        volumes, excluded = split_volumes(vm, online)
        claims = {}
        for volume in volumes:
            pvc = self.pvc_store.get(f"{namespace}/{claim_name(volume)}")
            if pvc is None:
                return self._fail(snapshot, status, vm, None, f"PVC {claim_name(volume)} of volume "
                                                              f"{volume['name']} does not exist")
            claims[claim_name(volume)] = pvc
        body = content_body(snapshot, vm, volumes, claims)
        try:
            self.contents.create(body, namespace)
        except ApiError as exc:
            if not exc.already_exists:
                raise
        status["sourceUID"] = vm["metadata"]["uid"]
        status["virtualMachineSnapshotContentName"] = body["metadata"]["name"]
        status["indications"], status["sourceIndications"] = indications(online, {"guestAgent": agent})
        status["snapshotVolumes"] = {"includedVolumes": [v["name"] for v in volumes],
                                     "excludedVolumes": [v["name"] for v in excluded]}
        self._write(snapshot, progressing_status(status, now_iso(), "Source locked and operation in progress"))
        self.recorder.event(snapshot, NORMAL, "SuccessfulVirtualMachineSnapshotContentCreate",
                            f"Successfully created VirtualMachineSnapshotContent {body['metadata']['name']}")

    def _progress(self, snapshot, status, vm, vmi, content, online):
        namespace = snapshot["metadata"]["namespace"]
        backups = content["spec"].get("volumeBackups") or []
        done = done_volumes(content)
        pods = {p["metadata"]["name"]: p for p in self.pod_store.by_index(POD_BY_OWNER, content["metadata"]["uid"])}
        for backup in backups:
            if self.pvc_store.get(f"{namespace}/{backup['volumeSnapshotName']}") is None:
                try:
                    self.pvcs.create(snapshot_claim(content, backup), namespace)
                except ApiError as exc:
                    if not exc.already_exists:
                        raise
        pending = [b for b in backups if b["volumeSnapshotName"] not in done]
        need_pod = [b for b in pending if copy_pod_name(b) not in pods]
        staged = {}
        if need_pod and online:
            capture = self._capture(vmi, snapshot, [b["volumeName"] for b in need_pod])
            if capture is None:
                return
            staged = capture["files"]
            status["indications"], status["sourceIndications"] = indications(True, capture)
        sources = {v["name"]: claim_name(v) for v in (content["spec"]["source"]["virtualMachine"]["spec"]
                                                      .get("template", {}).get("spec", {}).get("volumes") or [])}
        for backup in need_pod:
            name = backup["volumeName"]
            source_file = staged.get(name, cdi.DISK_FILE)
            pod = storage_pods.copy_pod(copy_pod_name(backup), content, "snapshot", sources[name], source_file,
                                        backup["volumeSnapshotName"], snap.SNAPSHOT_DISK, "qcow2", self.image,
                                        self.pull_policy, remove_source=name in staged)
            try:
                self.pods.create(pod, namespace)
            except ApiError as exc:
                if not exc.already_exists:
                    raise
        finished, failure = set(), None
        for backup in pending:
            pod = pods.get(copy_pod_name(backup))
            if pod is None:
                continue
            seen = pod_outcome(pod)
            if seen.phase == "Succeeded" or seen.terminated_ok:
                finished.add(backup["volumeSnapshotName"])
            elif seen.permanent or seen.restarts >= MAX_RESTARTS:
                failure = f"copying volume {backup['volumeName']} failed: {seen.message or 'see the copy pod'}"
        if finished:
            self._content_done(content, done | finished)
            for backup in pending:
                if backup["volumeSnapshotName"] in finished:
                    self._delete_pod(pods.get(copy_pod_name(backup)))
        if failure:
            return self._fail(snapshot, status, vm, content, failure)
        if done | finished >= {b["volumeSnapshotName"] for b in backups}:
            created = now_iso()
            self._content_ready(content, created)
            self._write(snapshot, succeeded_status(status, now_iso(), created))
            self._unlock(vm, snapshot)
            self.recorder.event(snapshot, NORMAL, "SuccessfulVirtualMachineSnapshot",
                                f"Virtual Machine Snapshot {snapshot['metadata']['name']} is ready")
            return
        self._write(snapshot, progressing_status(status, now_iso(), "Source locked and operation in progress"))

    def _capture(self, vmi, snapshot, volumes):
        """virt-api's snapshotvolumes on the running VMI (a block copy beside each disk); None after a failure
        that was recorded as an event (the key is retried)."""
        meta = vmi["metadata"]
        path = SUBRESOURCE_VMIS.path(meta["namespace"], meta["name"], "snapshotvolumes")
        try:
            return self.request_client.request("PUT", path, body={"id": snapshot["metadata"]["uid"],
                                                                  "volumes": volumes},
                                               timeout=CAPTURE_TIMEOUT, subresource="snapshotvolumes")
        except ApiError as exc:
            message = exc.body.get("message", str(exc))
            self.recorder.event(snapshot, WARNING, "SnapshotVolumesFailed", f"copying the running disks: {message}")
            log.warning("snapshot %s: snapshotvolumes: %s", object_key(snapshot), message)
            self.queue.add_rate_limited(object_key(snapshot))
            return None

    def _fail(self, snapshot, status, vm, content, message):
        if content is not None:
            for pod in self.pod_store.by_index(POD_BY_OWNER, content["metadata"]["uid"]):
                self._delete_pod(pod)
        self._write(snapshot, failed_status(status, now_iso(), message))
        self._unlock(vm, snapshot)
        self.recorder.event(snapshot, WARNING, "VirtualMachineSnapshotFailed", message)

    def _delete(self, snapshot, vm, content):
        self._unlock(vm, snapshot)
        policy = (snapshot.get("spec") or {}).get("deletionPolicy") or "Delete"
        if content is not None and policy == "Delete" and not content["metadata"].get("deletionTimestamp"):
            try:
                self.contents.delete(content["metadata"]["name"], content["metadata"]["namespace"],
                                     propagation_policy="Background")
            except ApiError as exc:
                if not exc.not_found:
                    raise
        if snap.SNAPSHOT_FINALIZER in (snapshot["metadata"].get("finalizers") or []):
            set_finalizer(self.snapshots, snapshot, snap.SNAPSHOT_FINALIZER, False)

    # -- writes

    def _write(self, snapshot, status):
        if status == (snapshot.get("status") or {}):
            return
        try:
            self.snapshots.update(dict(snapshot, status=status), subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise

    def _content_done(self, content, done):
        now = now_iso()
        status = {"readyToUse": False, "volumeSnapshotStatus": [
            {"volumeSnapshotName": name, "readyToUse": True, "creationTime": now} for name in sorted(done)]}
        self.contents.patch(content["metadata"]["name"], {"status": status}, content["metadata"]["namespace"],
                            subresource="status")

    def _content_ready(self, content, created):
        self.contents.patch(content["metadata"]["name"], {"status": {"readyToUse": True, "creationTime": created}},
                            content["metadata"]["namespace"], subresource="status")

    def _delete_pod(self, pod):
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        try:
            self.pods.delete(pod["metadata"]["name"], pod["metadata"]["namespace"], uid=pod["metadata"]["uid"])
        except ApiError as exc:
            if not exc.not_found and exc.status != 409:
                raise

    def _lock(self, vm, snapshot):
        lock_vm(self.vms, vm, snap.SNAPSHOT_IN_PROGRESS, snapshot["metadata"]["name"])

    def _unlock(self, vm, snapshot):
        unlock_vm(self.vms, vm, snap.SNAPSHOT_IN_PROGRESS, snapshot["metadata"]["name"])
