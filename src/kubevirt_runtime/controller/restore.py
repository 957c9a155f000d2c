"""VirtualMachineRestore controller (snapshot.kubevirt.io): a stopped VM back to a VirtualMachineSnapshot.

1. the snapshot must be readyToUse and the target VM stopped (targetReadinessPolicy: WaitGracePeriod, the
   default, waits up to 5 minutes for it to stop; WaitEventually waits; FailImmediate fails at once); the VM is
   locked (status.restoreInProgress: it is not started meanwhile);
2. every volume backup is converted from its snapshot PVC (qcow2) into a disk.img: with volumeRestorePolicy
   RandomizeNames (the default) in a new PVC restore-<restore uid>-<volume> of the backup's spec, with InPlace
   over the disk of the PVC the VM uses now;
3. all copied: the VM's spec becomes the snapshot's, its volumes (and dataVolumeTemplates) pointing at the
   restored PVCs (a DataVolume's restored PVC carries cdi.kubevirt.io/storage.prePopulated, so its DataVolume
   adopts it without an import), its run strategy left as it is now; DataVolumes of the VM that the restored
   spec no longer names are deleted (status.deletedDataVolumes); the VM is unlocked; complete.
"""
from __future__ import annotations

import copy
import datetime
import logging

from ..api import cdi
from ..api import snapshot as snap
from ..api.constants import VM_KIND
from ..api.status import now_iso, parse_time, set_condition
from ..api.volumes import claim_name
from ..machinery.events import NORMAL, WARNING
from ..machinery.reconciler import Reconciler
from ..machinery.resource import JSON_PATCH, ApiError, Resource
from ..machinery.store import object_key
from ..machinery.workqueue import RateLimitingQueue
from . import storage_pods
from .datavolume import MAX_RESTARTS, POD_BY_OWNER, pod_outcome
from .patches import lock_vm, set_finalizer, unlock_vm

log = logging.getLogger(__name__)

RESTORES = Resource(snap.GROUP, snap.VERSION, snap.RESTORE_PLURAL, kind=snap.RESTORE_KIND)
GRACE_SECONDS = 300
# On a restored PVC once its disk is written: which restore wrote it (upstream's name annotation, and the uid
# this controller goes by).
RESTORE_NAME_ANNOTATION = "restore.kubevirt.io/name"
RESTORE_UID_ANNOTATION = "restore.kubevirt.io/uid"


# ---------------------------------------------------------------- pure pieces

def target_claims(restore: dict, content: dict, vm: dict) -> dict:
    """{volume: PVC the volume's disk is restored into}."""
    in_place = (restore.get("spec") or {}).get("volumeRestorePolicy") == "InPlace"
    current = {v["name"]: claim_name(v) for v in (vm.get("spec") or {}).get("template", {}).get("spec", {})
               .get("volumes") or [] if claim_name(v)}
    out = {}
    for backup in content["spec"].get("volumeBackups") or []:
        name = backup["volumeName"]
        if in_place:
            out[name] = current.get(name) or backup["persistentVolumeClaim"]["metadata"]["name"]
        else:
            out[name] = snap.restore_claim_name(restore["metadata"]["uid"], name)
    return out


def restore_claim(restore: dict, backup: dict, name: str, vm: dict, datavolume: bool) -> dict:
    source = backup["persistentVolumeClaim"]
    meta = restore["metadata"]
    annotations = dict((source.get("metadata") or {}).get("annotations") or {})
    for key in (cdi.POPULATED_FOR, cdi.PRE_POPULATED, cdi.POD_PHASE):
        annotations.pop(key, None)
    if datavolume:  # its DataVolume adopts it as it is
        annotations[cdi.PRE_POPULATED] = name
    labels = dict((source.get("metadata") or {}).get("labels") or {})
    labels[snap.RESTORE_LABEL] = vm["metadata"]["name"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels, "annotations": annotations,
                         "ownerReferences": [{"apiVersion": vm["apiVersion"], "kind": VM_KIND,
                                              "name": vm["metadata"]["name"], "uid": vm["metadata"]["uid"]}]},
            "spec": copy.deepcopy(source.get("spec") or {})}


