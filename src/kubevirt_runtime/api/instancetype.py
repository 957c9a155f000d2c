"""instancetype.kubevirt.io/v1beta1: applying an instancetype and a preference to a VMI spec (pure).

As upstream: the instancetype *sets* CPU, memory, node selector, scheduler name and annotations, and the
VM template must not set them itself (each clash is a conflict error naming the template's field); the
preference only *fills in* what the template left unset. The VM controller applies both to the VMI it
creates, from the ControllerRevisions it recorded when the VM first started, so later edits of an
instancetype do not change a VM that already uses it.
"""
from __future__ import annotations

import copy

from .quantity import memory_bytes
from .walk import INVALID, FieldError

GROUP = "instancetype.kubevirt.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"

INSTANCETYPE = "VirtualMachineInstancetype"
CLUSTER_INSTANCETYPE = "VirtualMachineClusterInstancetype"
PREFERENCE = "VirtualMachinePreference"
CLUSTER_PREFERENCE = "VirtualMachineClusterPreference"
PLURALS = {INSTANCETYPE: "virtualmachineinstancetypes", CLUSTER_INSTANCETYPE: "virtualmachineclusterinstancetypes",
           PREFERENCE: "virtualmachinepreferences", CLUSTER_PREFERENCE: "virtualmachineclusterpreferences"}
CLUSTER_SCOPED = (CLUSTER_INSTANCETYPE, CLUSTER_PREFERENCE)
# spec.instancetype.kind / spec.preference.kind accept these spellings (upstream matches case-insensitively).
_KIND_NAMES = {
    "instancetype": {"virtualmachineinstancetype": INSTANCETYPE, "virtualmachineinstancetypes": INSTANCETYPE,
                     "virtualmachineclusterinstancetype": CLUSTER_INSTANCETYPE,
                     "virtualmachineclusterinstancetypes": CLUSTER_INSTANCETYPE, "": CLUSTER_INSTANCETYPE},
    "preference": {"virtualmachinepreference": PREFERENCE, "virtualmachinepreferences": PREFERENCE,
                   "virtualmachineclusterpreference": CLUSTER_PREFERENCE,
                   "virtualmachineclusterpreferences": CLUSTER_PREFERENCE, "": CLUSTER_PREFERENCE},
}

# VMI annotations naming what a VMI was expanded from (as upstream).
INSTANCETYPE_ANNOTATION = "kubevirt.io/instancetype-name"
CLUSTER_INSTANCETYPE_ANNOTATION = "kubevirt.io/cluster-instancetype-name"
PREFERENCE_ANNOTATION = "kubevirt.io/preference-name"
CLUSTER_PREFERENCE_ANNOTATION = "kubevirt.io/cluster-preference-name"
# ControllerRevision labels (as upstream), so revisions can be found by the object they copy.
REVISION_LABELS = ("instancetype.kubevirt.io/object-kind", "instancetype.kubevirt.io/object-name",
                   "instancetype.kubevirt.io/object-uid", "instancetype.kubevirt.io/object-generation",
                   "instancetype.kubevirt.io/object-version")

TOPOLOGIES = ("sockets", "cores", "threads", "spread", "any",
              "preferSockets", "preferCores", "preferThreads", "preferSpread", "preferAny")
SPREAD_ACROSS = ("SocketsCores", "CoresThreads", "SocketsCoresThreads")


def matcher_kind(which: str, matcher: dict) -> str | None:
    """The canonical kind a VM's spec.instancetype / spec.preference points at, None if unknown."""
    return _KIND_NAMES[which].get(str(matcher.get("kind") or "").lower())


def annotation_for(kind: str) -> str:
    return {INSTANCETYPE: INSTANCETYPE_ANNOTATION, CLUSTER_INSTANCETYPE: CLUSTER_INSTANCETYPE_ANNOTATION,
            PREFERENCE: PREFERENCE_ANNOTATION, CLUSTER_PREFERENCE: CLUSTER_PREFERENCE_ANNOTATION}[kind]


