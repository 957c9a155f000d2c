"""The launcher pod's file layout: where virt-controller mounts each volume and virt-launcher finds it.

Directories under PRIVATE_DIR (an emptyDir) are mount points of the pod volumes a VMI's volumes need;
each holds one subdirectory per VMI volume, named like the volume.
"""

SOCKET_DIR = "/var/run/kubevirt/sockets"
PRIVATE_DIR = "/var/run/kubevirt-private"
# containerDisk and kernelBoot images are not copied: each runs idle as a container of the pod, a shell whose
# script starts with ": CONTAINER_DISK_MARKER=<volume name | KERNEL_BOOT_DIR>;"; the launcher finds it (the pod
# shares one PID namespace) and reads the image through /proc/<pid>/root (launcher/container_disks.py).
CONTAINER_DISK_MARKER = "kubevirt-container-disk"
KERNEL_BOOT_DIR = "kernel-boot"  # the kernelBoot image's name in that script (and in CONTAINER_DISK_DIR)
# A launcher run as a local process (no pod) reads <volume>/ here instead: the image's files.
CONTAINER_DISK_DIR = "/var/run/kubevirt/container-disks"
# <volume>.img: the disk.img of a hotplugged PVC, bind-mounted by virt-handler into this emptyDir (whose mount
# takes mounts from the host: mountPropagation HostToContainer).
HOTPLUG_DISK_DIR = "/var/run/kubevirt/hotplug-disks"

# libvirt's runtime directory (its sockets, and a migration's under kubevirt-migration/) is PRIVATE_DIR's
# LIBVIRT_RUNTIME_SUBPATH, so virt-handler reaches them through the kubelet's pod directory.
LIBVIRT_RUNTIME_DIR = "/run/libvirt"
LIBVIRT_RUNTIME_SUBPATH = "libvirt/run"

# Under PRIVATE_DIR:
PVC_DISKS = "vmi-disks"        # <volume>/disk.img: a persistentVolumeClaim or dataVolume (filesystem mode)
HOST_DISKS = "host-disks"      # <volume>/: the node directory holding a hostDisk's file
CONFIG_MAPS = "config-map"     # <volume>/: a ConfigMap's files
SECRETS = "secret"             # <volume>/: a Secret's files
DOWNWARD_API = "downward-api"  # <volume>/: downward API files
SERVICE_ACCOUNT = "service-account"  # token, ca.crt, namespace of the serviceAccount volume
CLOUD_INIT = "cloud-init"      # <volume>/user/, <volume>/network/: cloud-init secretRef / networkDataSecretRef


def private(*parts: str) -> str:
    return "/".join((PRIVATE_DIR,) + parts)
