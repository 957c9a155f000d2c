"""DataVolumes (cdi.kubevirt.io/v1beta1), API-compatible with the Containerized Data Importer.

CDI itself is not available here (its Go modules are refused), so virt-controller reconciles DataVolumes
(controller/datavolume.py) and an importer pod fills each one's PVC (kubevirt_runtime/importer). What this
module holds is pure: names, phases and conditions as CDI spells them, the PVC a DataVolume asks for, and
validation (what the webhook refuses, naming the field).

The disk lives in the PVC as ``disk.img`` (raw), as CDI writes it for a Filesystem volume, so a VMI's
persistentVolumeClaim or dataVolume volume finds it where upstream's virt-launcher looks.
"""
from __future__ import annotations

from urllib.parse import urlparse

from .quantity import memory_bytes
from .walk import NOT_SUPPORTED, REQUIRED, FieldError

GROUP = "cdi.kubevirt.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "DataVolume"
PLURAL = "datavolumes"
SINGULAR = "datavolume"
SHORT_NAMES = ["dv", "dvs"]

DISK_FILE = "disk.img"
# CDI's default filesystem overhead: the share of a Filesystem PVC kept free of the disk image.
FILESYSTEM_OVERHEAD = 0.055
SOURCES = ("http", "registry", "pvc", "blank", "upload")
DEFAULT_ACCESS_MODES = ["ReadWriteOnce"]

# PVC annotations CDI uses (kept so tools that read them, and a restore's prepopulated PVCs, work the same).
POPULATED_FOR = "cdi.kubevirt.io/storage.populatedFor"  # the PVC holds this DataVolume's data already
PRE_POPULATED = "cdi.kubevirt.io/storage.prePopulated"  # the same, set before the DataVolume exists
CONTENT_TYPE = "cdi.kubevirt.io/storage.contentType"
POD_PHASE = "cdi.kubevirt.io/storage.pod.phase"
OWNED_BY_LABEL = "cdi.kubevirt.io/dataVolume"  # importer pods: the DataVolume's name
APP_LABEL_VALUE = "containerized-data-importer"
IMPORTER_PREFIX = "importer-"
UPLOAD_PREFIX = "cdi-upload-"


class Phase:
    UNSET = ""
    PENDING = "Pending"
    PVC_BOUND = "PVCBound"
    IMPORT_SCHEDULED = "ImportScheduled"
    IMPORT_IN_PROGRESS = "ImportInProgress"
    CLONE_SCHEDULED = "CloneScheduled"
    CLONE_IN_PROGRESS = "CloneInProgress"
    UPLOAD_SCHEDULED = "UploadScheduled"
    UPLOAD_READY = "UploadReady"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    FINAL = (SUCCEEDED, FAILED)


class Condition:
    READY = "Ready"
    BOUND = "Bound"
    RUNNING = "Running"


def source_kind(spec: dict) -> str | None:
    """Which of SOURCES a DataVolume spec names (None: none or several)."""
    found = [k for k in SOURCES if ((spec or {}).get("source") or {}).get(k) is not None]
    return found[0] if len(found) == 1 else None


def scheduled_phase(kind: str) -> str:
    return {"pvc": Phase.CLONE_SCHEDULED, "upload": Phase.UPLOAD_SCHEDULED}.get(kind, Phase.IMPORT_SCHEDULED)


def in_progress_phase(kind: str) -> str:
    return {"pvc": Phase.CLONE_IN_PROGRESS, "upload": Phase.UPLOAD_READY}.get(kind, Phase.IMPORT_IN_PROGRESS)


def _claim_spec(spec: dict) -> dict:
    return dict(spec.get("pvc") or spec.get("storage") or {})


def requested_bytes(spec: dict) -> int | None:
    storage = ((_claim_spec(spec).get("resources") or {}).get("requests") or {}).get("storage")
    return memory_bytes(storage) if storage is not None else None


