"""Attachment pods of hotplugged volumes: one pod per hotplugged PVC of a running VMI, on the VMI's node.

As upstream's: the pod only mounts the PVC (so the scheduler binds a WaitForFirstConsumer claim to that node
and the kubelet mounts it there) and sleeps; it is owned by the VMI's launcher pod, so it goes away with it.
virt-handler finds the mounted PVC in the pod's volume directory and bind-mounts its disk into the launcher
(handler/hotplug.py). A pod whose volume left the VMI's spec is deleted once virt-handler no longer lists
the volume in status.volumeStatus (it has been detached and unmounted).

`plan()` is pure; the loop creates and deletes.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from ..api.constants import APP_LABEL, CREATED_BY_LABEL, VMIPhase
from ..api.volumes import HOTPLUG_APP_VALUE, HOTPLUG_VOLUME_LABEL, claim_name, is_hotpluggable
from ..machinery.events import NORMAL
from ..machinery.reconciler import Reconciler
from ..machinery.resource import ApiError
from ..machinery.store import object_key
from ..machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

HOTPLUG_POD_SELECTOR = f"{APP_LABEL}={HOTPLUG_APP_VALUE}"
MOUNT_DIR = "/var/run/kubevirt/hotplug"


def attachment_pod_name(vmi: dict, volume: str) -> str:
    digest = hashlib.sha256(f"{vmi['metadata']['uid']}/{volume}".encode()).hexdigest()[:5]
    return f"hp-volume-{vmi['metadata']['name'][:30]}-{volume[:20]}-{digest}"


def attachment_pod(vmi: dict, launcher: dict, volume: dict, image: str, pull_policy: str = "IfNotPresent") -> dict:
    name = volume["name"]
    node = (vmi.get("status") or {}).get("nodeName")
    read_only = bool((volume.get("persistentVolumeClaim") or {}).get("readOnly"))
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": attachment_pod_name(vmi, name), "namespace": vmi["metadata"]["namespace"],
                     "labels": {APP_LABEL: HOTPLUG_APP_VALUE, HOTPLUG_VOLUME_LABEL: name},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": launcher["metadata"]["name"],
                                          "uid": launcher["metadata"]["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {
            "restartPolicy": "Always", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "hotplug-disk", "image": image, "imagePullPolicy": pull_policy,
                "command": ["/bin/busybox", "tail", "-f", "/dev/null"],
                "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}},
                "securityContext": {"runAsUser": 65534, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "hotplug", "mountPath": f"{MOUNT_DIR}/{name}", "readOnly": read_only}],
            }],
            "volumes": [{"name": "hotplug", "persistentVolumeClaim": {"claimName": claim_name(volume),
                                                                      "readOnly": read_only}}],
        },
    }


@dataclass
class Plan:
    create: list = field(default_factory=list)  # pod bodies
    delete: list = field(default_factory=list)  # existing pods


def plan(vmi: dict | None, launcher: dict | None, pods: list, image: str, pull_policy: str = "IfNotPresent") -> Plan:
    """Attachment pods wanted for the VMI's hotplugged volumes (pure). `pods`: the attachment pods owned by
    the VMI's launcher pod."""
    out = Plan()
    have = {(p["metadata"].get("labels") or {}).get(HOTPLUG_VOLUME_LABEL): p for p in pods}
    running = vmi is not None and (vmi.get("status") or {}).get("phase") == VMIPhase.RUNNING and \
        not vmi["metadata"].get("deletionTimestamp") and launcher is not None and \
        (launcher.get("status") or {}).get("phase") == "Running"
    wanted = {v["name"]: v for v in (vmi or {}).get("spec", {}).get("volumes") or [] if is_hotpluggable(v)} \
        if running else {}
    listed = {v.get("name") for v in ((vmi or {}).get("status") or {}).get("volumeStatus") or []}
    for name, volume in sorted(wanted.items()):
        if name not in have:
            out.create.append(attachment_pod(vmi, launcher, volume, image, pull_policy))
    for name, pod in sorted(have.items(), key=lambda item: str(item[0])):
        if name not in wanted and (name not in listed or not running) and not pod["metadata"].get("deletionTimestamp"):
            out.delete.append(pod)
    return out


class HotplugController(Reconciler):
    name = "hotplug-controller"

    def __init__(self, pod_client, vmi_informer, launcher_informer, hotplug_informer, recorder, image: str,
                 pull_policy: str = "IfNotPresent"):
        self.pods = pod_client
        self.vmi_store, self.launcher_store = vmi_informer.store, launcher_informer.store
        self.hotplug_store = hotplug_informer.store
        self.recorder = recorder
        self.image, self.pull_policy = image, pull_policy
        self.queue = RateLimitingQueue("virt-controller-hotplug")
        vmi_informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        hotplug_informer.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_changed)
        launcher_informer.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_changed)

    def _enqueue(self, vmi):
        self.queue.add(object_key(vmi))

    def _pod_changed(self, pod):
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(CREATED_BY_LABEL):  # a launcher: its VMI has its domain annotation's name
            name = (meta.get("annotations") or {}).get("kubevirt.io/domain")
            if name:
                self.queue.add(f"{meta.get('namespace')}/{name}")
            return
        for ref in meta.get("ownerReferences") or []:
            launcher = next((p for p in self.launcher_store.list() if p["metadata"].get("uid") == ref.get("uid")), None)
            if launcher is not None:
                self._pod_changed(launcher)

    def sync(self, key):
        vmi = self.vmi_store.get(key)
        launcher = None
        if vmi is not None:
            uid = vmi["metadata"]["uid"]
            launchers = [p for p in self.launcher_store.list()
                         if ((p["metadata"].get("labels") or {}).get(CREATED_BY_LABEL)) == uid]
            launcher = next((p for p in launchers if (p.get("status") or {}).get("phase") == "Running"),
                            launchers[0] if launchers else None)
        if launcher is None:
            return  # no launcher: its attachment pods go with it (garbage collector)
        pods = [p for p in self.hotplug_store.list()
                if any(r.get("uid") == launcher["metadata"]["uid"] for r in p["metadata"].get("ownerReferences") or [])]
        todo = plan(vmi, launcher, pods, self.image, self.pull_policy)
        for body in todo.create:
            try:
                self.pods.create(body, body["metadata"]["namespace"])
            except ApiError as exc:
                if not exc.already_exists:
                    raise
                continue
            self.recorder.event(vmi, NORMAL, "SuccessfulCreate", f"Created hotplug attachment pod "
                                                                 f"{body['metadata']['name']}, for volume "
                                                                 f"{body['metadata']['labels'][HOTPLUG_VOLUME_LABEL]}")
        for pod in todo.delete:
            try:
                self.pods.delete(pod["metadata"]["name"], pod["metadata"]["namespace"], uid=pod["metadata"]["uid"])
            except ApiError as exc:
                if not exc.not_found and exc.status != 409:
                    raise
                continue
            if vmi is not None:
                self.recorder.event(vmi, NORMAL, "SuccessfulDelete",
                                    f"Deleted hotplug attachment pod {pod['metadata']['name']}")
