"""The OpenAPI schemas of the kubevirt.io/v1 kinds we serve: the one description of our API.

The CRD generator publishes them (so `kubectl explain` and server-side field validation work) and
validation.py walks them, so a field that is not listed here is rejected everywhere. Field names and
meanings are upstream KubeVirt's; only the subset we implement is listed.
"""
from .constants import PrintableStatus, RunStrategy, VMIPhase
from .openapi import (
    array,
    boolean,
    empty_obj,
    free_obj,
    integer,
    obj,
    quantity,
    quantity_map,
    string,
    string_map,
    timestamp,
)

DISK_BUSES = ("virtio", "sata", "scsi")
CDROM_BUSES = ("sata", "scsi")
INTERFACE_MODELS = ("virtio", "e1000", "e1000e", "igb", "ne2k_pci", "pcnet", "rtl8139")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


def _cpu():
    return obj("Guest CPU topology and model.", {
        "cores": integer("Cores per socket. Defaults to 1.", minimum=1),
        "sockets": integer("Number of sockets. Defaults to 1.", minimum=1),
        "threads": integer("Threads per core. Defaults to 1.", minimum=1),
        "model": string("CPU model passed to the hypervisor, e.g. host-model, host-passthrough or a named model."),
    })


def _firmware():
    return obj("Firmware of the guest.", {
        "uuid": string("SMBIOS UUID of the guest. The VM controller sets a stable one."),
        "bootloader": obj("The bootloader: exactly one of bios or efi.", {
            "bios": obj("Legacy BIOS boot.", {"useSerial": boolean("Show BIOS output on the serial console.")}),
            "efi": obj("UEFI boot.", {"secureBoot": boolean("Enable Secure Boot. Defaults to true.")}),
        }),
        "kernelBoot": obj("Boot a kernel (and initrd) taken from a container image instead of a disk.", {
            "kernelArgs": string("Kernel command line."),
            "container": obj("The image that holds the kernel and initrd.", {
                "image": string("Image with the kernel and initrd."),
                "imagePullSecret": string("Secret used to pull the image."),
                "imagePullPolicy": string("When to pull the image.", enum=PULL_POLICIES),
                "kernelPath": string("Path of the kernel inside the image."),
                "initrdPath": string("Path of the initrd inside the image."),
            }, required=["image"]),
        }),
    })


def _disk():
    return obj("A disk of the guest, backed by the volume with the same name.", {
        "name": string("Name of the disk; must match a volume name."),
        "disk": obj("Attach as a hard disk.", {"bus": string("Bus of the disk. Defaults to virtio.", enum=DISK_BUSES)}),
        "cdrom": obj("Attach as a CD-ROM.", {
            "bus": string("Bus of the CD-ROM. Defaults to sata.", enum=CDROM_BUSES),
            "readonly": boolean("Read-only CD-ROM. Defaults to true."),
        }),
        "bootOrder": integer("Boot priority; lower boots first. Devices without one are not bootable "
                             "when any device has one.", minimum=1, fmt="int32"),
    }, required=["name"])


def _interface():
    return obj("A network interface of the guest, connected to the network with the same name.", {
        "name": string("Name of the interface; must match a network name."),
        "masquerade": empty_obj("Connect through NAT behind the pod's address."),
        "model": string("Emulated NIC model. Defaults to virtio.", enum=INTERFACE_MODELS),
        "macAddress": string("MAC address, e.g. de:ad:00:00:be:af."),
        "ports": array("Ports forwarded from the pod to the guest. Empty means all ports.", obj(
            "A forwarded port.", {
                "name": string("Name of the port."),
                "protocol": string("Protocol. Defaults to TCP.", enum=("TCP", "UDP")),
                "port": integer("Port number.", minimum=1, maximum=65535, fmt="int32"),
            }, required=["port"])),
    }, required=["name"])


