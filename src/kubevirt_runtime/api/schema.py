"""What this implementation supports of upstream's API: a tree that mirrors upstream's schema (upstream.py).

The CRDs carry upstream's complete schema, so the API server keeps every field a user writes. This tree
says which of those fields we implement. validation.py walks a value against both: upstream's schema
for types, enums and required fields; this tree for support. A field upstream knows but this tree does
not list is refused with the reason recorded in its parent's ``refused`` (or a generic one), never
dropped. Node shapes (all keys optional):

- ``properties``: the supported children (any other child is refused); without it, everything below is
  supported (Kubernetes types passed through to the launcher pod, e.g. affinity);
- ``items`` / ``additionalProperties``: the node of list items / map values;
- ``enum``, ``minimum``, ``maximum``: narrower than upstream's (a value outside is "not supported");
- ``required``: children required on top of upstream's;
- ``refused``: {child: why it is not available};
- ``description``: replaces upstream's text in the CRD (what `kubectl explain` shows) where ours differs.
"""
from __future__ import annotations

DISK_BUSES = ("virtio", "sata", "scsi", "usb")
CDROM_BUSES = ("sata", "scsi")
DISK_CACHES = ("none", "writethrough", "writeback")
DISK_IO = ("native", "threads", "default")
INTERFACE_MODELS = ("virtio", "e1000", "e1000e", "igb", "ne2k_pci", "pcnet", "rtl8139")
ARCHITECTURES = ("amd64",)

# Why a field is refused. Hardware-bound features name what is missing on this cluster.
GPU = "GPU passthrough needs a device plugin for the GPU; none is available on this cluster"
HOST_DEVICE = ("host device passthrough needs a device plugin for the device (permittedHostDevices); none is "
               "available on this cluster")
SRIOV = ("SR-IOV needs an SR-IOV capable NIC, the SR-IOV device plugin and a multus network; none is available "
         "on this cluster")
DRA = ("Dynamic Resource Allocation claims need a DRA driver for the device; none is installed on this cluster")
MULTUS = ("multus networks need the multus CNI meta-plugin, which is not installed on this cluster; only the pod "
          "network is available")
INFER_FROM_VOLUME = "inferring the instancetype or preference from a volume's labels is not implemented"
DEDICATED_CPU = ("dedicated CPUs need the kubelet's static CPU manager policy, which this cluster does not run")
HUGEPAGES = "hugepages are not configured on this cluster's nodes"
CONFIDENTIAL = "confidential computing (SEV, SNP, TDX) needs hardware support; guests here run under TCG emulation"
HOTPLUG = "CPU and memory hotplug (live update) are not implemented"
PERSISTENT_STATE = ("persistent EFI/TPM state needs a persistent backend storage class, which is not "
                    "implemented; the state lives as long as the VMI")
GUEST_AGENT_PROBE = ("exec and guestAgentPing probes run through the guest agent, which virt-launcher does "
                     "not probe yet; use tcpSocket or httpGet")
CREDENTIALS = "accessCredentials (SSH key and password injection) are not implemented; use cloud-init user data"
VIDEO = "choosing the video device is not implemented; the display uses VGA (BIOS) or bochs (EFI)"
CHANGED_BLOCK_TRACKING = "changed block tracking (incremental backup) is not implemented"
PASST = "the passt binding is not implemented; use masquerade or bridge"
BINDING_PLUGIN = "network binding plugins are not implemented; use masquerade or bridge"


def obj(properties, description=None, refused=None, required=None):
    node = {"properties": properties}
    if description:
        node["description"] = description
    if refused:
        node["refused"] = refused
    if required:
        node["required"] = list(required)
    return node


def leaf(description=None, enum=None, minimum=None, maximum=None):
    node = {}
    if description:
        node["description"] = description
    if enum:
        node["enum"] = list(enum)
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    return node


def free(description=None):
    """Everything below is supported as upstream defines it."""
    return leaf(description)


def list_of(item, description=None):
    node = {"items": item}
    if description:
        node["description"] = description
    return node


# ---------------------------------------------------------------- VirtualMachineInstanceSpec

