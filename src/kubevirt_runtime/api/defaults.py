"""Defaulting of VirtualMachine and VirtualMachineInstance dicts, as virt-api's mutating webhook applies it.

Pure: each function returns a defaulted deep copy and leaves its argument alone. Defaulting never
invents fields we do not implement, and never overrides a value the user set.
"""
import copy

from .constants import DEFAULT_GRACE_PERIOD_SECONDS, RunStrategy

DEFAULT_MACHINE_TYPE = "q35"
DEFAULT_DISK_BUS = "virtio"
DEFAULT_CDROM_BUS = "sata"
DEFAULT_INTERFACE_MODEL = "virtio"
DEFAULT_NETWORK_NAME = "default"


def _dict(parent, key):
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _list(parent, key):
    value = parent.get(key)
    if not isinstance(value, list):
        value = parent[key] = []
    return value


def _default_domain(domain):
    cpu = _dict(domain, "cpu")
    for key in ("cores", "sockets", "threads"):
        cpu.setdefault(key, 1)
    _dict(domain, "machine").setdefault("type", DEFAULT_MACHINE_TYPE)
    resources = domain.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    memory = _dict(domain, "memory")
    if memory.get("guest") is None:
        guest = requests.get("memory", limits.get("memory"))
        if guest is not None:
            memory["guest"] = guest
    if memory.get("guest") is not None and "memory" not in requests:
        _dict(_dict(domain, "resources"), "requests")["memory"] = memory["guest"]
    if not memory:
        del domain["memory"]
    bootloader = (domain.get("firmware") or {}).get("bootloader") or {}
    if isinstance(bootloader.get("efi"), dict):
        bootloader["efi"].setdefault("secureBoot", True)
    devices = _dict(domain, "devices")
    devices.setdefault("autoattachSerialConsole", True)
    return devices


def _default_disks(spec, devices):
    disks = _list(devices, "disks")
    named = {d.get("name") for d in disks}
    for volume in spec.get("volumes") or []:
        if volume.get("name") not in named:
            disks.append({"name": volume.get("name"), "disk": {}})
    for disk in disks:
        if disk.get("disk") is None and disk.get("cdrom") is None:
            disk["disk"] = {}
        if isinstance(disk.get("disk"), dict):
            disk["disk"].setdefault("bus", DEFAULT_DISK_BUS)
        if isinstance(disk.get("cdrom"), dict):
            disk["cdrom"].setdefault("bus", DEFAULT_CDROM_BUS)
            disk["cdrom"].setdefault("readonly", True)
    if not disks:
        del devices["disks"]


def _default_networks(spec, devices):
    interfaces = devices.get("interfaces")
    if not interfaces and not spec.get("networks"):
        devices["interfaces"] = [{"name": DEFAULT_NETWORK_NAME, "masquerade": {}}]
        spec["networks"] = [{"name": DEFAULT_NETWORK_NAME, "pod": {}}]
    for iface in devices.get("interfaces") or []:
        iface.setdefault("model", DEFAULT_INTERFACE_MODEL)
        for port in iface.get("ports") or []:
            port.setdefault("protocol", "TCP")


def default_vmi_spec(spec):
    """Default a VirtualMachineInstanceSpec in place (shared by VMIs and VM templates)."""
    if not isinstance(spec, dict):
        return spec
    devices = _default_domain(_dict(spec, "domain"))
    _default_disks(spec, devices)
    _default_networks(spec, devices)
    spec.setdefault("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD_SECONDS)
    return spec


def default_vmi(vmi):
    """A defaulted copy of a VirtualMachineInstance."""
    vmi = copy.deepcopy(vmi)
    default_vmi_spec(_dict(vmi, "spec"))
    return vmi


def default_vm(vm):
    """A defaulted copy of a VirtualMachine: the template is defaulted like a VMI.

    With neither `running` nor `runStrategy`, runStrategy becomes Halted (a new VM does not start by itself).
    """
    vm = copy.deepcopy(vm)
    spec = _dict(vm, "spec")
    if spec.get("running") is None and spec.get("runStrategy") is None:
        spec["runStrategy"] = RunStrategy.HALTED
    template = spec.get("template")
    if isinstance(template, dict):
        default_vmi_spec(_dict(template, "spec"))
    return vm


def effective_run_strategy(vm):
    """The run strategy in force: runStrategy, else the deprecated `running` (true=Always, false=Halted)."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    if spec.get("running") is True:
        return RunStrategy.ALWAYS
    return RunStrategy.HALTED
