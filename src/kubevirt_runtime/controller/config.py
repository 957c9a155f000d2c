"""virt-controller settings (from flags) and the launcher pod's resource overhead, in one place."""
from dataclasses import dataclass

# What a virt-launcher pod needs on top of the guest: libvirt (libvirtd in a migration target), QEMU's own
# memory (device emulation, page tables, I/O buffers) and our launcher process. Upstream computes ~170-250Mi
# for small guests; a fixed figure is simpler to reason about and safe for the guests we run.
LAUNCHER_MEMORY_OVERHEAD = "150Mi"
# Added to a VMI's CPU limit only: requests follow upstream (launcher_pod.launcher_resources).
LAUNCHER_CPU_OVERHEAD = "100m"
# The pod gets this much longer than the guest to shut down, so the launcher can stop the domain
# gracefully and still report back before the kubelet kills it.
LAUNCHER_EXTRA_GRACE_SECONDS = 15

DEFAULT_LAUNCHER_IMAGE = "kubevirt-ops/virt-launcher:latest"
# What a containerDisk container runs (the image is FROM scratch: it has nothing to run itself): the pod
# sandbox's pause binary, reached through PID 1's root in the pod's shared PID namespace.
CONTAINER_DISK_COMMAND = ("/proc/1/root/pause",)


@dataclass
class ControllerConfig:
    launcher_image: str = DEFAULT_LAUNCHER_IMAGE
    launcher_pull_policy: str = "IfNotPresent"
    importer_image: str | None = None  # the DataVolume, snapshot and restore pods' (None: the launcher image)
    container_disk_command: tuple = CONTAINER_DISK_COMMAND
    namespace: str = "kubevirt"  # where the leader-election Lease lives
    lease_name: str = "virt-controller"
    vm_workers: int = 3
    vmi_workers: int = 3
    # How long a finished launcher pod may wait for virt-handler to record the guest's end before the
    # controller marks the VMI Failed itself.
    handler_grace_seconds: float = 10.0
