"""virt-handler wires the pod network before it asks the launcher to start the domain, and hands the launcher
what it wired; a failed setup is a sync failure the user can read, never a started guest without network."""
import os
import socket
import tempfile
import threading
import time

import pytest

from kubevirt_runtime.handler.controller import VMIHandler
from kubevirt_runtime.handler.decide import LauncherView, Lookup, SetupNetwork, Sync, Where, WriteStatus, decide
from kubevirt_runtime.handler.network.plan import NetworkPlanError
from kubevirt_runtime.launcher.protocol import LineReader, encode
from tests.unit.fakeapi import FakeRecorder, FakeResource

NODE = "node01"
POD_NET = {"domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]}},
           "networks": [{"name": "default", "pod": {}}]}


def vmi(spec, phase="Scheduled"):
    return {"metadata": {"name": "v1", "namespace": "ns", "uid": "u1", "labels": {"kubevirt.io/nodeName": NODE}},
            "spec": spec, "status": {"phase": phase, "nodeName": NODE}}


@pytest.mark.parametrize("spec,expected", [
    (POD_NET, [SetupNetwork(), Sync(), WriteStatus()]),
    ({"domain": {"devices": {}}}, [Sync(), WriteStatus()]),
])
def test_network_is_wired_before_the_domain_starts(spec, expected):
    view = LauncherView(watching=True, domain={"status": "Missing"})
    assert decide(vmi(spec), NODE, view, None) == expected


def test_a_running_domain_is_never_rewired():
    view = LauncherView(watching=True, domain={"status": "Running"})
    assert decide(vmi(POD_NET, "Running"), NODE, view, None) == [WriteStatus()]


class FakeLauncher:
    """Speaks the launcher protocol on a unix socket: pushes one Missing state, records sync requests."""

    def __init__(self, path):
        self.path, self.syncs = path, []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        reader = LineReader(conn)
        try:
            if reader.read() is None:
                return
            conn.sendall(encode({"version": 1, "ok": True}))
            while (request := reader.read()) is not None:
                if request["cmd"] == "subscribe":
                    conn.sendall(encode({"id": request["id"], "ok": True, "result": None}))
                    conn.sendall(encode({"event": "domain", "domain": {"status": "Missing", "final": False}}))
                    while conn.recv(4096):
                        pass
                    return
                if request["cmd"] == "sync":
                    self.syncs.append(request["options"])
                    conn.sendall(encode({"id": request["id"], "ok": True,
                                         "result": {"status": "Running", "final": False}}))
        except OSError:
            pass

    def close(self):
        self.sock.close()


class Locator:
    def __init__(self, path):
        self.path = path

    def lookup(self, vmi):
        return Lookup(Where.READY, self.path)

    def locate(self, vmi):
        return self.path

    def has_synced(self):
        return True


@pytest.fixture
def launcher():
    work = tempfile.mkdtemp(prefix="kvo-net-")
    fake = FakeLauncher(os.path.join(work, "launcher.sock"))
    yield fake
    fake.close()


def run(launcher, setup):
    vmis = FakeResource("VirtualMachineInstance", "kubevirt.io/v1")
    vmis.put(vmi(POD_NET))
    handler = VMIHandler(vmis, vmis.informer, Locator(launcher.path), NODE, FakeRecorder(),
                         {"useEmulation": True}, network_setup=setup)
    handler.sync("ns/v1")  # watch the launcher; its first state requeues the VMI
    deadline = time.monotonic() + 5
    while handler.registry.track("u1", "ns/v1").domain is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return handler, vmis


def test_the_wired_config_rides_along_with_sync(launcher):
    calls = []

    def setup(obj, pid):
        calls.append((obj["metadata"]["name"], pid))
        return {"interfaces": [{"name": "default", "tap": "tap0"}]}

    handler, _ = run(launcher, setup)
    handler.sync("ns/v1")
    assert calls == [("v1", os.getpid())]  # the launcher's pid, from its socket's peer credentials
    assert launcher.syncs == [{"useEmulation": True, "network": {"interfaces": [{"name": "default", "tap": "tap0"}]}}]
    handler.stop()


def test_a_failed_setup_is_reported_and_nothing_is_started(launcher):
    def setup(obj, pid):
        raise NetworkPlanError("the pod has no eth0 interface (links: lo)")

    handler, vmis = run(launcher, setup)
    with pytest.raises(NetworkPlanError):
        handler.sync("ns/v1")
    assert launcher.syncs == []
    [condition] = vmis.get("v1", "ns")["status"]["conditions"]
    assert condition["type"] == "Synchronized" and condition["status"] == "False"
    assert condition["message"] == "pod network setup failed: the pod has no eth0 interface (links: lo)"
    assert handler.recorder.reasons()[-1] == "SyncFailed"
    handler.stop()
