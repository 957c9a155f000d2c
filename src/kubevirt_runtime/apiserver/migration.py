"""virt-api's part of live migration, as upstream's: the migration webhooks, the eviction interceptor and the
``migrate`` subresource of VMs. Pure functions over a `Cluster` (reads and the one write they need), so they
are tested without an API server.

- mutate (VirtualMachineInstanceMigration CREATE): the label ``kubevirt.io/vmi-name`` and the finalizer
  ``kubevirt.io/migrationJobFinalize``;
- validate: CREATE checks the spec (api/migration.py) and that the VMI exists, runs, is live migratable and
  is not migrating already; UPDATE refuses spec changes;
- evict (pods/eviction CREATE): the eviction of a launcher pod whose VMI's eviction strategy (else the KubeVirt
  CR's) is LiveMigrate (LiveMigrateIfPossible when it can migrate, External always) is refused with 429 and the
  VMI marked with status.evacuationNodeName, which the evacuation controller turns into a migration; kubectl
  drain retries until the pod has ended. Other pods pass.
- migrate: creates a migration (generateName ``kubevirt-migrate-vm-``) for a VM whose VMI runs; 202.
"""
from __future__ import annotations

import base64
import json
from typing import Protocol

from ..api import migration as m
from ..api.constants import APP_LABEL, DOMAIN_ANNOTATION, GROUP, LAUNCHER_APP_VALUE, VMIPhase

MUTATE_PATH = "/migration-mutate-create"
VALIDATE_PATH = "/migration-validate"
EVICTION_PATH = "/launcher-eviction-validate"
ROUTES = (MUTATE_PATH, VALIDATE_PATH, EVICTION_PATH)
EVICTION_REFUSED = "Eviction triggered evacuation of VMI \"{namespace}/{name}\""
POD_FINAL = ("Succeeded", "Failed")


class Cluster(Protocol):
    def vmi(self, namespace: str, name: str) -> dict | None: ...
    def pod(self, namespace: str, name: str) -> dict | None: ...
    def migrations(self, namespace: str, vmi_name: str) -> list[dict]: ...
    def mark_evacuation(self, vmi: dict, node: str, dry_run: bool) -> None: ...
    def eviction_default(self) -> str | None: ...
    def create_migration(self, migration: dict, dry_run: bool) -> dict: ...


class MigrateError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _answer(review: dict, response: dict) -> dict:
    return {"apiVersion": review.get("apiVersion") or "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], **response}}


def _denied(review: dict, code: int, message: str, reason: str = "") -> dict:
    status = {"status": "Failure", "code": code, "message": message}
    if reason:
        status["reason"] = reason
    return _answer(review, {"allowed": False, "status": status})


def _invalid(review: dict, name: str, errors) -> dict:
    what = f'{m.KIND} "{name}"' if name else m.KIND
    return _answer(review, {"allowed": False, "status": {
        "status": "Failure", "code": 422, "reason": "Invalid",
        "message": f"{what} is invalid: " + "; ".join(str(e) for e in errors),
        "details": {"name": name, "group": GROUP, "kind": m.KIND,
                    "causes": [{**e.as_cause(), "message": e.message} for e in errors]}}})


def _request(review) -> dict:
    if not isinstance(review, dict) or not isinstance(review.get("request"), dict) or \
            not review["request"].get("uid"):
        raise ValueError("expected an admission.k8s.io/v1 AdmissionReview with request.uid")
    return review["request"]


def _dry_run(request: dict, obj: dict | None = None) -> bool:
    if request.get("dryRun"):
        return True
    options = (obj or {}).get("deleteOptions") or {}
    return "All" in (options.get("dryRun") or [])


# ---------------------------------------------------------------- migrations

def mutate(review: dict) -> dict:
    request = _request(review)
    obj = request.get("object")
    if request.get("operation") != "CREATE" or not isinstance(obj, dict) or not isinstance(obj.get("spec"), dict):
        return _answer(review, {"allowed": True})
    meta = obj.get("metadata") or {}
    ops = []
    if not isinstance(meta.get("labels"), dict):
        ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
    vmi_name = obj["spec"].get("vmiName")
    if isinstance(vmi_name, str) and vmi_name:
        ops.append({"op": "add", "path": f"/metadata/labels/{m.VMI_NAME_LABEL.replace('/', '~1')}",
                    "value": vmi_name})
    finalizers = meta.get("finalizers") if isinstance(meta.get("finalizers"), list) else None
    if finalizers is None:
        ops.append({"op": "add", "path": "/metadata/finalizers", "value": [m.FINALIZER]})
    elif m.FINALIZER not in finalizers:
        ops.append({"op": "add", "path": "/metadata/finalizers/-", "value": m.FINALIZER})
    response = {"allowed": True}
    if ops:
        response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode())
    return _answer(review, response)


