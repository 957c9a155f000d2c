"""virt-handler's per-VMI metrics: libvirt's domain stats with upstream KubeVirt's names and labels.

Every series has the labels node, namespace, name (the VMI) and kubernetes_vmi_label_<label> for each of the
VMI's labels (as upstream); vCPUs add id (and state), disks drive (the VMI disk), interfaces interface and
network. domain_samples() turns one launcher's `stats` answer into samples (pure, table-tested);
DomainStatsCollector asks this node's launchers when Prometheus scrapes.
"""
from __future__ import annotations

import logging
import re

from prometheus_client.core import Metric

from .launcher_client import LauncherClient, LauncherError

log = logging.getLogger(__name__)
NS = 1e9  # libvirt reports times in nanoseconds
KIB = 1024  # and balloon sizes in KiB

# name: (type, help, libvirt key, scale)
_DOMAIN = {
    "kubevirt_vmi_cpu_usage_seconds_total": ("counter", "Total CPU time spent in all modes (sum of both vcpu and "
                                             "hypervisor usage).", "cpu.time", 1 / NS),
    "kubevirt_vmi_cpu_user_usage_seconds_total": ("counter", "Total CPU time spent in user mode.", "cpu.user",
                                                  1 / NS),
    "kubevirt_vmi_cpu_system_usage_seconds_total": ("counter", "Total CPU time spent in system mode.", "cpu.system",
                                                    1 / NS),
    "kubevirt_vmi_memory_resident_bytes": ("gauge", "Resident set size of the process running the domain.",
                                           "balloon.rss", KIB),
    "kubevirt_vmi_memory_available_bytes": ("gauge", "Amount of usable memory as seen by the domain.",
                                            "balloon.available", KIB),
    "kubevirt_vmi_memory_unused_bytes": ("gauge", "The amount of memory left completely unused by the system.",
                                         "balloon.unused", KIB),
    "kubevirt_vmi_memory_cached_bytes": ("gauge", "The amount of memory that is being used to cache I/O and is "
                                         "available to be reclaimed.", "balloon.disk_caches", KIB),
    "kubevirt_vmi_memory_swap_in_traffic_bytes": ("gauge", "The total amount of data read from swap space of the "
                                                  "guest in bytes.", "balloon.swap_in", KIB),
    "kubevirt_vmi_memory_swap_out_traffic_bytes": ("gauge", "The total amount of memory written out to swap space of "
                                                   "the guest in bytes.", "balloon.swap_out", KIB),
    "kubevirt_vmi_memory_pgmajfault_total": ("counter", "The number of page faults when disk IO was required.",
                                             "balloon.major_fault", 1),
    "kubevirt_vmi_memory_pgminfault_total": ("counter", "The number of other page faults, when disk IO was not "
                                             "required.", "balloon.minor_fault", 1),
    "kubevirt_vmi_memory_actual_balloon_bytes": ("gauge", "Current balloon size in bytes.", "balloon.current", KIB),
    "kubevirt_vmi_memory_usable_bytes": ("gauge", "The amount of memory which can be reclaimed by balloon without "
                                         "pushing the guest system to swap.", "balloon.usable", KIB),
    "kubevirt_vmi_memory_domain_bytes": ("gauge", "The amount of memory in bytes allocated to the domain. The memory "
                                         "value in domain xml file.", "balloon.maximum", KIB),
}
_VCPU = {
    "kubevirt_vmi_vcpu_seconds_total": ("counter", "Total amount of time spent in each state by each vcpu (cpu_time "
                                        "excluding hypervisor time).", "time"),
    "kubevirt_vmi_vcpu_wait_seconds_total": ("counter", "Amount of time spent by each vcpu while waiting on I/O.",
                                             "wait"),
    "kubevirt_vmi_vcpu_delay_seconds_total": ("counter", "Amount of time spent by each vcpu waiting in the queue "
                                              "instead of running.", "delay"),
}
_VCPU_STATES = {0: "offline", 1: "running", 2: "blocked"}
_NET = {
    "kubevirt_vmi_network_receive_bytes_total": ("Total network traffic received in bytes.", "rx.bytes"),
    "kubevirt_vmi_network_transmit_bytes_total": ("Total network traffic transmitted in bytes.", "tx.bytes"),
    "kubevirt_vmi_network_receive_packets_total": ("Total network traffic received packets.", "rx.pkts"),
    "kubevirt_vmi_network_transmit_packets_total": ("Total network traffic transmitted packets.", "tx.pkts"),
    "kubevirt_vmi_network_receive_errors_total": ("Total network received error packets.", "rx.errs"),
    "kubevirt_vmi_network_transmit_errors_total": ("Total network transmitted error packets.", "tx.errs"),
    "kubevirt_vmi_network_receive_packets_dropped_total": ("The total number of rx packets dropped on vNIC "
                                                           "interfaces.", "rx.drop"),
    "kubevirt_vmi_network_transmit_packets_dropped_total": ("The total number of tx packets dropped on vNIC "
                                                            "interfaces.", "tx.drop"),
}
_BLOCK = {
    "kubevirt_vmi_storage_iops_read_total": ("Total number of I/O read operations.", "rd.reqs", 1),
    "kubevirt_vmi_storage_iops_write_total": ("Total number of I/O write operations.", "wr.reqs", 1),
    "kubevirt_vmi_storage_read_traffic_bytes_total": ("Total number of bytes read from storage.", "rd.bytes", 1),
    "kubevirt_vmi_storage_write_traffic_bytes_total": ("Total number of written bytes.", "wr.bytes", 1),
    "kubevirt_vmi_storage_read_times_seconds_total": ("Total time spent on read operations.", "rd.times", 1 / NS),
    "kubevirt_vmi_storage_write_times_seconds_total": ("Total time spent on write operations.", "wr.times", 1 / NS),
    "kubevirt_vmi_storage_flush_requests_total": ("Total storage flush requests.", "fl.reqs", 1),
    "kubevirt_vmi_storage_flush_times_seconds_total": ("Total time spent on cache flushing.", "fl.times", 1 / NS),
}
FAMILIES = {name: spec[:2] for name, spec in {**_DOMAIN, **_VCPU}.items()}  # name: (type, help)
FAMILIES.update({name: ("counter", spec[0]) for name, spec in {**_NET, **_BLOCK}.items()})
_LABEL_CHARS = re.compile(r"[./-]")


