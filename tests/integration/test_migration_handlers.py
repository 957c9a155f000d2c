"""Two virt-handlers (node-a, node-b) against a real kube-apiserver move a running guest between their launchers:
the test plays virt-controller's part (it hands the migration over in the VMI's migrationState and label), the
handlers do theirs (the target prepares and listens, the source migrates through the TLS proxy, the target takes
the VMI), as they do in a cluster. Each launcher sees its directories at the same path, as in a pod."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kubevirt_runtime.api import migration as m
from kubevirt_runtime.api.constants import NODE_NAME_LABEL
from kubevirt_runtime.machinery.resource import EVENTS, VMIS, ApiError, ResourceClient

try:
    from . import guest as guest_mod
    from .certs import issue, new_key, write_pair
except ImportError:  # tests/integration is not a package: pytest put it on sys.path
    import guest as guest_mod
    from certs import issue, new_key, write_pair

pytestmark = [pytest.mark.integration, pytest.mark.libvirt, pytest.mark.timeout(600)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd"):
    pytest.skip("needs root, libvirtd and qemu-system-x86_64 (hack/install-node-packages.sh)",
                allow_module_level=True)

POD_DIR = "/run/kvo-it-pod"  # where each launcher sees its own directories (a pod's fixed paths)
NS = "default"


@pytest.fixture(scope="module")
def certs():
    d = Path(tempfile.mkdtemp(prefix="kvm-certs-"))
    ca_key = new_key()
    ca = issue("handlers CA", ca_key, ca=True)
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key = new_key()
    write_pair(d, "handler", issue("virt-handler", key, ca, ca_key, server=True, client=True), key)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class PodLauncher(guest_mod.LocalLauncher):
    """A local launcher that sees its directories at POD_DIR (its own mount namespace), as a pod's would be."""

    def __init__(self, base, guest, name, uid, extra_args=()):
        super().__init__(base, guest, name, uid=uid, extra_args=("--accel", "tcg", *extra_args))
        inner = [a.replace(str(self.base), POD_DIR) for a in self.cmd]
        self.cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    f'mkdir -p {POD_DIR} && mount --bind "$0" {POD_DIR} && exec "$@"', str(self.base), *inner]


class Handler:
    def __init__(self, control_plane, workdir, certs, node):
        self.node = node
        self.log_path = workdir / f"virt-handler-{node}.log"
        template = workdir / node / "{namespace}" / "{name}" / "sockets" / "launcher.sock"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubevirt_runtime.handler.main", "--node-name", node,
             "--kubeconfig", str(control_plane.kubeconfig), "--socket-path-template", str(template), "--accel", "tcg",
             "--listen-port", "0", "--tls-cert", str(certs / "handler.crt"), "--tls-key", str(certs / "handler.key"),
             "--client-ca", str(certs / "ca.crt"), "--migration-port", "0", "--migration-address", "127.0.0.1"],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="kvmh-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def wait(client, name, pred, timeout, what, handlers=()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = client.get(name, NS)
        except ApiError:
            last = None
        if last is not None and pred(last):
            return last
        time.sleep(0.3)
    logs = "\n".join(f"--- {h.node}\n{h.log()[-3000:]}" for h in handlers)
    raise AssertionError(f"no {what} within {timeout}s; status {(last or {}).get('status')}\n{logs}")


def test_two_handlers_move_a_running_guest_between_their_launchers(control_plane, api_client, workdir, certs):
    guest = guest_mod.build()
    name = f"mig-{uuid.uuid4().hex[:6]}"
    client = ResourceClient(api_client, VMIS)
    body = guest_mod.vmi(name, guest, namespace=NS, memory="128Mi", labels={NODE_NAME_LABEL: "node-a"})
    body["metadata"].pop("uid")
    created = client.create(body, NS)
    uid = created["metadata"]["uid"]
    client.patch_status(name, {"status": {"phase": "Scheduled", "nodeName": "node-a"}}, NS)
    source = PodLauncher(workdir / "node-a" / NS / name, guest, name, uid).start()
    target = PodLauncher(workdir / "node-b" / NS / name, guest, name, uid,
                         extra_args=("--libvirt-daemon",)).start()  # as render_target_pod has it
    handlers = [Handler(control_plane, workdir, certs, node) for node in ("node-a", "node-b")]
    try:
        wait(client, name, lambda v: v["status"].get("phase") == "Running", 120, "Running on node-a", handlers)
        # virt-controller's hand-over
        migration_uid = str(uuid.uuid4())
        client.patch_status(name, {"status": {"migrationState": {
            "migrationUid": migration_uid, "sourceNode": "node-a", "targetNode": "node-b",
            "targetPod": "virt-launcher-target", "sourcePod": "virt-launcher-source"}}}, NS)
        client.patch(name, {"metadata": {"labels": {m.TARGET_NODE_LABEL: "node-b"}}}, NS)
        started = time.monotonic()
        moved = wait(client, name, lambda v: v["status"].get("nodeName") == "node-b", 180, "the move to node-b",
                     handlers)
        took = time.monotonic() - started
        state = moved["status"]["migrationState"]
        assert moved["metadata"]["labels"][NODE_NAME_LABEL] == "node-b"
        assert state["targetNodeAddress"] == "127.0.0.1" and state["targetNodeDomainDetected"]
        assert state["completed"] and not state.get("failed") and state["startTimestamp"]
        assert source.proc.wait(30) == 0  # the source launcher ended with the domain's departure
        done = wait(client, name, lambda v: v["status"]["migrationState"].get("endTimestamp") and
                    v["status"]["phase"] == "Running" and
                    any(c["type"] == "Ready" and c["status"] == "True" for c in v["status"]["conditions"]),
                    60, "the VMI Running on node-b", handlers)
        assert done["status"]["interfaces"][0]["ipAddress"] == target.pod_ip  # node-b's launcher reports now
        events = ResourceClient(api_client, EVENTS).list(NS, field_selector=f"involvedObject.name={name}")["items"]
        said = {(e["source"].get("host"), e["reason"]): e["message"] for e in events}
        assert "paused for" in said[("node-a", "Migrated")]  # the source's report, with QEMU's downtime
        assert said[("node-b", "Migrated")] == "The VirtualMachineInstance migrated to node node-b."
        print(f"\nhand-over to the VMI on node-b: {took:.1f}s; {said[('node-a', 'Migrated')]}")
    finally:
        for handler in handlers:
            handler.stop()
        for launcher in (source, target):
            launcher.stop(timeout=20)