def _domain():
    return obj("The virtual hardware of the guest.", {
        "cpu": _cpu(),
        "memory": obj("Guest memory.",
                      {"guest": quantity("Memory the guest sees. Defaults to resources.requests.memory.")}),
        "resources": obj("Compute resources of the launcher pod (the guest's share).", {
            "requests": quantity_map("Minimum resources (cpu, memory)."),
            "limits": quantity_map("Maximum resources (cpu, memory)."),
        }),
        "machine": obj("Emulated machine.", {"type": string("Machine type, e.g. q35. Defaults to q35.")}),
        "firmware": _firmware(),
        "devices": obj("Devices attached to the guest.", {
            "disks": array("Disks of the guest.", _disk()),
            "interfaces": array("Network interfaces of the guest.", _interface()),
            "autoattachSerialConsole": boolean("Attach a serial console. Defaults to true."),
            "autoattachGraphicsDevice": boolean("Attach a VNC display and a video device. Defaults to true."),
        }),
    }, required=["devices"])


def _volume():
    return obj("A storage source for a disk.", {
        "name": string("Name of the volume; disks refer to it."),
        "containerDisk": obj("A disk image shipped in a container image (ephemeral: writes are lost at shutdown).", {
            "image": string("Image that holds the disk under /disk."),
            "imagePullPolicy": string("When to pull the image.", enum=PULL_POLICIES),
            "imagePullSecret": string("Secret used to pull the image."),
            "path": string("Path of the disk inside the image."),
        }, required=["image"]),
        "cloudInitNoCloud": obj("Cloud-init data served with the NoCloud datasource.", {
            "userData": string("Cloud-init user data."),
            "userDataBase64": string("Cloud-init user data, base64 encoded."),
            "secretRef": obj("Secret whose `userdata` key holds the user data.", {"name": string("Secret name.")}),
            "networkData": string("Cloud-init network data."),
            "networkDataBase64": string("Cloud-init network data, base64 encoded."),
            "networkDataSecretRef": obj("Secret whose `networkdata` key holds the network data.",
                                        {"name": string("Secret name.")}),
        }),
        "emptyDisk": obj("A blank sparse disk that lives as long as the VMI.", {
            "capacity": quantity("Size of the disk."),
        }, required=["capacity"]),
        "persistentVolumeClaim": obj("A PersistentVolumeClaim in the VMI's namespace.", {
            "claimName": string("Name of the claim."),
            "readOnly": boolean("Attach read-only."),
        }, required=["claimName"]),
    }, required=["name"])


def _toleration():
    return obj("Tolerate a node taint.", {
        "key": string("Taint key; empty matches all keys (with operator Exists)."),
        "operator": string("Exists or Equal. Defaults to Equal.", enum=("Exists", "Equal")),
        "value": string("Taint value to match."),
        "effect": string("Taint effect to match; empty matches all.",
                         enum=("NoSchedule", "PreferNoSchedule", "NoExecute")),
        "tolerationSeconds": integer("How long a NoExecute taint is tolerated."),
    })


def vmi_spec():
    return obj("What the virtual machine instance is: hardware, storage, networks and placement.", {
        "domain": _domain(),
        "volumes": array("Volumes the disks refer to.", _volume()),
        "networks": array("Networks the interfaces connect to.", obj("A network.", {
            "name": string("Name of the network; interfaces refer to it."),
            "pod": obj("The pod's own network.", {
                "vmNetworkCIDR": string("IPv4 CIDR used inside the guest with masquerade."),
                "vmIPv6NetworkCIDR": string("IPv6 CIDR used inside the guest with masquerade."),
            }),
        }, required=["name"])),
        "terminationGracePeriodSeconds": integer("Seconds the guest gets to shut down after a stop before it is "
                                                 "powered off. Defaults to 30.", minimum=0),
        "nodeSelector": string_map("Node labels the launcher pod must match to be scheduled."),
        "tolerations": array("Taints the launcher pod tolerates.", _toleration()),
        "affinity": free_obj("Kubernetes affinity rules for the launcher pod (core/v1 Affinity)."),
    }, required=["domain"])


def _condition():
    return obj("A condition of the object.", {
        "type": string("Condition type, e.g. Ready."),
        "status": string("True, False or Unknown."),
        "reason": string("Machine-readable reason."),
        "message": string("Human-readable message."),
        "lastProbeTime": timestamp("When the condition was last checked."),
        "lastTransitionTime": timestamp("When the status last changed."),
    }, required=["type", "status"])


