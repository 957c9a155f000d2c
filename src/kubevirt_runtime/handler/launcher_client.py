"""virt-handler's client of the launcher command channel (protocol version 1: newline-delimited JSON
over launcher.sock; the launcher's side documents it in kubevirt_runtime/launcher/protocol.py).

Kept free of launcher imports: components depend on the wire format, not on each other's code.
"""
from __future__ import annotations

import itertools
import json
import socket
import struct
import threading

VERSION = 1


class LauncherError(Exception):
    pass


class _Conn:
    def __init__(self, path: str, timeout: float):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise LauncherError(f"cannot connect to {path}: {exc}") from None
        self.buf = b""
        self.send({"version": VERSION})
        hello = self.recv()
        if not hello or not hello.get("ok"):
            self.close()
            raise LauncherError(f"handshake refused: {hello}")

    def send(self, obj):
        self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class LauncherClient:
    """One request at a time over one connection (reconnects after an error)."""

    # A first sync under TCG on a loaded node (libvirt capability probe + domain start) has been
    # seen to take over a minute.
    def __init__(self, socket_path: str, timeout: float = 120.0):
        self.path = socket_path
        self.timeout = timeout
        self._conn: _Conn | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def call(self, cmd: str, **args):
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = _Conn(self.path, self.timeout)
                rid = next(self._ids)
                try:
                    self._conn.send({"id": rid, "cmd": cmd, **args})
                    reply = self._conn.recv()
                except OSError as exc:
                    reply, error = None, exc
                else:
                    error = None
                if reply is None:
                    self._conn.close()
                    self._conn = None
                    if attempt == 2 or cmd in ("sync",):
                        raise LauncherError(f"{cmd}: connection lost ({error or 'closed'})")
                    continue
                if not reply.get("ok"):
                    raise LauncherError(reply.get("error") or "failed")
                return reply.get("result")

    def close(self):
        with self._lock:
            if self._conn:
                self._conn.close()
                self._conn = None

    # Convenience wrappers
    def sync(self, vmi: dict, options: dict | None = None):
        return self.call("sync", vmi=vmi, options=options or {})

    def shutdown(self, grace_period: int | None = None):
        return self.call("shutdown", **({"gracePeriod": grace_period} if grace_period is not None else {}))

    def kill(self):
        return self.call("kill")

    def pause(self):
        return self.call("pause")

    def unpause(self):
        return self.call("unpause")

    def state(self):
        return self.call("state")

    def guestinfo(self):
        return self.call("guestinfo")

    def prepare_migration_target(self, vmi: dict, options: dict | None = None):
        return self.call("prepare_migration_target", vmi=vmi, options=options or {})

    def migrate(self, options: dict):
        return self.call("migrate", options=options)

    def abort_migration(self):
        return self.call("abort_migration")

    def attach_volume(self, disk: dict, volume: dict):
        return self.call("attachvolume", disk=disk, volume=volume)

    def detach_volume(self, volume: str):
        return self.call("detachvolume", volume=volume)

    def snapshot_volumes(self, snapshot_id: str, volumes: list):
        return self.call("snapshotvolumes", id=snapshot_id, volumes=volumes)


class Subscription:
    """Domain states pushed by the launcher; iterate to receive them, close() from any thread."""

    def __init__(self, socket_path: str, timeout: float = 10.0):
        self.conn = _Conn(socket_path, timeout)
        self.conn.send({"id": 1, "cmd": "subscribe"})
        reply = self.conn.recv()
        if not reply or not reply.get("ok"):
            self.conn.close()
            raise LauncherError(f"subscribe refused: {reply}")
        self.conn.sock.settimeout(None)

    def __iter__(self):
        try:
            while True:
                try:
                    message = self.conn.recv()
                except (OSError, ValueError):
                    return
                if message is None:
                    return
                if message.get("event") == "domain":
                    yield message["domain"]
        finally:
            self.conn.close()

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def peer_pid(socket_path: str, timeout: float = 10.0) -> int:
    """The pid of the launcher serving `socket_path`, as this process's pid namespace numbers it (0 when the
    launcher's pid is not visible here: virt-handler needs the host's pid namespace)."""
    conn = _Conn(socket_path, timeout)
    try:
        creds = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    finally:
        conn.close()
    return struct.unpack("3i", creds)[0]


def subscribe(socket_path: str, timeout: float = 10.0):
    """Yields domain states as the launcher pushes them; ends when the launcher goes away."""
    yield from Subscription(socket_path, timeout)


class Console:
    """A raw stream from the launcher (serial console, VNC, a guest port): bytes both ways."""

    def __init__(self, sock: socket.socket, pending: bytes):
        self.sock, self._pending = sock, pending

    def recv(self, size: int = 65536) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_stream(socket_path: str, cmd: str, timeout: float = 10.0, **args) -> Console:
    """A raw byte stream from the launcher: console, vnc or portforward (port=, protocol=)."""
    conn = _Conn(socket_path, timeout)
    try:
        conn.send({"id": 1, "cmd": cmd, **args})
        reply = conn.recv()
    except OSError as exc:
        conn.close()
        raise LauncherError(f"{cmd}: {exc}") from None
    if not reply or not reply.get("ok"):
        conn.close()
        raise LauncherError(f"{cmd} refused: {reply and reply.get('error')}")
    conn.sock.settimeout(None)
    return Console(conn.sock, conn.buf)


def open_console(socket_path: str, history: bool = False, timeout: float = 10.0) -> Console:
    return open_stream(socket_path, "console", timeout, history=history)
