"""Validation of VirtualMachine and VirtualMachineInstance objects (plain dicts), as virt-api's webhook needs it.

Two passes: the object is walked against upstream's schema and our support tree (walk.py), so wrong types,
fields upstream does not know and fields we do not implement are reported, each with its path; then, on
a well-typed object only, the rules a schema cannot express (references between disks and volumes,
exactly-one-of choices, feature gates, ...). The second pass also guards the converter: a VMI that passes
converts to domain XML. Nothing here raises on bad input.
"""
from __future__ import annotations

import base64
import binascii
import copy
import functools
import ipaddress
import posixpath
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable

from . import cdi, schema, upstream
from . import instancetype as it
from . import snapshot as snap
from .labels import matches as labels_match
from .quantity import cpu_millis, memory_bytes
from .walk import DUPLICATE, NOT_FOUND, NOT_SUPPORTED, REQUIRED, TYPE, FieldError, walk

__all__ = ["FieldError", "ValidationContext", "validate_vm", "validate_vmi", "validate_vmi_spec", "type_errors",
           "validate_datavolume", "validate_snapshot", "validate_restore"]

HOST_DISK_GATE = "HostDisk"
RUN_STRATEGIES = ("Always", "Halted", "Manual", "RerunOnFailure", "Once")
MIN_GUEST_MEMORY = 1 << 20
MAX_VCPUS = 288  # QEMU's q35 limit
READONLY_UNSUPPORTED_BUSES = ("sata",)
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MACHINE = re.compile(r"^(q35|pc-q35-[0-9][0-9.]*)$")  # upstream's default emulatedMachines for amd64
# Characters XML 1.0 cannot carry: whatever ends up in the domain XML must not contain them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_RESOURCE_NAMES = ("cpu", "memory")
_TICK_POLICIES = ("delay", "catchup", "merge", "discard")
_EVICTION_STRATEGIES = ("None", "LiveMigrate", "LiveMigrateIfPossible", "External")
_CLOUD_INIT = ("cloudInitNoCloud", "cloudInitConfigDrive")
_SOURCES = ("containerDisk", "cloudInitNoCloud", "cloudInitConfigDrive", "emptyDisk", "persistentVolumeClaim",
            "dataVolume", "hostDisk", "configMap", "secret", "serviceAccount", "downwardAPI")
HOTPLUG_BUSES = ("scsi",)
_BINDINGS = ("masquerade", "bridge")
HYPERV_DEPENDENCIES = {"synic": ("vpindex",), "synictimer": ("synic", "vpindex"), "tlbflush": ("vpindex",),
                       "ipi": ("vpindex",)}


@dataclass(frozen=True)
class ValidationContext:
    """What the cluster adds to a check: feature gates, and reading instancetypes and preferences.

    Without a context, cluster-dependent checks are skipped (virt-controller re-checks a VMI that way)."""

    feature_gates: frozenset = frozenset()
    # (kind, namespace, name) -> the object, or None when it does not exist
    lookup: Callable[[str, str | None, str], dict | None] | None = field(default=None, compare=False)


# ---------------------------------------------------------------- schemas (built once)

@functools.lru_cache(maxsize=None)
def _upstream(name):
    return upstream.schema(name)


@functools.lru_cache(maxsize=None)
def _ours(name):
    return getattr(schema, name)()


def schema_errors(value, upstream_name, ours_name, path) -> list[FieldError]:
    errors = []
    walk(_upstream(upstream_name), _ours(ours_name) if ours_name else None, value, path, errors)
    return errors


def type_errors(kind: str, obj) -> list[FieldError]:
    """Type errors against upstream's schema only: what defaulting must not run on."""
    root = {"VirtualMachine": "v1.VirtualMachineSpec", "VirtualMachineInstance": "v1.VirtualMachineInstanceSpec"}
    errors = _metadata_errors(obj)
    if isinstance(obj, dict):
        errors += [e for e in schema_errors(obj.get("spec"), root[kind], None, "spec") if e.reason == TYPE]
    return errors


# ---------------------------------------------------------------- helpers

def _names(items, path, errors, what, label=True):
    seen = {}
    for i, item in enumerate(items):
        name = item.get("name")
        if not name:
            errors.append(FieldError(f"{path}[{i}].name", "required value", REQUIRED))
            continue
        if label and (len(name) > 63 or not _DNS_LABEL.match(name)):
            errors.append(FieldError(f"{path}[{i}].name", f"{name!r} is not a DNS label (at most 63 lowercase "
                                                          "letters, digits or '-')"))
        if name in seen:
            errors.append(FieldError(f"{path}[{i}].name", f"duplicate {what} name {name!r}", DUPLICATE))
        seen.setdefault(name, i)
    return seen


def _exactly_one(item, keys, path, errors, what, required=True):
    present = [k for k in keys if item.get(k) is not None]
    if len(present) > 1:
        errors.append(FieldError(path, f"only one {what} may be set, found: {', '.join(present)}"))
    elif not present and required:
        errors.append(FieldError(path, f"a {what} is required: one of {', '.join(keys)}", REQUIRED))
    return present


def _quantity(value, measure, path, errors):
    try:
        return measure(value)
    except ValueError:
        errors.append(FieldError(path, f"invalid quantity {value!r}"))
        return None


