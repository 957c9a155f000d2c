"""Upstream KubeVirt's API schema (its published OpenAPI definitions), as structural CRD schemas.

The data file ``api/upstream/kubevirt-openapi.json`` holds the definitions reachable from the kinds we
serve, extracted from upstream's ``api/openapi-spec/swagger.json`` at the release named in its
``provenance`` (tag, commit, sha256 of the source file). It is data, not code: regenerate it with

    python -m kubevirt_runtime.api.upstream extract --swagger swagger.json --tag vX.Y.Z --commit SHA

``schema(name)`` turns a definition into the structural OpenAPI v3 schema a CRD needs: references are
inlined, Quantity and IntOrString become int-or-string, embedded ObjectMeta keeps unknown fields, Go
zero-value defaults are dropped (our webhook defaults), list-type annotations the API server would refuse
are dropped. Validation (validation.py) walks the same schemas, so the CRD and the webhook agree on types.
"""
from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import sys
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "upstream" / "kubevirt-openapi.json"

# The kinds we serve: definition name -> (group, version) they are served under.
ROOTS = {
    "v1.VirtualMachine": ("kubevirt.io", "v1"),
    "v1.VirtualMachineInstance": ("kubevirt.io", "v1"),
    "v1.VirtualMachineInstanceReplicaSet": ("kubevirt.io", "v1"),
    "v1.VirtualMachineInstanceMigration": ("kubevirt.io", "v1"),
    "v1beta1.VirtualMachinePool": ("pool.kubevirt.io", "v1beta1"),
    "v1beta1.VirtualMachineInstancetype": ("instancetype.kubevirt.io", "v1beta1"),
    "v1beta1.VirtualMachineClusterInstancetype": ("instancetype.kubevirt.io", "v1beta1"),
    "v1beta1.VirtualMachinePreference": ("instancetype.kubevirt.io", "v1beta1"),
    "v1beta1.VirtualMachineClusterPreference": ("instancetype.kubevirt.io", "v1beta1"),
    "v1beta1.VirtualMachineSnapshot": ("snapshot.kubevirt.io", "v1beta1"),
    "v1beta1.VirtualMachineSnapshotContent": ("snapshot.kubevirt.io", "v1beta1"),
    "v1beta1.VirtualMachineRestore": ("snapshot.kubevirt.io", "v1beta1"),
}
# Definitions that are not kinds but bodies we check: the addvolume/removevolume subresources' options.
BODIES = ("v1.AddVolumeOptions", "v1.RemoveVolumeOptions")

QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
OBJECT_META = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"

QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
                    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_KEPT_KEYS = ("description", "type", "format", "enum", "required", "properties", "items", "additionalProperties",
              "$ref", "nullable", "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type")
# Formats the API server's structural schema validation understands; others carry no meaning for it.
_FORMATS = {"int32", "int64", "float", "double", "byte", "date", "date-time", "password", "uuid"}
_SCALARS = {"string", "integer", "number", "boolean"}


# ---------------------------------------------------------------- extraction (run by a maintainer)

