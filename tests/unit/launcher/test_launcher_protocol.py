"""The launcher's command server and virt-handler's client, speaking protocol v1 over a real unix socket
(the domain manager is a fake, so no libvirt is needed)."""
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

import pytest

from kubevirt_runtime.handler.launcher_client import (
    LauncherClient,
    LauncherError,
    Subscription,
    open_console,
    open_stream,
    subscribe,
)
from kubevirt_runtime.launcher import accel
from kubevirt_runtime.launcher.server import CommandServer


class FakeConsole:
    def __init__(self):
        self.serial = object()
        self.received = b""

    def serve(self, client, history, pending=b""):
        client.sendall(b"history:" if history else b"live:")
        self.received += pending
        while True:
            data = client.recv(100)
            if not data:
                return
            self.received += data
            client.sendall(data.upper())


class FakeManager:
    def __init__(self):
        self.calls = []
        self.subscribers = []
        self.console = FakeConsole()
        self.state = {"status": "Missing", "final": False}

    def snapshot(self):
        return dict(self.state)

    def sync(self, vmi, options):
        self.calls.append(("sync", vmi["metadata"]["name"], options))
        self.state = {"status": "Running", "final": False}
        self.push()
        return self.snapshot()

    def shutdown(self, grace):
        self.calls.append(("shutdown", grace))
        return self.snapshot()

    def kill(self):
        self.calls.append(("kill",))
        return self.snapshot()

    def pause(self):
        raise RuntimeError("no domain")

    def unpause(self):
        return self.snapshot()

    def guestinfo(self):
        return {"id": "debian"}

    def open_vnc(self):
        raise RuntimeError("No graphics devices are present.")

    def open_guest_port(self, port, protocol):
        """An echo 'guest' that upper-cases what it gets, on the other end of a socket pair."""
        ours, theirs = socket.socketpair()
        self.calls.append(("portforward", port, protocol))

        def echo():
            with theirs:
                while data := theirs.recv(100):
                    theirs.sendall(data.upper())
        threading.Thread(target=echo, daemon=True).start()
        return ours

    def subscribe(self, sock):
        from kubevirt_runtime.launcher.protocol import encode
        sock.sendall(encode({"event": "domain", "domain": self.snapshot()}))
        self.subscribers.append(sock)

    def unsubscribe(self, sock):
        if sock in self.subscribers:
            self.subscribers.remove(sock)

    def push(self):
        from kubevirt_runtime.launcher.protocol import encode
        for sub in self.subscribers:
            sub.sendall(encode({"event": "domain", "domain": self.snapshot()}))


@pytest.fixture
def server():
    d = tempfile.mkdtemp(prefix="kvp-")
    manager = FakeManager()
    srv = CommandServer(str(Path(d) / "launcher.sock"), manager)
    srv.start()
    yield srv, manager
    srv.stop()


def test_commands_round_trip(server):
    srv, manager = server
    client = LauncherClient(srv.path, timeout=5)
    assert client.call("ping") == "pong"
    assert client.state()["status"] == "Missing"
    assert client.sync({"metadata": {"name": "v"}}, {"accel": "tcg"})["status"] == "Running"
    client.shutdown(7)
    client.kill()
    assert client.guestinfo() == {"id": "debian"}
    assert manager.calls == [("sync", "v", {"accel": "tcg"}), ("shutdown", 7), ("kill",)]
    with pytest.raises(LauncherError, match="no domain"):
        client.pause()
    with pytest.raises(LauncherError, match="unknown command"):
        client.call("reboot-the-world")
    assert client.call("ping") == "pong"  # the connection survives errors


def test_version_mismatch_is_refused(server):
    srv, _ = server
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(srv.path)
        s.sendall(b'{"version": 2}\n')
        reply = s.recv(1000)
    assert b'"ok":false' in reply and b"unsupported protocol version" in reply


def test_subscription_pushes_changes(server):
    srv, manager = server
    sub = Subscription(srv.path)
    states = []
    thread = threading.Thread(target=lambda: states.extend(s["status"] for s in sub), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not manager.subscribers and time.monotonic() < deadline:
        time.sleep(0.01)
    LauncherClient(srv.path).sync({"metadata": {"name": "v"}})
    deadline = time.monotonic() + 5
    while len(states) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sub.close()
    thread.join(5)
    assert states[:2] == ["Missing", "Running"]


def test_subscribe_generator_ends_when_launcher_goes(server):
    srv, manager = server
    gen = subscribe(srv.path)
    assert next(gen)["status"] == "Missing"
    # The fake registers the subscriber just after sending the first state: wait for it.
    deadline = time.monotonic() + 5
    while not manager.subscribers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager.subscribers
    for s in list(manager.subscribers):
        s.shutdown(socket.SHUT_RDWR)
    assert list(gen) == []


def test_console_stream(server):
    srv, manager = server
    console = open_console(srv.path, history=True)
    console.sendall(b"hello")
    got = b""
    deadline = time.monotonic() + 5
    while b"HELLO" not in got and time.monotonic() < deadline:
        got += console.recv(100)
    console.close()
    assert got.startswith(b"history:") and b"HELLO" in got


def test_client_reports_missing_launcher(tmp_path):
    with pytest.raises(LauncherError, match="cannot connect"):
        LauncherClient(str(tmp_path / "nothing.sock")).state()


# ------------------------------------------------------------------ the KVM probe's decisions

def test_probe_payload_is_a_valid_multiboot_image():
    magic, flags, checksum, header_addr, load_addr, load_end, bss_end, entry = struct.unpack("<8I", accel.PROBE[:32])
    assert magic == 0x1BADB002 and (magic + flags + checksum) & 0xFFFFFFFF == 0
    assert header_addr == load_addr == 0x100000 and 0x100000 < entry < 0x100000 + len(accel.PROBE)


def test_use_emulation_skips_probe(monkeypatch):
    monkeypatch.setattr(accel, "probe_guest", lambda *a, **k: pytest.fail("probed"))
    assert accel.choose_accel(use_emulation=True)[0] == "tcg"


def test_no_kvm_device_means_tcg(monkeypatch):
    monkeypatch.setattr(accel.os.path, "exists", lambda p: False if p == "/dev/kvm" else True)
    assert accel.choose_accel() == ("tcg", "no /dev/kvm")


@pytest.mark.parametrize("ok,expected", [(True, "kvm"), (False, "tcg")])
def test_kvm_only_when_the_probe_guest_runs(monkeypatch, ok, expected):
    monkeypatch.setattr(accel.os.path, "exists", lambda p: True)
    monkeypatch.setattr(accel.os, "open", lambda *a: 99)
    monkeypatch.setattr(accel.os, "close", lambda fd: None)
    monkeypatch.setattr(accel, "probe_guest", lambda *a, **k: (ok, "detail"))
    assert accel.choose_accel()[0] == expected


def test_streams_relay_bytes_and_refusals_keep_the_connection(server):
    srv, manager = server
    with pytest.raises(LauncherError, match="vnc refused: No graphics devices"):
        open_stream(srv.path, "vnc")
    stream = open_stream(srv.path, "portforward", port=80, protocol="tcp")
    stream.sendall(b"get /")
    assert stream.recv() == b"GET /"
    stream.sock.shutdown(socket.SHUT_WR)  # the client leaves: the guest side ends, then the stream
    stream.settimeout(5)
    assert stream.recv() == b""
    stream.close()
    assert ("portforward", 80, "tcp") in manager.calls