def _xml_safe(value, path, errors):
    """Strings under spec.domain end up in the domain XML."""
    if isinstance(value, str):
        if _XML_INVALID.search(value):
            errors.append(FieldError(path, "must not contain control characters"))
    elif isinstance(value, dict):
        for key, item in value.items():
            _xml_safe(item, f"{path}.{key}", errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _xml_safe(item, f"{path}[{i}]", errors)


# ---------------------------------------------------------------- domain

def _check_resources(domain, path, errors, memory_from_instancetype):
    resources = domain.get("resources") or {}
    measures = {"memory": memory_bytes, "cpu": cpu_millis}
    values = {}
    for kind in ("requests", "limits"):
        for name, quantity in (resources.get(kind) or {}).items():
            where = f"{path}.resources.{kind}[{name}]"
            if name not in _RESOURCE_NAMES:
                errors.append(FieldError(where, f"unsupported resource {name!r}: supported are cpu, memory",
                                         NOT_SUPPORTED))
                continue
            amount = _quantity(quantity, measures[name], where, errors)
            if amount is not None and amount <= 0:
                errors.append(FieldError(where, "must be greater than 0"))
            values[(kind, name)] = amount
    for name in _RESOURCE_NAMES:
        request, limit = values.get(("requests", name)), values.get(("limits", name))
        if request is not None and limit is not None and request > limit:
            errors.append(FieldError(f"{path}.resources.requests.{name}", f"must not exceed resources.limits.{name}"))
    guest = (domain.get("memory") or {}).get("guest")
    if guest is None:
        if not memory_from_instancetype and ("requests", "memory") not in values and ("limits", "memory") not in values:
            errors.append(FieldError(f"{path}.memory.guest", "required value: set memory.guest or "
                                                             "resources.requests.memory", REQUIRED))
        guest_bytes = values.get(("requests", "memory")) or values.get(("limits", "memory"))
    else:
        guest_bytes = _quantity(guest, memory_bytes, f"{path}.memory.guest", errors)
        limit = values.get(("limits", "memory"))
        if guest_bytes is not None and limit is not None and guest_bytes > limit:
            errors.append(FieldError(f"{path}.memory.guest", "must not exceed resources.limits.memory"))
    if guest_bytes is not None and 0 < guest_bytes < MIN_GUEST_MEMORY:
        errors.append(FieldError(f"{path}.memory.guest", "must be at least 1Mi"))
    elif guest_bytes is not None and guest_bytes <= 0:
        errors.append(FieldError(f"{path}.memory.guest", "must be greater than 0"))


def _check_firmware(domain, path, errors):
    firmware = domain.get("firmware") or {}
    fpath = f"{path}.firmware"
    if firmware.get("uuid"):
        try:
            uuid.UUID(firmware["uuid"])
        except ValueError:
            errors.append(FieldError(f"{fpath}.uuid", f"{firmware['uuid']!r} is not a UUID"))
    bootloader = firmware.get("bootloader")
    if bootloader is not None:
        _exactly_one(bootloader, ("bios", "efi"), f"{fpath}.bootloader", errors, "bootloader")
        efi = bootloader.get("efi") or {}
        smm = ((domain.get("features") or {}).get("smm") or {}).get("enabled")
        if efi.get("secureBoot", True) is not False and bootloader.get("efi") is not None and smm is False:
            errors.append(FieldError(f"{path}.features.smm.enabled", "Secure Boot needs SMM; enable it or set "
                                                                     "firmware.bootloader.efi.secureBoot: false"))
    kernel_boot = firmware.get("kernelBoot")
    if kernel_boot is not None:
        kpath = f"{fpath}.kernelBoot"
        container = kernel_boot.get("container")
        if container is None:
            errors.append(FieldError(f"{kpath}.container", "required value: the image with the kernel and initrd",
                                     REQUIRED))
            return
        if not container.get("image"):
            errors.append(FieldError(f"{kpath}.container.image", "required value", REQUIRED))
        if not container.get("kernelPath") and not container.get("initrdPath"):
            errors.append(FieldError(f"{kpath}.container", "at least one of kernelPath or initrdPath is required",
                                     REQUIRED))
        if kernel_boot.get("kernelArgs") and not container.get("kernelPath"):
            errors.append(FieldError(f"{kpath}.kernelArgs", "kernelArgs need container.kernelPath"))
        for key in ("kernelPath", "initrdPath"):
            value = container.get(key)
            if value and (not value.startswith("/") or posixpath.normpath(value) != value):
                errors.append(FieldError(f"{kpath}.container.{key}",
                                         f"{value!r} must be an absolute, normalized path"))


def _check_machine(domain, path, errors):
    machine_type = (domain.get("machine") or {}).get("type")
    if machine_type and not _MACHINE.match(machine_type):
        errors.append(FieldError(f"{path}.machine.type", f"unsupported machine type {machine_type!r}: supported "
                                                         "are q35 and pc-q35-<version>", NOT_SUPPORTED))


def _check_features(domain, path, errors):
    hyperv = (domain.get("features") or {}).get("hyperv") or {}
    hpath = f"{path}.features.hyperv"
    spinlocks = hyperv.get("spinlocks") or {}
    if spinlocks.get("spinlocks") is not None and spinlocks["spinlocks"] < 4095:
        errors.append(FieldError(f"{hpath}.spinlocks.spinlocks", "must be at least 4095"))
    vendorid = hyperv.get("vendorid")
    vendor = (vendorid or {}).get("vendorid")
    if vendorid is not None and vendorid.get("enabled", True) is not False and (not vendor or len(vendor) > 12):
        errors.append(FieldError(f"{hpath}.vendorid.vendorid", "required: 1 to 12 characters"))
    for feature, needs in HYPERV_DEPENDENCIES.items():
        if (hyperv.get(feature) or {}).get("enabled", True) is False or hyperv.get(feature) is None:
            continue
        for need in needs:
            if (hyperv.get(need) or {}).get("enabled") is False:
                errors.append(FieldError(f"{hpath}.{need}.enabled", f"{feature} needs {need}"))
    if hyperv.get("evmcs") is not None and (hyperv["evmcs"].get("enabled", True) is not False):
        errors.append(FieldError(f"{hpath}.evmcs", "enlightened VMCS needs nested KVM; guests here run under TCG "
                                                   "emulation", NOT_SUPPORTED))


def _check_clock(domain, path, errors):
    clock = domain.get("clock")
    if clock is None:
        return
    cpath = f"{path}.clock"
    _exactly_one(clock, ("utc", "timezone"), cpath, errors, "clock offset", required=False)
    if clock.get("timezone") is not None:
        import zoneinfo
        try:
            zoneinfo.ZoneInfo(clock["timezone"])
        except (ValueError, zoneinfo.ZoneInfoNotFoundError, IsADirectoryError, OSError):
            errors.append(FieldError(f"{cpath}.timezone", f"unknown time zone {clock['timezone']!r}"))
    for name, timer in (clock.get("timer") or {}).items():
        tick = timer.get("tickPolicy")
        if tick and tick not in _TICK_POLICIES:
            errors.append(FieldError(f"{cpath}.timer.{name}.tickPolicy", f"unsupported value {tick!r}: supported "
                                     "values: " + ", ".join(_TICK_POLICIES), NOT_SUPPORTED))
        if name == "rtc" and timer.get("track") not in (None, "", "guest", "wall"):
            errors.append(FieldError(f"{cpath}.timer.rtc.track", "supported values: 'guest', 'wall'", NOT_SUPPORTED))


# ---------------------------------------------------------------- devices and volumes

def _check_cpu(domain, path, errors):
    cpu = domain.get("cpu") or {}
    vcpus = 1
    for key in ("sockets", "cores", "threads"):
        vcpus *= cpu.get(key) or 1
    if vcpus > MAX_VCPUS:
        errors.append(FieldError(f"{path}.cpu", f"{vcpus} vCPUs (sockets x cores x threads) exceed {MAX_VCPUS}, the "
                                                "q35 machine's maximum"))


def _check_disks(spec, path, errors):
    devices = spec["domain"].get("devices") or {}
    disks = devices.get("disks") or []
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    volume_names = set(volumes)
    dpath = f"{path}.domain.devices.disks"
    _names(disks, dpath, errors, "disk")
    boot_orders, used = {}, {}
    for i, disk in enumerate(disks):
        _exactly_one(disk, ("disk", "cdrom"), f"{dpath}[{i}]", errors, "disk type", required=False)
        name = disk.get("name")
        if name and name not in volume_names:
            errors.append(FieldError(f"{dpath}[{i}].name", f"disk {name!r} has no volume of the same name", NOT_FOUND))
        if name in used:
            errors.append(FieldError(f"{dpath}[{i}].name", f"volume {name!r} is already used by disk {used[name]}",
                                     DUPLICATE))
        used.setdefault(name, i)
        target = disk.get("disk")
        if target is not None and target.get("bus", "sata") in READONLY_UNSUPPORTED_BUSES:
            read_only_claim = ((volumes.get(name) or {}).get("persistentVolumeClaim") or {}).get("readOnly")
            if target.get("readonly") or read_only_claim:
                errors.append(FieldError(f"{dpath}[{i}].disk.readonly" if target.get("readonly")
                                         else f"{dpath}[{i}].disk.bus", f"a read-only disk cannot use the "
                                         f"{target.get('bus', 'sata')} bus (QEMU has no read-only SATA disks); use "
                                         "virtio or scsi"))
        if disk.get("io") == "native" and disk.get("cache") != "none":
            errors.append(FieldError(f"{dpath}[{i}].io", "native I/O needs cache: none"))
        order = disk.get("bootOrder")
        if order is not None:
            if order in boot_orders:
                errors.append(FieldError(f"{dpath}[{i}].bootOrder",
                                         f"boot order {order} is already used by disk {boot_orders[order]!r}",
                                         DUPLICATE))
            boot_orders.setdefault(order, name)


def _check_cloud_init(source, path, errors):
    user = _exactly_one(source, ("userData", "userDataBase64", "secretRef"), path, errors, "user data source",
                        required=False)
    network = _exactly_one(source, ("networkData", "networkDataBase64", "networkDataSecretRef"), path, errors,
                           "network data source", required=False)
    if not user and not network:
        errors.append(FieldError(path, "one of userData, userDataBase64, secretRef, networkData, networkDataBase64 "
                                       "or networkDataSecretRef is required", REQUIRED))
    for key in ("userDataBase64", "networkDataBase64"):
        if source.get(key) is not None:
            try:
                base64.b64decode(source[key], validate=True)
            except (binascii.Error, ValueError):
                errors.append(FieldError(f"{path}.{key}", "is not valid base64"))
    for key in ("secretRef", "networkDataSecretRef"):
        if source.get(key) is not None and not source[key].get("name"):
            errors.append(FieldError(f"{path}.{key}.name", "required value", REQUIRED))


def _check_host_disk(disk, path, errors, ctx):
    if ctx is not None and HOST_DISK_GATE not in ctx.feature_gates:
        errors.append(FieldError(path, "hostDisk volumes need the HostDisk feature gate (KubeVirt CR "
                                       "spec.configuration.developerConfiguration.featureGates)", NOT_SUPPORTED))
    target = disk.get("path") or ""
    if not target.startswith("/") or posixpath.normpath(target) != target or target == "/":
        errors.append(FieldError(f"{path}.path", f"{target!r} must be an absolute, normalized file path"))
    kind = disk.get("type")
    if kind not in ("Disk", "DiskOrCreate"):
        errors.append(FieldError(f"{path}.type", f"unsupported value {kind!r}: supported values: 'Disk', "
                                                 "'DiskOrCreate'", NOT_SUPPORTED if kind else REQUIRED))
    if kind == "DiskOrCreate":
        if disk.get("capacity") is None:
            errors.append(FieldError(f"{path}.capacity", "required value for type DiskOrCreate", REQUIRED))
        elif (_quantity(disk["capacity"], memory_bytes, f"{path}.capacity", errors) or 0) <= 0:
            errors.append(FieldError(f"{path}.capacity", "must be greater than 0"))


def _check_downward_api(source, path, errors):
    files = source.get("fields") or []
    if not files:
        errors.append(FieldError(f"{path}.fields", "required value: at least one file", REQUIRED))
    seen = set()
    for i, item in enumerate(files):
        fpath = f"{path}.fields[{i}]"
        target = item.get("path") or ""
        if not target or target.startswith("/") or ".." in target.split("/"):
            errors.append(FieldError(f"{fpath}.path", f"{target!r} must be a relative path without '..'"))
        if target in seen:
            errors.append(FieldError(f"{fpath}.path", f"duplicate path {target!r}", DUPLICATE))
        seen.add(target)
        _exactly_one(item, ("fieldRef", "resourceFieldRef"), fpath, errors, "source")
        if item.get("fieldRef") is not None and not item["fieldRef"].get("fieldPath"):
            errors.append(FieldError(f"{fpath}.fieldRef.fieldPath", "required value", REQUIRED))
        if item.get("resourceFieldRef") is not None and not item["resourceFieldRef"].get("resource"):
            errors.append(FieldError(f"{fpath}.resourceFieldRef.resource", "required value", REQUIRED))


_REQUIRED_KEYS = {"containerDisk": "image", "persistentVolumeClaim": "claimName", "dataVolume": "name",
                  "configMap": "name",
                  "secret": "secretName", "serviceAccount": "serviceAccountName"}


def _check_volumes(spec, path, errors, ctx):
    volumes = spec.get("volumes") or []
    vpath = f"{path}.volumes"
    _names(volumes, vpath, errors, "volume")
    counts = {"cloud-init": 0, "serviceAccount": 0}
    for i, volume in enumerate(volumes):
        here = f"{vpath}[{i}]"
        present = _exactly_one(volume, _SOURCES, here, errors, "volume source")
        if len(present) != 1:
            continue
        kind = present[0]
        source = volume[kind]
        if kind in _REQUIRED_KEYS and not source.get(_REQUIRED_KEYS[kind]):
            errors.append(FieldError(f"{here}.{kind}.{_REQUIRED_KEYS[kind]}", "required value", REQUIRED))
        if kind in _CLOUD_INIT:
            counts["cloud-init"] += 1
            _check_cloud_init(source, f"{here}.{kind}", errors)
        elif kind == "serviceAccount":
            counts["serviceAccount"] += 1
        elif kind == "emptyDisk":
            capacity = _quantity(source.get("capacity"), memory_bytes, f"{here}.emptyDisk.capacity", errors) \
                if source.get("capacity") is not None else None
            if capacity is not None and capacity <= 0:
                errors.append(FieldError(f"{here}.emptyDisk.capacity", "must be greater than 0"))
        elif kind == "hostDisk":
            _check_host_disk(source, f"{here}.hostDisk", errors, ctx)
        elif kind == "downwardAPI":
            _check_downward_api(source, f"{here}.downwardAPI", errors)
        if kind in ("configMap", "secret", "downwardAPI") and source.get("volumeLabel"):
            label = source["volumeLabel"]
            if len(label) > 32 or not re.match(r"^[A-Za-z0-9_.-]+$", label):
                errors.append(FieldError(f"{here}.{kind}.volumeLabel", "at most 32 letters, digits, '_', '.' or '-'"))
        if kind in ("persistentVolumeClaim", "dataVolume") and source.get("hotpluggable"):
            _check_hotplug_disk(spec, volume.get("name"), here, errors)
    if counts["cloud-init"] > 1:
        errors.append(FieldError(vpath, "at most one cloudInitNoCloud or cloudInitConfigDrive volume is allowed"))
    if counts["serviceAccount"] > 1:
        errors.append(FieldError(vpath, "at most one serviceAccount volume is allowed"))


def _check_hotplug_disk(spec, name, here, errors):
    """A hotplugged volume is attached to a running guest: as a disk on a bus that takes new devices."""
    disk = next((d for d in (spec["domain"].get("devices") or {}).get("disks") or [] if d.get("name") == name), None)
    if disk is None:
        errors.append(FieldError(here, f"hotpluggable volume {name!r} needs a disk of the same name", REQUIRED))
        return
    if disk.get("disk") is None:
        errors.append(FieldError(here, f"hotpluggable volume {name!r}: only disks (not cdroms) can be hotplugged",
                                 NOT_SUPPORTED))
        return
    bus = disk["disk"].get("bus") or "scsi"
    if bus not in HOTPLUG_BUSES:
        errors.append(FieldError(here, f"hotpluggable volume {name!r}: bus {bus!r} cannot take a new disk while the "
                                       "guest runs here (virtio needs spare PCIe ports, which are not reserved); "
                                       "use scsi", NOT_SUPPORTED))
    if (spec["domain"].get("devices") or {}).get("disableHotplug"):
        errors.append(FieldError(here, f"hotpluggable volume {name!r}: spec.domain.devices.disableHotplug is set"))
    if disk.get("bootOrder") is not None:
        errors.append(FieldError(here, f"hotpluggable volume {name!r} cannot be a boot disk (bootOrder)"))


def _check_networks(spec, path, errors):
    networks = spec.get("networks") or []
    devices = spec["domain"].get("devices") or {}
    interfaces = devices.get("interfaces") or []
    npath, ipath = f"{path}.networks", f"{path}.domain.devices.interfaces"
    network_index = _names(networks, npath, errors, "network")
    _names(interfaces, ipath, errors, "interface")
    pod_networks = 0
    for i, network in enumerate(networks):
        if network.get("pod") is None:
            errors.append(FieldError(f"{npath}[{i}]", "a network source is required: pod", REQUIRED))
            continue
        pod_networks += 1
        for key, version in (("vmNetworkCIDR", 4), ("vmIPv6NetworkCIDR", 6)):
            cidr = network["pod"].get(key)
            if cidr:
                try:
                    net = ipaddress.ip_network(cidr, strict=True)
                    if net.version != version or net.num_addresses < 4:
                        raise ValueError(f"not an IPv{version} network with room for a gateway and a guest")
                except ValueError as exc:
                    errors.append(FieldError(f"{npath}[{i}].pod.{key}", f"{cidr!r}: {exc}"))
    if pod_networks > 1:
        errors.append(FieldError(npath, "at most one pod network is allowed"))
    used = set()
    for i, iface in enumerate(interfaces):
        name = iface.get("name")
        used.add(name)
        if name and name not in network_index:
            errors.append(FieldError(f"{ipath}[{i}].name", f"interface {name!r} has no network of the same name",
                                     NOT_FOUND))
        binding = _exactly_one(iface, _BINDINGS, f"{ipath}[{i}]", errors, "binding method")
        if binding == ["bridge"] and iface.get("ports"):
            errors.append(FieldError(f"{ipath}[{i}].ports", "ports apply to masquerade only: with bridge the guest "
                                                            "has the pod's address"))
        mac = iface.get("macAddress")
        if mac and not _MAC.match(mac):
            errors.append(FieldError(f"{ipath}[{i}].macAddress", f"{mac!r} is not a valid MAC address"))
        for j, port in enumerate(iface.get("ports") or []):
            number = port.get("port")
            if number is None:
                errors.append(FieldError(f"{ipath}[{i}].ports[{j}].port", "required value", REQUIRED))
            elif not 1 <= number <= 65535:
                errors.append(FieldError(f"{ipath}[{i}].ports[{j}].port", "must be between 1 and 65535"))
    for name, i in network_index.items():
        if name not in used:
            errors.append(FieldError(f"{npath}[{i}].name", f"network {name!r} is not used by any interface", NOT_FOUND))


def _check_probes(spec, path, errors):
    port_names = {p.get("name"): p.get("port") for iface in (spec["domain"].get("devices") or {}).get(
        "interfaces") or [] for p in iface.get("ports") or [] if p.get("name")}
    for key in ("readinessProbe", "livenessProbe"):
        probe = spec.get(key)
        if probe is None:
            continue
        ppath = f"{path}.{key}"
        handlers = _exactly_one(probe, ("httpGet", "tcpSocket"), ppath, errors, "probe handler")
        for handler in handlers:
            port = probe[handler].get("port")
            hpath = f"{ppath}.{handler}.port"
            if port is None:
                errors.append(FieldError(hpath, "required value", REQUIRED))
            elif isinstance(port, int) and not 1 <= port <= 65535:
                errors.append(FieldError(hpath, "must be between 1 and 65535"))
            elif isinstance(port, str) and port not in port_names:
                errors.append(FieldError(hpath, f"no interface port is named {port!r}", NOT_FOUND))
        for number in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                       "failureThreshold"):
            if probe.get(number) is not None and probe[number] < 0:
                errors.append(FieldError(f"{ppath}.{number}", "must be greater than or equal to 0"))
        if key == "livenessProbe" and probe.get("successThreshold") not in (None, 1):
            errors.append(FieldError(f"{ppath}.successThreshold", "must be 1 for a liveness probe"))


