"""The migration proxy: carries a live migration's streams from the source launcher to the target launcher,
between the two nodes' virt-handlers, over mutual TLS (as upstream's pkg/virt-handler/migration-proxy).

A launcher's migration sockets live in its private directory (launcher/migration.py):
``<private>/libvirt/run/kubevirt-migration/{libvirt,memory,disks}.sock``, and its libvirtd's own socket is
``<private>/libvirt/run/libvirt-sock``.

- Target side (``TargetServer``, one TLS listener per virt-handler, --migration-port): a connection starts
  with one line of JSON, ``{"migrationUid": ..., "channel": "libvirt"|"memory"|"disks"}``. Only a client
  whose certificate the handlers' CA signed (and whose CN is allowed) gets that far, and only a migration
  this handler registered as its target is served: the line is answered ``ok`` and the connection joined to
  the target launcher's socket for that channel (libvirt: its libvirtd; memory and disks: what its QEMU
  listens on), else ``refused: <why>`` and closed.
- Source side (``SourceProxy``, one per migration): unix listeners on the three sockets in the source
  launcher's directory; each connection the source's libvirt or QEMU opens there is carried to the target
  handler's address and port with that header.

Unix socket paths under the kubelet's pod directories exceed the 108 bytes an address may have, so sockets
are bound and connected through an open directory (/proc/self/fd/N/name).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
from pathlib import Path

from kubevirt_runtime.api.podpaths import LIBVIRT_RUNTIME_SUBPATH
from kubevirt_runtime.machinery.streams import splice

log = logging.getLogger(__name__)

MIGRATION_SUBDIR = f"{LIBVIRT_RUNTIME_SUBPATH}/kubevirt-migration"
LIBVIRT_SOCKET = f"{LIBVIRT_RUNTIME_SUBPATH}/libvirt-sock"
CHANNELS = {"libvirt": "libvirt.sock", "memory": "memory.sock", "disks": "disks.sock"}
HEADER_LIMIT = 4096
CONNECT_TIMEOUT = 10.0


class ProxyError(RuntimeError):
    pass


class ShortPath:
    """A socket path usable whatever its length: the directory stays open, the address goes through it."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
        self.path = f"/proc/self/fd/{self.fd}/{path.name}"

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def connect_unix(path: str | Path, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    short = ShortPath(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(short.path)
    except OSError:
        sock.close()
        raise
    finally:
        short.close()
    sock.settimeout(None)
    return sock


def _read_line(sock) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk or len(data) > HEADER_LIMIT:
            break
        data += chunk
    return data.strip()


def server_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """The handlers' certificate name no address (pod IPs change), so the peer is checked by CA and CN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_cn(sock: ssl.SSLSocket) -> str | None:
    cert = sock.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class TargetServer:
    """The TLS listener of a virt-handler for the migrations it is the target of."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, allowed_cns=("virt-handler",)):
        self.context = context
        self.allowed_cns = tuple(allowed_cns)
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._targets: dict[str, Path] = {}  # migration uid -> the target launcher's private directory

    def register(self, migration_uid: str, private_dir: str | Path) -> None:
        with self._lock:
            self._targets[migration_uid] = Path(private_dir)

    def unregister(self, migration_uid: str) -> None:
        with self._lock:
            self._targets.pop(migration_uid, None)

    def registered(self, migration_uid: str) -> bool:
        with self._lock:
            return migration_uid in self._targets

    def registered_uids(self) -> frozenset:
        with self._lock:
            return frozenset(self._targets)

    def start(self) -> "TargetServer":
        threading.Thread(target=self._accept, name="migration-target-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while True:
            try:
                conn, address = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, address), name="migration-target", daemon=True).start()

    def _target_socket(self, header: dict) -> Path:
        channel = header.get("channel")
        if channel not in CHANNELS:
            raise ProxyError(f"unknown channel {channel!r}")
        with self._lock:
            private = self._targets.get(str(header.get("migrationUid")))
        if private is None:
            raise ProxyError(f"this node is not the target of migration {header.get('migrationUid')!r}")
        if channel == "libvirt":
            return private / LIBVIRT_SOCKET
        return private / MIGRATION_SUBDIR / CHANNELS[channel]

    def _serve(self, conn: socket.socket, address):
        conn.settimeout(CONNECT_TIMEOUT)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.warning("migration connection from %s refused: %s", address[0], exc)
            conn.close()
            return
        try:
            line = _read_line(tls)  # first, so that the client reads the answer rather than a reset
            cn = peer_cn(tls)
            if self.allowed_cns and cn not in self.allowed_cns:
                raise ProxyError(f"client certificate CN {cn!r} is not allowed")
            try:
                header = json.loads(line or b"{}")
            except ValueError:
                raise ProxyError("bad header") from None
            target = connect_unix(self._target_socket(header))
        except (ProxyError, OSError) as exc:
            log.warning("migration connection from %s refused: %s", address[0], exc)
            try:
                tls.sendall(f"refused: {exc}\n".encode())
            except OSError:
                pass
            tls.close()
            return
        tls.sendall(b"ok\n")
        log.debug("migration %s: %s channel from %s", header.get("migrationUid"), header.get("channel"), address[0])
        try:
            splice(tls, target)
        finally:
            target.close()
            tls.close()


class SourceProxy:
    """The unix listeners in the source launcher's directory for one migration."""

    def __init__(self, migration_uid: str, private_dir: str | Path, target_host: str, target_port: int,
                 context: ssl.SSLContext):
        self.migration_uid = migration_uid
        self.directory = Path(private_dir) / MIGRATION_SUBDIR
        self.target = (target_host, int(target_port))
        self.context = context
        self._listeners: list[tuple[socket.socket, ShortPath]] = []
        self._stopped = False

    def start(self) -> "SourceProxy":
        self.directory.mkdir(parents=True, exist_ok=True)
        for channel, name in CHANNELS.items():
            short = ShortPath(self.directory / name)
            try:
                os.unlink(short.path)
            except FileNotFoundError:
                pass
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(short.path)
            sock.listen(8)
            self._listeners.append((sock, short))
            threading.Thread(target=self._accept, args=(sock, channel), name=f"migration-source-{channel}",
                             daemon=True).start()
        return self

    def check_target(self) -> None:
        """Raises ProxyError unless the target handler answers for this migration (a dry handshake)."""
        self._open("libvirt").close()

    def _open(self, channel: str) -> ssl.SSLSocket:
        raw = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
        try:
            tls = self.context.wrap_socket(raw)
            tls.sendall(json.dumps({"migrationUid": self.migration_uid, "channel": channel}).encode() + b"\n")
            answer = _read_line(tls)
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            raise ProxyError(f"target {self.target[0]}:{self.target[1]}: {exc}") from None
        if answer != b"ok":
            tls.close()
            raise ProxyError(f"target {self.target[0]}:{self.target[1]} {answer.decode(errors='replace')}")
        tls.settimeout(None)
        return tls

    def _accept(self, sock: socket.socket, channel: str):
        while True:
            try:
                conn, _address = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(conn, channel), name=f"migration-{channel}",
                             daemon=True).start()

    def _carry(self, conn: socket.socket, channel: str):
        try:
            remote = self._open(channel)
        except (ProxyError, OSError) as exc:
            log.warning("migration %s: %s channel: %s", self.migration_uid, channel, exc)
            conn.close()
            return
        try:
            splice(conn, remote)
        finally:
            conn.close()
            remote.close()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for sock, short in self._listeners:
            try:
                sock.close()
                os.unlink(short.path)
            except OSError:
                pass
            short.close()
