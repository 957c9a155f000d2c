"""virt-handler against a real etcd + kube-apiserver, with launchers as local processes (real libvirt + QEMU).

The test plays virt-controller: it creates the VMI, labels it with the node and sets phase Scheduled;
from there virt-handler owns the VMI.
"""
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from kubevirt_runtime.api import timeline
from kubevirt_runtime.api.constants import NODE_NAME_LABEL
from kubevirt_runtime.handler.launcher_client import LauncherClient
from kubevirt_runtime.machinery.resource import VMIS, ApiError, ResourceClient

try:
    from . import guest as guest_mod
    from .certs import issue, new_key, write_pair
except ImportError:  # tests/integration is not a package: pytest put it on sys.path
    import guest as guest_mod
    from certs import issue, new_key, write_pair

pytestmark = [pytest.mark.integration, pytest.mark.libvirt, pytest.mark.timeout(420)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd"):
    pytest.skip("needs root, libvirtd and qemu-system-x86_64 (hack/install-node-packages.sh)",
                allow_module_level=True)

NODE = "node-it-1"
MARKER = guest_mod.MARKER.encode()


@pytest.fixture(scope="module")
def certs():
    d = Path(tempfile.mkdtemp(prefix="kvh-certs-"))
    ca_key = new_key()
    ca = issue("kubevirt-ops test CA", ca_key, ca=True)
    write_pair(d, "ca", ca, ca_key)
    key = new_key()
    write_pair(d, "server", issue("virt-handler", key, ca, ca_key, server=True, sans=("127.0.0.1", "localhost")), key)
    for name, cn in (("virt-api", "virt-api"), ("intruder", "someone-else")):
        key = new_key()
        write_pair(d, name, issue(cn, key, ca, ca_key, client=True), key)
    other_key = new_key()
    other_ca = issue("another CA", other_key, ca=True)
    key = new_key()
    write_pair(d, "foreign", issue("virt-api", key, other_ca, other_key, client=True), key)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def client_ctx(certs, name="virt-api"):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    if name:
        ctx.load_cert_chain(str(certs / f"{name}.crt"), str(certs / f"{name}.key"))
    return ctx


# ------------------------------------------------------------------ processes

@pytest.fixture(scope="module")
def guest():
    return guest_mod.build()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="kvh-", dir="/tmp")
    yield Path(d)
    if not os.environ.get("KUBEVIRT_OPS_KEEP_TEST_DIRS"):
        shutil.rmtree(d, ignore_errors=True)


class HandlerProcess:
    def __init__(self, control_plane, workdir, certs, port):
        self.port = port
        self.metrics_port = guest_mod_free_port()
        self.log_path = workdir / f"virt-handler-{time.monotonic_ns()}.log"
        self.cmd = [sys.executable, "-m", "kubevirt_runtime.handler.main", "--node-name", NODE,
                    "--kubeconfig", str(control_plane.kubeconfig),
                    "--socket-path-template", str(workdir / "{namespace}" / "{name}" / "sockets" / "launcher.sock"),
                    "--accel", "tcg", "--listen-address", "127.0.0.1", "--listen-port", str(port),
                    "--tls-cert", str(certs / "server.crt"), "--tls-key", str(certs / "server.key"),
                    "--client-ca", str(certs / "ca.crt"), "--allowed-client-cn", "virt-api",
                    "--metrics-port", str(self.metrics_port)]
        self.proc = subprocess.Popen(self.cmd, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def handler(control_plane, workdir, certs):
    started = []

    def start():
        port = guest_mod_free_port()
        h = HandlerProcess(control_plane, workdir, certs, port)
        started.append(h)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=client_ctx(certs),
                                            timeout=2) as r:
                    if r.status == 200:
                        return h
            except OSError:
                if h.proc.poll() is not None:
                    raise RuntimeError(f"virt-handler exited: {h.log()[-3000:]}") from None
                time.sleep(0.2)
        raise RuntimeError(f"virt-handler did not come up: {h.log()[-3000:]}")

    yield start
    for h in started:
        h.stop()


def guest_mod_free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def launchers(workdir, guest):
    started = []

    def start(vmi):
        meta = vmi["metadata"]
        launcher = guest_mod.LocalLauncher(workdir / meta["namespace"] / meta["name"], guest, meta["name"],
                                           namespace=meta["namespace"], uid=meta["uid"],
                                           grace=vmi["spec"]["terminationGracePeriodSeconds"],
                                           extra_args=("--accel", "tcg")).start()
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.stop(timeout=20)


