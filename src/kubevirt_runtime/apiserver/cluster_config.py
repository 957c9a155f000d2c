"""What admission needs from the cluster: the KubeVirt CR's feature gates, and reading instancetypes.

The KubeVirt CR (kind KubeVirt in virt-api's namespace) is followed by an informer, so a feature gate
turned on with `kubectl edit kubevirt` counts from the next admission on. Instancetypes, preferences and
ControllerRevisions are read when a VM names one (a GET per review; VMs are not created in bursts that
would make a cache worth its memory).
"""
from __future__ import annotations

import logging

from ..api import ValidationContext
from ..api import instancetype as it
from ..machinery.informer import Informer
from ..machinery.resource import ApiError, Resource, ResourceClient

log = logging.getLogger(__name__)

KUBEVIRTS = Resource("kubevirt.io", "v1", "kubevirts", kind="KubeVirt")
CONTROLLER_REVISIONS = Resource("apps", "v1", "controllerrevisions", kind="ControllerRevision")
_LOOKUP_RESOURCES = {kind: Resource(it.GROUP, it.VERSION, plural, namespaced=kind not in it.CLUSTER_SCOPED, kind=kind)
                     for kind, plural in it.PLURALS.items()}
_LOOKUP_RESOURCES["ControllerRevision"] = CONTROLLER_REVISIONS


def feature_gates(kubevirt: dict | None) -> frozenset:
    config = ((kubevirt or {}).get("spec") or {}).get("configuration") or {}
    return frozenset((config.get("developerConfiguration") or {}).get("featureGates") or [])


class ClusterConfig:
    def __init__(self, api_client, namespace: str):
        self.api_client = api_client
        self.informer = Informer(ResourceClient(api_client, KUBEVIRTS), namespace)

    def start(self) -> None:
        self.informer.start()

    def stop(self) -> None:
        self.informer.stop()

    def lookup(self, kind: str, namespace: str | None, name: str) -> dict | None:
        client = ResourceClient(self.api_client, _LOOKUP_RESOURCES[kind])
        try:
            return client.get(name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def context(self) -> ValidationContext:
        kubevirts = self.informer.store.list()
        return ValidationContext(feature_gates=feature_gates(kubevirts[0] if kubevirts else None), lookup=self.lookup)