def vmi_status():
    return obj("What the cluster observed about the instance. Written by virt-controller and virt-handler.", {
        "phase": string("Lifecycle phase: " + ", ".join(VMIPhase.ALL) + "."),
        "reason": string("Why the instance is in this phase, e.g. PodFailed."),
        "nodeName": string("Node the instance runs on."),
        "conditions": array("Conditions of the instance.", _condition()),
        "phaseTransitionTimestamps": array("When each phase was entered.", obj("A phase transition.", {
            "phase": string("The phase."),
            "phaseTransitionTimestamp": timestamp("When it was entered."),
        })),
        "interfaces": array("Network interfaces as seen in the guest.", obj("An interface.", {
            "name": string("Interface name in the spec."),
            "interfaceName": string("Interface name inside the guest."),
            "ipAddress": string("Primary IP address."),
            "ipAddresses": array("All IP addresses.", {"type": "string"}),
            "mac": string("MAC address."),
            "infoSource": string("Where the information came from (domain, guest-agent)."),
            "podInterfaceName": string("Interface name in the pod."),
            "queueCount": integer("Number of queues.", fmt="int32"),
        }, preserve_unknown=True)),
        "guestOSInfo": obj("Operating system reported by the guest agent.", {
            "name": string("Name."), "prettyName": string("Pretty name."), "version": string("Version."),
            "versionId": string("Version id."), "id": string("OS id."), "kernelRelease": string("Kernel release."),
            "kernelVersion": string("Kernel version."), "machine": string("Machine architecture."),
        }, preserve_unknown=True),
        "qosClass": string("QoS class of the launcher pod."),
        "activePods": string_map("Launcher pod uid -> node name."),
        "launcherContainerImageVersion": string("Image of the launcher pod."),
    }, preserve_unknown=True)


def vm_spec():
    return obj("What the virtual machine should be and whether it should run.", {
        "runStrategy": string(
            "When an instance of this VM should exist. Always: keep one running, restart it whenever it stops "
            "or fails. Halted: no instance. Manual: only start/stop requests (virtctl) change it. "
            "RerunOnFailure: run one, restart it after a failure but not after the guest shut down cleanly. "
            "Once: run one instance once; do not restart it. Cannot be set together with `running`.",
            enum=RunStrategy.ALL),
        "running": boolean("Deprecated: use runStrategy. true is Always, false is Halted."),
        "template": obj("The instance to create.", {
            "metadata": obj("Labels and annotations for the instance.", {
                "labels": string_map("Labels."), "annotations": string_map("Annotations."),
            }, preserve_unknown=True),
            "spec": vmi_spec(),
        }, required=["spec"]),
    }, required=["template"])


def vm_status():
    return obj("What the cluster observed about the VM. Written by virt-controller.", {
        "printableStatus": string("Human-readable state: " + ", ".join(PrintableStatus.ALL) + "."),
        "created": boolean("An instance of this VM exists."),
        "ready": boolean("The instance exists and is Ready."),
        "runStrategy": string("The run strategy in effect."),
        "conditions": array("Conditions of the VM.", _condition()),
        "stateChangeRequests": array("Pending start/stop requests, oldest first.", obj("A request.", {
            "action": string("Start or Stop.", enum=("Start", "Stop")),
            "data": string_map("Extra parameters of the request."),
            "uid": string("For Stop: the instance uid to stop.", nullable=True),
        }, required=["action"])),
        "startFailure": obj("Failed starts, for the crash-loop backoff.", {
            "consecutiveFailCount": integer("Starts in a row that failed before the instance ran.", fmt="int32"),
            "lastFailedVMIUID": string("Uid of the last instance that failed."),
            "retryAfterTimestamp": timestamp("The next start is not attempted before this time."),
        }),
        "observedGeneration": integer("Generation of the VM the running instance was created from."),
        "desiredGeneration": integer("Current generation of the VM."),
    }, preserve_unknown=True)


def object_schema(description, spec, status):
    return {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": string("Versioned schema of this object: kubevirt.io/v1."),
            "kind": string("Kind of this object."),
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    }
