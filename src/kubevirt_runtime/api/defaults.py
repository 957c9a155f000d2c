"""Defaulting of VirtualMachine and VirtualMachineInstance dicts, as virt-api's mutating webhook applies it.

Pure: each function returns a defaulted deep copy and leaves its argument alone. Values follow upstream
KubeVirt's amd64 defaults. Defaulting only fills in what is unset (absent, null, or an empty string where
upstream treats "" as unset); it never changes a value the user set, and a value of the wrong type is
left for validation to report (the webhook refuses badly typed objects before defaulting them).
"""
from __future__ import annotations

import copy
import math
import uuid

from . import instancetype as it
from .constants import DEFAULT_GRACE_PERIOD_SECONDS, RunStrategy
from .quantity import parse_quantity

DEFAULT_MACHINE_TYPE = "q35"
DEFAULT_ARCHITECTURE = "amd64"
HOTPLUG_DISK_BUS = "scsi"
DEFAULT_DISK_BUS = "sata"  # upstream's amd64 default: guests have SATA drivers out of the box
DEFAULT_CDROM_BUS = "sata"
DEFAULT_INTERFACE_MODEL = "virtio"
DEFAULT_NETWORK_NAME = "default"
HYPERV_DEPENDENCIES = {"synic": ("vpindex",), "synictimer": ("synic", "vpindex"), "tlbflush": ("vpindex",),
                       "ipi": ("vpindex",)}


def _unset(value) -> bool:
    return value is None or value == ""


def _dict(parent: dict, key: str) -> dict:
    """parent[key], created when unset; a value of another type is kept and a detached dict returned."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else {}


def _list(parent: dict, key: str) -> list:
    value = parent.get(key)
    if value is None:
        value = parent[key] = []
    return value if isinstance(value, list) else []


def _dicts(items) -> list[dict]:
    return [item for item in items if isinstance(item, dict)]


def _fill(target: dict, key: str, value) -> None:
    if _unset(target.get(key)):
        target[key] = value


def _whole_cpus(quantity) -> int | None:
    try:
        return max(1, math.ceil(parse_quantity(quantity)))
    except (ValueError, ArithmeticError):
        return None


def _default_cpu(domain: dict) -> None:
    resources = domain.get("resources") if isinstance(domain.get("resources"), dict) else {}
    requests = resources.get("requests") if isinstance(resources.get("requests"), dict) else {}
    limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else {}
    if "cpu" in limits and "cpu" not in requests:
        _dict(_dict(domain, "resources"), "requests")["cpu"] = limits["cpu"]
    cpu = _dict(domain, "cpu")
    if all(cpu.get(k) is None for k in ("cores", "sockets", "threads")):
        source = limits.get("cpu", requests.get("cpu"))
        cpu["sockets"] = (_whole_cpus(source) if source is not None else None) or 1
    for key in ("cores", "sockets", "threads"):
        _fill(cpu, key, 1)


def _default_memory(domain: dict) -> None:
    memory = domain.get("memory")
    if isinstance(memory, dict) and memory.get("guest") is not None:
        return
    resources = domain.get("resources") if isinstance(domain.get("resources"), dict) else {}
    for kind in ("requests", "limits"):
        values = resources.get(kind) if isinstance(resources.get(kind), dict) else {}
        if values.get("memory") is not None:
            _dict(domain, "memory")["guest"] = values["memory"]
            return


def _default_firmware(domain: dict) -> None:
    firmware = domain.get("firmware") if isinstance(domain.get("firmware"), dict) else {}
    bootloader = firmware.get("bootloader") if isinstance(firmware.get("bootloader"), dict) else {}
    if isinstance(bootloader.get("efi"), dict):
        _fill(bootloader["efi"], "secureBoot", True)


def _default_features(domain: dict) -> None:
    features = domain.get("features") if isinstance(domain.get("features"), dict) else {}
    hyperv = features.get("hyperv") if isinstance(features.get("hyperv"), dict) else {}
    for feature, needs in HYPERV_DEPENDENCIES.items():
        state = hyperv.get(feature)
        if not isinstance(state, dict) or state.get("enabled", True) is False:
            continue
        for need in needs:
            if hyperv.get(need) is None:
                hyperv[need] = {}


def _default_disks(spec: dict, devices: dict) -> None:
    had_disks = "disks" in devices
    disks = _list(devices, "disks")
    named = {d.get("name") for d in _dicts(disks)}
    volumes = _dicts(spec.get("volumes") if isinstance(spec.get("volumes"), list) else [])
    for volume in volumes:
        if volume.get("name") not in named and isinstance(volume.get("name"), str):
            disks.append({"name": volume["name"]})
    # a disk attached to the running guest goes on SCSI, as upstream's virtctl addvolume puts it
    hotplugged = {v.get("name") for v in volumes if any(isinstance(v.get(k), dict) and v[k].get("hotpluggable")
                                                        for k in ("persistentVolumeClaim", "dataVolume"))}
    for disk in _dicts(disks):
        if all(disk.get(k) is None for k in ("disk", "cdrom", "lun")):
            disk["disk"] = {}
        if isinstance(disk.get("disk"), dict):
            _fill(disk["disk"], "bus", HOTPLUG_DISK_BUS if disk.get("name") in hotplugged else DEFAULT_DISK_BUS)
        if isinstance(disk.get("cdrom"), dict):
            _fill(disk["cdrom"], "bus", DEFAULT_CDROM_BUS)
            _fill(disk["cdrom"], "readonly", True)
    if not had_disks and devices.get("disks") == []:
        del devices["disks"]


def _default_networks(spec: dict, devices: dict) -> None:
    interfaces = devices.get("interfaces")
    if interfaces in (None, []) and spec.get("networks") in (None, []) and \
            devices.get("autoattachPodInterface") is not False:
        devices["interfaces"] = [{"name": DEFAULT_NETWORK_NAME, "bridge": {}}]
        spec["networks"] = [{"name": DEFAULT_NETWORK_NAME, "pod": {}}]
    for iface in _dicts(devices.get("interfaces") if isinstance(devices.get("interfaces"), list) else []):
        _fill(iface, "model", DEFAULT_INTERFACE_MODEL)
        for port in _dicts(iface.get("ports") if isinstance(iface.get("ports"), list) else []):
            _fill(port, "protocol", "TCP")


def _default_pull_policies(spec: dict) -> None:
    for volume in _dicts(spec.get("volumes") if isinstance(spec.get("volumes"), list) else []):
        disk = volume.get("containerDisk")
        if isinstance(disk, dict) and isinstance(disk.get("image"), str):
            _fill(disk, "imagePullPolicy", pull_policy(disk["image"]))


def pull_policy(image: str) -> str:
    """Kubernetes' default: Always for :latest or an untagged image, else IfNotPresent."""
    return "Always" if image.endswith(":latest") or not any(c in image for c in ":@") else "IfNotPresent"


