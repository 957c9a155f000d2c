"""The pods that move disk data, as pure functions: the importer of a DataVolume (CDI's importer, upload server
and clone pod) and the copy pods of VM snapshots and restores. All run ``virt-importer``
(kubevirt_runtime/importer) from the importer image (by default the virt-launcher image, which carries
qemu-img, a static busybox and our wheel).

Contract with virt-importer and the controllers:
- label ``app: containerized-data-importer`` (the controllers' pod informer selects it) and
  ``cdi.kubevirt.io: <role>``; the owner (DataVolume, VirtualMachineSnapshotContent, VirtualMachineRestore) is
  the pod's controller owner reference, by which the controllers find their pods;
- the target PVC at /data (the disk is /data/disk.img), a clone's source PVC read-only at /source;
- restartPolicy OnFailure: a failure worth a retry restarts the container (status.restartCount), a
  permanent one says so in the termination message and exit code 2 (importer/main.py);
- a registry source is run the way containerDisks are: a first init container copies the importer image's
  static busybox into an emptyDir, a second one, from the registry image itself (which needs no shell),
  copies its /disk/* into the target PVC.
"""
from __future__ import annotations

from ..api import cdi

APP_LABEL = "app"
ROLE_LABEL = "cdi.kubevirt.io"
BIN_DIR = "/var/run/cdi/bin"
BUSYBOX = f"{BIN_DIR}/busybox"
IMPORTER_BUSYBOX = "/bin/busybox"
DATA_DIR = "/data"
SOURCE_DIR = "/source"
SECRET_DIR = "/etc/cdi/secret"
CERT_DIR = "/etc/cdi/certs"
REGISTRY_DIR = f"{DATA_DIR}/.registry"
_RESOURCES = {"requests": {"cpu": "10m", "memory": "60Mi"}}
_SECURITY = {"runAsUser": 0, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _owner(obj: dict) -> list:
    meta = obj["metadata"]
    return [{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
             "controller": True, "blockOwnerDeletion": True}]


def _claim_volume(name: str, claim: str, read_only: bool = False) -> dict:
    source = {"claimName": claim}
    if read_only:
        source["readOnly"] = True
    return {"name": name, "persistentVolumeClaim": source}


def _pod(name, namespace, role, owner, container, volumes, init_containers=(), priority_class=None) -> dict:
    spec = {"restartPolicy": "OnFailure", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 5,
            "containers": [container], "volumes": volumes}
    if init_containers:
        spec["initContainers"] = list(init_containers)
    if priority_class:
        spec["priorityClassName"] = priority_class
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name[:253], "namespace": namespace,
                         "labels": {APP_LABEL: cdi.APP_LABEL_VALUE, ROLE_LABEL: role},
                         "ownerReferences": _owner(owner)},
            "spec": spec}


def _container(image, args, mounts, owner_uid, pull_policy="IfNotPresent", ready_probe=False) -> dict:
    container = {"name": "importer", "image": image, "imagePullPolicy": pull_policy,
                 "command": ["virt-importer", *args],
                 "env": [{"name": "OWNER_UID", "value": owner_uid}],
                 "ports": [{"name": "http", "containerPort": 8443, "protocol": "TCP"}],
                 "volumeMounts": mounts, "resources": _RESOURCES, "securityContext": _SECURITY,
                 "terminationMessagePolicy": "FallbackToLogsOnError"}
    if ready_probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8443}, "periodSeconds": 2}
    return container