def validate(review: dict, cluster: Cluster) -> dict:
    request = _request(review)
    obj = request.get("object")
    operation = request.get("operation")
    if not isinstance(obj, dict) or operation not in ("CREATE", "UPDATE"):
        return _answer(review, {"allowed": True})
    name = (obj.get("metadata") or {}).get("name") or request.get("name") or ""
    if operation == "UPDATE":
        old = request.get("oldObject") or {}
        if not request.get("subResource") and obj.get("spec") != old.get("spec"):
            return _denied(review, 422, "update of VMIM object's spec is restricted", "Invalid")
        return _answer(review, {"allowed": True})
    errors = m.validate_migration(obj)
    if errors:
        return _invalid(review, name, errors)
    namespace = request.get("namespace") or (obj.get("metadata") or {}).get("namespace")
    vmi_name = obj["spec"]["vmiName"]
    vmi = cluster.vmi(namespace, vmi_name)
    if vmi is None:
        return _denied(review, 422, f"the VMI \"{namespace}/{vmi_name}\" does not exist", "Invalid")
    why = m.vmi_can_migrate(vmi)
    if why:
        return _denied(review, 422, f"Cannot migrate VMI, Reason: {why}", "Invalid")
    for other in cluster.migrations(namespace, vmi_name):
        if not m.is_final(other) and other["metadata"].get("name") != name:
            return _denied(review, 409, f"in-flight migration detected. Active migration job "
                                        f"({other['metadata']['name']}) is currently already in progress for VMI "
                                        f"{vmi_name}.", "Conflict")
    return _answer(review, {"allowed": True})


# ---------------------------------------------------------------- evictions

def evict(review: dict, cluster: Cluster) -> dict:
    request = _request(review)
    if request.get("operation") != "CREATE":
        return _answer(review, {"allowed": True})
    namespace, pod_name = request.get("namespace"), request.get("name")
    pod = cluster.pod(namespace, pod_name)
    labels = ((pod or {}).get("metadata") or {}).get("labels") or {}
    if pod is None or labels.get(APP_LABEL) != LAUNCHER_APP_VALUE or \
            (pod.get("status") or {}).get("phase") in POD_FINAL:
        return _answer(review, {"allowed": True})
    vmi_name = (pod["metadata"].get("annotations") or {}).get(DOMAIN_ANNOTATION)
    vmi = cluster.vmi(namespace, vmi_name) if vmi_name else None
    if vmi is None or (vmi.get("status") or {}).get("phase") in VMIPhase.FINAL:
        return _answer(review, {"allowed": True})
    strategy = m.eviction_strategy(vmi, cluster.eviction_default())
    migratable = m.vmi_can_migrate(vmi) is None
    if strategy == m.EVICTION_LIVE_MIGRATE and not migratable:
        return _denied(review, 429, f"VMI {vmi_name} is configured with an eviction strategy but is not "
                                    f"live-migratable", "TooManyRequests")
    if strategy not in (m.EVICTION_LIVE_MIGRATE, m.EVICTION_EXTERNAL) and not (
            strategy == m.EVICTION_LIVE_MIGRATE_IF_POSSIBLE and migratable):
        return _answer(review, {"allowed": True})
    refused = EVICTION_REFUSED.format(namespace=namespace, name=vmi_name)
    status = vmi.get("status") or {}
    if status.get("evacuationNodeName"):
        return _denied(review, 429, f"Evacuation in progress: {refused}", "TooManyRequests")
    node = (pod.get("spec") or {}).get("nodeName")
    if status.get("nodeName") != node:
        return _denied(review, 429, "Eviction request for target Pod", "TooManyRequests")
    try:
        cluster.mark_evacuation(vmi, node, _dry_run(request, request.get("object")))
    except Exception as exc:  # the caller retries (kubectl drain does)
        return _denied(review, 429, f"kubevirt failed marking the vmi for eviction: {exc}", "TooManyRequests")
    return _denied(review, 429, refused, "TooManyRequests")


