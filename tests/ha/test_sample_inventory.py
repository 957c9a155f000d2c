"""The same roles install real hosts over SSH: inventories/sample (a control-plane host and two workers), its
hosts here as network namespaces with their own sshd (tests/inventories/sample-as-netns.yml), reached only over
SSH. Then cluster-down removes every trace."""
import os
import subprocess
import time

import pytest

from tests.conftest import BIN_DIR, REPO
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

INVENTORY = ["-i", str(REPO / "inventories" / "sample"), "-i", str(REPO / "tests" / "inventories" /
                                                                    "sample-as-netns.yml")]
STATE = c.STATE_DIR.parent / "sample"


def run(playbook):
    venv_bin = REPO / ".venv" / "bin"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=f"{venv_bin}:{os.environ['PATH']}")
    env.pop("NODES", None)
    started = time.monotonic()
    proc = subprocess.run([str(venv_bin / "ansible-playbook"), *INVENTORY, str(REPO / "playbooks" / playbook),
                           "-e", "kube_binaries_source=build"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return proc.stdout, time.monotonic() - started


def test_the_sample_inventory_installs_hosts_reached_over_ssh():
    before = c.host_traces()
    out, took = run("cluster-up.yml")
    print(f"\nsample inventory (3 hosts over SSH) cluster-up: {took:.0f}s")
    try:
        kubectl = [str(BIN_DIR / "kubectl"), "--kubeconfig", str(STATE / "admin.kubeconfig")]
        nodes = subprocess.run(kubectl + ["get", "nodes", "-o", "name"], capture_output=True, text=True,
                               check=True).stdout.split()
        assert sorted(nodes) == ["node/worker1", "node/worker2"]  # the kube_node hosts; cp1 is control plane only
        ready = subprocess.run(kubectl + ["wait", "--for=condition=Ready", "node", "--all", "--timeout=120s"],
                               capture_output=True, text=True)
        assert ready.returncode == 0, ready.stderr
        assert "ansible_connection=local" not in out
    finally:
        out, _ = run("cluster-down.yml")
    after = c.host_traces()
    for kind, was in before.items():
        assert after[kind] <= was, f"{kind} left behind: {sorted(after[kind] - was)}"
