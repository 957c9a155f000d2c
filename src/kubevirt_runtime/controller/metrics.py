"""virt-controller's Prometheus metrics, with upstream KubeVirt's names and labels.

- kubevirt_virt_controller_leading_status / _ready_status;
- kubevirt_vmi_info (one series = 1 per VMI) and kubevirt_vmi_phase_count (deprecated upstream, kept for
  dashboards), computed from the caches when scraped (no bookkeeping to drift);
- kubevirt_vmi_phase_transition_time_from_creation_seconds{phase} and
  kubevirt_vmi_phase_transition_time_seconds{phase, last_phase}: histograms with upstream's buckets, observed
  when the VMI cache sees a phase change (on the leader, whose informers run).
"""
from collections import Counter

from prometheus_client import REGISTRY, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from ..api import timeline
from ..api.constants import CREATED_BY_LABEL

LEADING = Gauge("kubevirt_virt_controller_leading_status", "Indication for an operating virt-controller.")
READY = Gauge("kubevirt_virt_controller_ready_status", "Indication for a virt-controller that is ready to take the "
              "lead.")

PHASE_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
FROM_CREATION = Histogram("kubevirt_vmi_phase_transition_time_from_creation_seconds",
                          "Histogram of VM phase transitions duration from creation time in seconds.", ["phase"],
                          buckets=PHASE_BUCKETS)
BETWEEN_PHASES = Histogram("kubevirt_vmi_phase_transition_time_seconds",
                           "Histogram of VM phase transitions duration between different phases in seconds.",
                           ["phase", "last_phase"], buckets=PHASE_BUCKETS)

_PHASE_LABELS = ["node", "phase", "os", "workload", "flavor", "instance_type", "preference"]
_INFO_LABELS = ["node", "namespace", "name", "phase", "os", "workload", "flavor", "instance_type", "preference",
                "guest_os_kernel_release", "guest_os_machine", "guest_os_arch", "guest_os_name",
                "guest_os_version_id", "evictable", "outdated", "vmi_pod"]
OUTDATED_LABEL = "kubevirt.io/outdatedLauncherImage"


def _phase_time(vmi, phase):
    """When `vmi` entered `phase`: the startup timeline's millisecond stamp for Running, else the (whole
    second) phaseTransitionTimestamp."""
    if phase == "Running":
        stamp = timeline.parse_stamp(timeline.recorded(vmi.get("status")).get("Running"))
        if stamp is not None:
            return stamp
    times = [t.get("phaseTransitionTimestamp") for t in (vmi.get("status") or {}).get("phaseTransitionTimestamps")
             or [] if t.get("phase") == phase]
    return timeline.parse_stamp(times[-1]) if times else None


def phase_transitions(old, new):
    """[(histogram, labels, seconds)] to observe for the update old -> new of a VMI (pure)."""
    before, after = (old.get("status") or {}).get("phase"), (new.get("status") or {}).get("phase")
    if not after or before == after:
        return []
    entered = _phase_time(new, after)
    if entered is None:
        return []
    out = []
    created = timeline.parse_stamp(new["metadata"].get("creationTimestamp"))
    if created is not None:
        out.append((FROM_CREATION, {"phase": after}, max(0.0, entered - created)))
    left = _phase_time(new, before) if before else None
    if left is not None:
        out.append((BETWEEN_PHASES, {"phase": after, "last_phase": before}, max(0.0, entered - left)))
    return out


def observe_vmi_update(old, new):
    for histogram, labels, seconds in phase_transitions(old, new):
        histogram.labels(**labels).observe(seconds)


def vmi_info_labels(vmi, pods):
    """The label values of kubevirt_vmi_info for `vmi` (`pods`: the launcher pods of its namespace)."""
    meta, status = vmi["metadata"], vmi.get("status") or {}
    annotations = meta.get("annotations") or {}
    guest = status.get("guestOSInfo") or {}
    node = status.get("nodeName") or ""
    pod_name = next((p["metadata"]["name"] for p in pods
                     if (p["metadata"].get("labels") or {}).get(CREATED_BY_LABEL) == meta.get("uid")
                     and (p.get("status") or {}).get("phase") == "Running"
                     and (p.get("spec") or {}).get("nodeName") == node), "")
    live_migrate = (vmi.get("spec") or {}).get("evictionStrategy") in ("LiveMigrate", "LiveMigrateIfPossible")
    migratable = any(c.get("type") == "LiveMigratable" and c.get("status") == "True"
                     for c in status.get("conditions") or [])
    return [node, meta.get("namespace", ""), meta.get("name", ""), (status.get("phase") or "").lower(),
            annotations.get("vm.kubevirt.io/os", ""), annotations.get("vm.kubevirt.io/workload", ""),
            annotations.get("vm.kubevirt.io/flavor", ""),
            annotations.get("kubevirt.io/instancetype-name") or annotations.get("kubevirt.io/cluster-instancetype-name")
            or "",
            annotations.get("kubevirt.io/preference-name") or annotations.get("kubevirt.io/cluster-preference-name")
            or "",
            guest.get("kernelRelease", ""), (status.get("machine") or {}).get("type", ""), guest.get("machine", ""),
            guest.get("name", ""), guest.get("versionId", ""),
            str(not live_migrate or migratable).lower(), str(OUTDATED_LABEL in (meta.get("labels") or {})).lower(),
            pod_name]


class VMICollector:
    """kubevirt_vmi_info and kubevirt_vmi_phase_count from the VMI (and launcher pod) caches."""

    def __init__(self, vmi_store, pod_store=None):
        self.vmi_store, self.pod_store = vmi_store, pod_store

    def collect(self):
        info = GaugeMetricFamily("kubevirt_vmi_info", "Information about VirtualMachineInstances.",
                                 labels=_INFO_LABELS)
        phases = GaugeMetricFamily("kubevirt_vmi_phase_count", "Sum of VMIs per phase and node (deprecated upstream: "
                                   "use kubevirt_vmi_info).", labels=_PHASE_LABELS)
        pods = self.pod_store.list() if self.pod_store is not None else []
        counts = Counter()
        for vmi in self.vmi_store.list():
            labels = vmi_info_labels(vmi, [p for p in pods
                                           if p["metadata"].get("namespace") == vmi["metadata"].get("namespace")])
            info.add_metric(labels, 1)
            counts[(labels[0], labels[3], labels[4] or "<none>", labels[5] or "<none>", labels[6] or "<none>",
                    labels[7] or "<none>", labels[8] or "<none>")] += 1
        for labels, count in sorted(counts.items()):
            phases.add_metric(list(labels), count)
        yield info
        yield phases


def register_vmi_collector(vmi_store, pod_store=None, registry=REGISTRY):
    collector = VMICollector(vmi_store, pod_store)
    registry.register(collector)
    return collector