def _check_placement(spec, path, errors):
    for i, tol in enumerate(spec.get("tolerations") or []):
        if tol.get("operator") == "Exists" and tol.get("value"):
            errors.append(FieldError(f"{path}.tolerations[{i}].value", "must be empty when operator is Exists"))
        if not tol.get("key") and tol.get("operator", "Equal") != "Exists":
            errors.append(FieldError(f"{path}.tolerations[{i}].operator", "must be Exists when key is empty"))
    for i, constraint in enumerate(spec.get("topologySpreadConstraints") or []):
        if (constraint.get("maxSkew") or 0) < 1:
            errors.append(FieldError(f"{path}.topologySpreadConstraints[{i}].maxSkew", "must be greater than 0"))
    for key, pattern, what in (("hostname", _DNS_LABEL, "DNS label"), ("subdomain", _DNS_LABEL, "DNS label"),
                               ("priorityClassName", _DNS_SUBDOMAIN, "DNS subdomain"),
                               ("schedulerName", _DNS_SUBDOMAIN, "DNS subdomain")):
        value = spec.get(key)
        if value and (len(value) > 253 or not pattern.match(value) or (pattern is _DNS_LABEL and len(value) > 63)):
            errors.append(FieldError(f"{path}.{key}", f"{value!r} is not a valid {what}"))
    dns_config = spec.get("dnsConfig") or {}
    if spec.get("dnsPolicy") == "None" and not dns_config.get("nameservers"):
        errors.append(FieldError(f"{path}.dnsConfig.nameservers", "required when dnsPolicy is None", REQUIRED))
    for i, server in enumerate(dns_config.get("nameservers") or []):
        try:
            ipaddress.ip_address(server)
        except ValueError:
            errors.append(FieldError(f"{path}.dnsConfig.nameservers[{i}]", f"{server!r} is not an IP address"))
    if len(dns_config.get("nameservers") or []) > 3:
        errors.append(FieldError(f"{path}.dnsConfig.nameservers", "at most 3 nameservers"))
    strategy = spec.get("evictionStrategy")
    if strategy is not None and strategy not in _EVICTION_STRATEGIES:
        errors.append(FieldError(f"{path}.evictionStrategy", f"unsupported value {strategy!r}: supported values: "
                                 + ", ".join(_EVICTION_STRATEGIES), NOT_SUPPORTED))


