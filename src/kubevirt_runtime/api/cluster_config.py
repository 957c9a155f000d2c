"""The KubeVirt CR's spec.configuration, as the components read it (pure).

Upstream has one KubeVirt object (by convention `kubevirt` in namespace `kubevirt`); its configuration is
cluster-wide. What we read of it:
- developerConfiguration.useEmulation: guests run with TCG, KVM is never probed;
- developerConfiguration.cpuAllocationRatio (default 10, as upstream): a VMI that requests no CPU gets a
  launcher pod requesting vCPUs / ratio CPUs, i.e. 100m per vCPU by default; 50 packs 50 one-vCPU VMs
  into one CPU of requests;
- evictionStrategy: the cluster-wide default of the VMIs' spec.evictionStrategy (a node drain);
- migrations: parallelMigrationsPerCluster, bandwidthPerMigration, progressTimeout, completionTimeoutPerGiB,
  allowAutoConverge (upstream's defaults when unset).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .quantity import memory_bytes

DEFAULT_CPU_ALLOCATION_RATIO = 10


def _positive(value, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


@dataclass(frozen=True)
class MigrationConfig:
    """spec.configuration.migrations (upstream's defaults, pkg/virt-config)."""

    parallel_per_cluster: int = 5
    bandwidth_mib: int = 0  # bandwidthPerMigration in MiB/s; 0: unlimited
    progress_timeout: int = 150
    completion_timeout_per_gib: int = 150
    allow_auto_converge: bool = False

    @classmethod
    def from_config(cls, migrations: dict | None) -> "MigrationConfig":
        migrations = migrations or {}
        bandwidth = 0
        try:
            bandwidth = memory_bytes(migrations.get("bandwidthPerMigration") or "0") // (1 << 20)
        except ValueError:
            pass
        return cls(parallel_per_cluster=_positive(migrations.get("parallelMigrationsPerCluster"), 5),
                   bandwidth_mib=bandwidth,
                   progress_timeout=_positive(migrations.get("progressTimeout"), 150),
                   completion_timeout_per_gib=_positive(migrations.get("completionTimeoutPerGiB"), 150),
                   allow_auto_converge=migrations.get("allowAutoConverge") is True)

    def launcher_options(self) -> dict:
        """What the source launcher's `migrate` takes (launcher/migration.py)."""
        return {"bandwidthMiB": self.bandwidth_mib, "progressTimeout": self.progress_timeout,
                "completionTimeoutPerGiB": self.completion_timeout_per_gib,
                "allowAutoConverge": self.allow_auto_converge}


@dataclass(frozen=True)
class ClusterConfig:
    use_emulation: bool = False
    cpu_allocation_ratio: int = DEFAULT_CPU_ALLOCATION_RATIO
    eviction_strategy: str | None = None
    migrations: MigrationConfig = field(default_factory=MigrationConfig)

    @classmethod
    def from_kubevirt(cls, kubevirt: dict | None) -> "ClusterConfig":
        config = ((kubevirt or {}).get("spec") or {}).get("configuration") or {}
        dev = config.get("developerConfiguration") or {}
        ratio = dev.get("cpuAllocationRatio")
        if not isinstance(ratio, int) or isinstance(ratio, bool) or ratio < 1:
            ratio = DEFAULT_CPU_ALLOCATION_RATIO
        strategy = config.get("evictionStrategy") if isinstance(config.get("evictionStrategy"), str) else None
        return cls(use_emulation=dev.get("useEmulation") is True, cpu_allocation_ratio=ratio,
                   eviction_strategy=strategy, migrations=MigrationConfig.from_config(config.get("migrations")))
