"""The KubeVirt CR's spec.configuration, as the components read it (pure).

Upstream has one KubeVirt object (by convention `kubevirt` in namespace `kubevirt`); its configuration is
cluster-wide. What we read of it:
- developerConfiguration.useEmulation: guests run with TCG, KVM is never probed;
- developerConfiguration.cpuAllocationRatio (default 10, as upstream): a VMI that requests no CPU gets a
  launcher pod requesting vCPUs / ratio CPUs, i.e. 100m per vCPU by default; 50 packs 50 one-vCPU VMs
  into one CPU of requests.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CPU_ALLOCATION_RATIO = 10


@dataclass(frozen=True)
class ClusterConfig:
    use_emulation: bool = False
    cpu_allocation_ratio: int = DEFAULT_CPU_ALLOCATION_RATIO

    @classmethod
    def from_kubevirt(cls, kubevirt: dict | None) -> "ClusterConfig":
        dev = ((((kubevirt or {}).get("spec") or {}).get("configuration") or {}).get("developerConfiguration")
               or {})
        ratio = dev.get("cpuAllocationRatio")
        if not isinstance(ratio, int) or isinstance(ratio, bool) or ratio < 1:
            ratio = DEFAULT_CPU_ALLOCATION_RATIO
        return cls(use_emulation=dev.get("useEmulation") is True, cpu_allocation_ratio=ratio)
