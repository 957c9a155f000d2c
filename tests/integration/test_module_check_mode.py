"""The modules that change files predict in check mode exactly what a real run does, touch nothing
while predicting, and show a diff (run through Ansible, as a playbook would)."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run_module(name, args, *flags, tmp_dir):
    """Runs one module task; returns its registered result (written out even in check mode)."""
    out = os.path.join(tmp_dir, "result.json")
    play = [{"name": "Run", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable},
             "tasks": [{"name": "The module", f"kubevirt.ops.{name}": args, "register": "result"},
                       {"name": "Save", "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": out},
                        "check_mode": False, "diff": False}]}]
    playbook = os.path.join(tmp_dir, "play.json")
    with open(playbook, "w") as f:
        json.dump(play, f)
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([PLAYBOOK, "-i", "localhost,", playbook, *flags], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(out) as f:
        return json.load(f)


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_file_set(tmp_path, work):
    dest = tmp_path / "etc" / "app.conf"
    args = {"files": [{"dest": str(dest), "content": "secret-key\n", "mode": "0640"}]}

    predicted = run_module("file_set", args, "--check", "--diff", tmp_dir=work)
    assert predicted["changed"] and predicted["written"] == [str(dest)]
    assert not (tmp_path / "etc").exists()
    assert predicted["diff"][0]["before"] == "(absent)\n" and "mode: 0640" in predicted["diff"][0]["after"]
    assert "secret-key" not in json.dumps(predicted)

    real = run_module("file_set", args, tmp_dir=work)
    assert real["changed"] and real["digest"] == predicted["digest"]
    assert dest.read_text() == "secret-key\n" and oct(dest.stat().st_mode & 0o777) == "0o640"
    assert not run_module("file_set", args, "--check", tmp_dir=work)["changed"]

    dest.chmod(0o600)
    predicted = run_module("file_set", args, "--check", "--diff", tmp_dir=work)
    assert predicted["changed"] and "mode: 0600" in predicted["diff"][0]["before"]
    assert oct(dest.stat().st_mode & 0o777) == "0o600"


def test_pki(tmp_path, work):
    pki_dir = tmp_path / "pki"
    args = {"dir": str(pki_dir), "authorities": [{"name": "ca", "common_name": "kubernetes"}],
            "certificates": [{"name": "apiserver", "ca": "ca", "common_name": "kube-apiserver", "usages": ["server"],
                              "ip_addresses": ["10.96.0.1"]}],
            "key_pairs": ["sa"]}

    predicted = run_module("pki", args, "--check", "--diff", tmp_dir=work)
    assert predicted["changed"] and predicted["created"] == ["ca", "apiserver", "sa"]
    assert not pki_dir.exists()
    assert predicted["diff"]["before"] == "ca: absent\napiserver: absent\nsa: absent\n"

    assert run_module("pki", args, tmp_dir=work)["created"] == ["ca", "apiserver", "sa"]
    assert not run_module("pki", args, "--check", tmp_dir=work)["changed"]

    renamed = {**args, "authorities": [{"name": "ca", "common_name": "another-ca"}]}
    predicted = run_module("pki", renamed, "--check", "--diff", tmp_dir=work)
    assert predicted["created"] == ["ca", "apiserver"]  # the new CA re-issues what it signs
    assert "CN=kubernetes" in predicted["diff"]["before"]
    before = (pki_dir / "ca.crt").read_bytes()
    assert run_module("pki", renamed, tmp_dir=work)["created"] == ["ca", "apiserver"]
    assert (pki_dir / "ca.crt").read_bytes() != before


@pytest.fixture
def work(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ansible"))


@pytest.fixture
def image_args(tmp_path):
    src = tmp_path / "hello"
    src.write_text("#!/bin/sh\necho hello\n")
    return src, {"path": str(tmp_path / "out" / "hello.tar"), "name": "docker.io/kubevirt-ops/hello:v1",
                 "layer_dir": str(tmp_path / "layers"),
                 "layers": [{"name": "hello", "entries": [{"src": str(src), "dest": "/hello", "mode": "0755"}]}],
                 "entrypoint": ["/hello"]}


def test_oci_image(tmp_path, image_args, work):
    src, args = image_args
    predicted = run_module("oci_image", args, "--check", "--diff", tmp_dir=work)
    assert predicted["changed"] and predicted["diff"]["before"] == "(absent)\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "layers").exists()

    real = run_module("oci_image", args, tmp_dir=work)
    assert real["changed"] and real["digest"] == predicted["digest"]
    assert predicted["diff"]["after"] == f"digest: {real['digest']}\n"
    again = run_module("oci_image", args, "--check", tmp_dir=work)
    assert not again["changed"] and again["digest"] == real["digest"]

    src.write_text("#!/bin/sh\necho hello again\n")
    layers, archive = tree(tmp_path / "layers"), (tmp_path / "out" / "hello.tar").read_bytes()
    predicted = run_module("oci_image", args, "--check", "--diff", tmp_dir=work)
    assert predicted["changed"] and predicted["digest"] != real["digest"]
    assert tree(tmp_path / "layers") == layers and (tmp_path / "out" / "hello.tar").read_bytes() == archive
    assert run_module("oci_image", args, tmp_dir=work)["digest"] == predicted["digest"]
