"""Generates the CustomResourceDefinitions of the kinds we serve into api/crds/*.yaml.

    python -m kubevirt_runtime.api.crdgen          # rewrite the committed files
    python -m kubevirt_runtime.api.crdgen --check  # exit 1 when they are out of date

Schemas are upstream's complete ones (upstream.py), so the API server prunes nothing a user of upstream
KubeVirt writes and `kubectl` strict validation accepts upstream manifests; the webhook then refuses what
we do not implement, by name. Where schema.py describes our behaviour, its text replaces upstream's in
`kubectl explain`; a field we refuse says so and why. Names, short names, categories, printer columns and
subresources are upstream's, except that our VMI also has the status subresource (see api/__init__.py).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

from . import cdi, schema, upstream
from . import constants as c
from . import instancetype as it
from . import migration as mig
from . import snapshot as snap
from .walk import NOT_IMPLEMENTED

CRD_DIR = Path(__file__).resolve().parent / "crds"
# The CRDs are large (upstream's whole schema): use libyaml when PyYAML has it.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_READY = {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}

VMI_COLUMNS = [
    _AGE,
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "IP", "type": "string", "jsonPath": ".status.interfaces[0].ipAddress"},
    {"name": "NodeName", "type": "string", "jsonPath": ".status.nodeName"},
    _READY,
    {"name": "Live-Migratable", "type": "string", "priority": 1,
     "jsonPath": ".status.conditions[?(@.type=='LiveMigratable')].status"},
    {"name": "Paused", "type": "string", "priority": 1,
     "jsonPath": ".status.conditions[?(@.type=='Paused')].status"},
]
VMIM_COLUMNS = [
    {"name": "Phase", "type": "string", "description": "The current phase of VM instance migration",
     "jsonPath": ".status.phase"},
    {"name": "VMI", "type": "string", "description": "The name of the VMI to perform the migration on",
     "jsonPath": ".spec.vmiName"},
]
VM_COLUMNS = [
    _AGE,
    {"name": "Status", "type": "string", "description": "Human Readable Status", "jsonPath": ".status.printableStatus"},
    _READY,
]


def _replica_columns(what):
    return [
        {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas",
         "description": f"Number of desired {what}"},
        {"name": "Current", "type": "integer", "jsonPath": ".status.replicas",
         "description": f"Number of managed and not final or deleted {what}"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas",
         "description": f"Number of managed {what} which are ready to receive traffic"},
        _AGE,
    ]


_SCALE = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
          "labelSelectorPath": ".status.labelSelector"}


def _overlay(node: dict, ours: dict | None) -> None:
    """Our descriptions over upstream's; refused fields say why (what `kubectl explain` shows)."""
    if ours is None:
        return
    if ours.get("description"):
        node["description"] = ours["description"]
    supported = ours.get("properties")
    for key, child in (node.get("properties") or {}).items():
        if supported is None:
            continue
        if key in supported:
            _overlay(child, supported[key])
        else:
            why = (ours.get("refused") or {}).get(key, NOT_IMPLEMENTED)
            text = child.get("description", "").rstrip()
            child["description"] = (text + "\n\n" if text else "") + f"Not available here: {why}."
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict) and isinstance(ours.get(key), dict):
            _overlay(node[key], ours[key])


def _root(definition: str, spec_support: dict | None, preserve_status: bool) -> dict:
    root = upstream.object_schema(definition)
    if spec_support is not None:
        _overlay(root["properties"]["spec"], spec_support)
    status = root["properties"].get("status")
    if status is not None and preserve_status:
        # our components may record upstream status fields a newer upstream adds; never prune them
        status["x-kubernetes-preserve-unknown-fields"] = True
    return root


def _crd(kind, plural, singular, group, versions, short_names, categories, scope="Namespaced"):
    names = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": singular}
    if short_names:
        names["shortNames"] = list(short_names)
    if categories:
        names["categories"] = list(categories)
    spec = {"group": group, "names": names, "scope": scope, "versions": versions}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {c.APP_LABEL: ""}},
        "spec": spec,
    }


