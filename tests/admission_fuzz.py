"""Hypothesis strategies for admission fuzzing: VM and VMI objects generated from upstream's schema.

Each object starts from one of a few valid bases and gets a handful of mutations at field paths drawn
from upstream's VirtualMachineInstanceSpec schema: a value generated from the field's schema (so many
objects stay valid and reach the converter), a value of the wrong type, an unknown field, a huge or
empty value, or the field removed. Shared by the unit fuzz test (webhook functions) and the e2e one
(live API), which check the same properties:

- the webhooks never fail (no exception, no 500);
- every rejection is a 422 whose causes each name a field path;
- defaulting never changes a value the user set;
- every accepted VMI converts to domain XML (nothing accepted fails later in the converter).
"""
from __future__ import annotations

import copy
import functools
import xml.etree.ElementTree as ET

from hypothesis import strategies as st

from kubevirt_runtime.api import upstream
from kubevirt_runtime.api.network import interface_mac, pod_interface
from kubevirt_runtime.launcher.converter import ConverterContext, DiskSource, TapInterface, convert

MAX_DEPTH = 4
HUGE_INTS = [0, -1, 2**31, 2**31 - 1, 2**32, 2**53, 2**63 - 1, -2**63, 2**64, 10**30]
STRINGS = ["", " ", "a", "default", "virtio", "sata", "none", "q35", "1Gi", "64Mi", "-1", "0", "1e3", "500m",
           "/", "/var/data/disk.img", "../x", "x" * 300, "10.0.2.0/24", "de:ad:be:ef:00:01", "Europe/Paris",
           "ünïcødé", "a\x00b", "a\nb", "<xml/>", "${x}", "2", "true", "null"]
QUANTITIES = ["1Gi", "64Mi", "128Mi", "1", "0", "-1Gi", "1k", "500m", "2", "1e3", "lots", "", "1.5Gi", "9Ei"]
WRONG_TYPES = ["x", 1, -7, True, False, 1.5, [], ["c"], [1], {}, {"a": 1}]

BASE_SPECS = [
    {"domain": {"memory": {"guest": "64Mi"}, "devices": {}}},
    {"domain": {"resources": {"requests": {"memory": "128Mi"}}, "cpu": {"cores": 2},
                "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}},
                                      {"name": "ci", "cdrom": {"bus": "sata"}}],
                            "interfaces": [{"name": "default", "masquerade": {}, "ports": [{"port": 22}]}]}},
     "networks": [{"name": "default", "pod": {}}],
     "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}},
                 {"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}]},
    {"domain": {"memory": {"guest": "256Mi"}, "firmware": {"kernelBoot": {"kernelArgs": "console=ttyS0", "container": {
        "image": "kernels:1", "kernelPath": "/boot/vmlinuz", "initrdPath": "/boot/initrd"}}},
                "devices": {"rng": {}, "tpm": {}}, "features": {"smm": {}, "hyperv": {"relaxed": {}}},
                "clock": {"utc": {}, "timer": {"rtc": {"tickPolicy": "catchup"}}}}},
    {"domain": {"memory": {"guest": "1Gi"}, "devices": {}},
     "volumes": [{"name": "cm", "configMap": {"name": "c"}}, {"name": "s", "secret": {"secretName": "s"}},
                 {"name": "sa", "serviceAccount": {"serviceAccountName": "default"}},
                 {"name": "d", "downwardAPI": {"fields": [{"path": "l", "fieldRef": {
                     "fieldPath": "metadata.labels"}}]}},
                 {"name": "e", "emptyDisk": {"capacity": "1Gi"}}, {"name": "p", "persistentVolumeClaim": {
                     "claimName": "pvc"}}, {"name": "cd", "cloudInitConfigDrive": {"userData": "x"}}]},
]


