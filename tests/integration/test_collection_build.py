"""The collection as users get it: `ansible-galaxy collection build` makes a tarball without the checkout's
caches and tests, and a module and a role run from a copy installed into an empty collections path."""
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def _run(*argv, cwd, env=None):
    # make exports ANSIBLE_CONFIG, whose collections_path holds this checkout: ansible-galaxy would then find
    # kubevirt.ops "already installed" and install nothing. Users build and install without it.
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_built_collection_installs_and_runs(tmp_path):
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    _run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(REPO), cwd=tmp_path)
    tarball = tmp_path / f"kubevirt-ops-{version}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    tops = {name.split("/")[0] for name in names}
    assert {"roles", "plugins", "meta", "playbooks", "LICENSE", "CHANGELOG.rst", "MANIFEST.json"} <= tops
    assert not tops & {".venv", "tests", "bench", ".pytest_cache", ".ansible", "dist", "collections", "molecule"}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]

    collections = tmp_path / "collections"
    _run("ansible-galaxy", "collection", "install", "--offline", "-p", str(collections), str(tarball), cwd=tmp_path)
    installed = collections / "ansible_collections" / "kubevirt" / "ops"
    assert (installed / "roles" / "pki" / "meta" / "argument_specs.yml").exists()

    # A clean environment: no ansible.cfg, only the installed copy on the collections path, HOME in tmp_path
    # (the pki role writes under it).
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANSIBLE_COLLECTIONS_PATH": str(collections),
           "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false", "ANSIBLE_NOCOLOR": "1"}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "children": {"k8s_cluster": {"children": {g: {"hosts": {"node01": None}}
                                                  for g in ("kube_control_plane", "etcd", "kube_node")}}},
        "hosts": {"node01": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "From the installed collection", "hosts": "k8s_cluster", "gather_facts": True,
        "gather_subset": ["min"], "vars": {"cluster_name": "collection-test"},
        "roles": ["kubevirt.ops.pki"],
        "tasks": [{"name": "A module", "kubevirt.ops.file_set": {"files": [
            {"dest": str(out / "hello.txt"), "content": "from the installed collection\n", "mode": "0644"}]}}]}]))
    stdout = _run("ansible-playbook", "-i", "hosts.yml", "play.yml", cwd=tmp_path, env=env)
    assert "failed=0" in stdout
    assert (out / "hello.txt").read_text() == "from the installed collection\n"
    state = home / ".local" / "state" / "kubevirt-ops" / "collection-test"
    assert (state / "controller-pki" / "ca.crt").exists()
    assert "client-certificate-data" in (state / "admin.kubeconfig").read_text()
    # Nothing came from the checkout: the role's tasks ran from the installed copy.
    listing = _run("ansible-galaxy", "collection", "list", "kubevirt.ops", cwd=tmp_path, env=env)
    assert str(collections) in listing and str(REPO) not in listing