def _cpu():
    return obj({
        "cores": leaf("Cores per socket. Defaults to 1.", minimum=1),
        "sockets": leaf("Sockets. Without cores, sockets and threads it is resources.limits.cpu, else "
                        "resources.requests.cpu, else 1 (rounded up to whole CPUs).", minimum=1),
        "threads": leaf("Threads per core. Defaults to 1.", minimum=1),
        "model": leaf("CPU model: host-model, host-passthrough or a named QEMU model. Under TCG emulation "
                      "host-model and host-passthrough become QEMU's default model."),
    }, refused={"dedicatedCpuPlacement": DEDICATED_CPU, "isolateEmulatorThread": DEDICATED_CPU,
                "numa": DEDICATED_CPU, "realtime": DEDICATED_CPU, "maxSockets": HOTPLUG})


def _firmware():
    return obj({
        "uuid": leaf("SMBIOS UUID. A VM gets a random one when it is created, kept for its life."),
        "serial": leaf("SMBIOS serial number. A VM gets a random one when it is created, kept for its life."),
        "bootloader": obj({
            "bios": obj({"useSerial": leaf()}),
            "efi": obj({"secureBoot": leaf("Secure Boot (OVMF with Microsoft keys). Defaults to true.")},
                       refused={"persistent": PERSISTENT_STATE}),
        }),
        "kernelBoot": obj({
            "kernelArgs": leaf(),
            "container": obj({
                "image": leaf("Image holding the kernel and initrd; it idles as a container of the launcher pod, "
                              "which reads them in place (the image needs no shell)."),
                "imagePullSecret": leaf(), "imagePullPolicy": leaf(), "kernelPath": leaf(), "initrdPath": leaf(),
            }),
        }),
    })


def _features():
    return obj({"acpi": free(), "apic": free(), "smm": free(), "hyperv": free(
        "Hyper-V enlightenments. Without KVM (TCG emulation) QEMU cannot set the VP index, so vpindex is left "
        "out there; the others are passed to the guest.")})


def _disk():
    return obj({
        "name": leaf(),
        "disk": obj({"bus": leaf("Bus of the disk. Defaults to sata (upstream's x86_64 default).", enum=DISK_BUSES),
                     "readonly": leaf()}),
        "cdrom": obj({"bus": leaf("Bus of the CD-ROM. Defaults to sata.", enum=CDROM_BUSES),
                      "readonly": leaf("Read-only CD-ROM. Defaults to true.")}),
        "bootOrder": leaf(minimum=1),
        "serial": leaf(),
        "cache": leaf("Host page cache mode. Unset: none where the storage supports direct I/O, else "
                      "writethrough.", enum=DISK_CACHES),
        "io": leaf(enum=DISK_IO),
    }, refused={"lun": "LUN disks (SCSI passthrough of a block PVC) are not implemented; use disk",
                "changedBlockTracking": CHANGED_BLOCK_TRACKING})


def _interface():
    return obj({
        "name": leaf(),
        "masquerade": free("NAT behind the pod's address: the guest (10.0.2.2) on a tap and bridge in the pod; "
                           "every port is forwarded unless ports are declared."),
        "bridge": free("The pod's interface bridged to the guest's tap: the guest takes the pod's address, "
                       "MAC and routes over DHCP."),
        "model": leaf(enum=INTERFACE_MODELS),
        "macAddress": leaf(),
        "ports": list_of(obj({"name": leaf(), "protocol": leaf(enum=("TCP", "UDP")), "port": leaf()})),
        "bootOrder": leaf(minimum=1),
    }, refused={"sriov": SRIOV, "passt": PASST, "passtBinding": PASST, "binding": BINDING_PLUGIN,
                "macvtap": "the macvtap binding needs a macvtap device plugin and multus; neither is available",
                "slirp": "the slirp binding was removed upstream; use masquerade"})


def _devices():
    return obj({
        "disks": list_of(_disk()),
        "interfaces": list_of(_interface()),
        "autoattachSerialConsole": leaf(),
        "autoattachPodInterface": leaf(),
        "autoattachMemBalloon": leaf(),
        "autoattachGraphicsDevice": leaf("Attach a VNC display and a video device. Defaults to true."),
        "disableHotplug": leaf("No SCSI controller is added for disks attached to the running guest (virtctl "
                               "addvolume), which are then refused."),
        "rng": free("A virtio-rng device fed from the host's /dev/urandom."),
        "tpm": obj({"enabled": leaf()}, description="A TPM 2.0 (tpm-tis), emulated by swtpm in the launcher pod.",
                   refused={"persistent": PERSISTENT_STATE}),
    }, refused={"gpus": GPU, "hostDevices": HOST_DEVICE, "video": VIDEO,
                "filesystems": "virtiofs filesystems need virtiofsd in the launcher pod, which is not implemented",
                "clientPassthrough": "USB redirection is not implemented",
                "downwardMetrics": "the downward metrics device is not implemented"})


