"""Where a VMI's launcher socket is.

- PodSocketLocator (in a cluster): the VMI's launcher pod on this node (labels kubevirt.io=virt-launcher,
  kubevirt.io/created-by=<vmi uid>, from a pod informer restricted to this node), and its `sockets`
  emptyDir under the kubelet's root: <kubelet root>/pods/<pod uid>/volumes/kubernetes.io~empty-dir/sockets/launcher.sock
- TemplateSocketLocator (launchers as local processes, tests): a path template with {namespace},
  {name} and {uid}.
"""
from __future__ import annotations

import os

from kubevirt_runtime.api.constants import APP_LABEL, CREATED_BY_LABEL, LAUNCHER_APP_VALUE

DEFAULT_KUBELET_ROOT = "/var/lib/kubelet"


class TemplateSocketLocator:
    def __init__(self, template: str):
        self.template = template

    def locate(self, vmi: dict) -> str | None:
        meta = vmi.get("metadata") or {}
        path = self.template.format(namespace=meta.get("namespace"), name=meta.get("name"), uid=meta.get("uid"))
        return path if os.path.exists(path) else None

    def outcome(self, vmi: dict) -> str | None:
        return None

    def start(self):
        return self


class PodSocketLocator:
    def __init__(self, pod_informer, kubelet_root: str = DEFAULT_KUBELET_ROOT):
        self.pods = pod_informer
        self.kubelet_root = kubelet_root

    @staticmethod
    def label_selector() -> str:
        return f"{APP_LABEL}={LAUNCHER_APP_VALUE}"

    def locate(self, vmi: dict) -> str | None:
        uid = (vmi.get("metadata") or {}).get("uid")
        candidates = [p for p in self.pods.store.list()
                      if (p.get("metadata", {}).get("labels") or {}).get(CREATED_BY_LABEL) == uid
                      and (p.get("status") or {}).get("phase") == "Running"]
        for pod in candidates:
            path = os.path.join(self.kubelet_root, "pods", pod["metadata"]["uid"], "volumes",
                                "kubernetes.io~empty-dir", "sockets", "launcher.sock")
            if os.path.exists(path):
                return path
        return None

    def outcome(self, vmi: dict) -> str | None:
        """Succeeded / Failed from the launcher pod's end (the launcher exits 0 after a clean guest
        shutdown or a requested stop), for when the launcher's last event was missed."""
        uid = (vmi.get("metadata") or {}).get("uid")
        for pod in self.pods.store.list():
            if (pod.get("metadata", {}).get("labels") or {}).get(CREATED_BY_LABEL) != uid:
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                return phase
        return None

    def start(self):
        self.pods.start()
        return self