# Valid settings of the features we implement, combined at random so that many objects are accepted and
# reach the converter with several features at once.
FEATURES = [
    (("domain", "devices", "rng"), {}),
    (("domain", "devices", "tpm"), {}),
    (("domain", "devices", "tpm"), {"enabled": False}),
    (("domain", "devices", "autoattachMemBalloon"), False),
    (("domain", "devices", "autoattachSerialConsole"), False),
    (("domain", "features"), {"acpi": {"enabled": False}, "apic": {"endOfInterrupt": True}}),
    (("domain", "features", "smm"), {"enabled": True}),
    (("domain", "features", "hyperv"), {"relaxed": {}, "vapic": {}, "spinlocks": {"spinlocks": 8191},
                                        "synictimer": {"direct": {}}, "vendorid": {"vendorid": "kv"}, "ipi": {}}),
    (("domain", "clock"), {"timezone": "Europe/Paris", "timer": {"hpet": {"present": False}}}),
    (("domain", "clock"), {"utc": {"offsetSeconds": -7200}, "timer": {"rtc": {"track": "wall"}, "kvm": {}}}),
    (("domain", "cpu"), {"sockets": 2, "cores": 2, "threads": 1, "model": "host-model"}),
    (("domain", "resources"), {"requests": {"cpu": "1500m", "memory": "64Mi"}, "limits": {"cpu": "2"}}),
    (("domain", "machine"), {"type": ""}),
    (("domain", "firmware"), {"bootloader": {"efi": {}}, "uuid": "5d307ca9-b3ef-428c-8861-06e72d69f223"}),
    (("domain", "firmware"), {"bootloader": {"bios": {"useSerial": True}}, "serial": "s-1"}),
    (("domain", "devices", "interfaces"), [{"name": "default", "bridge": {}, "model": "e1000"}]),
    (("domain", "devices", "interfaces"), [{"name": "default", "masquerade": {}, "ports": [
        {"port": 80}, {"port": 53, "protocol": "UDP", "name": "dns"}], "macAddress": "02:00:00:00:00:01"}]),
    (("networks",), [{"name": "default", "pod": {"vmNetworkCIDR": "10.11.0.0/24"}}]),
    (("domain", "devices", "disks"), [{"name": "root", "disk": {"bus": "scsi"}, "cache": "writeback",
                                       "bootOrder": 1}, {"name": "ci", "cdrom": {}, "bootOrder": 2}]),
    (("volumes",), [{"name": "root", "containerDisk": {"image": "x:latest", "imagePullSecret": "s"}},
                    {"name": "ci", "cloudInitConfigDrive": {"userData": "#!/bin/sh\n", "networkData": "{}"}},
                    {"name": "h", "hostDisk": {"path": "/var/data/h.img", "type": "DiskOrCreate", "capacity": "1Gi"}},
                    {"name": "u", "emptyDisk": {"capacity": "10Mi"}}]),
    (("readinessProbe",), {"tcpSocket": {"port": 22}, "periodSeconds": 5}),
    (("livenessProbe",), {"httpGet": {"port": 80, "path": "/healthz"}}),
    (("dnsPolicy",), "ClusterFirst"),
    (("priorityClassName",), "high"),
    (("evictionStrategy",), "None"),
    (("topologySpreadConstraints",), [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]),
    (("terminationGracePeriodSeconds",), 0),
]

# ---------------------------------------------------------------- schema paths

@functools.lru_cache(maxsize=1)
def vmi_spec_schema() -> dict:
    return upstream.schema("v1.VirtualMachineInstanceSpec")


def _paths(node, prefix=(), depth=0):
    for key, child in (node.get("properties") or {}).items():
        path = prefix + (key,)
        yield path, child
        if depth < 6:
            if child.get("type") == "object":
                yield from _paths(child, path, depth + 1)
            elif child.get("type") == "array" and (child.get("items") or {}).get("type") == "object":
                yield from _paths(child["items"], path + ("[]",), depth + 1)


@functools.lru_cache(maxsize=1)
def spec_paths() -> list:
    return sorted(_paths(vmi_spec_schema()), key=lambda p: p[0])


# ---------------------------------------------------------------- values from a schema node

def from_schema(node: dict, depth: int = 0):
    if node.get("x-kubernetes-int-or-string"):
        return st.one_of(st.sampled_from(QUANTITIES), st.sampled_from(HUGE_INTS), st.integers(-3, 300))
    kind = node.get("type")
    if kind == "string":
        choices = [st.sampled_from(STRINGS), st.text(max_size=12)]
        if node.get("enum"):
            choices.insert(0, st.sampled_from(node["enum"]))
        return st.one_of(*choices)
    if kind == "integer":
        return st.one_of(st.integers(-2, 8), st.sampled_from(HUGE_INTS), st.integers(1000, 70000))
    if kind == "number":
        return st.one_of(st.integers(-2, 8), st.floats(allow_nan=False, allow_infinity=False, width=32))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        if depth >= MAX_DEPTH:
            return st.just([])
        return st.lists(from_schema(node.get("items") or {}, depth + 1), max_size=3)
    if kind == "object":
        if depth >= MAX_DEPTH:
            return st.just({})
        props = node.get("properties") or {}
        if props:
            keys = sorted(props)
            return st.lists(st.sampled_from(keys), max_size=min(3, len(keys)), unique=True).flatmap(
                lambda chosen: st.fixed_dictionaries({k: from_schema(props[k], depth + 1) for k in chosen}))
        if isinstance(node.get("additionalProperties"), dict):
            return st.dictionaries(st.sampled_from(["cpu", "memory", "a", "zone", "nvidia.com/gpu"]),
                                   from_schema(node["additionalProperties"], depth + 1), max_size=2)
        return st.just({})
    return st.sampled_from(WRONG_TYPES)


# ---------------------------------------------------------------- mutations

def _set(obj: dict, path: tuple, value, delete=False) -> None:
    """Sets `value` at `path` ("[]" = a list item, created when missing), making intermediate objects."""
    node = obj
    for i, key in enumerate(path[:-1]):
        nxt = path[i + 1]
        if key == "[]":
            continue
        if nxt == "[]":
            items = node.get(key)
            if not isinstance(items, list) or not items or not isinstance(items[0], dict):
                items = node[key] = [{}]
            node = items[0]
            continue
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    last = path[-1]
    if delete:
        node.pop(last, None)
    else:
        node[last] = value