def _domain():
    return obj({
        "cpu": _cpu(),
        "memory": obj({"guest": leaf("Memory the guest sees. Defaults to resources.requests.memory, else "
                                     "resources.limits.memory.")},
                      refused={"hugepages": HUGEPAGES, "maxGuest": HOTPLUG}),
        "resources": obj({"requests": free(), "limits": free()}),
        "machine": obj({"type": leaf("Machine type. Unset or empty: q35.")}),
        "firmware": _firmware(),
        "features": _features(),
        "clock": free(),
        "devices": _devices(),
    }, refused={"launchSecurity": CONFIDENTIAL})


def _probe():
    return obj({key: free() for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                                        "successThreshold", "failureThreshold", "httpGet", "tcpSocket")},
               refused={"exec": GUEST_AGENT_PROBE, "guestAgentPing": GUEST_AGENT_PROBE})


def _volume():
    return obj({
        "name": leaf(),
        "containerDisk": obj({"image": leaf(), "imagePullPolicy": leaf(
            "Defaults to Always for an image tagged :latest (or untagged), else IfNotPresent."),
            "imagePullSecret": leaf(), "path": leaf()}),
        "cloudInitNoCloud": free(),
        "cloudInitConfigDrive": free(),
        "emptyDisk": obj({"capacity": leaf()}),
        "persistentVolumeClaim": obj({"claimName": leaf(), "readOnly": leaf(), "hotpluggable": leaf(
            "Attached to the running guest (virtctl addvolume) rather than at boot.")}),
        "dataVolume": obj({"name": leaf("The DataVolume (cdi.kubevirt.io) whose PVC holds the disk; the VMI starts "
                                        "once it has Succeeded."), "hotpluggable": leaf()}),
        "hostDisk": obj({"path": leaf(), "type": leaf(), "capacity": leaf()},
                        description="A disk image on the node (feature gate HostDisk).",
                        refused={"shared": "shared host disks (for live migration) are not implemented"}),
        "configMap": free("A ConfigMap, attached as an ISO disk (label from volumeLabel, default cfgdata)."),
        "secret": free("A Secret, attached as an ISO disk (label from volumeLabel, default cfgdata)."),
        "serviceAccount": free("The service account's token, CA and namespace, attached as an ISO disk."),
        "downwardAPI": free("Downward API files of the launcher pod, attached as an ISO disk."),
    }, refused={"ephemeral": "ephemeral volumes are not implemented; use persistentVolumeClaim",
                "memoryDump": "memory dumps are not implemented", "sysprep": "sysprep (Windows) volumes are not "
                "implemented", "downwardMetrics": "the downward metrics volume is not implemented",
                "containerPath": "containerPath volumes are not implemented"})


VMI_SPEC_FIELDS = {
    "domain": _domain(),
    "volumes": list_of(_volume()),
    "networks": list_of(obj({"name": leaf(), "pod": free()}, refused={"multus": MULTUS, "resourceClaim": DRA})),
    "terminationGracePeriodSeconds": leaf(minimum=0),
    "nodeSelector": free(), "tolerations": free(), "affinity": free(), "topologySpreadConstraints": free(),
    "priorityClassName": free(), "schedulerName": free(), "dnsPolicy": free(), "dnsConfig": free(),
    "hostname": free(), "subdomain": free(),
    "evictionStrategy": free("What a node drain (an eviction of the launcher pod) does: LiveMigrate migrates the "
                             "VMI to another node (the eviction is refused until it has moved); "
                             "LiveMigrateIfPossible does so when the VMI is live migratable and lets the pod go "
                             "otherwise; External only marks the VMI (status.evacuationNodeName); None lets the "
                             "pod go. Unset: the KubeVirt CR's spec.configuration.evictionStrategy."),
    "architecture": leaf(enum=ARCHITECTURES),
    "readinessProbe": _probe(), "livenessProbe": _probe(),
}
VMI_SPEC_REFUSED = {"accessCredentials": CREDENTIALS, "resourceClaims": DRA,
                    "utilityVolumes": "utility volumes are not implemented"}


