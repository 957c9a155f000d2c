"""Walks a value against upstream's schema (types) and our support tree (schema.py) at once.

Every problem becomes a FieldError naming the field path in upstream's notation
(``spec.domain.devices.disks[0].bus``, map keys as ``spec.nodeSelector[zone]``). The walk never raises on
badly typed input: a value of the wrong type is reported and not descended into.
"""
from __future__ import annotations

from dataclasses import dataclass

from .quantity import parse_quantity

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
NOT_FOUND = "FieldValueNotFound"
TYPE = "FieldValueTypeInvalid"

NOT_IMPLEMENTED = "not implemented by this KubeVirt (kubevirt-ops) yet; remove the field"
_INT_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


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


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_error(path, expected, value):
    return FieldError(path, f"must be {expected}, got {_kind(value)}", TYPE)


def _check_scalar(up, ours, value, path, errors) -> None:
    kind = up.get("type")
    if up.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            errors.append(_type_error(path, "an integer or a string", value))
        elif up.get("pattern"):  # a Quantity
            try:
                parse_quantity(value)
            except ValueError:
                errors.append(FieldError(path, f"invalid quantity {value!r}: use e.g. 128Mi, 1Gi, 500m or 2"))
        return
    if kind == "string":
        if not isinstance(value, str):
            errors.append(_type_error(path, "a string", value))
            return
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(_type_error(path, "an integer", value))
            return
        low, high = _INT_RANGES.get(up.get("format"), _INT_RANGES["int64"])
        if not low <= value <= high:
            errors.append(FieldError(path, f"{value} is out of range for a {up.get('format') or 'int64'}"))
            return
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(_type_error(path, "a number", value))
            return
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(_type_error(path, "a boolean (true or false)", value))
            return
    for node, reason in ((up, NOT_SUPPORTED), (ours, NOT_SUPPORTED)):
        allowed = node.get("enum")
        if allowed and value not in allowed:
            where = "supported values" if node is up else "supported here"
            errors.append(FieldError(path, f"unsupported value {value!r}: {where}: "
                                           + ", ".join(repr(v) for v in allowed), reason))
            return
    for node in (up, ours):
        if "minimum" in node and value < node["minimum"]:
            errors.append(FieldError(path, f"must be greater than or equal to {node['minimum']}"))
            return
        if "maximum" in node and value > node["maximum"]:
            errors.append(FieldError(path, f"must be less than or equal to {node['maximum']}"))
            return


def walk(up: dict, ours: dict | None, value, path: str, errors: list) -> None:
    """Report where `value` does not fit upstream's schema `up` or is not supported by `ours`.

    `ours` None means everything at and below this node is supported."""
    if value is None:
        return
    ours = ours or {}
    kind = up.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            errors.append(_type_error(path, "an object", value))
            return
        _walk_object(up, ours, value, path, errors)
    elif kind == "array":
        if not isinstance(value, list):
            errors.append(_type_error(path, "a list", value))
            return
        for i, item in enumerate(value):
            walk(up.get("items") or {}, ours.get("items"), item, f"{path}[{i}]", errors)
    else:
        _check_scalar(up, ours, value, path, errors)


def _walk_object(up, ours, value, path, errors):
    props = up.get("properties")
    extra = up.get("additionalProperties")
    supported = ours.get("properties")
    for key, item in value.items():
        child = f"{path}.{key}" if path else str(key)
        if props is not None and key in props:
            if supported is not None and key not in supported:
                if item is not None:
                    why = (ours.get("refused") or {}).get(key, NOT_IMPLEMENTED)
                    errors.append(FieldError(child, why, NOT_SUPPORTED))
                continue
            walk(props[key], (supported or {}).get(key), item, child, errors)
        elif isinstance(extra, dict):
            walk(extra, ours.get("additionalProperties"), item, f"{path}[{key}]", errors)
        elif up.get("x-kubernetes-preserve-unknown-fields") or (props is None and extra is None):
            continue
        else:
            errors.append(FieldError(child, "unknown field: upstream KubeVirt's API has no such field",
                                     NOT_SUPPORTED))
    for key in dict.fromkeys(list(up.get("required") or ()) + list(ours.get("required") or ())):
        if value.get(key) is None:
            errors.append(FieldError(f"{path}.{key}" if path else key, "required value", REQUIRED))
