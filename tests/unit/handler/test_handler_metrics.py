"""libvirt domain stats -> KubeVirt's per-VMI metric names and labels."""
from prometheus_client import CollectorRegistry, generate_latest

from kubevirt_runtime.handler.metrics import DomainStatsCollector, domain_samples

VMI = {"metadata": {"name": "v1", "namespace": "ns", "uid": "u1", "labels": {"kubevirt.io/domain": "v1"}},
       "spec": {"domain": {"devices": {"interfaces": [{"name": "default"}]}}},
       "status": {"nodeName": "node01"}}
STATS = {"cpu.time": 3_000_000_000, "cpu.user": 1_000_000_000, "cpu.system": 500_000_000,
         "balloon.rss": 131072, "balloon.maximum": 131072, "balloon.current": 131072,
         "vcpu.current": 1, "vcpu.maximum": 1, "vcpu.0.state": 1, "vcpu.0.time": 2_500_000_000,
         "vcpu.0.wait": 1_000_000,
         "net.count": 1, "net.0.name": "tap0", "net.0.rx.bytes": 1000, "net.0.tx.bytes": 2000,
         "block.count": 2, "block.0.name": "vda", "block.0.rd.bytes": 4096, "block.0.wr.bytes": 512,
         "block.0.rd.times": 2_000_000, "block.1.name": "vdb", "block.1.rd.bytes": 10}
ANSWER = {"stats": STATS, "drives": {"vda": "rootdisk"}, "interfaces": {"tap0": "default"}}
BASE = {"node": "node01", "namespace": "ns", "name": "v1", "kubernetes_vmi_label_kubevirt_io_domain": "v1"}


def test_samples_carry_upstream_names_units_and_labels():
    samples = {(name, tuple(sorted(labels.items()))): value for name, labels, value in
               domain_samples(VMI, "ignored", ANSWER)}

    def get(name, **extra):
        return samples[(name, tuple(sorted(dict(BASE, **extra).items())))]

    assert get("kubevirt_vmi_vcpu_seconds_total", id="0", state="running") == 2.5
    assert get("kubevirt_vmi_vcpu_wait_seconds_total", id="0") == 0.001
    assert get("kubevirt_vmi_cpu_usage_seconds_total") == 3
    assert get("kubevirt_vmi_memory_resident_bytes") == 128 << 20
    assert get("kubevirt_vmi_memory_domain_bytes") == 128 << 20
    assert get("kubevirt_vmi_network_receive_bytes_total", interface="default", network="default") == 1000
    assert get("kubevirt_vmi_network_transmit_bytes_total", interface="default", network="default") == 2000
    assert get("kubevirt_vmi_storage_read_traffic_bytes_total", drive="rootdisk") == 4096
    assert get("kubevirt_vmi_storage_write_traffic_bytes_total", drive="rootdisk") == 512
    assert get("kubevirt_vmi_storage_read_times_seconds_total", drive="rootdisk") == 0.002
    assert get("kubevirt_vmi_storage_read_traffic_bytes_total", drive="vdb") == 10  # no alias: the device
    assert not any(name == "kubevirt_vmi_memory_available_bytes" for name, _ in samples)  # not reported


class FakeHandler:
    node_name = "node01"

    def __init__(self, store):
        self.informer = type("I", (), {"store": store})

    def followed_launchers(self):
        return [("u1", "ns/v1", "/nonexistent/launcher.sock"), ("u2", "ns/gone", "/x")]


def test_the_collector_exposes_families_and_skips_unreachable_launchers(monkeypatch):
    from kubevirt_runtime.handler import metrics
    calls = []

    class Client:
        def __init__(self, path, timeout):
            calls.append(path)

        def call(self, cmd):
            assert cmd == "stats"
            return ANSWER

        def close(self):
            pass

    monkeypatch.setattr(metrics, "LauncherClient", Client)
    registry = CollectorRegistry()
    registry.register(DomainStatsCollector(FakeHandler({"ns/v1": VMI})))
    text = generate_latest(registry).decode()
    assert "# TYPE kubevirt_vmi_vcpu_seconds_total counter" in text
    assert 'kubevirt_vmi_vcpu_seconds_total{id="0",kubernetes_vmi_label_kubevirt_io_domain="v1",name="v1",' \
           'namespace="ns",node="node01",state="running"} 2.5' in text
    assert calls == ["/nonexistent/launcher.sock"]  # the VMI of u2 is not in the cache
