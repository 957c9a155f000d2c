"""The target launcher pod of a migration: the VMI's launcher pod (launcher_pod.py), placed on another node.

- named ``virt-launcher-<vmi>-<5 chars of the migration's uid>`` (a second create gets AlreadyExists);
- labeled ``kubevirt.io/migrationJobUID: <migration uid>`` and annotated ``kubevirt.io/migrationJobName``;
- a required pod anti-affinity to the VMI's other launcher pods (``kubevirt.io/created-by: <vmi uid>``, not this
  migration's) per node: never the node the VMI runs on;
- the VMI's nodeSelector plus the migration's addedNodeSelector (the VMI's own keys win, as upstream);
- not Ready before the domain runs in it (the launcher's marker file), so Services that select the VMI's pods
  keep sending to the source pod until the guest has moved (unless the VMI has a readiness probe of its own).
"""
from __future__ import annotations

import copy
import hashlib

from ..api import default_vmi
from ..api import migration as m
from ..api.constants import CREATED_BY_LABEL
from ..api.podpaths import PRIVATE_DIR
from .launcher_pod import _NAME_CHARS, render_launcher_pod

HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"
DOMAIN_HERE = "domain-migrated-in"  # in the launcher's private directory, once the incoming domain runs


def target_pod_name(vmi: dict, migration: dict) -> str:
    digest = hashlib.sha256(migration["metadata"]["uid"].encode()).digest()
    return f"virt-launcher-{vmi['metadata']['name']}-{''.join(_NAME_CHARS[b % len(_NAME_CHARS)] for b in digest[:5])}"


def render_target_pod(vmi: dict, migration: dict, config=None, cluster=None) -> dict:
    pod = render_launcher_pod(default_vmi(vmi), config, cluster)
    uid = migration["metadata"]["uid"]
    meta, spec = pod["metadata"], pod["spec"]
    meta["name"] = target_pod_name(vmi, migration)
    meta["labels"][m.JOB_UID_LABEL] = uid
    meta["annotations"][m.JOB_NAME_ANNOTATION] = migration["metadata"]["name"]
    added = (migration.get("spec") or {}).get("addedNodeSelector") or {}
    if added:
        spec["nodeSelector"] = {**added, **(spec.get("nodeSelector") or {})}
    affinity = copy.deepcopy(spec.get("affinity") or {})
    anti = affinity.setdefault("podAntiAffinity", {})
    anti.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append({
        "labelSelector": {"matchLabels": {CREATED_BY_LABEL: vmi["metadata"]["uid"]},
                          "matchExpressions": [{"key": m.JOB_UID_LABEL, "operator": "NotIn", "values": [uid]}]},
        "topologyKey": HOSTNAME_TOPOLOGY,
    })
    spec["affinity"] = affinity
    compute = next(c for c in spec["containers"] if c["name"] == "compute")
    compute["command"].append("--libvirt-daemon")  # the source's libvirt connects to the target's daemon
    compute.setdefault("readinessProbe", {"exec": {"command": ["test", "-e", f"{PRIVATE_DIR}/{DOMAIN_HERE}"]},
                                          "periodSeconds": 1, "failureThreshold": 1})
    return pod