def pvc_spec(spec: dict, default_storage_class: str | None = None) -> dict:
    """The PersistentVolumeClaimSpec a DataVolume asks for. `spec.pvc` is taken as it is (CDI's rule);
    `spec.storage` gets CDI's defaults for what it leaves out."""
    claim = _claim_spec(spec)
    if spec.get("pvc") is not None:
        return claim
    claim.setdefault("accessModes", list(DEFAULT_ACCESS_MODES))
    claim.setdefault("volumeMode", "Filesystem")
    if not claim.get("storageClassName") and default_storage_class:
        claim["storageClassName"] = default_storage_class
    return claim


def image_size(claim_bytes: int) -> int:
    """The virtual size of the disk that fills a Filesystem PVC of `claim_bytes` (CDI keeps 5.5% free),
    rounded down to 1 MiB."""
    return int(claim_bytes * (1 - FILESYSTEM_OVERHEAD)) // (1 << 20) * (1 << 20)


def is_final(dv: dict) -> bool:
    return ((dv or {}).get("status") or {}).get("phase") in Phase.FINAL


def succeeded(dv: dict | None) -> bool:
    return ((dv or {}).get("status") or {}).get("phase") == Phase.SUCCEEDED


# ---------------------------------------------------------------- validation (after the schema walk)

def check_spec(spec: dict, path: str, errors: list) -> None:
    """The rules upstream's schema cannot express, on a well-typed DataVolumeSpec at `path`."""
    source = spec.get("source") or {}
    present = [k for k in source if source.get(k) is not None]
    if not present:
        errors.append(FieldError(f"{path}.source", "a source is required: one of " + ", ".join(SOURCES), REQUIRED))
    elif len(present) > 1:
        errors.append(FieldError(f"{path}.source", "only one source may be set, found: " + ", ".join(present)))
    if (spec.get("pvc") is None) == (spec.get("storage") is None):
        errors.append(FieldError(path, "exactly one of pvc or storage is required", REQUIRED))
        return
    kind = source_kind(spec)
    size_path = f"{path}.{'pvc' if spec.get('pvc') is not None else 'storage'}.resources.requests.storage"
    storage = ((_claim_spec(spec).get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        if kind not in (None, "pvc") or spec.get("pvc") is not None:
            errors.append(FieldError(size_path, "required value: the size of the disk", REQUIRED))
    else:
        try:
            if memory_bytes(storage) <= 0:
                errors.append(FieldError(size_path, "must be greater than 0"))
        except ValueError:
            errors.append(FieldError(size_path, f"invalid quantity {storage!r}"))
    mode = _claim_spec(spec).get("volumeMode")
    if mode == "Block":
        errors.append(FieldError(f"{path}.{'pvc' if spec.get('pvc') is not None else 'storage'}.volumeMode",
                                 "Block volumes are not implemented (the local provisioner makes directories); "
                                 "use Filesystem", NOT_SUPPORTED))
    if kind == "http":
        url = source["http"].get("url") or ""
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            errors.append(FieldError(f"{path}.source.http.url", f"{url!r} is not an http:// or https:// URL"))
    elif kind == "registry":
        registry = source["registry"]
        url = registry.get("url") or ""
        if not url.startswith("docker://") or len(url) <= len("docker://"):
            errors.append(FieldError(f"{path}.source.registry.url", f"{url!r} must be docker://<image>"))
    elif kind == "pvc":
        for key in ("namespace", "name"):
            if not source["pvc"].get(key):
                errors.append(FieldError(f"{path}.source.pvc.{key}", "required value", REQUIRED))


def check_pull_method(spec: dict, path: str, errors: list) -> None:
    """pullMethod pod is what CDI defaults to upstream; here only node works (no registry is reachable)."""
    registry = (spec.get("source") or {}).get("registry") or {}
    if registry.get("pullMethod") not in (None, "node"):
        errors.append(FieldError(f"{path}.source.registry.pullMethod",
                                 f"unsupported value {registry['pullMethod']!r}: only 'node' works here, the image "
                                 "from the node's containerd (no registry is reachable to pull from)",
                                 NOT_SUPPORTED))
