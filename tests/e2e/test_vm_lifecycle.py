"""examples/playbooks/vm-lifecycle.yml on the local cluster, and the same playbook with kubevirt.core.kubevirt_vm.

The playbook asserts what it does itself (create with an SSH key and a startup timeline, the serial console,
SSH through the inventory, each lifecycle re-run unchanged, delete). Between its run and its delete play this
test checks that the VMI's IP (what `kubectl get vmi` shows) is its launcher pod's address.

Then the playbook's shared tasks (everything not tagged kubevirt_ops_only) run again with kubevirt.core 2.3.0's
kubevirt_vm in place of kubevirt.ops.vm; kubevirt.core and kubernetes.core come from the `ansible` community
package's wheel (downloaded once into ~/.cache/kubevirt-ops/ansible-community, unpacked into a throwaway
collections path, never installed into the project). Both runs write what each task returned; the test
compares changed / failed / method / printableStatus task by task and prints the table.
"""
import glob
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR, REPO
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

PLAYBOOK = REPO / "examples" / "playbooks" / "vm-lifecycle.yml"
INVENTORY = REPO / "examples" / "playbooks" / "inventory"
VENV_BIN = REPO / ".venv" / "bin"
ANSIBLE_COMMUNITY = "14.5.0"  # carries kubevirt.core 2.3.0 and kubernetes.core 6.6.0
COMMUNITY_CACHE = CACHE_DIR / "ansible-community"
VM, NAMESPACE = "vm-lifecycle", "default"
# where kubevirt.core reports differently by design (check mode always says "changed" for start/stop there)
EXPECTED_DIFFERENCES = {"stop_again_check", "start_again_check"}


def run_playbook(playbook, *args, collections=None, timeout=3000):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), K8S_AUTH_KUBECONFIG=str(c.KUBECONFIG),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([str(collections), str(REPO / "collections")])
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(playbook), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{playbook.name} {' '.join(args)} failed:\n{output[-8000:]}"
    return output


def outcomes(report_dir: Path) -> dict:
    """task -> (changed, failed, method, printableStatus after the task) from the playbook's report files (after a
    lifecycle request with wait, kubevirt.core's `result` is the VM from before it, `resources` the waited one)."""
    out = {}
    for part in ("create", "lifecycle", "delete"):
        for step, result in json.loads((report_dir / f"{part}.json").read_text()).items():
            vm = (result.get("resources") or [result.get("result") or {}])[0]
            status = (vm.get("status") or {}).get("printableStatus")
            out[step] = (bool(result.get("changed")), bool(result.get("failed")), result.get("method"), status)
    return out


def launcher_pod_ip(vmi):
    pods = c.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"kubevirt.io/created-by={vmi['metadata']['uid']}")
    running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
    return running[0]["status"]["podIP"] if running else None


@pytest.fixture(scope="module")
def ops_run(cluster, tmp_path_factory):
    work = tmp_path_factory.mktemp("vm-lifecycle")
    report = work / "report"
    report.mkdir()
    common = ["-e", f"vm_ssh_key={work / 'id_ed25519'}", "-e", f"report_dir={report}"]
    output = run_playbook(PLAYBOOK, "--skip-tags", "delete", *common)
    vmi = c.get("vmi", VM, NAMESPACE)
    pod_ip = launcher_pod_ip(vmi)
    wide = c.kubectl("get", "vmi", VM, "-n", NAMESPACE, "--no-headers")
    output += run_playbook(PLAYBOOK, "--tags", "delete", *common)
    return {"output": output, "vmi": vmi, "pod_ip": pod_ip, "kubectl_get_vmi": wide, "report": outcomes(report)}


def test_the_playbook_runs_and_every_rerun_is_unchanged(ops_run):
    report = ops_run["report"]
    print("\n" + ops_run["output"][ops_run["output"].rfind("PLAY RECAP"):])
    assert report["created"][:3] == (True, False, "create") and report["created_again"][0] is False
    for step in ("stop_again", "start_again", "stop_again_check", "start_again_check", "delete_again"):
        assert report[step][0] is False, (step, report[step])
    for step in ("stop", "start", "restart", "stop_check", "delete"):
        assert report[step][0] is True, (step, report[step])
    assert "How the start went" in ops_run["output"] and "vmi_running" in ops_run["output"]


def test_the_vmi_reports_its_pods_address(ops_run):
    interfaces = ops_run["vmi"]["status"]["interfaces"]
    assert ops_run["pod_ip"] and interfaces[0]["ipAddress"] == ops_run["pod_ip"]
    assert ops_run["pod_ip"] in interfaces[0]["ipAddresses"]
    assert ops_run["pod_ip"] in ops_run["kubectl_get_vmi"]  # the IP column of kubectl get vmi


def kubevirt_core_collections() -> Path:
    """kubevirt.core and kubernetes.core from the ansible community package's wheel, unpacked once."""
    target = COMMUNITY_CACHE / f"collections-{ANSIBLE_COMMUNITY}"
    if (target / "ansible_collections" / "kubevirt" / "core" / "MANIFEST.json").exists():
        return target
    COMMUNITY_CACHE.mkdir(parents=True, exist_ok=True)
    wheels = glob.glob(str(COMMUNITY_CACHE / f"ansible-{ANSIBLE_COMMUNITY}-*.whl"))
    if not wheels:  # the package wants Python >= 3.12; only its files are used, with our ansible-core
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", f"ansible=={ANSIBLE_COMMUNITY}", "-d", str(COMMUNITY_CACHE)],
                       check=True, timeout=900)
        wheels = glob.glob(str(COMMUNITY_CACHE / f"ansible-{ANSIBLE_COMMUNITY}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith(("ansible_collections/kubevirt/core/", "ansible_collections/kubernetes/core/")):
                wheel.extract(name, target)
    return target


def test_kubevirt_core_gives_the_same_results_on_the_shared_tasks(ops_run, tmp_path):
    collections = kubevirt_core_collections()
    manifest = json.loads((collections / "ansible_collections/kubevirt/core/MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == "2.3.0"
    text = PLAYBOOK.read_text()
    core = tmp_path / "vm-lifecycle-kubevirt-core.yml"
    core.write_text(text.replace("kubevirt.ops.vm:", "kubevirt.core.kubevirt_vm:")
                    .replace("kubevirt.ops.vm_info:", "kubevirt.core.kubevirt_vm_info:"))
    report = tmp_path / "report"
    report.mkdir()
    run_playbook(core, "--skip-tags", "kubevirt_ops_only", "-e", f"vm_ssh_key={tmp_path / 'id_ed25519'}",
                 "-e", f"report_dir={report}", collections=collections)
    theirs, ours = outcomes(report), ops_run["report"]
    rows = [f"{'task':<20} {'kubevirt.core.kubevirt_vm':<45} {'kubevirt.ops.vm':<45}"]
    for step in ours:
        mark = "" if theirs[step] == ours[step] else "  <- differs"
        rows.append(f"{step:<20} {str(theirs[step]):<45} {str(ours[step]):<45}{mark}")
    print("\n(changed, failed, method, printableStatus)\n" + "\n".join(rows))
    assert set(theirs) == set(ours)
    differing = {step for step in ours if theirs[step] != ours[step]}
    assert differing == EXPECTED_DIFFERENCES, "\n".join(rows)
    for step in EXPECTED_DIFFERENCES:  # kubevirt.core: "changed" in check mode whatever the state
        assert theirs[step][0] is True and ours[step][0] is False