def validate_vmi_spec(spec, path="spec", ctx: ValidationContext | None = None,
                      memory_from_instancetype=False) -> list[FieldError]:
    """Errors of a VirtualMachineInstanceSpec found at `path` (also used for templates)."""
    errors = schema_errors(spec, "v1.VirtualMachineInstanceSpec", "vmi_spec", path)
    if errors or not isinstance(spec, dict):
        return errors
    domain = spec["domain"]
    dpath = f"{path}.domain"
    _xml_safe(domain, dpath, errors)
    _check_resources(domain, dpath, errors, memory_from_instancetype)
    _check_cpu(domain, dpath, errors)
    _check_firmware(domain, dpath, errors)
    _check_machine(domain, dpath, errors)
    _check_features(domain, dpath, errors)
    _check_clock(domain, dpath, errors)
    _check_disks(spec, path, errors)
    _check_volumes(spec, path, errors, ctx)
    _check_networks(spec, path, errors)
    _check_probes(spec, path, errors)
    _check_placement(spec, path, errors)
    return errors


# ---------------------------------------------------------------- objects

def _metadata_errors(obj) -> list[FieldError]:
    if not isinstance(obj, dict):
        return [FieldError("", "the object must be a JSON object", TYPE)]
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return [FieldError("metadata", "must be an object", TYPE)]
    return []