def revision_name(vm_name: str, obj: dict) -> str:
    """Upstream's ControllerRevision name: <vm>-<object>-<version>-<object uid>-<object generation>."""
    meta = obj["metadata"]
    version = obj.get("apiVersion", API_VERSION).rsplit("/", 1)[-1]
    return f"{vm_name}-{meta['name']}-{version}-{meta.get('uid', '')}-{meta.get('generation', 1)}"


# ---------------------------------------------------------------- instancetype

def _conflict(base, *parts):
    return FieldError(".".join((base,) + parts), "conflicts with the selected instance type, which sets it",
                      INVALID)


def _cpu_topology(vcpus: int, preference: dict) -> dict:
    topology = {"sockets": 1, "cores": 1, "threads": 1}
    if vcpus == 1:
        return topology
    preferred = ((preference.get("cpu") or {}).get("preferredCPUTopology") or "sockets")
    preferred = preferred[len("prefer"):].lower() if preferred.startswith("prefer") else preferred
    if preferred in ("sockets", "any"):
        topology["sockets"] = vcpus
    elif preferred in ("cores", "threads"):
        topology[preferred] = vcpus
    elif preferred == "spread":
        options = (preference.get("cpu") or {}).get("spreadOptions") or {}
        ratio = options.get("ratio") or preference.get("preferSpreadSocketToCoreRatio") or 2
        across = options.get("across") or "SocketsCores"
        if across == "SocketsCores":
            topology.update(cores=ratio, sockets=max(vcpus // ratio, 1))
        elif across == "CoresThreads":
            topology.update(threads=ratio, cores=max(vcpus // ratio, 1))
        else:
            topology.update(threads=2, cores=ratio, sockets=max(vcpus // 2 // ratio, 1))
    return topology


def _apply_instancetype(spec, metadata, instancetype, preference, base) -> list[FieldError]:
    domain = spec.setdefault("domain", {})
    cpu = domain.get("cpu") or {}
    memory = domain.get("memory") or {}
    resources = domain.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    it_cpu, it_memory = instancetype.get("cpu") or {}, instancetype.get("memory") or {}
    conflicts = []
    for kind, values in (("requests", requests), ("limits", limits)):
        for name in ("cpu", "memory"):
            if name in values:
                conflicts.append(_conflict(base, "domain", "resources", kind, name))
    for key in ("sockets", "cores", "threads"):
        if cpu.get(key):
            conflicts.append(_conflict(base, "domain", "cpu", key))
    if cpu.get("model") and it_cpu.get("model"):
        conflicts.append(_conflict(base, "domain", "cpu", "model"))
    if memory.get("guest") is not None:
        conflicts.append(_conflict(base, "domain", "memory", "guest"))
    if spec.get("nodeSelector") and instancetype.get("nodeSelector"):
        conflicts.append(_conflict(base, "nodeSelector"))
    if spec.get("schedulerName") and instancetype.get("schedulerName"):
        conflicts.append(_conflict(base, "schedulerName"))
    annotations = metadata.setdefault("annotations", {})
    for key, value in (instancetype.get("annotations") or {}).items():
        if key in annotations and annotations[key] != value:
            conflicts.append(FieldError(f"{base.rsplit('.spec', 1)[0]}.metadata.annotations[{key}]",
                                        "conflicts with the selected instance type's annotation", INVALID))
    if conflicts:
        return conflicts
    cpu = domain.setdefault("cpu", {})
    cpu.update(_cpu_topology(int(it_cpu.get("guest") or 1), preference or {}))
    if it_cpu.get("model"):
        cpu["model"] = it_cpu["model"]
    domain.setdefault("memory", {})["guest"] = it_memory.get("guest")
    overcommit = it_memory.get("overcommitPercent") or 0
    if overcommit:
        request = int(memory_bytes(it_memory["guest"]) * (100 - overcommit) / 100)
        domain.setdefault("resources", {}).setdefault("requests", {})["memory"] = str(request)
    if instancetype.get("nodeSelector"):
        spec["nodeSelector"] = dict(instancetype["nodeSelector"])
    if instancetype.get("schedulerName"):
        spec["schedulerName"] = instancetype["schedulerName"]
    for key, value in (instancetype.get("annotations") or {}).items():
        annotations.setdefault(key, value)
    return []


# ---------------------------------------------------------------- preference

def _fill(target: dict, key: str, value) -> None:
    if value is not None and target.get(key) in (None, ""):
        target[key] = copy.deepcopy(value)


def _on_pod_network(spec, name) -> bool:
    return any(n.get("name") == name and n.get("pod") is not None for n in spec.get("networks") or [])


def _apply_device_preferences(spec, devices_pref):
    devices = spec["domain"].setdefault("devices", {})
    for theirs, ours in (("preferredAutoattachPodInterface", "autoattachPodInterface"),
                         ("preferredAutoattachSerialConsole", "autoattachSerialConsole"),
                         ("preferredAutoattachMemBalloon", "autoattachMemBalloon"),
                         ("preferredAutoattachGraphicsDevice", "autoattachGraphicsDevice"),
                         ("preferredRng", "rng"), ("preferredTPM", "tpm")):
        _fill(devices, ours, devices_pref.get(theirs))
    for disk in devices.get("disks") or []:
        if disk.get("disk") is None and disk.get("cdrom") is None and disk.get("lun") is None:
            disk["disk"] = {}
        if disk.get("disk") is not None:
            _fill(disk["disk"], "bus", devices_pref.get("preferredDiskBus") or None)
            _fill(disk, "cache", devices_pref.get("preferredDiskCache") or None)
            _fill(disk, "io", devices_pref.get("preferredDiskIO") or None)
        elif disk.get("cdrom") is not None:
            _fill(disk["cdrom"], "bus", devices_pref.get("preferredCdromBus") or None)
    for iface in devices.get("interfaces") or []:
        _fill(iface, "model", devices_pref.get("preferredInterfaceModel") or None)
        bindings = ("masquerade", "bridge", "sriov", "slirp", "passt", "macvtap", "binding")
        if devices_pref.get("preferredInterfaceMasquerade") is not None and \
                all(iface.get(b) is None for b in bindings) and _on_pod_network(spec, iface.get("name")):
            iface["masquerade"] = copy.deepcopy(devices_pref["preferredInterfaceMasquerade"])


def _apply_feature_preferences(domain, features_pref):
    features = domain.setdefault("features", {})
    if features_pref.get("preferredAcpi") is not None:
        features["acpi"] = copy.deepcopy(features_pref["preferredAcpi"])  # upstream lets this one win
    _fill(features, "apic", features_pref.get("preferredApic"))
    _fill(features, "smm", features_pref.get("preferredSmm"))
    if features_pref.get("preferredHyperv") is not None:
        hyperv = features.setdefault("hyperv", {})
        for key, value in features_pref["preferredHyperv"].items():
            _fill(hyperv, key, value)


def _apply_firmware_preferences(domain, firmware_pref):
    bootloader = domain.setdefault("firmware", {}).setdefault("bootloader", {})
    neither = bootloader.get("bios") is None and bootloader.get("efi") is None
    if firmware_pref.get("preferredUseBios") and neither:
        bootloader["bios"] = {}
    if firmware_pref.get("preferredUseBiosSerial") is not None and bootloader.get("bios") is not None:
        _fill(bootloader["bios"], "useSerial", firmware_pref["preferredUseBiosSerial"])
    neither = bootloader.get("bios") is None and bootloader.get("efi") is None
    if neither and firmware_pref.get("preferredEfi") is not None:
        bootloader["efi"] = copy.deepcopy(firmware_pref["preferredEfi"])
        return
    if firmware_pref.get("preferredUseEfi") and neither:
        bootloader["efi"] = {}
    if firmware_pref.get("preferredUseSecureBoot") is not None and bootloader.get("efi") is not None:
        _fill(bootloader["efi"], "secureBoot", firmware_pref["preferredUseSecureBoot"])
    if not bootloader:
        del domain["firmware"]["bootloader"]


def _apply_preference(spec, metadata, preference):
    domain = spec.setdefault("domain", {})
    if preference.get("devices"):
        _apply_device_preferences(spec, preference["devices"])
    if preference.get("features"):
        _apply_feature_preferences(domain, preference["features"])
    if preference.get("firmware"):
        _apply_firmware_preferences(domain, preference["firmware"])
    machine_type = (preference.get("machine") or {}).get("preferredMachineType")
    if machine_type:
        _fill(domain.setdefault("machine", {}), "type", machine_type)
    clock_pref = preference.get("clock") or {}
    if clock_pref:
        clock = domain.setdefault("clock", {})
        offset = clock_pref.get("preferredClockOffset") or {}
        if offset and clock.get("utc") is None and clock.get("timezone") is None:
            clock.update(copy.deepcopy(offset))
        _fill(clock, "timer", clock_pref.get("preferredTimer"))
    _fill(spec, "subdomain", preference.get("preferredSubdomain") or None)
    _fill(spec, "terminationGracePeriodSeconds", preference.get("preferredTerminationGracePeriodSeconds"))
    _fill(spec, "architecture", preference.get("preferredArchitecture") or None)
    annotations = metadata.setdefault("annotations", {})
    for key, value in (preference.get("annotations") or {}).items():
        annotations.setdefault(key, value)


def _check_requirements(spec, preference, base) -> list[FieldError]:
    requirements = preference.get("requirements") or {}
    domain = spec.get("domain") or {}
    errors = []
    need_cpu = (requirements.get("cpu") or {}).get("guest")
    if need_cpu:
        cpu = domain.get("cpu") or {}
        have = int(cpu.get("sockets") or 1) * int(cpu.get("cores") or 1) * int(cpu.get("threads") or 1)
        if have < need_cpu:
            errors.append(FieldError(f"{base}.domain.cpu", f"the preference requires {need_cpu} vCPUs, "
                                                           f"the VM provides {have}"))
    need_memory = (requirements.get("memory") or {}).get("guest")
    guest = (domain.get("memory") or {}).get("guest")
    if need_memory is not None and guest is not None:
        try:
            if memory_bytes(guest) < memory_bytes(need_memory):
                errors.append(FieldError(f"{base}.domain.memory.guest", f"the preference requires at least "
                                                                        f"{need_memory} of guest memory"))
        except ValueError:
            pass  # reported by the schema walk
    return errors


def _add_volume_disks(spec: dict) -> None:
    """Upstream's VM controller gives every volume without a disk a disk before it applies the preference,
    so the preferred bus reaches those disks too."""
    disks = spec.setdefault("domain", {}).setdefault("devices", {}).setdefault("disks", [])
    named = {d.get("name") for d in disks}
    for volume in spec.get("volumes") or []:
        if volume.get("name") not in named:
            disks.append({"name": volume.get("name")})
    if not disks:
        del spec["domain"]["devices"]["disks"]


def apply(spec: dict, metadata: dict, instancetype: dict | None, preference: dict | None,
          base: str = "spec.template.spec") -> list[FieldError]:
    """Apply an instancetype spec and a preference spec to a VMI spec and its metadata, in place.

    Returns the conflicts (field paths under `base`); on a conflict nothing is changed."""
    if instancetype is not None:
        trial_spec, trial_meta = copy.deepcopy(spec), copy.deepcopy(metadata)
        conflicts = _apply_instancetype(trial_spec, trial_meta, instancetype, preference, base)
        if conflicts:
            return conflicts
        spec.clear()
        spec.update(trial_spec)
        metadata.clear()
        metadata.update(trial_meta)
    if preference is not None:
        _add_volume_disks(spec)
        _apply_preference(spec, metadata, preference)
        return _check_requirements(spec, preference, base)
    return []