# ------------------------------------------------------------------ helpers

def create_scheduled_vmi(api_client, namespace, name, guest, **kwargs):
    """What virt-controller does up to Scheduled."""
    client = ResourceClient(api_client, VMIS)
    body = guest_mod.vmi(name, guest, namespace=namespace, labels={NODE_NAME_LABEL: NODE}, **kwargs)
    body["metadata"].pop("uid")
    created = client.create(body, namespace)
    client.patch_status(name, {"status": {"phase": "Scheduled", "nodeName": NODE, "phaseTransitionTimestamps": [
        {"phase": "Scheduled", "phaseTransitionTimestamp": "2026-01-01T00:00:00Z"}]}}, namespace)
    return client, created


def wait_vmi(client, namespace, name, pred, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = client.get(name, namespace)
        except ApiError:
            last = None
        if last is not None and pred(last):
            return last
        time.sleep(0.2)
    status = json.dumps((last or {}).get("status"))
    raise AssertionError(f"VMI {namespace}/{name}: no {what} within {timeout}s; status {status}")


def condition(vmi, cond_type):
    for c in (vmi.get("status") or {}).get("conditions") or []:
        if c["type"] == cond_type:
            return c["status"]
    return None


def https(certs, port, method, path, name="virt-api"):
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", method=method,
                                 data=b"" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(req, context=client_ctx(certs, name), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def vmi_path(namespace, name, verb):
    return f"/v1/namespaces/{namespace}/virtualmachineinstances/{name}/{verb}"


# ------------------------------------------------------------------ tests

def test_lifecycle_pause_console_restart_poweroff(control_plane, api_client, namespace, guest, handler, launchers,
                                                   certs):
    h = handler()
    client, created = create_scheduled_vmi(api_client, namespace, "alpha", guest)
    launcher = launchers(created)
    start = time.monotonic()
    running = wait_vmi(client, namespace, "alpha", lambda v: v["status"].get("phase") == "Running", what="Running")
    print(f"Scheduled -> Running {time.monotonic() - start:.1f}s")
    assert condition(running, "Ready") == "True"
    assert running["status"]["interfaces"][0]["name"] == "default"
    assert running["status"]["interfaces"][0]["mac"].startswith("02:")
    # masquerade: the address of the launcher's pod network namespace, as kubectl's IP column shows;
    # virt-handler wired that namespace (tap, bridge, NAT) before the domain started
    assert running["status"]["interfaces"][0]["ipAddress"] == launcher.pod_ip
    assert running["status"]["interfaces"][0]["ipAddresses"] == [launcher.pod_ip]

    # pause / unpause through the mTLS endpoint
    code, _ = https(certs, h.port, "PUT", vmi_path(namespace, "alpha", "pause"))
    assert code == 200
    wait_vmi(client, namespace, "alpha", lambda v: condition(v, "Paused") == "True", 30, "Paused")
    code, _ = https(certs, h.port, "PUT", vmi_path(namespace, "alpha", "unpause"))
    assert code == 200
    wait_vmi(client, namespace, "alpha", lambda v: condition(v, "Paused") is None, 30, "unpaused")
    assert https(certs, h.port, "PUT", vmi_path(namespace, "nope", "pause"))[0] == 404

    # nobody but virt-api gets in
    assert https(certs, h.port, "PUT", vmi_path(namespace, "alpha", "pause"), name="intruder")[0] == 403
    for name in (None, "foreign"):
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            https(certs, h.port, "PUT", vmi_path(namespace, "alpha", "pause"), name=name)

    # the console, over a WebSocket
    with ws_connect(f"wss://127.0.0.1:{h.port}{vmi_path(namespace, 'alpha', 'console')}", ssl=client_ctx(certs),
                    subprotocols=["plain.kubevirt.io"], open_timeout=10) as ws:
        seen = b""
        deadline = time.monotonic() + 60
        while b"CONSOLE-42" not in seen and time.monotonic() < deadline:
            try:
                msg = ws.recv(timeout=3)
            except TimeoutError:  # the guest's shell may not be up yet: ask (again)
                ws.send(b"\necho CONSOLE-$((6*7))\n")
                continue
            seen += msg if isinstance(msg, bytes) else msg.encode()
        assert b"CONSOLE-42" in seen, seen[-3000:]

    # per-VMI metrics from libvirt's domain stats, with KubeVirt's names and labels
    def scrape():
        with urllib.request.urlopen(f"http://127.0.0.1:{h.metrics_port}/metrics", timeout=10) as resp:
            return resp.read().decode()

    def vcpu_seconds(text):
        line = next(x for x in text.splitlines() if x.startswith("kubevirt_vmi_vcpu_seconds_total{"))
        assert 'name="alpha"' in line and f'namespace="{namespace}"' in line and 'id="0"' in line, line
        return float(line.rsplit(" ", 1)[1])

    first = scrape()
    for name in ("kubevirt_vmi_memory_resident_bytes", "kubevirt_vmi_memory_domain_bytes",
                 "kubevirt_vmi_cpu_usage_seconds_total", "kubevirt_workqueue_adds_total"):
        assert f"\n{name}{{" in first, name
    before = vcpu_seconds(first)  # an idle guest's vCPU time grows slowly under TCG: poll rather than sleep 2 s
    deadline = time.monotonic() + 30
    while (later := vcpu_seconds(scrape())) <= before and time.monotonic() < deadline:
        time.sleep(1)
    assert later > before

    # the startup timeline: the launcher's stages, Running, then the guest's first console output
    recorded = wait_vmi(client, namespace, "alpha",
                        lambda v: "FirstConsoleOutput" in timeline.recorded(v["status"]), 30, "the first output")
    stages = [row["stage"] for row in timeline.rows(recorded["status"])]
    assert stages == ["ContainersStarted", "LauncherReady", "DomainDefined", "DomainStarted", "Running",
                      "FirstConsoleOutput"], stages

    # restarting virt-handler leaves the VM running and reconverges status
    qemu = launcher.qemu_pid()
    h.stop()
    LauncherClient(launcher.socket).pause()  # a change while no handler is watching
    h = handler()
    wait_vmi(client, namespace, "alpha", lambda v: condition(v, "Paused") == "True", 30, "Paused after restart")
    os.kill(qemu, 0)  # same QEMU process still alive
    assert https(certs, h.port, "PUT", vmi_path(namespace, "alpha", "unpause"))[0] == 200
    wait_vmi(client, namespace, "alpha", lambda v: condition(v, "Paused") is None, 30, "unpaused")

    # the guest powers itself off -> Succeeded
    with ws_connect(f"wss://127.0.0.1:{h.port}{vmi_path(namespace, 'alpha', 'console')}", ssl=client_ctx(certs),
                    subprotocols=["plain.kubevirt.io"], open_timeout=10) as ws:
        ws.send(b"\npoweroff -f\n")
        done = wait_vmi(client, namespace, "alpha", lambda v: v["status"].get("phase") == "Succeeded", 60,
                        "Succeeded")
    assert condition(done, "Ready") == "False"
    assert launcher.proc.wait(30) == 0


def test_qemu_killed_fails_and_deletion_stops(control_plane, api_client, namespace, guest, handler, launchers):
    handler()
    client, created = create_scheduled_vmi(api_client, namespace, "beta", guest)
    launcher = launchers(created)
    wait_vmi(client, namespace, "beta", lambda v: v["status"].get("phase") == "Running", what="Running")
    os.kill(launcher.qemu_pid(), signal.SIGKILL)
    failed = wait_vmi(client, namespace, "beta", lambda v: v["status"].get("phase") == "Failed", 60, "Failed")
    assert failed["status"]["reason"].startswith("Domain")
    assert launcher.proc.wait(30) == 1

    # a VMI deleted while running: the handler shuts the guest down (grace period, then destroy)
    client2, created2 = create_scheduled_vmi(api_client, namespace, "gamma", guest, grace=1)
    launcher2 = launchers(created2)
    wait_vmi(client2, namespace, "gamma", lambda v: v["status"].get("phase") == "Running", what="Running")
    client2.delete("gamma", namespace)
    assert launcher2.proc.wait(60) == 0


def test_sync_failure_is_reported(control_plane, api_client, namespace, guest, handler, launchers):
    handler()
    client, created = create_scheduled_vmi(
        api_client, namespace, "delta", guest, disks=[{"name": "root", "disk": {"bus": "virtio"}}],
        volumes=[{"name": "root", "containerDisk": {"image": "example/missing:1"}}])
    launchers(created)  # the init container "forgot" to copy the disk
    vmi = wait_vmi(client, namespace, "delta", lambda v: condition(v, "Synchronized") == "False", 60,
                   "Synchronized=False")
    assert vmi["status"]["phase"] == "Scheduled"
    sync = next(c for c in vmi["status"]["conditions"] if c["type"] == "Synchronized")
    assert "containerDisk" in sync["message"]
