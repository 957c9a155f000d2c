"""Pure helpers on API objects: hiding fields from results and telling whether a write changed anything.

hidden_fields paths use dots between keys and brackets for keys with dots or for list indexes, as in
kubernetes.core: `metadata.managedFields`, `metadata.annotations[kubemacpool.io/transaction-timestamp]`,
`spec.template.spec.domain.devices.disks[0].bootOrder`. A container left empty by hiding is dropped too.
"""
from __future__ import annotations

import copy

from ansible.module_utils.common.dict_transformations import recursive_diff

# A write that only moved these is not a change (the API server bumps them for no-op updates of some kinds).
BOOKKEEPING_METADATA = {"generation", "resourceVersion"}


def field_path(text: str) -> list[str]:
    """`a.b[c.d][0].e` -> ["a", "b", "c.d", "0", "e"]."""
    parts, current, i = [], "", 0
    while i < len(text):
        char = text[i]
        if char == ".":
            if current:
                parts.append(current)
            current = ""
        elif char == "[":
            if current:
                parts.append(current)
            end = text.find("]", i)
            if end < 0:
                raise ValueError(f"unbalanced [ in hidden field {text!r}")
            parts.append(text[i + 1:end])
            current, i = "", end
        else:
            current += char
        i += 1
    if current:
        parts.append(current)
    return parts


def _remove(node, path: list[str]) -> bool:
    """Removes path below node; True when node became empty because of it."""
    if not path:
        return False
    key, rest = path[0], path[1:]
    if isinstance(node, dict):
        if key not in node:
            return False
        if not rest:
            del node[key]
        elif _remove(node[key], rest):
            del node[key]
        return not node
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        index = int(key)
        if not rest:
            del node[index]
        elif _remove(node[index], rest):
            del node[index]
        return not node
    return False


def hide_fields(obj, hidden_fields) -> dict:
    if not obj or not hidden_fields:
        return obj
    out = copy.deepcopy(obj)
    # later list indexes first, so removing one does not shift the next
    paths = sorted((field_path(f) for f in hidden_fields), key=lambda p: [int(k) if k.isdigit() else -1 for k in p],
                   reverse=True)
    for path in paths:
        _remove(out, path)
    return out


def diff_objects(before: dict, after: dict, hidden_fields=None) -> tuple[bool, dict]:
    """(changed, {"before": ..., "after": ...}) with only the differing parts, hidden fields left out;
    a difference in metadata.generation/resourceVersion alone is no change."""
    before = hide_fields(before or {}, hidden_fields)
    after = hide_fields(after or {}, hidden_fields)
    found = recursive_diff(before, after)
    if not found:
        return False, {}
    left, right = found
    diff = {"before": left, "after": right}
    only_metadata = set(left) <= {"metadata"} and set(right) <= {"metadata"}
    if only_metadata and set(left.get("metadata", {})) | set(right.get("metadata", {})) <= BOOKKEEPING_METADATA:
        return False, diff
    # a real write moves them and a dry run does not: left out, check mode and a real run show the same diff
    bookkeeping = [f"metadata.{key}" for key in sorted(BOOKKEEPING_METADATA)]
    return True, {"before": hide_fields(left, bookkeeping), "after": hide_fields(right, bookkeeping)}


def merge(base: dict, extra: dict) -> dict:
    """base updated recursively with extra (for one diff out of several partial ones)."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
