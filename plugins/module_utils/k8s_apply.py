"""Logic of the k8s_apply module: server-side apply through kubectl, with an honest `changed`.

`kubectl diff --server-side` asks the API server what an apply would change (a server-side dry run,
with defaults and admission applied) and exits 0 when nothing would, 1 when something would; only then
do we apply. Deletion reports `changed` only for objects that existed.
"""
from __future__ import annotations

import json

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    HAS_YAML = False

NOTHING_TO_DIFF = 0
SOMETHING_TO_DIFF = 1


def documents(definition=None, src_text=None):
    """The manifests as a flat list of dicts (YAML streams, lists and `kind: List` are flattened)."""
    docs = []
    sources = []
    if definition is not None:
        sources.append(definition)
    if src_text is not None:
        sources.append(src_text)
    for source in sources:
        if isinstance(source, str):
            loaded = [d for d in yaml.safe_load_all(source) if d]
        elif isinstance(source, dict):
            loaded = [source]
        else:
            loaded = [d for d in source if d]
        for doc in loaded:
            if isinstance(doc, str):
                docs.extend(documents(doc))
            elif isinstance(doc, list):
                docs.extend(documents(doc))
            elif isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
                docs.extend(documents(doc["items"]))
            elif isinstance(doc, dict):
                docs.append(doc)
            else:
                raise ValueError(f"not a Kubernetes object: {doc!r}")
    for doc in docs:
        missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
        if missing or not (doc.get("metadata") or {}).get("name"):
            raise ValueError(f"object without apiVersion, kind or metadata.name: {json.dumps(doc)[:200]}")
    return docs


def stdin_for(docs):
    """What kubectl reads from `-f -`: one v1 List, so a single call handles every object in order."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


def object_names(docs):
    """kind/namespace/name of each object, for the result and messages."""
    out = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        ns = meta.get("namespace")
        out.append(f"{doc['kind']}/{ns + '/' if ns else ''}{meta['name']}")
    return out


def base_command(kubectl, kubeconfig=None, context=None, request_timeout=None):
    cmd = [kubectl]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    if context:
        cmd += ["--context", context]
    if request_timeout:
        cmd += [f"--request-timeout={request_timeout}"]
    return cmd


def diff_command(base, field_manager, force_conflicts=True):
    cmd = base + ["diff", "--server-side", f"--field-manager={field_manager}", "-f", "-"]
    if force_conflicts:
        cmd.append("--force-conflicts")
    return cmd


def apply_command(base, field_manager, force_conflicts=True):
    cmd = base + ["apply", "--server-side", f"--field-manager={field_manager}", "-f", "-", "-o", "name"]
    if force_conflicts:
        cmd.append("--force-conflicts")
    return cmd


def interpret_diff(rc, stderr=""):
    """(would_change, reliable) from kubectl diff's exit code.

    0: nothing would change; 1: something would; >1: kubectl could not tell (e.g. a namespace or CRD the
    objects need is created by this very apply), so an apply must run and counts as a change.
    """
    if rc == NOTHING_TO_DIFF:
        return False, True
    if rc == SOMETHING_TO_DIFF:
        return True, True
    return True, False


def existing_names(stdout):
    """Names printed by `kubectl get -f - -o name --ignore-not-found`."""
    return [line.strip() for line in stdout.splitlines() if line.strip()]
