"""The launcher pod's file layout: where virt-controller mounts each volume and virt-launcher finds it.

Directories under PRIVATE_DIR (an emptyDir) are mount points of the pod volumes a VMI's volumes need;
each holds one subdirectory per VMI volume, named like the volume.
"""

SOCKET_DIR = "/var/run/kubevirt/sockets"
PRIVATE_DIR = "/var/run/kubevirt-private"
CONTAINER_DISK_DIR = "/var/run/kubevirt/container-disks"  # <volume>/: a containerDisk image's /disk/*
KERNEL_BOOT_DIR = "kernel-boot"  # under CONTAINER_DISK_DIR: kernelBoot.container's kernel and initrd
# <volume>/: the directory of a hotplugged PVC, bind-mounted by virt-handler into this emptyDir (whose mount
# takes mounts from the host: mountPropagation HostToContainer); the disk is <volume>/disk.img.
HOTPLUG_DISK_DIR = "/var/run/kubevirt/hotplug-disks"

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