def vmi_spec():
    return obj(VMI_SPEC_FIELDS, refused=VMI_SPEC_REFUSED)


def _template(spec):
    return obj({"metadata": free(), "spec": spec})


# ---------------------------------------------------------------- other kinds

def _matcher():
    return obj({"name": leaf(), "kind": leaf(), "revisionName": leaf()},
               refused={"inferFromVolume": INFER_FROM_VOLUME, "inferFromVolumeFailurePolicy": INFER_FROM_VOLUME})


def vm_spec():
    return obj({
        "runStrategy": leaf(
            "When an instance of this VM should exist. Always: keep one running, restart it whenever it stops "
            "or fails. Halted: no instance. Manual: only start/stop requests (virtctl) change it. "
            "RerunOnFailure: run one, restart it after a failure but not after the guest shut down cleanly. "
            "Once: run one instance once; do not restart it. Cannot be set together with `running`."),
        "running": leaf("Deprecated: use runStrategy. true is Always, false is Halted."),
        "template": _template(vmi_spec()),
        "instancetype": _matcher(),
        "preference": _matcher(),
        "dataVolumeTemplates": list_of(obj({"apiVersion": leaf(), "kind": leaf(), "metadata": free(),
                                            "spec": datavolume_spec(), "status": free()}),
                                       "DataVolumes the VM owns: created with the VM, deleted with it."),
    }, refused={"updateVolumesStrategy": "volume migration is not implemented"})


def replicaset_spec():
    return obj({"replicas": leaf(minimum=0), "selector": free(), "template": _template(vmi_spec()),
                "paused": leaf()})


def pool_spec():
    return obj({"replicas": leaf(minimum=0), "selector": free(), "paused": leaf(), "nameGeneration": free(),
                "virtualMachineTemplate": _template(vm_spec())})


def instancetype_spec():
    return obj({
        "cpu": obj({"guest": leaf(minimum=1), "model": leaf()},
                   refused={"dedicatedCPUPlacement": DEDICATED_CPU, "isolateEmulatorThread": DEDICATED_CPU,
                            "numa": DEDICATED_CPU, "realtime": DEDICATED_CPU, "maxSockets": HOTPLUG}),
        "memory": obj({"guest": leaf(), "overcommitPercent": leaf(minimum=0, maximum=100)},
                      refused={"hugepages": HUGEPAGES, "maxGuest": HOTPLUG}),
        "nodeSelector": free(), "schedulerName": free(), "annotations": free(),
    }, refused={"gpus": GPU, "hostDevices": HOST_DEVICE, "launchSecurity": CONFIDENTIAL,
                "ioThreads": "IO thread pools are not implemented",
                "ioThreadsPolicy": "IO threads are not implemented"})


def preference_spec():
    return obj({
        "annotations": free(),
        "clock": free(),
        "cpu": obj({"preferredCPUTopology": leaf(), "spreadOptions": free()}),
        "devices": obj({key: free() for key in (
            "preferredAutoattachPodInterface", "preferredAutoattachSerialConsole", "preferredAutoattachMemBalloon",
            "preferredAutoattachGraphicsDevice",
            "preferredCdromBus", "preferredDiskBus", "preferredDiskCache", "preferredDiskIO",
            "preferredInterfaceMasquerade", "preferredInterfaceModel", "preferredRng")}
            | {"preferredTPM": obj({"enabled": leaf()}, refused={"persistent": PERSISTENT_STATE})},
            refused={"preferredVideoType": VIDEO,
                     "preferredVirtualGPUOptions": GPU}),
        "features": obj({key: free() for key in ("preferredAcpi", "preferredApic", "preferredSmm", "preferredHyperv")}),
        "firmware": obj({key: free() for key in ("preferredUseBios", "preferredUseBiosSerial", "preferredUseEfi",
                                                 "preferredUseSecureBoot")}
                        | {"preferredEfi": obj({"secureBoot": leaf()}, refused={"persistent": PERSISTENT_STATE})}),
        "machine": free(),
        "preferredTerminationGracePeriodSeconds": free(),
        "preferSpreadSocketToCoreRatio": free(),
        "preferredArchitecture": leaf(enum=ARCHITECTURES),
        "preferredSubdomain": free(),
        "requirements": free(),
    }, refused={"preferredLaunchSecurity": CONFIDENTIAL,
                "volumes": "preferredStorageClassName is not implemented"})


