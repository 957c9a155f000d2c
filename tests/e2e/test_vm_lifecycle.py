"""examples/playbooks/vm-lifecycle.yml on the local cluster.

The playbook asserts what it does itself (create with an SSH key and a startup timeline, the serial console,
SSH through the inventory, each lifecycle re-run unchanged, delete). Between its run and its delete play this
test checks that the VMI's IP (what `kubectl get vmi` shows) is its launcher pod's address. Three TCG boots:
create, start, restart. (The same playbook with kubevirt.core.kubevirt_vm is compared in
tests/integration/test_kubevirt_core_parity.py, against the real API server without booting guests.)
"""
import os
import subprocess

import pytest

from tests.conftest import REPO
from tests.e2e import cluster as c
from tests.kubevirt_core import outcomes

pytestmark = pytest.mark.e2e

PLAYBOOK = REPO / "examples" / "playbooks" / "vm-lifecycle.yml"
INVENTORY = REPO / "examples" / "playbooks" / "inventory"
VENV_BIN = REPO / ".venv" / "bin"
VM, NAMESPACE = "vm-lifecycle", "default"


def run_playbook(*args, timeout=3000):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), K8S_AUTH_KUBECONFIG=str(c.KUBECONFIG),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(PLAYBOOK), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"vm-lifecycle.yml {' '.join(args)} failed:\n{output[-8000:]}"
    return output


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
    output = run_playbook("--skip-tags", "delete", *common)
    vmi = c.get("vmi", VM, NAMESPACE)
    pod_ip = launcher_pod_ip(vmi)
    wide = c.kubectl("get", "vmi", VM, "-n", NAMESPACE, "--no-headers")
    output += run_playbook("--tags", "delete", *common)
    return {"output": output, "vmi": vmi, "pod_ip": pod_ip, "kubectl_get_vmi": wide, "report": outcomes(report)}


def test_the_playbook_runs_and_every_rerun_is_unchanged(ops_run):
    report = ops_run["report"]
    output = ops_run["output"]
    print("\n" + output[output.find("TASK [How the start went]"):][:600])
    assert report["created"].compared == (True, False, "create") and not report["created_again"].changed
    for step in ("stop_again", "start_again", "stop_again_check", "start_again_check", "delete_again"):
        assert report[step].changed is False, (step, report[step])
    for step in ("stop", "start", "restart", "stop_check", "delete"):
        assert report[step].changed is True, (step, report[step])
    assert report["start"].printable_status == "Running" and report["stop"].printable_status == "Stopped"


def test_the_vmi_reports_its_pods_address(ops_run):
    interfaces = ops_run["vmi"]["status"]["interfaces"]
    assert ops_run["pod_ip"] and interfaces[0]["ipAddress"] == ops_run["pod_ip"]
    assert ops_run["pod_ip"] in interfaces[0]["ipAddresses"]
    assert ops_run["pod_ip"] in ops_run["kubectl_get_vmi"]  # the IP column of kubectl get vmi
