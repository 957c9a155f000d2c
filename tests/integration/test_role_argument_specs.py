"""A wrong role variable fails in the role's argument spec check, naming it, before the role's tasks run."""
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO


@pytest.mark.parametrize("extra, message", [
    ({"kubevirt_state": "sideways"}, "kubevirt_state must be one of: present, absent, got: sideways"),
    ({"kubevirt_api_replicas": "two"}, "kubevirt_api_replicas"),
    ({"kube_binaries_source": "borrow"}, "kube_binaries_source must be one of: build, download"),
])
def test_a_wrong_variable_fails_before_any_task_naming_it(tmp_path, extra, message):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Deploy", "hosts": "localhost", "connection": "local", "gather_facts": True,
        "gather_subset": ["min"], "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": ["kubevirt.ops.kubevirt"]}]))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                          str(playbook), "-e", yaml.safe_dump(extra, default_flow_style=True).strip()],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert message in run.stdout, run.stdout[-3000:]
    assert "Validation of arguments failed" in run.stdout
    # The failure comes from a spec check (the role's, or that of cluster_defaults, its dependency):
    # none of the role's own tasks ran.
    tasks = [line for line in run.stdout.splitlines() if line.startswith("TASK [kubevirt.ops.kubevirt :")]
    assert all(": Validating arguments against arg spec 'main'" in task for task in tasks), tasks
