"""Admission webhooks (admission.k8s.io/v1 AdmissionReview) for VirtualMachines and VirtualMachineInstances.

Pure functions: an AdmissionReview dict in, an AdmissionReview dict out. The server only moves bytes.

- mutate: refuses an object with badly typed fields (422 naming each, like upstream's schema check before
  decoding), else applies ``default_vm`` / ``default_vmi`` and answers with the JSONPatch from the object as
  sent to the defaulted one (RFC 6902, base64 in ``response.patch``), as upstream's mutating webhook does.
- validate: ``validate_vm`` / ``validate_vmi``; a rejection is a 422 Invalid Status whose message names
  every field path and whose ``details.causes`` carry one cause per error (what ``kubectl`` prints).

A ``ValidationContext`` (feature gates, instancetype lookups) comes from the server; without one the
cluster-dependent checks are skipped.
"""
from __future__ import annotations

import base64
import json

from ..api import (
    GROUP,
    VM_KIND,
    VM_PLURAL,
    VMI_KIND,
    VMI_PLURAL,
    ValidationContext,
    cdi,
    default_vm,
    default_vmi,
    type_errors,
    validate_vm,
    validate_vmi,
)
from ..api import instancetype as it
from ..api import snapshot as snap
from ..api.constants import (
    POOL_GROUP,
    POOL_KIND,
    POOL_PLURAL,
    VM_CONTROLLER_FINALIZER,
    VMI_FINALIZER,
    VMIRS_KIND,
    VMIRS_PLURAL,
)
from ..api.validation import (
    validate_datavolume,
    validate_instancetype,
    validate_pool,
    validate_preference,
    validate_replicaset,
    validate_restore,
    validate_snapshot,
)

MUTATE_VM_PATH = "/virtualmachines-mutate"
MUTATE_VMI_PATH = "/virtualmachineinstances-mutate"
VALIDATE_VM_PATH = "/virtualmachines-validate"
VALIDATE_VMI_PATH = "/virtualmachineinstances-validate"

VALIDATE_INSTANCETYPES_PATH = "/instancetypes-validate"  # the four instancetype.kubevirt.io kinds
VALIDATE_VMIRS_PATH = "/virtualmachineinstancereplicasets-validate"
VALIDATE_POOL_PATH = "/virtualmachinepools-validate"
VALIDATE_DATAVOLUMES_PATH = "/datavolumes-validate"
VALIDATE_SNAPSHOTS_PATH = "/virtualmachinesnapshots-validate"
VALIDATE_RESTORES_PATH = "/virtualmachinerestores-validate"

_VM, _VMI = (GROUP, VM_PLURAL), (GROUP, VMI_PLURAL)
_DEFAULTERS = {_VM: lambda obj, create: default_vm(obj, create=create), _VMI: lambda obj, create: default_vmi(obj)}
_VALIDATORS = {_VM: validate_vm, _VMI: validate_vmi}
_KINDS = {_VM: VM_KIND, _VMI: VMI_KIND}
# Created with the finalizer their controller needs, so it never spends a PATCH adding it (as upstream's VMI
# mutator does; the controllers still add it to objects that come without, e.g. with the webhook off).
_FINALIZERS = {_VM: VM_CONTROLLER_FINALIZER, _VMI: VMI_FINALIZER}
for _kind, _plural in it.PLURALS.items():
    _VALIDATORS[(it.GROUP, _plural)] = validate_preference if "Preference" in _kind else validate_instancetype
    _KINDS[(it.GROUP, _plural)] = _kind
_VMIRS, _POOL = (GROUP, VMIRS_PLURAL), (POOL_GROUP, POOL_PLURAL)
_VALIDATORS.update({_VMIRS: validate_replicaset, _POOL: validate_pool})
_KINDS.update({_VMIRS: VMIRS_KIND, _POOL: POOL_KIND})
_DV = (cdi.GROUP, cdi.PLURAL)
_SNAPSHOT, _RESTORE = (snap.GROUP, snap.SNAPSHOT_PLURAL), (snap.GROUP, snap.RESTORE_PLURAL)
_VALIDATORS.update({_DV: validate_datavolume, _SNAPSHOT: validate_snapshot, _RESTORE: validate_restore})
_KINDS.update({_DV: cdi.KIND, _SNAPSHOT: snap.SNAPSHOT_KIND, _RESTORE: snap.RESTORE_KIND})
_IMMUTABLE_SPEC = (_SNAPSHOT, _RESTORE)  # their validators compare with the stored object
ROUTES = {MUTATE_VM_PATH: ("mutate", [_VM]), MUTATE_VMI_PATH: ("mutate", [_VMI]),
          VALIDATE_VMIRS_PATH: ("validate", [_VMIRS]), VALIDATE_POOL_PATH: ("validate", [_POOL]),
          VALIDATE_VM_PATH: ("validate", [_VM]), VALIDATE_VMI_PATH: ("validate", [_VMI]),
          VALIDATE_INSTANCETYPES_PATH: ("validate", [(it.GROUP, p) for p in it.PLURALS.values()]),
          VALIDATE_DATAVOLUMES_PATH: ("validate", [_DV]), VALIDATE_SNAPSHOTS_PATH: ("validate", [_SNAPSHOT]),
          VALIDATE_RESTORES_PATH: ("validate", [_RESTORE])}