def restored_spec(content: dict, vm: dict, claims: dict) -> dict:
    """The snapshot's VM spec with its volumes on the restored PVCs and the VM's current run strategy."""
    spec = copy.deepcopy(content["spec"]["source"]["virtualMachine"]["spec"])
    renamed = {}
    for volume in spec.get("template", {}).get("spec", {}).get("volumes") or []:
        target = claims.get(volume["name"])
        if target is None:
            continue
        if volume.get("dataVolume"):
            renamed[volume["dataVolume"]["name"]] = target
            volume["dataVolume"]["name"] = target
        elif volume.get("persistentVolumeClaim"):
            volume["persistentVolumeClaim"]["claimName"] = target
    for template in spec.get("dataVolumeTemplates") or []:
        meta = template.setdefault("metadata", {})
        meta["name"] = renamed.get(meta.get("name"), meta.get("name"))
    for key in ("running", "runStrategy"):
        spec.pop(key, None)
        if key in (vm.get("spec") or {}):
            spec[key] = vm["spec"][key]
    return spec


def orphaned_datavolumes(vm: dict, new_spec: dict) -> list:
    """DataVolumes of the VM's templates that the restored spec no longer has."""
    keep = {(t.get("metadata") or {}).get("name") for t in new_spec.get("dataVolumeTemplates") or []}
    return sorted({(t.get("metadata") or {}).get("name") for t in (vm.get("spec") or {}).get("dataVolumeTemplates")
                   or []} - keep - {None})


def status_conditions(status: dict, ready: tuple, progressing: tuple, now: str) -> dict:
    set_condition(status, snap.Condition.READY, ready[0], ready[1], ready[1], now)
    set_condition(status, snap.Condition.PROGRESSING, progressing[0], progressing[1], progressing[1], now)
    return status


# ---------------------------------------------------------------- the loop