def _check_name(obj, errors):
    name = (obj.get("metadata") or {}).get("name")
    if isinstance(name, str) and name and (len(name) > 63 or not _DNS_LABEL.match(name)):
        errors.append(FieldError("metadata.name", "must be a DNS label: at most 63 lowercase letters, digits "
                                                  "or '-', starting and ending with a letter or digit"))


def check_template_metadata(meta, path, errors):
    if meta is None:
        return
    if not isinstance(meta, dict):
        errors.append(FieldError(path, "must be an object", TYPE))
        return
    for key in ("labels", "annotations"):
        values = meta.get(key)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            errors.append(FieldError(f"{path}.{key}", "must be a map of strings to strings", TYPE))


def validate_vmi(vmi, ctx: ValidationContext | None = None) -> list[FieldError]:
    """Errors of a VirtualMachineInstance: a list of FieldError (empty when valid)."""
    errors = _metadata_errors(vmi)
    if errors:
        return errors
    _check_name(vmi, errors)
    if vmi.get("spec") is None:
        return errors + [FieldError("spec", "required value", REQUIRED)]
    return errors + validate_vmi_spec(vmi["spec"], "spec", ctx)


def _find(ctx, which, matcher, namespace, errors, path):
    """The spec an instancetype/preference matcher points at (None when not found or no context)."""
    kind = it.matcher_kind(which, matcher)
    if kind is None:
        errors.append(FieldError(f"{path}.kind", f"unsupported kind {matcher.get('kind')!r}", NOT_SUPPORTED))
        return None
    if not matcher.get("name"):
        errors.append(FieldError(f"{path}.name", "required value", REQUIRED))
        return None
    if ctx is None or ctx.lookup is None:
        return None
    if matcher.get("revisionName"):
        revision = ctx.lookup("ControllerRevision", namespace, matcher["revisionName"])
        if revision is None:
            errors.append(FieldError(f"{path}.revisionName", f"ControllerRevision {matcher['revisionName']!r} "
                                                             "not found", NOT_FOUND))
            return None
        return ((revision.get("data") or {}).get("spec")) or {}
    found = ctx.lookup(kind, None if kind in it.CLUSTER_SCOPED else namespace, matcher["name"])
    if found is None:
        errors.append(FieldError(f"{path}.name", f"{kind} {matcher['name']!r} not found", NOT_FOUND))
        return None
    return found.get("spec") or {}


