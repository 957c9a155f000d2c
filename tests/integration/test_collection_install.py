"""The collection as a user gets it: `ansible-galaxy collection build`, `install` into a clean path, then the VM
modules against a real kube-apiserver from that path alone.

The modules run with a fresh Python environment that has the kubernetes client but not kubevirt-runtime: the
task fails with a message that names the missing library and how to install it (no traceback). Then
kubevirt-runtime is pip-installed from the installed collection's own directory (it carries the package's
source), as that message says, and the same tasks work.
"""
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import ensure_namespace

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

VENV_BIN = REPO / ".venv" / "bin"
PLAY = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
    {"name": "a VM", "kubevirt.ops.vm": {"name": "installed", "namespace": "{{ ns }}", "run_strategy": "Halted",
                                         "kubeconfig": "{{ kubeconfig }}",
                                         "spec": {"domain": {"devices": {}, "memory": {"guest": "64Mi"}}}},
     "register": "created", "ignore_errors": True},
    {"name": "find it", "kubevirt.ops.vm_info": {"namespace": "{{ ns }}", "kubeconfig": "{{ kubeconfig }}"},
     "register": "found", "ignore_errors": True},
    {"name": "report", "ansible.builtin.copy": {"dest": "{{ report }}",
                                                "content": "{{ {'created': created, 'found': found} | to_json }}"}},
]}]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("collection")
    (work / "ansible.cfg").write_text("[defaults]\ncollections_scan_sys_path = False\n")
    # away from the repository's ansible.cfg, whose collections path already holds kubevirt.ops
    env = dict(os.environ, ANSIBLE_CONFIG=str(work / "ansible.cfg"))
    build = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work),
                            str(REPO)], capture_output=True, text=True, timeout=300, env=env, cwd=work)
    assert build.returncode == 0, build.stderr
    tarball = next(work.glob("kubevirt-ops-*.tar.gz"))
    install = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "-p", str(work / "cols"),
                              str(tarball)], capture_output=True, text=True, timeout=300, env=env, cwd=work)
    assert install.returncode == 0, install.stderr
    collection = work / "cols" / "ansible_collections" / "kubevirt" / "ops"
    for part in ("plugins/modules/vm.py", "plugins/modules/vm_console.py", "plugins/module_utils/kubevirt/runner.py",
                 "plugins/inventory/kubevirt.py", "plugins/doc_fragments/kubevirt_auth_options.py",
                 "pyproject.toml", "src/kubevirt_runtime/client/lifecycle.py"):
        assert (collection / part).exists(), part
    return work, collection


def python_without_kubevirt_runtime(where: Path) -> Path:
    """A venv whose site-packages reach the kubernetes client of .venv but not its kubevirt-runtime (that one is an
    editable install, whose .pth is only read in .venv itself)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = Path(subprocess.run([str(where / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (site / "dotvenv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return where / "bin" / "python"


def run(work, control_plane, python, ns):
    cfg = work / "ansible.cfg"
    playbook = work / "play.yml"
    playbook.write_text(yaml.safe_dump(PLAY))
    report = Path(tempfile.mkstemp(suffix=".json", dir=work)[1])
    env = dict(os.environ, ANSIBLE_CONFIG=str(cfg), ANSIBLE_COLLECTIONS_PATH=str(work / "cols"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
                           "-e", f"ansible_python_interpreter={python}", "-e", f"ns={ns}",
                           "-e", f"kubeconfig={control_plane.kubeconfig}", "-e", f"report={report}"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(report.read_text())


def test_the_installed_collection_says_what_is_missing_then_works(installed, control_plane, api_client, tmp_path):
    work, collection = installed
    ns = f"test-{uuid.uuid4().hex[:8]}"
    ensure_namespace(api_client, ns)
    python = python_without_kubevirt_runtime(tmp_path / "venv")

    missing = run(work, control_plane, python, ns)
    for task in ("created", "found"):
        result = missing[task]
        assert result["failed"] and "Failed to import the required Python library (kubevirt-runtime)" in result["msg"]
        assert "pip install <collections path>/ansible_collections/kubevirt/ops" in result["msg"]
        assert "Traceback" not in result["msg"]

    # what the message says: the installed collection's directory is the kubevirt-runtime package
    target = tmp_path / "kubevirt-runtime"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          str(collection)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    site = python.parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "kubevirt-runtime.pth").write_text(f"{target}\n")

    works = run(work, control_plane, python, ns)
    assert works["created"]["changed"] and works["created"]["method"] == "create", works["created"]
    assert [vm["metadata"]["name"] for vm in works["found"]["resources"]] == ["installed"]