def default_vmi_spec(spec):
    """Default a VirtualMachineInstanceSpec in place (a VMI's, or the one the VM controller builds)."""
    if not isinstance(spec, dict):
        return spec
    _fill(spec, "architecture", DEFAULT_ARCHITECTURE)
    domain = _dict(spec, "domain")
    _fill(_dict(domain, "machine"), "type", DEFAULT_MACHINE_TYPE)
    _default_cpu(domain)
    _default_memory(domain)
    _default_firmware(domain)
    _default_features(domain)
    devices = _dict(domain, "devices")
    _fill(devices, "autoattachSerialConsole", True)
    _default_disks(spec, devices)
    _default_networks(spec, devices)
    _default_pull_policies(spec)
    _fill(spec, "terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD_SECONDS)
    return spec


def default_vmi(vmi):
    """A defaulted copy of a VirtualMachineInstance."""
    vmi = copy.deepcopy(vmi)
    if isinstance(vmi, dict):
        default_vmi_spec(_dict(vmi, "spec"))
    return vmi


def default_vm(vm, create: bool = False, new_id=uuid.uuid4):
    """A defaulted copy of a VirtualMachine, as upstream's VM mutator makes it.

    The template itself is not defaulted (the VMI is, when it is created), so an instancetype or a
    preference can still fill it in. With neither `running` nor `runStrategy`, runStrategy becomes Halted.
    On create, the firmware gets a random UUID and serial number, kept for the VM's life. The instancetype
    and preference kinds default to the cluster-wide kinds."""
    vm = copy.deepcopy(vm)
    if not isinstance(vm, dict):
        return vm
    spec = _dict(vm, "spec")
    if spec.get("running") is None and spec.get("runStrategy") is None:
        spec["runStrategy"] = RunStrategy.HALTED
    for which, kind in (("instancetype", it.CLUSTER_INSTANCETYPE), ("preference", it.CLUSTER_PREFERENCE)):
        if isinstance(spec.get(which), dict):
            _fill(spec[which], "kind", kind)
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return vm
    domain = _dict(template["spec"], "domain")
    if spec.get("preference") is None:
        _fill(_dict(domain, "machine"), "type", DEFAULT_MACHINE_TYPE)
    if create:
        firmware = _dict(domain, "firmware")
        _fill(firmware, "uuid", str(new_id()))
        _fill(firmware, "serial", str(new_id()))
    return vm


def effective_run_strategy(vm):
    """The run strategy in force: runStrategy, else the deprecated `running` (true=Always, false=Halted)."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    if spec.get("running") is True:
        return RunStrategy.ALWAYS
    return RunStrategy.HALTED
