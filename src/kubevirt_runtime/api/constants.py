"""Names shared by every component: group/version/kinds, phases, labels, annotations, finalizers.

Values are upstream KubeVirt's, so kubectl, virtctl and existing manifests keep working.
"""

GROUP = "kubevirt.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"

VM_KIND = "VirtualMachine"
VM_PLURAL = "virtualmachines"
VM_SINGULAR = "virtualmachine"
VM_SHORT_NAMES = ["vm", "vms"]

VMI_KIND = "VirtualMachineInstance"
VMI_PLURAL = "virtualmachineinstances"
VMI_SINGULAR = "virtualmachineinstance"
VMI_SHORT_NAMES = ["vmi", "vmis"]

VMIRS_KIND = "VirtualMachineInstanceReplicaSet"
VMIRS_PLURAL = "virtualmachineinstancereplicasets"
VMIRS_SINGULAR = "virtualmachineinstancereplicaset"
VMIRS_SHORT_NAMES = ["vmirs", "vmirss"]

POOL_GROUP = "pool.kubevirt.io"
POOL_VERSION = "v1beta1"  # stored
POOL_SERVED_OLD_VERSION = "v1alpha1"  # still served, same schema
POOL_KIND = "VirtualMachinePool"
POOL_PLURAL = "virtualmachinepools"
POOL_SINGULAR = "virtualmachinepool"
POOL_SHORT_NAMES = ["vmpool", "vmpools"]


class VMIPhase:
    """VirtualMachineInstance.status.phase."""

    UNSET = ""
    PENDING = "Pending"
    SCHEDULING = "Scheduling"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    ALL = (PENDING, SCHEDULING, SCHEDULED, RUNNING, SUCCEEDED, FAILED, UNKNOWN)
    FINAL = (SUCCEEDED, FAILED)


def vmi_is_final(vmi: dict) -> bool:
    return (vmi.get("status") or {}).get("phase") in VMIPhase.FINAL


class RunStrategy:
    """VirtualMachine.spec.runStrategy."""

    ALWAYS = "Always"
    HALTED = "Halted"
    MANUAL = "Manual"
    RERUN_ON_FAILURE = "RerunOnFailure"
    ONCE = "Once"

    ALL = (ALWAYS, HALTED, MANUAL, RERUN_ON_FAILURE, ONCE)


class PrintableStatus:
    """VirtualMachine.status.printableStatus (the STATUS column of `kubectl get vm`)."""

    STOPPED = "Stopped"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    PAUSED = "Paused"
    STOPPING = "Stopping"
    TERMINATING = "Terminating"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    MIGRATING = "Migrating"
    UNKNOWN = "Unknown"
    UNSCHEDULABLE = "ErrorUnschedulable"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    PVC_NOT_FOUND = "ErrorPvcNotFound"
    DATA_VOLUME_ERROR = "DataVolumeError"
    WAITING_FOR_VOLUME_BINDING = "WaitingForVolumeBinding"

    ALL = (STOPPED, PROVISIONING, STARTING, RUNNING, PAUSED, STOPPING, TERMINATING,
           CRASH_LOOP_BACK_OFF, MIGRATING, UNKNOWN, UNSCHEDULABLE, ERR_IMAGE_PULL,
           IMAGE_PULL_BACK_OFF, PVC_NOT_FOUND, DATA_VOLUME_ERROR, WAITING_FOR_VOLUME_BINDING)


class ConditionType:
    """Condition types on VMs and VMIs (VMIs also carry the launcher pod's PodScheduled)."""

    READY = "Ready"
    FAILURE = "Failure"
    PAUSED = "Paused"
    LIVE_MIGRATABLE = "LiveMigratable"
    AGENT_CONNECTED = "AgentConnected"
    SYNCHRONIZED = "Synchronized"
    POD_SCHEDULED = "PodScheduled"
    PROVISIONING = "Provisioning"


class StateChangeAction:
    """VirtualMachine.status.stateChangeRequests[].action (written by virt-api start/stop/restart)."""

    START = "Start"
    STOP = "Stop"


# stateChangeRequests[].data key: the VM's metadata.generation when virt-api queued a Start. A Start
# queued before the VM was set to Halted (e.g. restart, then stop) is superseded by that spec change.
REQUEST_GENERATION_KEY = "kubevirt-ops.io/vm-generation"


# Labels and annotations.
APP_LABEL = "kubevirt.io"  # value "virt-launcher" on launcher pods
LAUNCHER_APP_VALUE = "virt-launcher"
CREATED_BY_LABEL = "kubevirt.io/created-by"  # VMI uid, on launcher pods
LAUNCHER_ATTEMPT_ANNOTATION = "kubevirt.io/launcher-attempt"  # on a pod that replaces one the kubelet rejected
NODE_NAME_LABEL = "kubevirt.io/nodeName"  # on VMIs once Scheduled
VM_NAME_LABEL = "vm.kubevirt.io/name"  # on launcher pods
DOMAIN_ANNOTATION = "kubevirt.io/domain"  # on launcher pods: the VMI name

# Finalizers.
VMI_FINALIZER = "foregroundDeleteVirtualMachine"  # virt-controller removes the launcher pod first
VM_CONTROLLER_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"  # VM controller sees the final VMI

DEFAULT_GRACE_PERIOD_SECONDS = 30