def _version(name, root, storage=True, columns=None, subresources=None):
    version = {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": root}}
    if subresources:
        version["subresources"] = subresources
    if columns:
        version["additionalPrinterColumns"] = columns
    return version


def _datavolume_root() -> dict:
    """CDI's DataVolume: the spec is upstream KubeVirt's copy of CDI's DataVolumeSpec (what dataVolumeTemplates
    embed), the status CDI's DataVolumeStatus."""
    spec = upstream.schema("v1beta1.DataVolumeSpec")
    _overlay(spec, schema.datavolume_spec())
    condition = {"type": "object", "required": ["type", "status"], "properties": {
        "type": {"type": "string", "description": "Ready, Bound or Running."},
        "status": {"type": "string"}, "reason": {"type": "string"}, "message": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time", "nullable": True},
        "lastHeartbeatTime": {"type": "string", "format": "date-time", "nullable": True},
        "lastProbeTime": {"type": "string", "format": "date-time", "nullable": True}}}
    status = {"type": "object", "description": "DataVolumeStatus of CDI.", "properties": {
        "claimName": {"type": "string", "description": "The PVC of the DataVolume."},
        "phase": {"type": "string", "description": "Pending, ImportScheduled, ImportInProgress, CloneScheduled, "
                                                   "CloneInProgress, UploadScheduled, UploadReady, Succeeded, Failed."},
        "progress": {"type": "string", "description": "Transfer progress in percent (e.g. 45.10%), N/A if unknown."},
        "restartCount": {"type": "integer", "format": "int32",
                         "description": "How often the pod that fills the DataVolume has restarted."},
        "conditions": {"type": "array", "items": condition}},
        "x-kubernetes-preserve-unknown-fields": True}
    description = ("DataVolume is an abstraction on top of PersistentVolumeClaims to allow easy population of those "
                   "PersistentVolumeClaims with relation to VirtualMachines")
    return {"type": "object", "description": description,
            "required": ["spec"],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                           "spec": spec, "status": status}}


