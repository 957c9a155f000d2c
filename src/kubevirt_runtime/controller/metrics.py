"""virt-controller's Prometheus metrics, with upstream KubeVirt's names.

kubevirt_vmi_phase_count is computed from the VMI cache at scrape time (no bookkeeping to drift).
"""
from collections import Counter

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import GaugeMetricFamily

LEADING = Gauge("kubevirt_virt_controller_leading_status", "1 when this virt-controller is the leader.")
READY = Gauge("kubevirt_virt_controller_ready_status", "1 when this virt-controller is ready to reconcile.")

_PHASE_LABELS = ["node", "phase", "os", "workload", "flavor", "instance_type", "preference"]


class VMIPhaseCollector:
    def __init__(self, vmi_store):
        self.vmi_store = vmi_store

    def collect(self):
        family = GaugeMetricFamily("kubevirt_vmi_phase_count", "Number of VMIs by phase and node.",
                                   labels=_PHASE_LABELS)
        counts = Counter()
        for vmi in self.vmi_store.list():
            annotations = vmi["metadata"].get("annotations") or {}
            counts[((vmi.get("status") or {}).get("nodeName", ""),
                    ((vmi.get("status") or {}).get("phase") or "").lower(),
                    annotations.get("vm.kubevirt.io/os", "<none>"),
                    annotations.get("vm.kubevirt.io/workload", "<none>"),
                    annotations.get("vm.kubevirt.io/flavor", "<none>"),
                    "<none>", "<none>")] += 1
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        yield family


def register_vmi_phase_collector(vmi_store, registry=REGISTRY):
    collector = VMIPhaseCollector(vmi_store)
    registry.register(collector)
    return collector
