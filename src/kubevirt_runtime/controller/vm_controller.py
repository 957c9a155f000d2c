"""VM controller: one VMI per VM, created and deleted according to runStrategy and stateChangeRequests.

As upstream: Always keeps an instance (restarting it when it ends or a Stop request names it); Halted
removes it (a Start request flips the VM to Always / running=true); Manual only follows requests;
RerunOnFailure restarts failed instances but not ones that succeeded; Once runs one instance once.
Restarts after failed starts are delayed by the crash-loop backoff recorded in status.startFailure.
The VM carries a finalizer so deleting it first deletes its instance (no garbage collector needed).
"""
import copy
import datetime
import logging
import uuid

from ..api import default_vmi_spec
from ..api.constants import (
    API_VERSION,
    VM_CONTROLLER_FINALIZER,
    VM_KIND,
    VMI_FINALIZER,
    VMI_KIND,
    RunStrategy,
    StateChangeAction,
    VMIPhase,
    vmi_is_final,
)
from ..api.defaults import effective_run_strategy
from ..machinery.events import NORMAL, WARNING
from ..machinery.expectations import ControllerExpectations
from ..machinery.logs import obj_fields
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError
from ..machinery.store import object_key
from ..machinery.workqueue import RateLimitingQueue
from .instancetype import ExpansionError
from .patches import patch_finalizers
from .vm_status import backoff_left, desired_vm_status, has_start_request, has_stop_request_for

log = logging.getLogger(__name__)
GENERATION_ANNOTATION = "kubevirt.io/vm-generation"
# Upstream derives a VM's firmware UUID from its name in this namespace, so it survives restarts.
_FIRMWARE_UUID_NAMESPACE = uuid.UUID("6a1a24a1-4061-4607-8bf4-a3963d0c5895")


def firmware_uuid(vm_name):
    return str(uuid.uuid5(_FIRMWARE_UUID_NAMESPACE, vm_name))


def build_vmi(vm, expansion=None):
    """The VMI a VM starts (pure); `expansion` applies the VM's instancetype and preference first."""
    meta, template = vm["metadata"], vm["spec"]["template"]
    template_meta = copy.deepcopy(template.get("metadata") or {})
    spec = copy.deepcopy(template["spec"])
    if expansion is not None:
        expansion.apply(spec, template_meta)
    spec = default_vmi_spec(spec)
    firmware = spec["domain"].setdefault("firmware", {})
    firmware.setdefault("uuid", firmware_uuid(meta["name"]))
    annotations = dict(template_meta.get("annotations") or {})
    annotations[GENERATION_ANNOTATION] = str(meta.get("generation", 0))
    return {
        "apiVersion": API_VERSION, "kind": VMI_KIND,
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"],
            "labels": dict(template_meta.get("labels") or {}), "annotations": annotations,
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": VM_KIND, "name": meta["name"], "uid": meta["uid"],
                                 "controller": True, "blockOwnerDeletion": True}],
            "finalizers": [VM_CONTROLLER_FINALIZER, VMI_FINALIZER],
        },
        "spec": spec,
    }