DV_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "The phase the data volume is in"},
    {"name": "Progress", "type": "string", "jsonPath": ".status.progress",
     "description": "Transfer progress in percentage if known, N/A otherwise"},
    {"name": "Restarts", "type": "integer", "jsonPath": ".status.restartCount",
     "description": "The number of times the transfer has been restarted."},
    _AGE,
]
_ERROR = {"name": "Error", "type": "string", "jsonPath": ".status.error.message"}
SNAPSHOT_COLUMNS = {
    snap.SNAPSHOT_KIND: [{"name": "SourceKind", "type": "string", "jsonPath": ".spec.source.kind"},
                         {"name": "SourceName", "type": "string", "jsonPath": ".spec.source.name"},
                         {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                         {"name": "ReadyToUse", "type": "boolean", "jsonPath": ".status.readyToUse"},
                         {"name": "CreationTime", "type": "date", "jsonPath": ".status.creationTime"}, _ERROR],
    snap.CONTENT_KIND: [{"name": "ReadyToUse", "type": "boolean", "jsonPath": ".status.readyToUse"},
                        {"name": "CreationTime", "type": "date", "jsonPath": ".status.creationTime"}, _ERROR],
    snap.RESTORE_KIND: [{"name": "TargetKind", "type": "string", "jsonPath": ".spec.target.kind"},
                        {"name": "TargetName", "type": "string", "jsonPath": ".spec.target.name"},
                        {"name": "Complete", "type": "boolean", "jsonPath": ".status.complete"},
                        {"name": "RestoreTime", "type": "date", "jsonPath": ".status.restoreTime"}, _ERROR],
}


def generate_crds():
    """The CRDs as dicts, keyed by file name."""
    vm = _root("v1.VirtualMachine", schema.vm_spec(), True)
    vmi = _root("v1.VirtualMachineInstance", schema.vmi_spec(), True)
    vmirs = _root("v1.VirtualMachineInstanceReplicaSet", schema.replicaset_spec(), False)
    pool = _root("v1beta1.VirtualMachinePool", schema.pool_spec(), False)
    vmim = _root("v1.VirtualMachineInstanceMigration", mig.migration_spec(), True)
    status = {"status": {}}
    scaled = {"status": {}, "scale": _SCALE}
    crds = {
        "virtualmachines.yaml": _crd(c.VM_KIND, c.VM_PLURAL, c.VM_SINGULAR, c.GROUP,
                                     [_version(c.VERSION, vm, columns=VM_COLUMNS, subresources=status)],
                                     c.VM_SHORT_NAMES, ["all"]),
        "virtualmachineinstances.yaml": _crd(c.VMI_KIND, c.VMI_PLURAL, c.VMI_SINGULAR, c.GROUP,
                                             [_version(c.VERSION, vmi, columns=VMI_COLUMNS, subresources=status)],
                                             c.VMI_SHORT_NAMES, ["all"]),
        "virtualmachineinstancereplicasets.yaml": _crd(
            c.VMIRS_KIND, c.VMIRS_PLURAL, c.VMIRS_SINGULAR, c.GROUP,
            [_version(c.VERSION, vmirs, columns=_replica_columns("VirtualMachineInstances"), subresources=scaled)],
            c.VMIRS_SHORT_NAMES, ["all"]),
        "virtualmachineinstancemigrations.yaml": _crd(
            mig.KIND, mig.PLURAL, mig.SINGULAR, c.GROUP,
            [_version(c.VERSION, vmim, columns=VMIM_COLUMNS, subresources=status)], mig.SHORT_NAMES, ["all"]),
        "virtualmachinepools.yaml": _crd(
            c.POOL_KIND, c.POOL_PLURAL, c.POOL_SINGULAR, c.POOL_GROUP,
            [_version(v, copy.deepcopy(pool), storage=v == c.POOL_VERSION,
                      columns=_replica_columns("VirtualMachines"), subresources=scaled)
             for v in (c.POOL_SERVED_OLD_VERSION, c.POOL_VERSION)],
            c.POOL_SHORT_NAMES, ["all"]),
    }
    for kind, definition, support, short_names, categories in (
            (it.INSTANCETYPE, "v1beta1.VirtualMachineInstancetype", schema.instancetype_spec(),
             ["vminstancetype", "vminstancetypes", "vmf", "vmfs"], ["all"]),
            (it.CLUSTER_INSTANCETYPE, "v1beta1.VirtualMachineClusterInstancetype", schema.instancetype_spec(),
             ["vmclusterinstancetype", "vmclusterinstancetypes", "vmcf", "vmcfs"], []),
            (it.PREFERENCE, "v1beta1.VirtualMachinePreference", schema.preference_spec(),
             ["vmpref", "vmprefs", "vmp", "vmps"], ["all"]),
            (it.CLUSTER_PREFERENCE, "v1beta1.VirtualMachineClusterPreference", schema.preference_spec(),
             ["vmcp", "vmcps"], [])):
        plural = it.PLURALS[kind]
        crd = _crd(kind, plural, plural[:-1], it.GROUP, [_version(it.VERSION, _root(definition, support, False))],
                   short_names, categories, "Cluster" if kind in it.CLUSTER_SCOPED else "Namespaced")
        crd["spec"]["conversion"] = {"strategy": "None"}
        crds[f"{plural}.yaml"] = crd
    crds["datavolumes.yaml"] = _crd(cdi.KIND, cdi.PLURAL, cdi.SINGULAR, cdi.GROUP,
                                    [_version(cdi.VERSION, _datavolume_root(), columns=DV_COLUMNS,
                                              subresources=status)], cdi.SHORT_NAMES, ["all"])
    for kind, plural, definition, support in (
            (snap.SNAPSHOT_KIND, snap.SNAPSHOT_PLURAL, "v1beta1.VirtualMachineSnapshot", schema.snapshot_spec()),
            (snap.CONTENT_KIND, snap.CONTENT_PLURAL, "v1beta1.VirtualMachineSnapshotContent",
             schema.snapshot_content_spec()),
            (snap.RESTORE_KIND, snap.RESTORE_PLURAL, "v1beta1.VirtualMachineRestore", schema.restore_spec())):
        root = _root(definition, support, True)
        if kind == snap.CONTENT_KIND:  # the VM as it was, written by virt-controller: kept whole, not described again
            source = root["properties"]["spec"]["properties"]["source"]
            for key, node in source["properties"].items():
                source["properties"][key] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                             "description": node.get("description", "")}
        versions = [_version(v, copy.deepcopy(root), storage=v == snap.VERSION, columns=SNAPSHOT_COLUMNS[kind],
                             subresources=status) for v in (snap.OLD_VERSION, snap.VERSION)]
        crds[f"{plural}.yaml"] = _crd(kind, plural, plural[:-1], snap.GROUP, versions, snap.SHORT_NAMES[kind], ["all"])
    return crds


def render(crd):
    prov = upstream.provenance()
    header = (f"# Generated by `python -m kubevirt_runtime.api.crdgen` from upstream KubeVirt {prov['tag']}'s "
              f"OpenAPI schema\n# ({prov['commit'][:12]}, api/upstream/) and api/schema.py. Do not edit.\n")
    return header + yaml.dump(crd, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, width=120)


def load_crds(directory=CRD_DIR):
    """The committed CRD manifests as dicts (what installers apply)."""
    return [yaml.load(path.read_text(), Loader=_LOADER) for path in sorted(Path(directory).glob("*.yaml"))]


def stale_files(directory=CRD_DIR):
    """Names of files in `directory` that differ from what the generator produces (or should not be there)."""
    wanted = generate_crds()
    stale = [name for name, crd in wanted.items()
             if not (Path(directory) / name).exists() or (Path(directory) / name).read_text() != render(crd)]
    return stale + sorted(p.name for p in Path(directory).glob("*.yaml") if p.name not in wanted)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    parser.add_argument("--out", type=Path, default=CRD_DIR, help="output directory (default: the package's)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        for name in stale:
            print(f"out of date: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, crd in generate_crds().items():
        (args.out / name).write_text(render(crd))
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
