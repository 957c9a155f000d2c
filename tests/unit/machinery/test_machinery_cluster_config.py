"""The KubeVirt CR as the components read it: followed by an informer, defaults without one."""
import time

from kubevirt_runtime.api.cluster_config import ClusterConfig
from kubevirt_runtime.machinery.cluster_config import ClusterConfigSource
from kubevirt_runtime.machinery.resource import ApiError


class FakeClient:
    def __init__(self, items=None, missing=False):
        self.items, self.missing = items or [], missing
        self.resource = type("R", (), {"plural": "kubevirts"})

    def list(self, namespace=None, label_selector=None, field_selector=None, limit=None, continue_token=None, **_):
        if self.missing:
            raise ApiError(404, {"reason": "NotFound"}, "GET", "/apis/kubevirt.io/v1/kubevirts")
        return {"items": [dict(i) for i in self.items], "metadata": {"resourceVersion": "1"}}

    def watch(self, *args, **kwargs):
        time.sleep(0.05)
        return iter(())


def source(client):
    src = ClusterConfigSource.__new__(ClusterConfigSource)
    from kubevirt_runtime.machinery.informer import Informer
    src.client, src.namespace, src.informer = client, "kubevirt", Informer(client, "kubevirt")
    return src


def test_defaults_without_the_crd_and_values_from_the_cr():
    assert source(FakeClient(missing=True)).start(1).current() == ClusterConfig()
    kv = {"metadata": {"name": "kubevirt", "namespace": "kubevirt", "creationTimestamp": "2026-01-01T00:00:00Z"},
          "spec": {"configuration": {"developerConfiguration": {"cpuAllocationRatio": 50, "useEmulation": True}}}}
    src = source(FakeClient([kv])).start(5)
    try:
        assert src.current() == ClusterConfig(use_emulation=True, cpu_allocation_ratio=50)
    finally:
        src.stop()