class VMController(Reconciler):
    name = "vm-controller"

    def __init__(self, vm_client, vmi_client, vm_informer, vmi_informer, recorder, instancetypes=None, storage=None):
        """`vm_client` / `vmi_client`: ResourceClients (or fakes with the same methods) for VMs and VMIs;
        `instancetypes`: an InstancetypeExpander (or a fake), for VMs with spec.instancetype/preference;
        `storage`: a vm_storage.VMStorage (DataVolumes of dataVolumeTemplates, volume status, hotplug)."""
        self.vms, self.vmis = vm_client, vmi_client
        self.instancetypes = instancetypes
        self.storage = storage
        self.vm_store, self.vmi_store = vm_informer.store, vmi_informer.store
        self.recorder = recorder
        self.queue = RateLimitingQueue("virt-controller-vm")
        self.expectations = ControllerExpectations()
        vm_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        vmi_informer.add_handler(self._vmi_added, lambda old, new: self._enqueue(new), self._vmi_deleted)

    def _enqueue(self, obj):
        self.queue.add(object_key(obj))  # a VM and its VMI share namespace/name

    def _vmi_added(self, vmi):
        self.expectations.creation_observed(object_key(vmi))
        self._enqueue(vmi)

    def _vmi_deleted(self, vmi):
        self.expectations.deletion_observed(object_key(vmi), vmi["metadata"].get("uid"))
        self._enqueue(vmi)

    # -- sync

    def sync(self, key):
        cached = self.vm_store.get(key)
        if cached is None:
            self.expectations.delete(key)
            return
        vm = copy.deepcopy(cached)  # never mutate the cache
        vmi = self.vmi_store.get(key)
        if vmi is not None and not self._owned(vm, vmi):
            vmi_conflict = vmi
            vmi = None
        else:
            vmi_conflict = None
        sync_error = None
        if self.expectations.satisfied(key):
            if vmi_conflict is not None:
                sync_error = ("FailedCreate", f"a VMI named {vmi_conflict['metadata']['name']} exists and is not "
                                              "owned by this VM")
            else:
                try:
                    if self._volumes_ready(vm):
                        vm = self._sync_run_strategy(key, vm, vmi)
                    if self.storage is not None:
                        self.storage.sync_hotplug(vm, vmi)
                except ApiError as exc:
                    sync_error = ("FailedCreate" if exc.status != 404 else "FailedDelete",
                                  exc.body.get("message", str(exc)))
                    log.warning("sync %s: %s", key, exc, extra=obj_fields(vm))
        adds, dels = self.expectations.pending(key)
        volumes = self.storage.facts(vm) if self.storage is not None else None
        status = desired_vm_status(vm, vmi, adds > 0, dels > 0, sync_error, volumes=volumes)
        self._write_status(cached, vm, status)
        if vmi is not None and self.vmi_store.get(key) is vmi:  # else an event brings the changed VMI back
            self._release_vmi(vmi)
        if sync_error:
            raise RuntimeError(f"{key}: {sync_error[1]}")

    def _volumes_ready(self, vm):
        """As upstream: the VM's DataVolumes are created first; one that should run waits until they Succeeded,
        and none starts while a snapshot or restore works on its disks (status.snapshotInProgress/
        restoreInProgress)."""
        if self.storage is None or vm["metadata"].get("deletionTimestamp"):
            return True
        halted = effective_run_strategy(vm) == RunStrategy.HALTED
        status = vm.get("status") or {}
        if (status.get("snapshotInProgress") or status.get("restoreInProgress")) and not halted \
                and self.vmi_store.get(object_key(vm)) is None:
            return False
        return self.storage.ensure(vm) or halted

    @staticmethod
    def _owned(vm, vmi):
        return any(ref.get("uid") == vm["metadata"]["uid"] and ref.get("controller")
                   for ref in vmi["metadata"].get("ownerReferences") or [])

    def _sync_run_strategy(self, key, vm, vmi):
        if vm["metadata"].get("deletionTimestamp"):
            if vmi is not None:
                self._stop(key, vm, vmi, "the VM is being deleted")
            else:
                self._remove_vm_finalizer(vm)
            return vm
        if VM_CONTROLLER_FINALIZER not in (vm["metadata"].get("finalizers") or []):
            vm = patch_finalizers(self.vms, vm, (vm["metadata"].get("finalizers") or []) + [VM_CONTROLLER_FINALIZER])
        strategy = effective_run_strategy(vm)
        phase = ((vmi or {}).get("status") or {}).get("phase")
        if strategy == RunStrategy.ALWAYS:
            if vmi is not None:
                if has_stop_request_for(vm, vmi) or vmi_is_final(vmi):
                    self._stop(key, vm, vmi, f"restart (VMI {phase or 'stop requested'}, runStrategy Always)")
                return vm
            self._start_after_backoff(key, vm)
        elif strategy == RunStrategy.RERUN_ON_FAILURE:
            if vmi is not None:
                if not vmi["metadata"].get("deletionTimestamp") and (
                        has_stop_request_for(vm, vmi) or phase in (VMIPhase.FAILED, VMIPhase.SUCCEEDED)):
                    self._stop(key, vm, vmi, f"VMI {phase or 'stop requested'}, runStrategy RerunOnFailure")
                    if phase == VMIPhase.FAILED:
                        self._add_start_request(vm)
                return vm
            if not has_start_request(vm) and (vm.get("status") or {}).get("runStrategy") == strategy:
                return vm
            self._start_after_backoff(key, vm)
        elif strategy == RunStrategy.MANUAL:
            if vmi is not None:
                if has_stop_request_for(vm, vmi):
                    self._stop(key, vm, vmi, "stop request, runStrategy Manual")
            elif has_start_request(vm):
                self._start(key, vm)
        elif strategy == RunStrategy.HALTED:
            if vmi is not None:
                self._stop(key, vm, vmi, "runStrategy Halted")
            elif has_start_request(vm):
                patch = {"spec": {"runStrategy": RunStrategy.ALWAYS}} if vm["spec"].get("runStrategy") else \
                    {"spec": {"running": True}}
                vm = self.vms.patch(vm["metadata"]["name"], patch, vm["metadata"]["namespace"])
        elif strategy == RunStrategy.ONCE:
            if vmi is None:
                self._start(key, vm)
        return vm

    def _start_after_backoff(self, key, vm):
        left = backoff_left(vm, datetime.datetime.now(datetime.timezone.utc))
        if left > 0:
            log.info("delaying start by %.0fs (crash-loop backoff)", left, extra=obj_fields(vm))
            self.queue.add_after(key, left)
            return
        self._start(key, vm)

    def _start(self, key, vm):
        try:
            vmi = build_vmi(vm, self.instancetypes.expand(vm) if self.instancetypes else None)
        except ExpansionError as exc:
            self.recorder.event(vm, WARNING, "FailedCreate", f"Error applying the instancetype or preference: {exc}")
            raise ApiError(422, {"reason": "Invalid", "message": str(exc)}, "expand", "spec.instancetype") from exc
        self.expectations.expect_creations(key, 1)
        try:
            created = self.vmis.create(vmi, vm["metadata"]["namespace"])
        except ApiError as exc:
            self.expectations.lower(key, adds=1)
            self.recorder.event(vm, WARNING, "FailedCreate",
                                f"Error creating virtual machine instance: {exc.body.get('message', exc)}")
            raise
        log.info("started: created VMI %s", created["metadata"]["uid"], extra=obj_fields(vm))
        self.recorder.event(vm, NORMAL, "SuccessfulCreate",
                            f"Started the virtual machine by creating the new virtual machine instance "
                            f"{created['metadata']['name']}")

    def _stop(self, key, vm, vmi, why):
        if vmi["metadata"].get("deletionTimestamp"):
            return
        uid = vmi["metadata"]["uid"]
        self.expectations.expect_deletions(key, [uid])
        try:
            self.vmis.delete(vmi["metadata"]["name"], vmi["metadata"]["namespace"], uid=uid)
        except ApiError as exc:
            self.expectations.deletion_observed(key, uid)
            if exc.not_found or exc.status == 409:
                return
            self.recorder.event(vm, WARNING, "FailedDelete", f"Error deleting virtual machine instance: {exc}")
            raise
        log.info("stopping: deleted VMI %s (%s)", uid, why, extra=obj_fields(vm))
        self.recorder.event(vm, NORMAL, "SuccessfulDelete",
                            f"Stopped the virtual machine by deleting the virtual machine instance {uid}")

    def _add_start_request(self, vm):
        requests = list((vm.get("status") or {}).get("stateChangeRequests") or [])
        requests.append({"action": StateChangeAction.START})
        vm.setdefault("status", {})["stateChangeRequests"] = requests

    def _remove_vm_finalizer(self, vm):
        finalizers = vm["metadata"].get("finalizers") or []
        if VM_CONTROLLER_FINALIZER in finalizers:
            patch_finalizers(self.vms, vm, [f for f in finalizers if f != VM_CONTROLLER_FINALIZER])

    def _release_vmi(self, vmi):
        """Drop our finalizer from a VMI whose end we have recorded (final, or deleted with its pod gone)."""
        finalizers = vmi["metadata"].get("finalizers") or []
        if VM_CONTROLLER_FINALIZER not in finalizers:
            return
        done = vmi_is_final(vmi) or (vmi["metadata"].get("deletionTimestamp") and VMI_FINALIZER not in finalizers)
        if done:
            try:
                patch_finalizers(self.vmis, vmi, [f for f in finalizers if f != VM_CONTROLLER_FINALIZER])
            except ApiError as exc:
                if not exc.not_found:
                    raise

    def _write_status(self, cached, vm, status):
        if status == (cached.get("status") or {}):
            return vm
        body = dict(vm)
        body["status"] = status
        try:
            return self.vms.update(body, subresource="status")
        except ApiError as exc:
            if exc.not_found:
                return vm
            raise
