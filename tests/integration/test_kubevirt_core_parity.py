"""examples/playbooks/vm-lifecycle.yml with kubevirt.core.kubevirt_vm 2.3.0 and with kubevirt.ops.vm, on the same
real kube-apiserver + virt-api + virt-controller (test_vm_modules' plane; its PlayedNode reports instances
Running), compared task by task on the tasks the two share (those not tagged kubevirt_ops_only).

Expected differences, by design: in check mode kubevirt.core reports every start and stop as a change; ours
predicts what the request would do. The real-cluster run of the same playbook is tests/e2e/test_vm_lifecycle.py.
"""
import os
import subprocess
import sys
import time

import pytest
from conftest import ensure_namespace
from test_vm_modules import PlayedNode, plane  # noqa: F401 - the module-scoped control plane fixture

from tests.conftest import REPO
from tests.kubevirt_core import collections_path, core_variant, outcomes, table

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PLAYBOOK = REPO / "examples" / "playbooks" / "vm-lifecycle.yml"
EXPECTED_DIFFERENCES = {"stop_again_check", "start_again_check"}


def run(plane, playbook, work, collections=None):  # noqa: F811 - plane is the fixture's value
    report = work / "report"
    report.mkdir()
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), K8S_AUTH_KUBECONFIG=str(plane.kubeconfig),
               ANSIBLE_NOCOLOR="1", PATH=f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}")
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([str(collections), str(REPO / "collections")])
    start = time.monotonic()
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook),
                           "--skip-tags", "kubevirt_ops_only", "-e", f"ansible_python_interpreter={sys.executable}",
                           "-e", f"vm_ssh_key={work / 'id_ed25519'}", "-e", f"report_dir={report}",
                           "-e", "vm_timeout=120"], env=env, cwd=REPO, capture_output=True, text=True, timeout=800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    print(f"\n{playbook.name}: {time.monotonic() - start:.1f}s")
    return outcomes(report)


def test_shared_tasks_give_the_same_results(plane, tmp_path):  # noqa: F811
    ensure_namespace(plane.api_client, "default")
    node = PlayedNode(plane.api_client, "default")
    node.start()
    try:
        ours_dir, theirs_dir = tmp_path / "ops", tmp_path / "core"
        ours_dir.mkdir()
        theirs_dir.mkdir()
        ours = run(plane, PLAYBOOK, ours_dir)
        core_playbook = tmp_path / "vm-lifecycle-kubevirt-core.yml"
        core_playbook.write_text(core_variant(PLAYBOOK.read_text()))
        theirs = run(plane, core_playbook, theirs_dir, collections_path())
    finally:
        node.stopping.set()
    print("\n" + table(theirs, ours))
    assert set(theirs) == set(ours)
    differing = {step for step in ours if theirs[step].compared != ours[step].compared}
    assert differing == EXPECTED_DIFFERENCES, table(theirs, ours)
    for step in EXPECTED_DIFFERENCES:
        assert theirs[step].changed is True and ours[step].changed is False