@st.composite
def mutation(draw):
    how = draw(st.sampled_from(["feature", "feature", "feature", "schema", "schema", "schema", "wrong_type",
                                "unknown", "delete", "huge", "empty"]))
    if how == "feature":
        path, value = draw(st.sampled_from(FEATURES))
        return path, copy.deepcopy(value), False
    path, node = draw(st.sampled_from(spec_paths()))
    if how == "schema":
        return path, draw(from_schema(node)), False
    if how == "wrong_type":
        return path, draw(st.sampled_from(WRONG_TYPES)), False
    if how == "unknown":
        return path[:-1] + (draw(st.sampled_from(["bogus", "Domain", "diskz", "x-extra"])),), draw(
            st.sampled_from(WRONG_TYPES)), False
    if how == "delete":
        return path, None, True
    if how == "huge":
        return path, draw(st.sampled_from(HUGE_INTS + ["x" * 5000])), False
    return path, draw(st.sampled_from(["", [], {}, 0])), False


@st.composite
def vmi_specs(draw):
    spec = copy.deepcopy(draw(st.sampled_from(BASE_SPECS)))
    for path, value, delete in draw(st.lists(mutation(), max_size=draw(st.sampled_from([1, 2, 3, 5])))):
        _set(spec, path, value, delete)
    return spec


@st.composite
def vmis(draw):
    name = draw(st.sampled_from(["fuzz", "fuzz-vmi", "Bad_Name", "x" * 70]))  # the API server always sets one
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": "default", "uid": "00000000-0000-0000-0000-000000000001"},
            "spec": draw(vmi_specs())}


@st.composite
def vms(draw):
    spec = {"template": {"metadata": draw(st.sampled_from([{}, {"labels": {"app": "x"}}, {"labels": {"a": 1}},
                                                            {"annotations": {"k": "v"}}])),
                         "spec": draw(vmi_specs())}}
    strategy = draw(st.sampled_from([None, "Always", "Halted", "Manual", "RerunOnFailure", "Once", "Sometimes", 1]))
    if strategy is not None:
        spec["runStrategy"] = strategy
    if draw(st.integers(0, 9)) == 0:
        spec["running"] = draw(st.sampled_from([True, False, "yes"]))
    if draw(st.integers(0, 19)) == 0:
        spec["dataVolumeTemplates"] = [{"metadata": {"name": "dv"}, "spec": {}}]
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": draw(st.sampled_from(["fuzz-vm", "Bad_Name"])), "namespace": "default",
                         "uid": "00000000-0000-0000-0000-000000000002"}, "spec": spec}


# ---------------------------------------------------------------- properties

def leaves(value, path=()):
    """(path, value) of every value a user set: not null, not "", not an empty list (upstream treats those
    as unset and defaults them)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, path + (key,))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from leaves(item, path + (i,))
    elif value is not None and value != "" and value != []:
        yield path, value


def lookup(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def assert_user_values_kept(before: dict, after: dict) -> None:
    for path, value in leaves(before):
        got = lookup(after, path)
        assert got == value and type(got) is type(value), f"defaulting changed {path}: {value!r} -> {got!r}"


def assert_rejection_names_fields(status: dict) -> None:
    assert status["code"] == 422 and status["reason"] == "Invalid", status
    causes = status["details"]["causes"]
    assert causes, status
    for cause in causes:
        assert isinstance(cause.get("field"), str) and cause["field"].startswith(("spec", "metadata")), cause
        assert cause.get("message"), cause


def converter_context(vmi: dict) -> ConverterContext:
    """What the launcher would have prepared for this VMI's volumes."""
    disks = {}
    for volume in vmi["spec"].get("volumes") or []:
        generated = any(k in volume for k in ("cloudInitNoCloud", "cloudInitConfigDrive", "configMap", "secret",
                                              "serviceAccount", "downwardAPI"))
        read_only = generated or bool((volume.get("persistentVolumeClaim") or {}).get("readOnly"))
        disks[volume["name"]] = DiskSource(f"/var/run/kubevirt-private/disks/{volume['name']}", "raw",
                                           readonly=read_only, direct_io=True)
    interfaces = {}
    found = pod_interface(vmi)
    if found:  # virt-handler's tap in the pod (handler/network)
        interfaces[found[1]["name"]] = TapInterface("tap0", interface_mac(vmi, found[1]), 1500)
    return ConverterContext(disks=disks, interfaces=interfaces,
                            kernel_path="/var/run/kubevirt/container-disks/kernel-boot/vmlinuz",
                            initrd_path="/var/run/kubevirt/container-disks/kernel-boot/initrd",
                            nvram_path="/var/run/kubevirt-private/nvram/VARS.fd")


def assert_converts(vmi: dict) -> None:
    xml = convert(vmi, converter_context(vmi))
    ET.fromstring(xml)
