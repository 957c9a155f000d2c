"""Shared test settings: where the cached upstream binaries live."""
import os
from pathlib import Path

KUBE_VERSION = os.environ.get("KUBEVIRT_OPS_KUBE_VERSION", "1.36.3")
CACHE_DIR = Path(os.environ.get("KUBEVIRT_OPS_CACHE", Path.home() / ".cache" / "kubevirt-ops"))
BIN_DIR = Path(os.environ.get("KUBEVIRT_OPS_BIN_DIR", CACHE_DIR / "kubernetes" / f"v{KUBE_VERSION}" / "bin"))

REPO = Path(__file__).resolve().parent.parent
# The collection is used in place: ansible_collections.kubevirt.ops -> the repository root.
import sys  # noqa: E402

sys.path.insert(0, str(REPO / "collections"))
