"""Prometheus HTTP service discovery from a pod cache: running pods' named ports, labelled as kubernetes_sd does."""
import json
import urllib.request

from kubevirt_runtime.machinery.prometheus_sd import DiscoveryServer, target_groups
from kubevirt_runtime.machinery.store import Store


def pod(name, phase="Running", ip="10.244.0.7", ports=(("metrics", 8443),), labels=None):
    return {"metadata": {"name": name, "namespace": "kubevirt", "resourceVersion": "1",
                         "labels": labels or {"kubevirt.io": "virt-handler"}},
            "spec": {"nodeName": "node01", "containers": [
                {"name": "virt-handler", "ports": [{"name": n, "containerPort": p} for n, p in ports]}]},
            "status": {"phase": phase, "podIP": ip}}


def test_target_groups():
    pods = [pod("h1", ports=(("console", 8186), ("metrics", 8443))), pod("pending", phase="Pending"),
            pod("api", ip="10.244.0.9", ports=(("metrics", 8080),), labels={"kubevirt.io": "virt-api"})]
    groups = target_groups(pods, "metrics")
    assert [g["targets"] for g in groups] == [["10.244.0.9:8080"], ["10.244.0.7:8443"]]
    assert groups[1]["labels"] == {
        "__meta_kubernetes_namespace": "kubevirt", "__meta_kubernetes_pod_name": "h1",
        "__meta_kubernetes_pod_ip": "10.244.0.7", "__meta_kubernetes_pod_node_name": "node01",
        "__meta_kubernetes_pod_phase": "Running", "__meta_kubernetes_pod_label_kubevirt_io": "virt-handler",
        "__meta_kubernetes_pod_container_name": "virt-handler",
        "__meta_kubernetes_pod_container_port_name": "metrics", "__meta_kubernetes_pod_container_port_number": "8443"}


class FakeInformer:
    def __init__(self, pods, synced=True):
        self.store, self.synced = Store(), synced
        for p in pods:
            self.store.upsert(p)

    def has_synced(self):
        return self.synced


def test_the_endpoint_answers_prometheus():
    informer = FakeInformer([pod("h1")], synced=False)
    server = DiscoveryServer(informer, "metrics", port=0).start()
    try:
        url = f"http://127.0.0.1:{server.port}/targets"
        try:
            urllib.request.urlopen(url, timeout=5)
            raise AssertionError("answered before the pods were listed")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
        informer.synced = True
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert json.loads(resp.read())[0]["targets"] == ["10.244.0.7:8443"]
    finally:
        server.stop()