# ---------------------------------------------------------------- cdi.kubevirt.io and snapshot.kubevirt.io

CDI_SOURCE = "this DataVolume source is not implemented; use http, registry, pvc, blank or upload"


def datavolume_spec():
    return obj({
        "source": obj({
            "http": obj({"url": leaf("http:// or https:// URL of a raw or qcow2 image (qcow2 is converted to raw)."),
                         "extraHeaders": free(), "secretRef": leaf(), "certConfigMap": leaf()},
                        refused={"secretExtraHeaders": "headers from Secrets are not implemented; use extraHeaders"}),
            "registry": obj({"url": leaf("docker://<image>: a containerDisk image (its /disk/* file) from the node's "
                                         "containerd."),
                             "pullMethod": leaf("node (the default here): the kubelet runs the image in the importer "
                                                "pod, as containerDisks are run. pod is refused: no registry is "
                                                "reachable to pull from.")},
                            refused={"secretRef": "registry credentials are not "
                                     "implemented", "certConfigMap": "registry certificates are not implemented",
                                     "imageStream": "image streams are OpenShift's", "platform": "platform "
                                     "selection is not implemented"}),
            "pvc": obj({"namespace": leaf(), "name": leaf("A PVC of the same node's storage, copied by the "
                                                          "importer (host-assisted clone).")}),
            "blank": free("An empty raw disk of the PVC's size."),
            "upload": free("Filled by `virtctl image-upload` through the API server's pod proxy."),
        }, refused={"s3": CDI_SOURCE, "gcs": CDI_SOURCE, "imageio": CDI_SOURCE, "vddk": CDI_SOURCE,
                    "snapshot": "VolumeSnapshots need a CSI snapshotter, which this cluster has not; VM snapshots "
                                "are VirtualMachineSnapshots"}),
        "pvc": free("The PVC to create (PersistentVolumeClaimSpec)."),
        "storage": free("The PVC to create, with defaults: accessModes ReadWriteOnce, volumeMode Filesystem, the "
                        "default StorageClass."),
        "contentType": leaf("kubevirt: a disk image (the only content type here).", enum=("kubevirt",)),
        "priorityClassName": leaf(),
    }, refused={"sourceRef": "DataSources are not implemented; name the source directly",
                "checkpoints": "multi-stage (warm) imports are not implemented",
                "finalCheckpoint": "multi-stage (warm) imports are not implemented",
                "preallocation": "preallocation is not implemented: disks are sparse files"})


def snapshot_spec():
    return obj({"source": free("The VirtualMachine to snapshot (apiGroup kubevirt.io, kind VirtualMachine)."),
                "deletionPolicy": leaf(enum=("Delete", "Retain")),
                "failureDeadline": leaf("How long the snapshot may take before it fails (default 5m).")})


def snapshot_content_spec():
    return obj({"source": free(), "virtualMachineSnapshotName": leaf(), "volumeBackups": free()})


def restore_spec():
    return obj({"target": free("The VirtualMachine to restore (apiGroup kubevirt.io, kind VirtualMachine); it must "
                               "be stopped."),
                "virtualMachineSnapshotName": leaf(),
                "targetReadinessPolicy": leaf("FailImmediate (the default here): a running target fails the "
                                              "restore; WaitEventually waits until it is stopped.",
                                              enum=("FailImmediate", "WaitEventually")),
                "volumeRestorePolicy": leaf("RandomizeNames (default): new PVCs restore-<uid>-<volume>; InPlace: "
                                            "the disks of the VM's own PVCs are overwritten.",
                                            enum=("RandomizeNames", "InPlace"))},
               refused={"patches": "patching a new target is not implemented: restore into an existing VM",
                        "volumeRestoreOverrides": "volume restore overrides are not implemented",
                        "volumeOwnershipPolicy": "volume ownership policies are not implemented"})