def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _trim(node):
    """Only the schema keywords we use; Go zero-value `default`s and patch hints are dropped."""
    if isinstance(node, list):
        return [_trim(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key not in _KEPT_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _trim(child) for name, child in value.items()}
        else:
            out[key] = _trim(value)
    return out


def extract(swagger: dict, provenance: dict, roots=tuple(ROOTS) + BODIES) -> dict:
    """The data file's content: every definition reachable from `roots`, trimmed."""
    definitions = swagger["definitions"]
    seen, stack = set(), list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(_refs(definitions[name]))
    return {"provenance": provenance, "roots": list(roots),
            "definitions": {name: _trim(definitions[name]) for name in sorted(seen)}}


# ---------------------------------------------------------------- structural schemas

@functools.lru_cache(maxsize=1)
def load() -> dict:
    return json.loads(DATA_FILE.read_text())


def provenance() -> dict:
    return load()["provenance"]


def _int_or_string(description=None, pattern=None):
    node = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    if description:
        node["description"] = description
    if pattern:
        node["pattern"] = pattern
    return node


def _special(name, description):
    """Structural stand-ins for the Kubernetes types a CRD cannot describe field by field."""
    if name == QUANTITY:
        return _int_or_string(description, QUANTITY_PATTERN)
    if name == INT_OR_STRING:
        return _int_or_string(description)
    if name == TIME:
        node = {"type": "string", "format": "date-time", "nullable": True}
    elif name == OBJECT_META:
        node = {"type": "object", "nullable": True, "x-kubernetes-preserve-unknown-fields": True}
    elif name == RAW_EXTENSION:
        node = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    else:
        return None
    if description:
        node["description"] = description
    return node


def _resolve(node, definitions):
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        description = node.get("description")
        special = _special(name, description)
        if special is not None:
            return special
        resolved = _resolve(definitions[name], definitions)
        if description:
            resolved["description"] = description
        return resolved
    if node.get("type") == "string" and node.get("format") == "int-or-string":
        return _int_or_string(node.get("description"))
    if isinstance(node.get("type"), list):
        return _type_union(node)
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _resolve(child, definitions) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _resolve(value, definitions)
        elif key == "format" and value not in _FORMATS:
            continue
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") is None and ("properties" in out or "additionalProperties" in out):
        out["type"] = "object"
    _fix_list_type(out)
    return out


def _type_union(node):
    """Types written as a list: ["string", "null"] (a nullable timestamp), ["string", "number"] (a port
    number or name, an IntOrString), ["string", "integer", "number"] (a Quantity written inline)."""
    kinds = set(node["type"]) - {"null"}
    description = node.get("description")
    if kinds == {"string"}:
        out = {"type": "string", "nullable": True}
        if description:
            out["description"] = description
        return out
    if kinds in ({"string", "integer"}, {"string", "number"}):
        return _int_or_string(description)
    if kinds == {"string", "integer", "number"}:
        return _int_or_string(description, QUANTITY_PATTERN)
    raise ValueError(f"cannot express the type union {sorted(node['type'])} structurally")


def _fix_list_type(node):
    """The API server refuses a map list whose keys may be missing and a set of non-scalars."""
    kind = node.get("x-kubernetes-list-type")
    items = node.get("items") or {}
    keep = True
    if kind == "map":
        required = set(items.get("required") or ())
        keep = items.get("type") == "object" and set(node.get("x-kubernetes-list-map-keys") or ()) <= required
    elif kind == "set":
        keep = items.get("type") in _SCALARS
    if not keep:
        node.pop("x-kubernetes-list-type", None)
        node.pop("x-kubernetes-list-map-keys", None)


@functools.lru_cache(maxsize=None)
def _cached_schema(name: str) -> str:
    definitions = load()["definitions"]
    return json.dumps(_resolve({"$ref": f"#/definitions/{name}"}, definitions))


def schema(name: str) -> dict:
    """The structural schema of a definition, e.g. ``schema("v1.VirtualMachineInstanceSpec")`` (a fresh copy)."""
    return json.loads(_cached_schema(name))


def object_schema(name: str) -> dict:
    """The root schema of a served kind: metadata is the API server's, the rest is upstream's."""
    root = schema(name)
    root["properties"]["metadata"] = {"type": "object"}
    root.pop("nullable", None)
    return root


def field_paths(node, prefix="") -> set[str]:
    """Every field path of a structural schema: `spec.domain.devices.disks[].bus`, `metadata` stops."""
    paths = set()
    for key, child in (node.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        paths.add(path)
        paths |= field_paths(child, path)
    if isinstance(node.get("items"), dict):
        paths |= field_paths(node["items"], prefix + "[]")
    if isinstance(node.get("additionalProperties"), dict):
        paths |= field_paths(node["additionalProperties"], prefix + "{}")
    return paths


# ---------------------------------------------------------------- CLI

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Extract upstream KubeVirt's OpenAPI definitions into "
                                                 f"{DATA_FILE.name}.")
    sub = parser.add_subparsers(dest="command", required=True)
    ext = sub.add_parser("extract", help="write the data file from upstream's api/openapi-spec/swagger.json")
    ext.add_argument("--swagger", type=Path, required=True)
    ext.add_argument("--tag", required=True, help="upstream release tag the file comes from")
    ext.add_argument("--commit", required=True, help="upstream commit of that tag")
    ext.add_argument("--out", type=Path, default=DATA_FILE)
    sub.add_parser("show", help="print the provenance of the committed data file")
    args = parser.parse_args(argv)
    if args.command == "show":
        print(json.dumps(provenance(), indent=2))
        return 0
    raw = args.swagger.read_bytes()
    prov = {"repository": "https://github.com/kubevirt/kubevirt", "tag": args.tag, "commit": args.commit,
            "path": "api/openapi-spec/swagger.json", "sha256": hashlib.sha256(raw).hexdigest(),
            "license": "Apache-2.0 (KubeVirt authors); definitions trimmed to schema keywords by "
                       "`python -m kubevirt_runtime.api.upstream extract`"}
    data = extract(json.loads(raw), prov)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}: {len(data['definitions'])} definitions from {args.tag} ({args.commit[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
