"""molecule test (molecule/default) on the cluster the e2e session uses: create finds it up and reuses it,
converge deploys KubeVirt from this checkout and a VM, a second converge changes nothing, verify checks the
VM through the collection's modules, and destroy removes only the VM, keeping the cluster."""
import os
import re
import subprocess

from tests.conftest import REPO
from tests.e2e import cluster as c


def test_molecule_scenario_on_the_running_cluster(cluster):
    venv_bin = REPO / ".venv" / "bin"
    env = dict(os.environ, MOLECULE_GLOB="molecule/*/molecule.yml", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               NO_COLOR="1", PATH=f"{venv_bin}:{os.environ['PATH']}")
    env.pop("ANSIBLE_CONFIG", None)
    proc = subprocess.run([str(venv_bin / "molecule"), "test"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=3000)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    assert "Reusing the cluster that is up" in output
    assert re.search(r"idempotence: +Executed: Successful", output), output[-8000:]
    assert c.cluster_answers(), "destroy removed a cluster that create did not make"
    assert "molecule" not in c.kubectl("get", "namespaces", "-o", "name").split("namespace/")
