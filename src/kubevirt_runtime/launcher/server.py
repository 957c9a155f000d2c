"""The command server on launcher.sock (protocol: see protocol.py)."""
from __future__ import annotations

import logging
import os
import select
import socket
import threading

from .domain import DomainManager
from .protocol import VERSION, LineReader, ProtocolError, encode

log = logging.getLogger(__name__)


class CommandServer:
    def __init__(self, path: str, manager: DomainManager):
        self.path = path
        self.manager = manager
        self.sock: socket.socket | None = None

    def start(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            self.sock.bind(self.path)
        finally:
            os.umask(old)
        self.sock.listen(16)
        threading.Thread(target=self._accept, name="cmd-accept", daemon=True).start()

    def stop(self) -> None:
        if self.sock:
            try:
                self.sock.close()
            finally:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass

    def _accept(self):
        while True:
            try:
                conn, _address = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="cmd-conn", daemon=True).start()

    def _serve(self, conn: socket.socket):
        reader = LineReader(conn)
        try:
            hello = reader.read()
            if not isinstance(hello, dict) or hello.get("version") != VERSION:
                conn.sendall(encode({"version": VERSION, "ok": False,
                                     "error": f"unsupported protocol version {hello!r}"}))
                return
            conn.sendall(encode({"version": VERSION, "ok": True}))
            while True:
                request = reader.read()
                if request is None:
                    return
                rid, cmd = request.get("id"), request.get("cmd")
                if cmd == "subscribe":
                    conn.sendall(encode({"id": rid, "ok": True, "result": None}))
                    self.manager.subscribe(conn)
                    try:  # the connection now only carries events; wait for the client to leave
                        conn.settimeout(None)
                        while conn.recv(4096):
                            pass
                    except OSError:
                        pass
                    finally:
                        self.manager.unsubscribe(conn)
                    return
                if cmd == "console":
                    if self.manager.console.serial is None:
                        conn.sendall(encode({"id": rid, "ok": False, "error": "no serial console (yet)"}))
                        continue
                    conn.sendall(encode({"id": rid, "ok": True, "result": None}))
                    self.manager.console.serve(conn, bool(request.get("history")), reader.buf)
                    return
                if cmd in STREAMS:
                    try:
                        target = STREAMS[cmd](self.manager, request)
                    except Exception as exc:  # refused: the caller gets the reason, the connection stays usable
                        conn.sendall(encode({"id": rid, "ok": False, "error": str(exc)}))
                        continue
                    conn.sendall(encode({"id": rid, "ok": True, "result": None}))
                    splice(conn, target, reader.buf)
                    return
                try:
                    result = self._dispatch(cmd, request)
                    reply = {"id": rid, "ok": True, "result": result}
                except Exception as exc:  # every failure goes back to the caller
                    log.warning("command %s failed: %s", cmd, exc)
                    reply = {"id": rid, "ok": False, "error": str(exc)}
                conn.sendall(encode(reply))
        except (OSError, ProtocolError) as exc:
            log.debug("connection ended: %s", exc)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _dispatch(self, cmd, request):
        m = self.manager
        if cmd == "ping":
            return "pong"
        if cmd == "sync":
            return m.sync(request.get("vmi") or {}, request.get("options") or {})
        if cmd == "shutdown":
            return m.shutdown(request.get("gracePeriod"))
        if cmd == "kill":
            return m.kill()
        if cmd == "pause":
            return m.pause()
        if cmd == "unpause":
            return m.unpause()
        if cmd == "state":
            return m.snapshot()
        if cmd == "guestinfo":
            return m.guestinfo()
        if cmd == "prepare_migration_target":
            return m.prepare_migration_target(request.get("vmi") or {}, request.get("options") or {})
        if cmd == "migrate":
            return m.migrate(request.get("options") or {})
        if cmd == "abort_migration":
            return m.abort_migration()
        if cmd in ("softreboot", "reset", "guestosinfo", "userlist", "filesystemlist", "stats"):
            return getattr(m, cmd)()
        if cmd == "attachvolume":
            return m.attach_volume(request.get("disk") or {}, request.get("volume") or {})
        if cmd == "detachvolume":
            return m.detach_volume(request.get("volume") or "")
        if cmd == "snapshotvolumes":
            return m.snapshot_volumes(request.get("id") or "", list(request.get("volumes") or []))
        raise ValueError(f"unknown command {cmd!r}")


STREAMS = {
    "vnc": lambda manager, request: manager.open_vnc(),
    "portforward": lambda manager, request: manager.open_guest_port(int(request.get("port") or 0),
                                                                    request.get("protocol") or "tcp"),
}


def splice(client: socket.socket, target: socket.socket, pending: bytes = b"") -> None:
    """Copies bytes both ways until either side closes (then half-closes the other, so its last bytes
    still arrive), in the client's connection thread."""
    client.settimeout(None)
    target.settimeout(None)
    try:
        if pending:
            target.sendall(pending)
        peers = {client: target, target: client}
        open_ = [client, target]
        while open_:
            readable, _writable, _errored = select.select(open_, [], [])
            for sock in readable:
                data = sock.recv(65536)
                if data:
                    peers[sock].sendall(data)
                    continue
                open_.remove(sock)
                try:
                    peers[sock].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                if sock is target:  # the guest side ended: nothing more can come back
                    return
    except OSError as exc:
        log.debug("stream ended: %s", exc)
    finally:
        target.close()