class BadReview(ValueError):
    """The request body is not an AdmissionReview we can answer (HTTP 400)."""


# ---------------------------------------------------------------- JSONPatch

def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_patch(before, after, path: str = "") -> list[dict]:
    """RFC 6902 operations turning `before` into `after` (objects field by field, lists element-wise
    when only appended to or changed in place, otherwise replaced whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        ops = []
        for key in before:
            if key not in after:
                ops.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in after.items():
            sub = f"{path}/{_escape(key)}"
            if key not in before:
                ops.append({"op": "add", "path": sub, "value": value})
            else:
                ops.extend(json_patch(before[key], value, sub))
        return ops
    if isinstance(before, list) and isinstance(after, list) and len(after) >= len(before):
        ops = []
        for index, value in enumerate(before):
            ops.extend(json_patch(value, after[index], f"{path}/{index}"))
        for value in after[len(before):]:
            ops.append({"op": "add", "path": f"{path}/-", "value": value})
        return ops
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path or "", "value": after}]


def apply_patch(obj, ops):
    """Applies add/remove/replace operations (enough to check what json_patch makes); returns a new object."""
    import copy
    doc = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        if not parts:
            doc = copy.deepcopy(op["value"])
            continue
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            if op["op"] == "remove":
                del parent[int(last)]
            elif last == "-":
                parent.append(copy.deepcopy(op["value"]))
            elif op["op"] == "add":
                parent.insert(int(last), copy.deepcopy(op["value"]))
            else:
                parent[int(last)] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
    return doc


# ---------------------------------------------------------------- reviews

def _request(review) -> dict:
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview" or \
            not isinstance(review.get("request"), dict) or not review["request"].get("uid"):
        raise BadReview("expected an admission.k8s.io/v1 AdmissionReview with request.uid")
    return review["request"]


def _answer(review, response) -> dict:
    return {"apiVersion": review.get("apiVersion") or "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], **response}}


def _resource_matches(request, key) -> bool:
    resource = request.get("resource") or {}
    return (resource.get("group"), resource.get("resource")) == key


def invalid_status(kind: str, name: str, errors) -> dict:
    """A 422 Invalid metav1.Status naming every field (what the API server shows to the user)."""
    what = f'{kind} "{name}"' if name else kind
    return {"status": "Failure", "code": 422, "reason": "Invalid",
            "message": f"{what} is invalid: " + "; ".join(str(e) for e in errors),
            "details": {"name": name, "group": GROUP, "kind": kind, "causes": [_cause(e) for e in errors]}}


def _cause(error) -> dict:
    # kubectl prints "<field>: <message>" per cause, so the message does not repeat the path
    return {**error.as_cause(), "message": error.message}


def _name(request, obj) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") or request.get("name") or ""
    return name if isinstance(name, str) else ""


def mutate(review: dict, ctx: ValidationContext | None = None) -> dict:
    request = _request(review)
    plural = next((p for p in _DEFAULTERS if _resource_matches(request, p)), None)
    obj = request.get("object")
    if plural is None or request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, dict):
        return _answer(review, {"allowed": True})
    if (obj.get("metadata") or {}).get("deletionTimestamp") if isinstance(obj.get("metadata"), dict) else False:
        return _answer(review, {"allowed": True})
    errors = type_errors(_KINDS[plural], obj)
    if errors:
        status = invalid_status(_KINDS[plural], _name(request, obj), errors)
        return _answer(review, {"allowed": False, "status": status})
    create = request.get("operation") == "CREATE"
    defaulted = _DEFAULTERS[plural](obj, create)
    if create and _FINALIZERS[plural] not in ((defaulted.get("metadata") or {}).get("finalizers") or []):
        defaulted.setdefault("metadata", {}).setdefault("finalizers", []).append(_FINALIZERS[plural])
    ops = json_patch(obj, defaulted)
    response = {"allowed": True}
    if ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
    return _answer(review, response)


def validate(review: dict, ctx: ValidationContext | None = None) -> dict:
    request = _request(review)
    plural = next((p for p in _VALIDATORS if _resource_matches(request, p)), None)
    obj = request.get("object")
    if plural is None or request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, dict):
        return _answer(review, {"allowed": True})
    old = request.get("oldObject") if isinstance(request.get("oldObject"), dict) else {}
    if request.get("operation") == "UPDATE" and (request.get("subResource") or old.get("spec") == obj.get("spec")):
        # status writes, finalizer and label changes: the spec was checked when it was written
        return _answer(review, {"allowed": True})
    if plural in _IMMUTABLE_SPEC:
        errors = _VALIDATORS[plural](obj, ctx, old if request.get("operation") == "UPDATE" else None)
    else:
        errors = _VALIDATORS[plural](obj, ctx)
    if not errors:
        return _answer(review, {"allowed": True})
    return _answer(review, {"allowed": False, "status": invalid_status(_KINDS[plural], _name(request, obj), errors)})


def review(path: str, body: bytes, ctx: ValidationContext | None = None) -> dict:
    """Dispatches a webhook call by URL path; raises KeyError for an unknown path, BadReview for a bad body."""
    action, _plural = ROUTES[path]
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise BadReview(f"request body is not JSON: {exc}") from exc
    return mutate(parsed, ctx) if action == "mutate" else validate(parsed, ctx)