def validate_vm_spec(spec, namespace, path, ctx) -> list[FieldError]:
    """Errors of a VirtualMachineSpec at `path` (also a pool's VM template)."""
    errors = schema_errors(spec, "v1.VirtualMachineSpec", "vm_spec", path)
    if not isinstance(spec, dict):
        return errors
    if spec.get("running") is not None and spec.get("runStrategy") is not None:
        errors.append(FieldError(f"{path}.running", "running and runStrategy are mutually exclusive; use "
                                                    "runStrategy only"))
    strategy = spec.get("runStrategy")
    if isinstance(strategy, str) and strategy not in RUN_STRATEGIES:
        errors.append(FieldError(f"{path}.runStrategy", f"unsupported value {strategy!r}: supported values: "
                                 + ", ".join(RUN_STRATEGIES), NOT_SUPPORTED))
    if errors:
        return errors
    _check_datavolume_templates(spec, namespace, path, errors)
    template = spec["template"]
    check_template_metadata(template.get("metadata"), f"{path}.template.metadata", errors)
    if template.get("spec") is None:
        return errors + [FieldError(f"{path}.template.spec", "required value", REQUIRED)]
    types = (spec.get("instancetype"), spec.get("preference"))
    if types == (None, None):
        return errors + validate_vmi_spec(template["spec"], f"{path}.template.spec", ctx)
    found = [_find(ctx, which, matcher, namespace, errors, f"{path}.{which}") if matcher is not None else None
             for which, matcher in zip(("instancetype", "preference"), types, strict=True)]
    if errors:
        return errors
    if ctx is None or ctx.lookup is None:  # cannot expand: check what does not depend on the instancetype
        return validate_vmi_spec(template["spec"], f"{path}.template.spec", ctx, memory_from_instancetype=True)
    expanded = copy.deepcopy(template["spec"])
    metadata = copy.deepcopy(template.get("metadata") or {})
    conflicts = it.apply(expanded, metadata, found[0], found[1], f"{path}.template.spec")
    if conflicts:
        return conflicts
    return validate_vmi_spec(expanded, f"{path}.template.spec", ctx,
                             memory_from_instancetype=types[0] is not None)