def vmi_labels(vmi: dict, node: str) -> dict:
    meta = vmi["metadata"]
    labels = {"node": (vmi.get("status") or {}).get("nodeName") or node, "namespace": meta.get("namespace", ""),
              "name": meta.get("name", "")}
    for key, value in (meta.get("labels") or {}).items():
        labels["kubernetes_vmi_label_" + _LABEL_CHARS.sub("_", key)] = value
    return labels


def domain_samples(vmi: dict, node: str, answer: dict) -> list[tuple[str, dict, float]]:
    """[(metric name, labels, value)] of one VMI from its launcher's `stats` answer."""
    raw = answer.get("stats") or {}
    base = vmi_labels(vmi, node)
    out = []
    for name, (_kind, _text, key, scale) in _DOMAIN.items():
        if key in raw:
            out.append((name, base, raw[key] * scale))
    for n in range(int(raw.get("vcpu.maximum", raw.get("vcpu.current", 0)) or 0)):
        for name, (_kind, _text, field) in _VCPU.items():
            value = raw.get(f"vcpu.{n}.{field}")
            if value is None:
                continue
            labels = dict(base, id=str(n))
            if field == "time":
                labels["state"] = _VCPU_STATES.get(raw.get(f"vcpu.{n}.state"), "unknown")
            out.append((name, labels, value / NS))
    networks = {i.get("name"): i.get("name") for i in
                ((vmi.get("spec") or {}).get("domain") or {}).get("devices", {}).get("interfaces") or []}
    for i in range(int(raw.get("net.count", 0) or 0)):
        dev = raw.get(f"net.{i}.name")
        if dev is None:
            continue
        iface = (answer.get("interfaces") or {}).get(dev, dev)
        labels = dict(base, interface=iface, network=networks.get(iface, ""))
        for name, (_text, key) in _NET.items():
            if f"net.{i}.{key}" in raw:
                out.append((name, labels, raw[f"net.{i}.{key}"]))
    for i in range(int(raw.get("block.count", 0) or 0)):
        dev = raw.get(f"block.{i}.name")
        if dev is None:
            continue
        labels = dict(base, drive=(answer.get("drives") or {}).get(dev, dev))
        for name, (_text, key, scale) in _BLOCK.items():
            if f"block.{i}.{key}" in raw:
                out.append((name, labels, raw[f"block.{i}.{key}"] * scale))
    return out


def families(samples) -> list[Metric]:
    by_name = {}
    for name, labels, value in samples:
        kind, text = FAMILIES[name]
        family = by_name.get(name)
        if family is None:
            family = by_name[name] = Metric(name[:-6] if kind == "counter" else name, text, kind)
        family.add_sample(name, labels, float(value))
    return list(by_name.values())


class DomainStatsCollector:
    """Asks every launcher virt-handler follows for its domain stats when /metrics is scraped."""

    def __init__(self, handler, timeout: float = 3.0):
        self.handler, self.timeout = handler, timeout

    def collect(self):
        samples = []
        for uid, key, path in self.handler.followed_launchers():
            vmi = self.handler.informer.store.get(key)
            if vmi is None or vmi["metadata"].get("uid") != uid:
                continue
            client = LauncherClient(path, self.timeout)
            try:
                samples += domain_samples(vmi, self.handler.node_name, client.call("stats"))
            except (LauncherError, OSError, ValueError) as exc:
                log.debug("no stats from the launcher of %s: %s", key, exc)
            finally:
                client.close()
        yield from families(samples)
