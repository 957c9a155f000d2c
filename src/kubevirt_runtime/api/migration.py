"""Live migration: the VirtualMachineInstanceMigration kind (kubevirt.io/v1, short name vmim), its phases,
labels and annotations (upstream's names), what we support of its spec, and whether a VMI can migrate.

A migration moves a running VMI to another node (controller/migration.py decides, handler/migration*.py and the
launcher carry it out). Its phases, in order (upstream's):

    "" -> Pending -> Scheduling -> Scheduled -> PreparingTarget -> TargetReady -> Running -> Succeeded | Failed

The VMI's own record of the migration is ``status.migrationState`` (migrationUid, sourceNode, targetNode,
targetPod, targetNodeAddress, startTimestamp, endTimestamp, completed, failed, abortRequested, ...).
"""
from __future__ import annotations

from . import upstream
from .constants import ConditionType, VMIPhase
from .schema import free, leaf, obj
from .walk import REQUIRED, TYPE, FieldError, walk

KIND = "VirtualMachineInstanceMigration"
PLURAL = "virtualmachineinstancemigrations"
SINGULAR = "virtualmachineinstancemigration"
SHORT_NAMES = ["vmim", "vmims"]


class MigrationPhase:
    """VirtualMachineInstanceMigration.status.phase."""

    UNSET = ""
    PENDING = "Pending"
    SCHEDULING = "Scheduling"
    SCHEDULED = "Scheduled"
    PREPARING_TARGET = "PreparingTarget"
    TARGET_READY = "TargetReady"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    ORDER = (UNSET, PENDING, SCHEDULING, SCHEDULED, PREPARING_TARGET, TARGET_READY, RUNNING, SUCCEEDED)
    FINAL = (SUCCEEDED, FAILED)


# Labels, annotations and the finalizer (upstream's names).
VMI_NAME_LABEL = "kubevirt.io/vmi-name"  # on a migration: the VMI it moves (set by the mutating webhook)
FINALIZER = "kubevirt.io/migrationJobFinalize"  # virt-controller cleans up before a migration goes away
JOB_UID_LABEL = "kubevirt.io/migrationJobUID"  # on the target launcher pod
JOB_NAME_ANNOTATION = "kubevirt.io/migrationJobName"  # on the target launcher pod
TARGET_NODE_LABEL = "kubevirt.io/migrationTargetNodeName"  # on the VMI while the target node prepares
UNSCHEDULABLE_TIMEOUT_ANNOTATION = "kubevirt.io/migrationUnschedulablePodTimeoutSeconds"
PENDING_TIMEOUT_ANNOTATION = "kubevirt.io/migrationPendingPodTimeoutSeconds"
EVACUATION_ANNOTATION = "kubevirt.io/evacuationMigration"  # a migration made for a node drain
# How long a target pod may stay unschedulable, or pending for any reason, before the migration fails.
DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS = 5 * 60
DEFAULT_PENDING_TIMEOUT_SECONDS = 15 * 60

# VMI spec.evictionStrategy values and what a node drain does with each.
EVICTION_LIVE_MIGRATE = "LiveMigrate"
EVICTION_LIVE_MIGRATE_IF_POSSIBLE = "LiveMigrateIfPossible"
EVICTION_EXTERNAL = "External"
EVICTION_NONE = "None"

# Reasons of the VMI's LiveMigratable condition when it is False (upstream's).
DISKS_NOT_MIGRATABLE = "DisksNotLiveMigratable"
INTERFACE_NOT_MIGRATABLE = "InterfaceNotLiveMigratable"
CPU_MODE_NOT_MIGRATABLE = "CPUModeLiveMigratable"

DECENTRALIZED = "decentralized (cross-cluster) migration is not implemented"


def phase(migration: dict) -> str:
    return (migration.get("status") or {}).get("phase") or MigrationPhase.UNSET


def is_final(migration: dict) -> bool:
    return phase(migration) in MigrationPhase.FINAL


def migration_spec():
    """What we implement of VirtualMachineInstanceMigrationSpec (api/schema.py's node shapes)."""
    return obj({
        "vmiName": leaf("The VirtualMachineInstance to migrate, in the migration's namespace."),
        "addedNodeSelector": free("More node labels the target node must have (on top of the VMI's own "
                                  "nodeSelector, which wins where both name a key)."),
    }, refused={"sendTo": DECENTRALIZED, "receive": DECENTRALIZED,
                "priority": "migration priorities are not implemented: migrations start in the order they are made"})


def validate_migration(migration) -> list[FieldError]:
    """Errors of a VirtualMachineInstanceMigration as written by a user (empty when valid)."""
    if not isinstance(migration, dict):
        return [FieldError("", "the object must be a JSON object", TYPE)]
    spec = migration.get("spec")
    if spec is None:
        return [FieldError("spec", "required value", REQUIRED)]
    errors = []
    walk(upstream.schema("v1.VirtualMachineInstanceMigrationSpec"), migration_spec(), spec, "spec", errors)
    if isinstance(spec, dict) and not spec.get("vmiName"):
        errors.append(FieldError("spec.vmiName", "required value", REQUIRED))
    return errors


def eviction_strategy(vmi: dict, cluster_default: str | None) -> str | None:
    """The VMI's evictionStrategy, else the KubeVirt CR's default (spec.configuration.evictionStrategy)."""
    return (vmi.get("spec") or {}).get("evictionStrategy") or cluster_default


def live_migratable(vmi: dict) -> tuple[bool, str, str]:
    """(migratable, reason, message) for the VMI's LiveMigratable condition, as upstream decides it for what
    we implement: local disks (containerDisk overlays, emptyDisks, cloud-init and config ISOs) are copied
    along (block migration); a PVC, a host disk or a bridge binding on the pod network cannot move."""
    spec = vmi.get("spec") or {}
    for volume in spec.get("volumes") or []:
        if volume.get("persistentVolumeClaim") or volume.get("hostDisk"):
            kind = "persistentVolumeClaim" if volume.get("persistentVolumeClaim") else "hostDisk"
            return False, DISKS_NOT_MIGRATABLE, (f"cannot migrate VMI: volume {volume.get('name')!r} is a {kind}, "
                                                 "which is not shared between nodes")
    for iface in (spec.get("domain") or {}).get("devices", {}).get("interfaces") or []:
        if iface.get("bridge") is not None:
            return False, INTERFACE_NOT_MIGRATABLE, (f"cannot migrate VMI: interface {iface.get('name')!r} uses a "
                                                     "bridge binding on the pod network (use masquerade)")
    model = ((spec.get("domain") or {}).get("cpu") or {}).get("model")
    if model == "host-passthrough":
        return False, CPU_MODE_NOT_MIGRATABLE, "cannot migrate VMI with host-passthrough CPU mode"
    return True, "", ""


def vmi_can_migrate(vmi: dict) -> str | None:
    """Why a VMI cannot be migrated now, or None."""
    status = vmi.get("status") or {}
    if status.get("phase") != VMIPhase.RUNNING:
        return f"VMI {vmi['metadata'].get('name')} is not running (phase {status.get('phase') or 'unset'})"
    for condition in status.get("conditions") or []:
        if condition.get("type") == ConditionType.LIVE_MIGRATABLE and condition.get("status") == "False":
            return condition.get("message") or f"VMI is not live migratable ({condition.get('reason')})"
    return None
