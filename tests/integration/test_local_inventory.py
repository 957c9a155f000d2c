"""The repository's own inventory (kubevirt.ops.local_cluster) reaches node01 with real ansible-core: the
interpreter it gives node01 must be usable as it is (ansible-core does not template an inventory plugin's
variables)."""
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def test_node01_answers_through_the_local_inventory(tmp_path):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(BIN / "ansible"), "-i", str(REPO / "inventories" / "local"), "node01", "-m",
                           "ansible.builtin.ping"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SUCCESS" in proc.stdout
