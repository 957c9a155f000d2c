"""kubevirt.core 2.3.0, the anchor kubevirt.ops.vm is compared with, for tests only (never a project dependency).

kubevirt.core and kubernetes.core come from the `ansible` community package's wheel: downloaded once into
~/.cache/kubevirt-ops/ansible-community and unpacked into a throwaway collections path there; they run with the
project's ansible-core and kubernetes client.

    collections_path()              # the path to put in ANSIBLE_COLLECTIONS_PATH
    core_variant(playbook_text)     # the playbook with kubevirt.core's modules in place of kubevirt.ops'
    outcomes(report_dir)            # {task: Outcome} from vm-lifecycle.yml's report files
"""
import glob
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import CACHE_DIR

ANSIBLE_COMMUNITY = "14.5.0"  # carries kubevirt.core 2.3.0 and kubernetes.core 6.6.0
CACHE = CACHE_DIR / "ansible-community"
KUBEVIRT_CORE_VERSION = "2.3.0"
SWAPS = (("kubevirt.ops.vm:", "kubevirt.core.kubevirt_vm:"),
         ("kubevirt.ops.vm_info:", "kubevirt.core.kubevirt_vm_info:"))


def collections_path() -> Path:
    target = CACHE / f"collections-{ANSIBLE_COMMUNITY}"
    manifest = target / "ansible_collections" / "kubevirt" / "core" / "MANIFEST.json"
    if not manifest.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        wheels = glob.glob(str(CACHE / f"ansible-{ANSIBLE_COMMUNITY}-*.whl"))
        if not wheels:  # the package wants Python >= 3.12; only its collections' files are used
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.12", f"ansible=={ANSIBLE_COMMUNITY}", "-d", str(CACHE)],
                           check=True, timeout=900)
            wheels = glob.glob(str(CACHE / f"ansible-{ANSIBLE_COMMUNITY}-*.whl"))
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in wheel.namelist():
                if name.startswith(("ansible_collections/kubevirt/core/", "ansible_collections/kubernetes/core/")):
                    wheel.extract(name, target)
    version = json.loads(manifest.read_text())["collection_info"]["version"]
    assert version == KUBEVIRT_CORE_VERSION, f"the ansible {ANSIBLE_COMMUNITY} wheel carries kubevirt.core {version}"
    return target


def core_variant(text: str) -> str:
    for ours, theirs in SWAPS:
        text = text.replace(ours, theirs)
    return text


@dataclass(frozen=True)
class Outcome:
    changed: bool
    failed: bool
    method: str | None
    printable_status: str | None  # of the VM the task returned (kubevirt.core: from before a lifecycle request)

    @property
    def compared(self):
        return self.changed, self.failed, self.method


def _returned_vm(result: dict) -> dict:
    """kubevirt.core 2.3.0 on kubernetes.core 6 returns result: {results: [{..., result: <VM>}]} (its exit_json
    interception keeps kubernetes.core's second exit_json); kubevirt.ops returns the VM as result."""
    vm = result.get("result") or {}
    if "results" in vm:
        vm = (vm["results"] or [{}])[-1].get("result") or {}
    return vm


def outcomes(report_dir: Path) -> dict:
    out = {}
    for part in ("create", "lifecycle", "delete"):
        for step, result in json.loads((Path(report_dir) / f"{part}.json").read_text()).items():
            status = (_returned_vm(result).get("status") or {}).get("printableStatus")
            out[step] = Outcome(bool(result.get("changed")), bool(result.get("failed")), result.get("method"), status)
    return out


def table(theirs: dict, ours: dict) -> str:
    rows = [f"{'task':<18} {'kubevirt.core.kubevirt_vm 2.3.0':<42} {'kubevirt.ops.vm':<42}",
            f"{'':<18} {'(changed, failed, method) printableStatus':<42}"]
    for step in ours:
        mark = "" if theirs[step].compared == ours[step].compared else "  <- differs"
        left = f"{theirs[step].compared} {theirs[step].printable_status}"
        right = f"{ours[step].compared} {ours[step].printable_status}"
        rows.append(f"{step:<18} {left:<42} {right:<42}{mark}")
    return "\n".join(rows)
