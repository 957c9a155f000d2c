"""Validation of VirtualMachine and VirtualMachineInstance objects (plain dicts), as virt-api's webhook needs it.

Two passes: the object is walked against the published schema (schema.py), so unknown fields, wrong types
and unsupported enum values are reported; then the rules a schema cannot express (references between
disks and volumes, exactly-one-of choices, ...) are checked. Every error names the field path, in
upstream's notation: spec.domain.devices.disks[0].bus.
"""
import base64
import binascii
import re
from dataclasses import dataclass

from . import schema
from .quantity import cpu_millis, memory_bytes, parse_quantity

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
NOT_FOUND = "FieldValueNotFound"

_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RESOURCE_NAMES = ("cpu", "memory")


@dataclass(frozen=True)
class FieldError:
    """One problem: `field` is the path, `reason` a metav1.CauseType, `message` says what is wrong."""

    field: str
    message: str
    reason: str = INVALID

    def __str__(self):
        return f"{self.field}: {self.message}"

    def as_cause(self):
        """The shape of a metav1.StatusCause, for admission responses."""
        return {"type": self.reason, "field": self.field, "message": str(self)}


# ---------------------------------------------------------------- schema walk

def check_schema(node, value, path, errors):
    """Report where `value` does not fit the OpenAPI schema `node`."""
    if value is None:
        return
    if node.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            errors.append(FieldError(path, f"must be a quantity (string or integer), got {value!r}"))
            return
        try:
            parse_quantity(value)
        except ValueError:
            errors.append(FieldError(path, f"invalid quantity {value!r}"))
        return
    kind = node.get("type")
    if kind == "object":
        _check_object(node, value, path, errors)
    elif kind == "array":
        if not isinstance(value, list):
            errors.append(FieldError(path, "must be a list"))
            return
        for i, item in enumerate(value):
            check_schema(node["items"], item, f"{path}[{i}]", errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(FieldError(path, f"must be a string, got {value!r}"))
        elif "enum" in node and value not in node["enum"]:
            errors.append(FieldError(path, f"unsupported value {value!r}: supported values are "
                                           + ", ".join(repr(v) for v in node["enum"]), NOT_SUPPORTED))
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(FieldError(path, f"must be an integer, got {value!r}"))
        elif "minimum" in node and value < node["minimum"]:
            errors.append(FieldError(path, f"must be greater than or equal to {node['minimum']}"))
        elif "maximum" in node and value > node["maximum"]:
            errors.append(FieldError(path, f"must be less than or equal to {node['maximum']}"))
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(FieldError(path, f"must be a boolean, got {value!r}"))


def _check_object(node, value, path, errors):
    if not isinstance(value, dict):
        errors.append(FieldError(path, "must be an object"))
        return
    props = node.get("properties")
    extra = node.get("additionalProperties")
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if props is not None and key in props:
            check_schema(props[key], item, child, errors)
        elif extra is not None:
            check_schema(extra, item, f"{path}[{key}]", errors)
        elif props is not None and not node.get("x-kubernetes-preserve-unknown-fields"):
            errors.append(FieldError(child, "unknown field: not supported by this KubeVirt implementation",
                                     NOT_SUPPORTED))
    for key in node.get("required", ()):
        if value.get(key) is None:
            errors.append(FieldError(f"{path}.{key}" if path else key, "required value", REQUIRED))


# ---------------------------------------------------------------- semantic rules

def _names(items, path, errors, what):
    seen = {}
    for i, item in enumerate(items):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            errors.append(FieldError(f"{path}[{i}].name", f"duplicate {what} name {name!r}", DUPLICATE))
        seen.setdefault(name, i)
    return seen


def _exactly_one(item, keys, path, errors, what):
    present = [k for k in keys if item.get(k) is not None]
    if len(present) > 1:
        errors.append(FieldError(path, f"only one {what} may be set, found: {', '.join(present)}"))
    return present


def _check_resources(domain, path, errors):
    resources = domain.get("resources") or {}
    for kind in ("requests", "limits"):
        for name in resources.get(kind) or {}:
            if name not in _RESOURCE_NAMES:
                errors.append(FieldError(f"{path}.resources.{kind}[{name}]",
                                         f"unsupported resource {name!r}: supported are cpu, memory", NOT_SUPPORTED))
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    guest = (domain.get("memory") or {}).get("guest")
    if guest is None and "memory" not in requests and "memory" not in limits:
        errors.append(FieldError(f"{path}.memory.guest", "required value: set memory.guest or "
                                 "resources.requests.memory", REQUIRED))
    try:
        if guest is not None and memory_bytes(guest) <= 0:
            errors.append(FieldError(f"{path}.memory.guest", "must be greater than 0"))
        if guest is not None and "memory" in limits and memory_bytes(guest) > memory_bytes(limits["memory"]):
            errors.append(FieldError(f"{path}.memory.guest", "must not exceed resources.limits.memory"))
        for name, measure in (("memory", memory_bytes), ("cpu", cpu_millis)):
            if name in requests and name in limits and measure(requests[name]) > measure(limits[name]):
                errors.append(FieldError(f"{path}.resources.requests.{name}",
                                         f"must not exceed resources.limits.{name}"))
    except ValueError:
        pass  # already reported by the schema walk


def _check_firmware(domain, path, errors):
    firmware = domain.get("firmware") or {}
    bootloader = firmware.get("bootloader")
    if isinstance(bootloader, dict):
        if not _exactly_one(bootloader, ("bios", "efi"), f"{path}.firmware.bootloader", errors, "bootloader"):
            errors.append(FieldError(f"{path}.firmware.bootloader", "one of bios or efi is required", REQUIRED))
    kernel_boot = firmware.get("kernelBoot")
    if isinstance(kernel_boot, dict):
        container = kernel_boot.get("container")
        if not isinstance(container, dict):
            if kernel_boot.get("kernelArgs"):
                errors.append(FieldError(f"{path}.firmware.kernelBoot.container",
                                         "required value: kernelArgs need a kernel container", REQUIRED))
        elif not container.get("kernelPath") and not container.get("initrdPath"):
            errors.append(FieldError(f"{path}.firmware.kernelBoot.container",
                                     "at least one of kernelPath or initrdPath is required", REQUIRED))


def _check_disks(spec, path, errors):
    devices = (spec.get("domain") or {}).get("devices") or {}
    disks = devices.get("disks") or []
    volumes = spec.get("volumes") or []
    volume_names = {v.get("name") for v in volumes if isinstance(v, dict)}
    dpath = f"{path}.domain.devices.disks"
    _names(disks, dpath, errors, "disk")
    boot_orders = {}
    for i, disk in enumerate(disks):
        if not isinstance(disk, dict):
            continue
        _exactly_one(disk, ("disk", "cdrom"), f"{dpath}[{i}]", errors, "disk type")
        name = disk.get("name")
        if isinstance(name, str) and name not in volume_names:
            errors.append(FieldError(f"{dpath}[{i}].name", f"disk {name!r} has no volume of the same name", NOT_FOUND))
        order = disk.get("bootOrder")
        if isinstance(order, int):
            if order in boot_orders:
                used_by = boot_orders[order]
                errors.append(FieldError(f"{dpath}[{i}].bootOrder",
                                         f"boot order {order} is already used by disk {used_by!r}", DUPLICATE))
            boot_orders.setdefault(order, name)


def _check_volumes(spec, path, errors):
    volumes = spec.get("volumes") or []
    vpath = f"{path}.volumes"
    _names(volumes, vpath, errors, "volume")
    sources = ("containerDisk", "cloudInitNoCloud", "emptyDisk", "persistentVolumeClaim")
    cloud_inits = 0
    for i, volume in enumerate(volumes):
        if not isinstance(volume, dict):
            continue
        if not _exactly_one(volume, sources, f"{vpath}[{i}]", errors, "volume source"):
            errors.append(FieldError(f"{vpath}[{i}]", "a volume source is required: one of " + ", ".join(sources),
                                     REQUIRED))
        cloud_init = volume.get("cloudInitNoCloud")
        if isinstance(cloud_init, dict):
            cloud_inits += 1
            _check_cloud_init(cloud_init, f"{vpath}[{i}].cloudInitNoCloud", errors)
        empty = volume.get("emptyDisk")
        if isinstance(empty, dict) and empty.get("capacity") is not None:
            try:
                if memory_bytes(empty["capacity"]) <= 0:
                    errors.append(FieldError(f"{vpath}[{i}].emptyDisk.capacity", "must be greater than 0"))
            except ValueError:
                pass
    if cloud_inits > 1:
        errors.append(FieldError(vpath, "at most one cloudInitNoCloud volume is allowed"))


def _check_cloud_init(cloud_init, path, errors):
    user = _exactly_one(cloud_init, ("userData", "userDataBase64", "secretRef"), path, errors, "user data source")
    network = _exactly_one(cloud_init, ("networkData", "networkDataBase64", "networkDataSecretRef"), path, errors,
                           "network data source")
    if not user and not network:
        errors.append(FieldError(path, "one of userData, userDataBase64, secretRef, networkData, networkDataBase64 "
                                       "or networkDataSecretRef is required", REQUIRED))
    for key in ("userDataBase64", "networkDataBase64"):
        if isinstance(cloud_init.get(key), str):
            try:
                base64.b64decode(cloud_init[key], validate=True)
            except (binascii.Error, ValueError):
                errors.append(FieldError(f"{path}.{key}", "is not valid base64"))


def _check_networks(spec, path, errors):
    networks = spec.get("networks") or []
    interfaces = ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []
    npath, ipath = f"{path}.networks", f"{path}.domain.devices.interfaces"
    network_index = _names(networks, npath, errors, "network")
    _names(interfaces, ipath, errors, "interface")
    pod_networks = 0
    for i, network in enumerate(networks):
        if not isinstance(network, dict):
            continue
        if network.get("pod") is None:
            errors.append(FieldError(f"{npath}[{i}]", "a network source is required: pod", REQUIRED))
        else:
            pod_networks += 1
    if pod_networks > 1:
        errors.append(FieldError(npath, "at most one pod network is allowed"))
    used = set()
    for i, iface in enumerate(interfaces):
        if not isinstance(iface, dict):
            continue
        name = iface.get("name")
        if isinstance(name, str):
            used.add(name)
            if name not in network_index:
                errors.append(FieldError(f"{ipath}[{i}].name", f"interface {name!r} has no network of the same name",
                                         NOT_FOUND))
        if iface.get("masquerade") is None:
            errors.append(FieldError(f"{ipath}[{i}]", "a binding method is required: masquerade", REQUIRED))
        mac = iface.get("macAddress")
        if isinstance(mac, str) and not _MAC.match(mac):
            errors.append(FieldError(f"{ipath}[{i}].macAddress", f"{mac!r} is not a valid MAC address"))
    for name, i in network_index.items():
        if name not in used:
            errors.append(FieldError(f"{npath}[{i}].name", f"network {name!r} is not used by any interface", NOT_FOUND))


def _check_placement(spec, path, errors):
    for i, tol in enumerate(spec.get("tolerations") or []):
        if not isinstance(tol, dict):
            continue
        if tol.get("operator") == "Exists" and tol.get("value"):
            errors.append(FieldError(f"{path}.tolerations[{i}].value", "must be empty when operator is Exists"))
        if not tol.get("key") and tol.get("operator", "Equal") != "Exists":
            errors.append(FieldError(f"{path}.tolerations[{i}].operator",
                                     "must be Exists when key is empty", INVALID))
    affinity = spec.get("affinity")
    if isinstance(affinity, dict):
        for key in affinity:
            if key not in ("nodeAffinity", "podAffinity", "podAntiAffinity"):
                errors.append(FieldError(f"{path}.affinity.{key}", "unknown field", NOT_SUPPORTED))


def validate_vmi_spec(spec, path="spec"):
    """Errors of a VirtualMachineInstanceSpec found at `path` (also used for a VM's template)."""
    errors = []
    check_schema(schema.vmi_spec(), spec, path, errors)
    if errors or not isinstance(spec, dict):
        return errors
    domain = spec.get("domain") or {}
    _check_resources(domain, f"{path}.domain", errors)
    _check_firmware(domain, f"{path}.domain", errors)
    _check_disks(spec, path, errors)
    _check_volumes(spec, path, errors)
    _check_networks(spec, path, errors)
    _check_placement(spec, path, errors)
    return errors


def _check_name(obj, errors):
    name = (obj.get("metadata") or {}).get("name")
    if isinstance(name, str) and name and (len(name) > 63 or not _DNS_LABEL.match(name)):
        errors.append(FieldError("metadata.name", "must be a DNS label: at most 63 lowercase letters, digits "
                                                  "or '-', starting and ending with a letter or digit"))


def validate_vmi(vmi):
    """Errors of a VirtualMachineInstance: a list of FieldError (empty when valid)."""
    errors = []
    _check_name(vmi, errors)
    if vmi.get("spec") is None:
        return errors + [FieldError("spec", "required value", REQUIRED)]
    return errors + validate_vmi_spec(vmi["spec"])


def validate_vm(vm):
    """Errors of a VirtualMachine: a list of FieldError (empty when valid)."""
    errors = []
    _check_name(vm, errors)
    spec = vm.get("spec")
    if spec is None:
        return errors + [FieldError("spec", "required value", REQUIRED)]
    top = schema.vm_spec()
    template_schema = top["properties"].pop("template")
    top.pop("required", None)
    check_schema(top, {k: v for k, v in spec.items() if k != "template"}, "spec", errors)
    if spec.get("running") is not None and spec.get("runStrategy") is not None:
        errors.append(FieldError("spec.running", "running and runStrategy are mutually exclusive; "
                                                 "use runStrategy only"))
    template = spec.get("template")
    if not isinstance(template, dict):
        errors.append(FieldError("spec.template", "required value", REQUIRED))
        return errors
    check_schema(template_schema["properties"]["metadata"], template.get("metadata"), "spec.template.metadata", errors)
    for key in template:
        if key not in ("metadata", "spec"):
            errors.append(FieldError(f"spec.template.{key}", "unknown field", NOT_SUPPORTED))
    if template.get("spec") is None:
        errors.append(FieldError("spec.template.spec", "required value", REQUIRED))
    else:
        errors.extend(validate_vmi_spec(template["spec"], "spec.template.spec"))
    return errors
