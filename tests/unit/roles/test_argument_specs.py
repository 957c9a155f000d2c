"""Every role checks its variables before its tasks run (meta/argument_specs.yml), and the specs stay
true to defaults/main.yml, where each knob is documented."""
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
# Computed per host from inventory groups a deploy onto an existing cluster does not have (see the spec's header).
LEFT_OUT = {"cluster_defaults": {"node_ip", "node_pod_cidr", "kube_apiserver_endpoint"}}


def _load(role, name):
    path = REPO / "roles" / role / name
    return yaml.safe_load(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("role", ROLES)
def test_spec_documents_every_default(role):
    specs = _load(role, "meta/argument_specs.yml")
    assert specs, f"roles/{role}/meta/argument_specs.yml is missing"
    options = specs["argument_specs"]["main"]["options"] or {}
    defaults = _load(role, "defaults/main.yml") or {}
    assert set(options) == set(defaults) - LEFT_OUT.get(role, set()), "spec and defaults/main.yml differ"
    for name, option in options.items():
        assert option.get("description"), f"{name} has no description"
        if "default" in option:
            value = defaults[name]
            expected = str(value).lower() if option["type"] == "str" and isinstance(value, bool) else value
            if option["type"] == "str" and not isinstance(value, (str, bool)):
                expected = str(value)
            assert option["default"] == expected, f"{name}: spec default {option['default']!r} != {value!r}"


@pytest.mark.parametrize("role", [r for r in ROLES if r != "cluster_defaults"])
def test_role_variables_carry_the_role_prefix(role):
    """Shared settings live in cluster_defaults; everything else is named after its role."""
    specs = _load(role, "meta/argument_specs.yml")["argument_specs"]
    for entry in specs.values():
        for name in entry.get("options") or {}:
            assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"


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
