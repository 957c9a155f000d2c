"""Integration fixtures: a real etcd + kube-apiserver (see apiserver.py) with our CRDs installed.

Fixtures for everyone:
- ``control_plane`` (session): a started ``apiserver.ControlPlane``; ``.kubeconfig`` (admin), ``.api_client``
  (kubernetes ApiClient), ``.server``, ``.kubectl(*args)``; kubevirt.io CRDs installed; namespace
  ``kubevirt`` exists. Missing binaries fail the tests with a clear message (never a silent skip).
- ``api_client`` (session): ``control_plane.api_client``.
- ``namespace`` (function): a fresh namespace name for the test.
- ``virt_controller`` (function): a factory that starts ``virt-controller`` processes against the control
  plane (``virt_controller(leader_elect=True, extra_args=())`` -> handle with ``.pid``, ``.kill()``,
  ``.terminate()``, ``.metrics_port``); all are stopped (by pid) when the test ends.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

import pytest
from apiserver import ControlPlane, free_port

from kubevirt_runtime.api.crdgen import load_crds
from kubevirt_runtime.machinery.resource import NAMESPACES, ApiError, ResourceClient
from tests.conftest import BIN_DIR


@pytest.fixture(scope="session")
def control_plane():
    workdir = Path(tempfile.mkdtemp(prefix="kubevirt-ops-it-"))
    plane = ControlPlane(BIN_DIR, workdir)
    plane.start()
    try:
        plane.install_crds(load_crds())
        ensure_namespace(plane.api_client, "kubevirt")
        yield plane
    finally:
        plane.stop()
        if not os.environ.get("KUBEVIRT_OPS_KEEP_TEST_DIRS"):  # etcd's data and the logs: 66 MiB a session
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def api_client(control_plane):
    return control_plane.api_client


def ensure_namespace(api_client, name):
    try:
        ResourceClient(api_client, NAMESPACES).create({"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": name}})
    except ApiError as exc:
        if not exc.already_exists:
            raise


@pytest.fixture
def namespace(api_client):
    name = f"test-{uuid.uuid4().hex[:8]}"
    ensure_namespace(api_client, name)
    return name


class ControllerProcess:
    def __init__(self, control_plane, workdir, leader_elect, extra_args, index):
        self.metrics_port = free_port()
        self.log_path = Path(workdir) / f"virt-controller-{index}.log"
        args = [sys.executable, "-m", "kubevirt_runtime.controller.main", "--kubeconfig", str(control_plane.kubeconfig),
                "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port),
                "--leader-elect-identity", f"controller-{index}", "--leader-elect-lease-duration", "4",
                "--leader-elect-renew-deadline", "3", "--leader-elect-retry-period", "0.5",
                "--leader-elect" if leader_elect else "--no-leader-elect", *extra_args]
        self.proc = subprocess.Popen(args, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid

    def metric(self, name):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as resp:
                for line in resp.read().decode().splitlines():
                    if line.startswith(name + " ") or line.startswith(name + "{"):
                        return float(line.rsplit(" ", 1)[1])
        except OSError:
            return None
        return None

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait(10)

    def terminate(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


@pytest.fixture
def virt_controller(request, control_plane):
    """On failure the controllers' logs are printed at teardown, so a CI report shows what they did."""
    started = []

    def start(leader_elect=True, extra_args=()):
        proc = ControllerProcess(control_plane, control_plane.workdir, leader_elect, extra_args, len(started) + 1)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate()
    if getattr(request.node, "call_failed", False):
        for proc in started:
            print(f"--- {proc.log_path.name} (last 200 lines)")
            print("\n".join(proc.log().splitlines()[-200:]))


os.environ.setdefault("PYTHONUNBUFFERED", "1")
