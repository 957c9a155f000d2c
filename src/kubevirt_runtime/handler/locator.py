"""Where a VMI's launcher socket is, and what the handler may conclude when it is not there.

- PodSocketLocator (in a cluster): the VMI's launcher pod on this node (labels kubevirt.io=virt-launcher,
  kubevirt.io/created-by=<vmi uid>, from a pod informer restricted to this node), and its `sockets`
  emptyDir under the kubelet's root: <kubelet root>/pods/<pod uid>/volumes/kubernetes.io~empty-dir/sockets/launcher.sock
- TemplateSocketLocator (launchers as local processes, tests): a path template with {namespace},
  {name} and {uid}; it has no pods, so a missing socket only ever means "not there (yet)".

`lookup(vmi)` returns a decide.Lookup; `locate(vmi)` only the socket path of a ready launcher.
"""
from __future__ import annotations

import os

from kubevirt_runtime.api.constants import APP_LABEL, CREATED_BY_LABEL, LAUNCHER_APP_VALUE

from .decide import Lookup, Where

DEFAULT_KUBELET_ROOT = "/var/lib/kubelet"
POD_FINAL_PHASES = ("Succeeded", "Failed")


class TemplateSocketLocator:
    def __init__(self, template: str):
        self.template = template

    def lookup(self, vmi: dict) -> Lookup:
        meta = vmi.get("metadata") or {}
        path = self.template.format(namespace=meta.get("namespace"), name=meta.get("name"), uid=meta.get("uid"))
        return Lookup(Where.READY, path) if os.path.exists(path) else Lookup(Where.NO_SOCKET)

    def locate(self, vmi: dict) -> str | None:
        return self.lookup(vmi).path

    def has_synced(self) -> bool:
        return True

    def wait_for_sync(self, timeout=None) -> bool:
        return True

    def start(self):
        return self


class PodSocketLocator:
    def __init__(self, pod_informer, kubelet_root: str = DEFAULT_KUBELET_ROOT):
        self.pods = pod_informer
        self.kubelet_root = kubelet_root

    @staticmethod
    def label_selector() -> str:
        return f"{APP_LABEL}={LAUNCHER_APP_VALUE}"

    def socket_path(self, pod: dict) -> str:
        return os.path.join(self.kubelet_root, "pods", pod["metadata"]["uid"], "volumes",
                            "kubernetes.io~empty-dir", "sockets", "launcher.sock")

    def lookup(self, vmi: dict) -> Lookup:
        if not self.pods.has_synced():
            return Lookup(Where.UNSYNCED)
        uid = (vmi.get("metadata") or {}).get("uid")
        pods = [p for p in self.pods.store.list()
                if (p.get("metadata", {}).get("labels") or {}).get(CREATED_BY_LABEL) == uid]
        if not pods:
            return Lookup(Where.ABSENT)
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        for pod, phase in zip(pods, phases, strict=True):
            if phase == "Running" and os.path.exists(path := self.socket_path(pod)):
                return Lookup(Where.READY, path)
        if "Running" in phases:
            return Lookup(Where.NO_SOCKET)
        if all(phase in POD_FINAL_PHASES for phase in phases):
            return Lookup(Where.ENDED, outcome="Failed" if "Failed" in phases else "Succeeded")
        return Lookup(Where.STARTING)

    def locate(self, vmi: dict) -> str | None:
        return self.lookup(vmi).path

    def has_synced(self) -> bool:
        return self.pods.has_synced()

    def wait_for_sync(self, timeout=None) -> bool:
        return self.pods.wait_for_sync(timeout)

    def start(self):
        self.pods.start()
        return self