class RestoreController(Reconciler):
    name = "restore-controller"

    def __init__(self, restore_client, pvc_client, pod_client, vm_client, dv_client, restore_informer,
                 snapshot_informer, content_informer, vm_informer, vmi_informer, pvc_informer, pod_informer,
                 recorder, image: str, pull_policy: str = "IfNotPresent"):
        self.restores, self.pvcs, self.pods, self.vms, self.dvs = (restore_client, pvc_client, pod_client, vm_client,
                                                                   dv_client)
        self.restore_store, self.snapshot_store = restore_informer.store, snapshot_informer.store
        self.content_store, self.vm_store, self.vmi_store = (content_informer.store, vm_informer.store,
                                                             vmi_informer.store)
        self.pvc_store, self.pod_store = pvc_informer.store, pod_informer.store
        self.recorder = recorder
        self.image, self.pull_policy = image, pull_policy
        self.queue = RateLimitingQueue("virt-controller-restore")
        restore_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        pod_informer.add_handler(self._pod, lambda old, new: self._pod(new), self._pod)
        vmi_informer.add_handler(self._vmi, lambda old, new: self._vmi(new), self._vmi)
        snapshot_informer.add_handler(self._snapshot, lambda old, new: self._snapshot(new), self._snapshot)

    def _enqueue(self, obj):
        self.queue.add(object_key(obj))

    def _pod(self, pod):
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == snap.RESTORE_KIND:
                self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    def _waiting_for(self, predicate):
        for restore in self.restore_store.list():
            if not (restore.get("status") or {}).get("complete") and predicate(restore):
                self._enqueue(restore)

    def _vmi(self, vmi):
        self._waiting_for(lambda r: r["metadata"]["namespace"] == vmi["metadata"]["namespace"] and
                          ((r.get("spec") or {}).get("target") or {}).get("name") == vmi["metadata"]["name"])

    def _snapshot(self, snapshot):
        self._waiting_for(lambda r: r["metadata"]["namespace"] == snapshot["metadata"]["namespace"] and
                          (r.get("spec") or {}).get("virtualMachineSnapshotName") == snapshot["metadata"]["name"])

    def sync(self, key):
        restore = self.restore_store.get(key)
        if restore is None:
            return
        restore = copy.deepcopy(restore)
        namespace = restore["metadata"]["namespace"]
        spec = restore.get("spec") or {}
        vm = self.vm_store.get(f"{namespace}/{(spec.get('target') or {}).get('name')}")
        status = copy.deepcopy(restore.get("status") or {})
        now = now_iso()
        if restore["metadata"].get("deletionTimestamp"):
            self._unlock(vm, restore)
            return self._finalizer(restore, add=False)
        if status.get("complete"):
            return self._unlock(vm, restore)
        if (status.get("conditions") and any(c.get("type") == snap.Condition.FAILURE and c.get("status") == "True"
                                             for c in status["conditions"])):
            return self._unlock(vm, restore)
        if snap.RESTORE_FINALIZER not in (restore["metadata"].get("finalizers") or []):
            restore = self._finalizer(restore, add=True)
        snapshot = self.snapshot_store.get(f"{namespace}/{spec.get('virtualMachineSnapshotName')}")
        if vm is None:
            return self._fail(restore, status, None, f"target VirtualMachine {(spec.get('target') or {}).get('name')} "
                                                     "does not exist (restoring into a new VM is not implemented)")
        if snapshot is None or not (snapshot.get("status") or {}).get("readyToUse"):
            self._write(restore, status_conditions(status, ("False", "Waiting for the snapshot to be ready"),
                                                   ("True", "Waiting for the snapshot to be ready"), now))
            return
        content_name = (snapshot.get("status") or {}).get("virtualMachineSnapshotContentName")
        content = self.content_store.get(f"{namespace}/{content_name}")
        if content is None:
            return self._fail(restore, status, vm, "the snapshot's VirtualMachineSnapshotContent does not exist")
        vmi = self.vmi_store.get(object_key(vm))
        if vmi is not None:
            return self._wait_for_stop(restore, status, vm, now)
        self._lock(vm, restore)
        claims = target_claims(restore, content, vm)
        pods = {p["metadata"]["name"]: p for p in self.pod_store.by_index(POD_BY_OWNER, restore["metadata"]["uid"])}
        datavolumes = {v["name"] for v in content["spec"]["source"]["virtualMachine"]["spec"].get("template", {})
                       .get("spec", {}).get("volumes") or [] if v.get("dataVolume")}
        done = {volume for volume, claim in claims.items()
                if ((self.pvc_store.get(f"{namespace}/{claim}") or {}).get("metadata", {}).get("annotations") or {})
                .get(RESTORE_UID_ANNOTATION) == restore["metadata"]["uid"]}
        failure = None
        for backup in content["spec"].get("volumeBackups") or []:
            volume = backup["volumeName"]
            if volume in done:
                continue
            claim = claims[volume]
            if self.pvc_store.get(f"{namespace}/{claim}") is None:
                try:
                    self.pvcs.create(restore_claim(restore, backup, claim, vm, volume in datavolumes), namespace)
                except ApiError as exc:
                    if not exc.already_exists:
                        raise
            pod_name = f"restore-{restore['metadata']['uid'][:8]}-{volume}-copy"
            pod = pods.get(pod_name)
            if pod is None:
                body = storage_pods.copy_pod(pod_name, restore, "restore", backup["volumeSnapshotName"],
                                             snap.SNAPSHOT_DISK, claim, cdi.DISK_FILE, "raw", self.image,
                                             self.pull_policy)
                try:
                    self.pods.create(body, namespace)
                except ApiError as exc:
                    if not exc.already_exists:
                        raise
                continue
            seen = pod_outcome(pod)
            if seen.phase == "Succeeded" or seen.terminated_ok:
                self.pvcs.patch(claim, {"metadata": {"annotations": {
                    RESTORE_NAME_ANNOTATION: restore["metadata"]["name"],
                    RESTORE_UID_ANNOTATION: restore["metadata"]["uid"]}}}, namespace)
                done.add(volume)
                self._delete_pod(pod)
            elif seen.permanent or seen.restarts >= MAX_RESTARTS:
                failure = f"restoring volume {volume} failed: {seen.message or 'see the copy pod'}"
        status["restores"] = [{"volumeName": b["volumeName"], "persistentVolumeClaim": claims[b["volumeName"]],
                               "volumeSnapshotName": b["volumeSnapshotName"],
                               **({"dataVolumeName": claims[b["volumeName"]]} if b["volumeName"] in datavolumes
                                  else {})}
                              for b in content["spec"].get("volumeBackups") or []]
        if failure:
            return self._fail(restore, status, vm, failure)
        if len(done) < len(content["spec"].get("volumeBackups") or []):
            return self._write(restore, status_conditions(status, ("False", "Restoring the volumes"),
                                                          ("True", "Restoring the volumes"), now))
        self._finish(restore, status, vm, content, claims, now)

    def _wait_for_stop(self, restore, status, vm, now):
        policy = (restore.get("spec") or {}).get("targetReadinessPolicy") or "WaitGracePeriod"
        waited = (datetime.datetime.now(datetime.timezone.utc) -
                  parse_time(restore["metadata"]["creationTimestamp"])).total_seconds() \
            if restore["metadata"].get("creationTimestamp") else 0
        if policy == "FailImmediate" or (policy == "WaitGracePeriod" and waited > GRACE_SECONDS):
            return self._fail(restore, status, vm, f"VirtualMachine {vm['metadata']['name']} is running: stop it "
                                                   "before restoring it")
        self._write(restore, status_conditions(status, ("False", "Waiting for target to be ready"),
                                               ("True", "Waiting for target to be ready"), now))
        if policy == "WaitGracePeriod":
            self.queue.add_after(object_key(restore), 10)

    def _finish(self, restore, status, vm, content, claims, now):
        new_spec = restored_spec(content, vm, claims)
        meta = vm["metadata"]
        self.vms.patch(meta["name"], [{"op": "test", "path": "/metadata/resourceVersion",
                                       "value": meta["resourceVersion"]},
                                      {"op": "replace", "path": "/spec", "value": new_spec}],
                       meta["namespace"], content_type=JSON_PATCH)
        deleted = []
        if (restore.get("spec") or {}).get("volumeRestorePolicy") != "InPlace":
            for name in orphaned_datavolumes(vm, new_spec):
                try:
                    self.dvs.delete(name, meta["namespace"], propagation_policy="Background")
                    deleted.append(name)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
        status.update(complete=True, restoreTime=now)
        if deleted:
            status["deletedDataVolumes"] = deleted
        self._write(restore, status_conditions(status, ("True", "Operation complete"),
                                               ("False", "Operation complete"), now))
        self._unlock(self.vm_store.get(object_key(vm)) or vm, restore)
        self.recorder.event(restore, NORMAL, "VirtualMachineRestoreComplete",
                            f"Successfully completed VirtualMachineRestore {restore['metadata']['name']}")

    def _fail(self, restore, status, vm, message):
        now = now_iso()
        status["complete"] = False
        status_conditions(status, ("False", message), ("False", message), now)
        set_condition(status, snap.Condition.FAILURE, "True", "Operation failed", message, now)
        for pod in self.pod_store.by_index(POD_BY_OWNER, restore["metadata"]["uid"]):
            self._delete_pod(pod)
        self._write(restore, status)
        self._unlock(vm, restore)
        self.recorder.event(restore, WARNING, "VirtualMachineRestoreError", message)

    # -- writes

    def _write(self, restore, status):
        if status == (restore.get("status") or {}):
            return
        try:
            self.restores.update(dict(restore, status=status), subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise

    def _delete_pod(self, pod):
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        try:
            self.pods.delete(pod["metadata"]["name"], pod["metadata"]["namespace"], uid=pod["metadata"]["uid"])
        except ApiError as exc:
            if not exc.not_found and exc.status != 409:
                raise

    def _lock(self, vm, restore):
        lock_vm(self.vms, vm, snap.RESTORE_IN_PROGRESS, restore["metadata"]["name"])

    def _unlock(self, vm, restore):
        unlock_vm(self.vms, vm, snap.RESTORE_IN_PROGRESS, restore["metadata"]["name"])

    def _finalizer(self, restore, add):
        return set_finalizer(self.restores, restore, snap.RESTORE_FINALIZER, add)