def _check_datavolume_templates(spec, namespace, path, errors):
    templates = spec.get("dataVolumeTemplates") or []
    volumes = ((spec.get("template") or {}).get("spec") or {}).get("volumes") or []
    referenced = {(v.get("dataVolume") or {}).get("name") for v in volumes} | \
        {(v.get("persistentVolumeClaim") or {}).get("claimName") for v in volumes}
    seen = set()
    for i, template in enumerate(templates):
        here = f"{path}.dataVolumeTemplates[{i}]"
        meta = template.get("metadata") or {}
        name = meta.get("name")
        if not name:
            errors.append(FieldError(f"{here}.metadata.name", "required value: the DataVolume's name", REQUIRED))
            continue
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            errors.append(FieldError(f"{here}.metadata.name", f"{name!r} is not a DNS subdomain (a PVC name)"))
        if name in seen:
            errors.append(FieldError(f"{here}.metadata.name", f"duplicate DataVolume name {name!r}", DUPLICATE))
        seen.add(name)
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            errors.append(FieldError(f"{here}.metadata.namespace", f"Embedded DataVolume namespace "
                                     f"{meta['namespace']} differs from VM namespace {namespace}"))
        if name not in referenced:
            errors.append(FieldError(here, f"DataVolumeTemplate {name!r} must be referenced in the VMI template's "
                                           "'volumes' list", REQUIRED))
        if isinstance(template.get("spec"), dict):
            cdi.check_spec(template["spec"], f"{here}.spec", errors)
            cdi.check_pull_method(template["spec"], f"{here}.spec", errors)
        else:
            errors.append(FieldError(f"{here}.spec", "required value", REQUIRED))


def validate_vm(vm, ctx: ValidationContext | None = None) -> list[FieldError]:
    """Errors of a VirtualMachine: a list of FieldError (empty when valid)."""
    errors = _metadata_errors(vm)
    if errors:
        return errors
    _check_name(vm, errors)
    if vm.get("spec") is None:
        return errors + [FieldError("spec", "required value", REQUIRED)]
    namespace = (vm.get("metadata") or {}).get("namespace")
    return errors + validate_vm_spec(vm["spec"], namespace, "spec", ctx)


# ---------------------------------------------------------------- instancetypes and preferences

_PREFERENCE_ENUMS = {("cpu", "preferredCPUTopology"): it.TOPOLOGIES,
                     ("cpu", "spreadOptions", "across"): it.SPREAD_ACROSS,
                     ("devices", "preferredDiskBus"): schema.DISK_BUSES,
                     ("devices", "preferredCdromBus"): schema.CDROM_BUSES,
                     ("devices", "preferredInterfaceModel"): schema.INTERFACE_MODELS,
                     ("devices", "preferredDiskCache"): schema.DISK_CACHES,
                     ("devices", "preferredDiskIO"): schema.DISK_IO}


def _dig(obj, path):
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def validate_instancetype(obj, ctx: ValidationContext | None = None) -> list[FieldError]:
    """Errors of a VirtualMachine(Cluster)Instancetype."""
    errors = _metadata_errors(obj)
    if errors:
        return errors
    errors = schema_errors(obj.get("spec"), "v1beta1.VirtualMachineInstancetypeSpec", "instancetype_spec", "spec")
    if errors or obj.get("spec") is None:
        return errors or [FieldError("spec", "required value", REQUIRED)]
    guest = obj["spec"]["memory"]["guest"]
    size = _quantity(guest, memory_bytes, "spec.memory.guest", errors)
    if size is not None and size < MIN_GUEST_MEMORY:
        errors.append(FieldError("spec.memory.guest", "must be at least 1Mi"))
    if obj["spec"]["cpu"]["guest"] > MAX_VCPUS:
        errors.append(FieldError("spec.cpu.guest", f"must not exceed {MAX_VCPUS}, the q35 machine's maximum"))
    return errors


def validate_preference(obj, ctx: ValidationContext | None = None) -> list[FieldError]:
    """Errors of a VirtualMachine(Cluster)Preference: what it would put into a VMI must be valid there."""
    errors = _metadata_errors(obj)
    if errors:
        return errors
    spec = obj.get("spec")
    errors = schema_errors(spec, "v1beta1.VirtualMachinePreferenceSpec", "preference_spec", "spec")
    if errors or spec is None:
        return errors
    for path, allowed in _PREFERENCE_ENUMS.items():
        value = _dig(spec, path)
        if value not in (None, "") and value not in allowed:
            errors.append(FieldError("spec." + ".".join(path), f"unsupported value {value!r}: supported values: "
                                     + ", ".join(allowed), NOT_SUPPORTED))
    machine_type = _dig(spec, ("machine", "preferredMachineType"))
    if machine_type and not _MACHINE.match(machine_type):
        errors.append(FieldError("spec.machine.preferredMachineType", f"unsupported machine type {machine_type!r}",
                                 NOT_SUPPORTED))
    clock = {}
    if _dig(spec, ("clock", "preferredClockOffset")):
        clock.update(spec["clock"]["preferredClockOffset"])
    if _dig(spec, ("clock", "preferredTimer")):
        clock["timer"] = spec["clock"]["preferredTimer"]
    clock_errors = []
    _check_clock({"clock": clock} if clock else {}, "spec", clock_errors)
    errors += [FieldError(e.field.replace("spec.clock", "spec.clock.preferredClockOffset", 1), e.message, e.reason)
               for e in clock_errors]
    hyperv_errors = []
    _check_features({"features": {"hyperv": _dig(spec, ("features", "preferredHyperv")) or {}}}, "spec",
                    hyperv_errors)
    errors += [FieldError(e.field.replace("spec.features.hyperv", "spec.features.preferredHyperv", 1), e.message,
                          e.reason) for e in hyperv_errors]
    return errors


# ---------------------------------------------------------------- replica sets and pools