def importer_pod(dv: dict, target_size: int | None, image: str, pull_policy: str = "IfNotPresent",
                 node: str | None = None) -> dict:
    """The pod that fills a DataVolume's PVC (same name as the DataVolume) from its source; `node` pins it."""
    meta, spec = dv["metadata"], dv["spec"]
    kind = cdi.source_kind(spec)
    source = spec["source"][kind]
    args = ["import", "--source", kind, "--dest", DATA_DIR]
    if target_size:
        args += ["--size", str(target_size)]
    mounts = [{"name": "data", "mountPath": DATA_DIR}]
    volumes = [_claim_volume("data", meta["name"])]
    init = []
    if kind == "http":
        args += ["--endpoint", source["url"]]
        for header in source.get("extraHeaders") or []:
            args += ["--header", header]
        if source.get("secretRef"):
            args += ["--secret-dir", SECRET_DIR]
            volumes.append({"name": "secret", "secret": {"secretName": source["secretRef"]}})
            mounts.append({"name": "secret", "mountPath": SECRET_DIR, "readOnly": True})
        if source.get("certConfigMap"):
            args += ["--cert-dir", CERT_DIR]
            volumes.append({"name": "certs", "configMap": {"name": source["certConfigMap"]}})
            mounts.append({"name": "certs", "mountPath": CERT_DIR, "readOnly": True})
    elif kind == "registry":
        args += ["--image-dir", REGISTRY_DIR]
        volumes.append({"name": "bin", "emptyDir": {}})
        image_ref = source["url"][len("docker://"):]
        init = [
            {"name": "importer-binary", "image": image, "imagePullPolicy": pull_policy,
             "command": [IMPORTER_BUSYBOX, "cp", IMPORTER_BUSYBOX, BUSYBOX],
             "volumeMounts": [{"name": "bin", "mountPath": BIN_DIR}], "resources": _RESOURCES,
             "securityContext": _SECURITY},
            {"name": "registry-disk", "image": image_ref, "imagePullPolicy": "IfNotPresent",
             "command": [BUSYBOX, "sh", "-c", f"{BUSYBOX} mkdir -p {REGISTRY_DIR} && {BUSYBOX} cp /disk/* "
                                              f"{REGISTRY_DIR}/"],
             "volumeMounts": [{"name": "data", "mountPath": DATA_DIR},
                              {"name": "bin", "mountPath": BIN_DIR, "readOnly": True}],
             "resources": _RESOURCES, "securityContext": _SECURITY},
        ]
    elif kind == "pvc":
        args += ["--from", f"{SOURCE_DIR}/{cdi.DISK_FILE}"]
        volumes.append(_claim_volume("source", source["name"], read_only=True))
        mounts.append({"name": "source", "mountPath": SOURCE_DIR, "readOnly": True})
    role = {"upload": "cdi-upload-server", "pvc": "clone"}.get(kind, "importer")
    prefix = cdi.UPLOAD_PREFIX if kind == "upload" else cdi.IMPORTER_PREFIX
    container = _container(image, args, mounts, meta["uid"], pull_policy, ready_probe=kind == "upload")
    return pin_to_node(_pod(prefix + meta["name"], meta["namespace"], role, dv, container, volumes, init,
                            spec.get("priorityClassName")), node)


def copy_pod(name: str, owner: dict, role: str, source_claim: str, source_file: str, target_claim: str,
             target_file: str, out_format: str, image: str, pull_policy: str = "IfNotPresent",
             size: int | None = None, remove_source: bool = False, node: str | None = None) -> dict:
    """A pod that converts `source_file` of `source_claim` into `target_file` of `target_claim` (snapshots:
    raw -> qcow2; restores: qcow2 -> raw). `node` pins it where the source's data lives."""
    args = ["copy", "--from", f"{SOURCE_DIR}/{source_file}", "--to", f"{DATA_DIR}/{target_file}",
            "--format", out_format]
    if size:
        args += ["--size", str(size)]
    if remove_source:
        args.append("--remove-source")
    mounts = [{"name": "data", "mountPath": DATA_DIR},
              {"name": "source", "mountPath": SOURCE_DIR, "readOnly": not remove_source}]
    volumes = [_claim_volume("data", target_claim), _claim_volume("source", source_claim, not remove_source)]
    pod = _pod(name, owner["metadata"]["namespace"], role, owner,
               _container(image, args, mounts, owner["metadata"]["uid"], pull_policy), volumes)
    return pin_to_node(pod, node)


def pin_to_node(pod: dict, node: str | None) -> dict:
    """Requires `node` for the pod (where node-local data it works on lives); None leaves it free."""
    if node:
        pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}
    return pod