def review(path: str, body: bytes, cluster: Cluster) -> dict:
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"request body is not JSON: {exc}") from exc
    if path == MUTATE_PATH:
        return mutate(parsed)
    if path == VALIDATE_PATH:
        return validate(parsed, cluster)
    return evict(parsed, cluster)


# ---------------------------------------------------------------- the migrate subresource

def migrate_options(body: bytes) -> dict:
    """MigrateOptions (subresources.kubevirt.io/v1): dryRun, addedNodeSelector."""
    if not body.strip():
        return {}
    try:
        options = json.loads(body)
    except ValueError as exc:
        raise MigrateError(400, f"cannot parse the migrate options: {exc}") from None
    if not isinstance(options, dict):
        raise MigrateError(400, "the migrate options must be a JSON object")
    selector = options.get("addedNodeSelector")
    if selector is not None and (not isinstance(selector, dict) or
                                 not all(isinstance(k, str) and isinstance(v, str) for k, v in selector.items())):
        raise MigrateError(400, "addedNodeSelector must be a map of strings")
    return options


def migrate(cluster: Cluster, namespace: str, vm_name: str, options: dict, vm_exists: bool) -> dict:
    """The migration virt-api creates for `virtctl migrate` (raises MigrateError with upstream's codes)."""
    if not vm_exists:
        raise MigrateError(404, f'virtualmachines.kubevirt.io "{vm_name}" not found')
    vmi = cluster.vmi(namespace, vm_name)
    if vmi is None or (vmi.get("status") or {}).get("phase") != VMIPhase.RUNNING:
        raise MigrateError(409, f"VM {vm_name} is not running")
    spec = {"vmiName": vm_name}
    if options.get("addedNodeSelector"):
        spec["addedNodeSelector"] = options["addedNodeSelector"]
    migration = {"apiVersion": f"{GROUP}/v1", "kind": m.KIND,
                 "metadata": {"generateName": "kubevirt-migrate-vm-", "namespace": namespace}, "spec": spec}
    return cluster.create_migration(migration, "All" in (options.get("dryRun") or []))


# ---------------------------------------------------------------- the cluster, through the API

class ApiCluster:
    """`Cluster` through the kube API with virt-api's service account; the KubeVirt CR's default eviction
    strategy from the informer virt-api already runs (cluster_config.py)."""

    def __init__(self, api_client, kubevirt_store=None):
        from ..machinery.resource import PODS, VMIS, Resource, ResourceClient
        self.vmis = ResourceClient(api_client, VMIS)
        self.pods = ResourceClient(api_client, PODS)
        self.migration_client = ResourceClient(api_client, Resource(GROUP, "v1", m.PLURAL, kind=m.KIND))
        self.kubevirt_store = kubevirt_store

    @staticmethod
    def _get(client, namespace, name):
        from ..machinery.resource import ApiError
        try:
            return client.get(name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def vmi(self, namespace, name):
        return self._get(self.vmis, namespace, name)

    def pod(self, namespace, name):
        return self._get(self.pods, namespace, name)

    def migrations(self, namespace, vmi_name):
        return self.migration_client.list(namespace, label_selector=f"{m.VMI_NAME_LABEL}={vmi_name}").get("items", [])

    def mark_evacuation(self, vmi, node, dry_run):
        if dry_run:
            return
        meta = vmi["metadata"]
        self.vmis.patch_status(meta["name"], {"metadata": {"resourceVersion": meta["resourceVersion"]},
                                              "status": {"evacuationNodeName": node}}, meta["namespace"])

    def eviction_default(self):
        from ..api.cluster_config import ClusterConfig
        items = self.kubevirt_store.list() if self.kubevirt_store is not None else []
        return ClusterConfig.from_kubevirt(items[0] if items else None).eviction_strategy

    def create_migration(self, migration, dry_run):
        return self.migration_client.create(migration, migration["metadata"]["namespace"], dry_run=dry_run)