def _check_selector(spec, template_path, path, errors):
    selector = spec.get("selector") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        errors.append(FieldError(f"{path}.selector", "required value: an empty selector would match every object",
                                 REQUIRED))
        return
    labels = (_dig(spec, template_path) or {}).get("labels") or {}
    if not labels_match(selector, labels):
        errors.append(FieldError(f"{path}.selector", "does not match the template's labels "
                                                     f"({'.'.join(template_path)}.labels)"))


def validate_replicaset(obj, ctx: ValidationContext | None = None) -> list[FieldError]:
    """Errors of a VirtualMachineInstanceReplicaSet."""
    errors = _metadata_errors(obj)
    if errors:
        return errors
    _check_name(obj, errors)
    spec = obj.get("spec")
    errors += schema_errors(spec, "v1.VirtualMachineInstanceReplicaSetSpec", "replicaset_spec", "spec")
    if errors or spec is None:
        return errors or [FieldError("spec", "required value", REQUIRED)]
    check_template_metadata(spec["template"].get("metadata"), "spec.template.metadata", errors)
    if errors:
        return errors
    _check_selector(spec, ("template", "metadata"), "spec", errors)
    if spec["template"].get("spec") is None:
        return errors + [FieldError("spec.template.spec", "required value", REQUIRED)]
    return errors + validate_vmi_spec(spec["template"]["spec"], "spec.template.spec", ctx)


def validate_pool(obj, ctx: ValidationContext | None = None) -> list[FieldError]:
    """Errors of a VirtualMachinePool: its VM template must be a valid VM."""
    errors = _metadata_errors(obj)
    if errors:
        return errors
    _check_name(obj, errors)
    spec = obj.get("spec")
    errors += schema_errors(spec, "v1beta1.VirtualMachinePoolSpec", "pool_spec", "spec")
    if errors or spec is None:
        return errors or [FieldError("spec", "required value", REQUIRED)]
    template = spec["virtualMachineTemplate"]
    check_template_metadata(template.get("metadata"), "spec.virtualMachineTemplate.metadata", errors)
    if errors:
        return errors
    _check_selector(spec, ("virtualMachineTemplate", "metadata"), "spec", errors)
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 50:
        errors.append(FieldError("metadata.name", "at most 50 characters, so that <pool>-<index> stays a DNS label"))
    if template.get("spec") is None:
        return errors + [FieldError("spec.virtualMachineTemplate.spec", "required value", REQUIRED)]
    namespace = (obj.get("metadata") or {}).get("namespace")
    return errors + validate_vm_spec(template["spec"], namespace, "spec.virtualMachineTemplate.spec", ctx)


# ---------------------------------------------------------------- DataVolumes, snapshots, restores

def validate_datavolume(obj, ctx: ValidationContext | None = None) -> list[FieldError]:
    """Errors of a cdi.kubevirt.io DataVolume."""
    errors = _metadata_errors(obj)
    if errors:
        return errors
    name = (obj.get("metadata") or {}).get("name")
    if isinstance(name, str) and name and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
        errors.append(FieldError("metadata.name", "must be a DNS subdomain: its PVC has the same name"))
    spec = obj.get("spec")
    errors += schema_errors(spec, "v1beta1.DataVolumeSpec", "datavolume_spec", "spec")
    if errors or spec is None:
        return errors or [FieldError("spec", "required value", REQUIRED)]
    cdi.check_spec(spec, "spec", errors)
    cdi.check_pull_method(spec, "spec", errors)
    return errors


def _check_vm_reference(ref, path, errors):
    if not isinstance(ref, dict) or not ref.get("name"):
        errors.append(FieldError(f"{path}.name", "required value", REQUIRED))
        return
    if ref.get("kind") != "VirtualMachine" or ref.get("apiGroup") not in ("kubevirt.io", None, ""):
        errors.append(FieldError(path, f"only VirtualMachines (apiGroup kubevirt.io, kind VirtualMachine) are "
                                       f"supported, not {ref.get('apiGroup')}/{ref.get('kind')}", NOT_SUPPORTED))


def validate_snapshot(obj, ctx: ValidationContext | None = None, old=None) -> list[FieldError]:
    """Errors of a VirtualMachineSnapshot (its spec is immutable once created)."""
    errors = _metadata_errors(obj)
    if errors:
        return errors
    spec = obj.get("spec")
    errors += schema_errors(spec, "v1beta1.VirtualMachineSnapshotSpec", "snapshot_spec", "spec")
    if errors or spec is None:
        return errors or [FieldError("spec", "required value", REQUIRED)]
    if old is not None and (old.get("spec") or {}) != spec:
        return [FieldError("spec", "is immutable after creation")]
    _check_vm_reference(spec.get("source"), "spec.source", errors)
    if spec.get("failureDeadline") not in (None, ""):
        try:
            snap.parse_duration(spec["failureDeadline"])
        except ValueError as exc:
            errors.append(FieldError("spec.failureDeadline", str(exc)))
    return errors


def validate_restore(obj, ctx: ValidationContext | None = None, old=None) -> list[FieldError]:
    """Errors of a VirtualMachineRestore (its spec is immutable once created)."""
    errors = _metadata_errors(obj)
    if errors:
        return errors
    spec = obj.get("spec")
    errors += schema_errors(spec, "v1beta1.VirtualMachineRestoreSpec", "restore_spec", "spec")
    if errors or spec is None:
        return errors or [FieldError("spec", "required value", REQUIRED)]
    if old is not None and (old.get("spec") or {}) != spec:
        return [FieldError("spec", "is immutable after creation")]
    _check_vm_reference(spec.get("target"), "spec.target", errors)
    if not spec.get("virtualMachineSnapshotName"):
        errors.append(FieldError("spec.virtualMachineSnapshotName", "required value", REQUIRED))
    return errors
