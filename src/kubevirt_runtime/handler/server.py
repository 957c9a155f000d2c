"""virt-handler's server for virt-api: HTTPS with mutual TLS.

Only a client presenting a certificate signed by the configured CA (and, when --allowed-client-cn is
given, whose subject CN is in that list) gets through the TLS handshake and the CN check; nothing else
on the network can pause a VM or open its console.

    GET  /healthz
    PUT  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/{pause,unpause,softreboot,reset} -> 200|404|409
    PUT  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/snapshotvolumes  {"id", "volumes"} -> JSON
         (virt-controller's snapshot of a running VM, through virt-api: launcher/capture.py)
    GET  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/{guestosinfo,userlist,filesystemlist} -> JSON
    GET  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/console                  -> WebSocket
    GET  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/vnc[?preserveSession=true] -> WebSocket
    GET  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/portforward/{port}[/tcp]  -> WebSocket

WebSockets carry raw bytes in binary frames (serial console, RFB, the guest port's TCP stream); subprotocol
plain.kubevirt.io as upstream's virt-api speaks it. VNC keeps one session per VMI as upstream: a new
connection closes the one before, unless it asks preserveSession=true, which is then refused with 503.
"""
from __future__ import annotations

import json
import logging
import re
import select
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from .launcher_client import LauncherError, open_console, open_stream

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/v1/namespaces/(?P<ns>[^/]+)/virtualmachineinstances/(?P<name>[^/]+)/(?P<verb>[a-z]+)"
                   r"(?:/(?P<port>[0-9]+)(?:/(?P<protocol>[a-z]+))?)?/?$")
SUBPROTOCOLS = ["plain.kubevirt.io"]
PUT_COMMANDS = ("pause", "unpause", "softreboot", "reset")
GET_COMMANDS = ("guestosinfo", "userlist", "filesystemlist")
EVENTS = {"softreboot": ("SoftRebooted", "VirtualMachineInstance soft rebooted"),
          "reset": ("Reset", "VirtualMachineInstance reset")}


class VNCSessions:
    """One VNC session per VMI: a new one closes the old, unless it asked to preserve it (then it is refused)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active: dict[tuple[str, str], socket.socket] = {}

    def claim(self, key, stream, preserve: bool) -> bool:
        with self.lock:
            old = self.active.get(key)
            if old is not None and preserve:
                return False
            self.active[key] = stream
        if old is not None:
            log.info("VNC of %s/%s: a new connection replaces the current one", *key)
            try:
                old.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return True

    def release(self, key, stream) -> None:
        with self.lock:
            if self.active.get(key) is stream:
                del self.active[key]


def server_ssl_context(cert_file: str, key_file: str, client_ca_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(client_ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _peer_cn(sock) -> str | None:
    cert = sock.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler_cls, ssl_context, allowed_cns, vmi_handler):
        self.ssl_context = ssl_context
        self.allowed_cns = set(allowed_cns or ())
        self.vmi_handler = vmi_handler
        self.vnc_sessions = VNCSessions()
        super().__init__(address, handler_cls)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            request = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake with %s refused: %s", client_address, exc)
            request.close()
            return
        request.settimeout(None)
        self.RequestHandlerClass(request, client_address, self)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.client_address[0], *args)

    def _json(self, code: int, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, message: str):
        self._json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                          "message": message})

    def _route(self):
        match = _PATH.match(self.path.split("?", 1)[0])
        return (match["ns"], match["name"], match["verb"]) if match else (None, None, None)

    def _query(self) -> dict:
        return {k: v[-1] for k, v in parse_qs(self.path.partition("?")[2]).items()}

    def _allowed(self) -> bool:
        cn = _peer_cn(self.request)
        if self.server.allowed_cns and cn not in self.server.allowed_cns:
            log.warning("client %s (CN %r) is not allowed", self.client_address, cn)
            self._error(403, f"client certificate CN {cn!r} is not allowed")
            self.close_connection = True
            return False
        return True

    def do_GET(self):  # noqa: N802 - http.server's naming
        if not self._allowed():
            return
        if self.path.split("?", 1)[0] == "/healthz":
            return self._json(200, {"status": "ok"})
        ns, name, verb = self._route()
        if verb == "console":
            return self._stream(ns, name, "console", lambda path: open_console(path, history=True))
        if verb == "vnc":
            return self._vnc(ns, name)
        if verb == "portforward":
            return self._portforward(ns, name)
        if verb in GET_COMMANDS:
            return self._command(ns, name, verb)
        return self._error(404, f"no such endpoint {self.path}")

    def do_PUT(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self._allowed():
            return
        ns, name, verb = self._route()
        if verb in PUT_COMMANDS:
            return self._command(ns, name, verb)
        if verb == "snapshotvolumes":
            try:
                request = json.loads(body or b"{}")
                args = {"snapshot_id": str(request["id"]), "volumes": list(request["volumes"])}
            except (ValueError, KeyError, TypeError):
                return self._error(400, 'snapshotvolumes needs {"id": ..., "volumes": [...]}')
            return self._command(ns, name, "snapshot_volumes", args)
        return self._error(404, f"no such endpoint {self.path}")

    def _command(self, ns, name, cmd, args=None):
        try:
            result = self.server.vmi_handler.command(ns, name, cmd, **(args or {}))
        except KeyError as exc:
            return self._error(404, str(exc.args[0]))
        except LookupError as exc:
            return self._error(409, str(exc))
        except LauncherError as exc:
            return self._error(409, str(exc))
        if cmd in GET_COMMANDS or args:
            return self._json(200, result or {})
        if cmd in EVENTS:
            self._event(ns, name, *EVENTS[cmd])
        return self._json(200, {"status": "ok"})

    def _event(self, ns, name, reason, message):
        handler = self.server.vmi_handler
        vmi, _socket = handler.launcher_for(ns, name)
        if vmi is not None and getattr(handler, "recorder", None) is not None:
            handler.recorder.event(vmi, "Normal", reason, message)

    # ------------------------------------------------------------------ streams over WebSocket

    def _vnc(self, ns, name):
        preserve = self._query().get("preserveSession", "false").lower() == "true"
        sessions, key = self.server.vnc_sessions, (ns, name)
        claimed = []

        def opener(path):
            stream = open_stream(path, "vnc")
            if not sessions.claim(key, stream.sock, preserve):
                stream.close()
                raise _Refused(503, "Active VNC connection. Request denied.")
            claimed.append(stream.sock)
            return stream

        try:
            return self._stream(ns, name, "vnc", opener)
        finally:
            for sock in claimed:
                sessions.release(key, sock)

    def _portforward(self, ns, name):
        match = _PATH.match(self.path.split("?", 1)[0])
        port, protocol = match["port"], match["protocol"] or "tcp"
        if not port or not 0 < int(port) < 65536:
            return self._error(400, "portforward needs a port between 1 and 65535: .../portforward/{port}[/tcp]")
        if protocol != "tcp":
            return self._error(400, f"protocol {protocol!r} is not supported for port-forwarding: only tcp")
        return self._stream(ns, name, "portforward",
                            lambda path: open_stream(path, "portforward", port=int(port), protocol=protocol))

    def _stream(self, ns, name, what, opener):
        handler = self.server.vmi_handler
        vmi, path = handler.launcher_for(ns, name)
        if vmi is None:
            return self._error(404, f"VMI {ns}/{name} is not on node {handler.node_name}")
        if path is None or (vmi.get("status") or {}).get("phase") != "Running":
            return self._error(409, f"VMI {ns}/{name} is not running")
        protocol = ServerProtocol(subprotocols=SUBPROTOCOLS, select_subprotocol=_pick_subprotocol)
        lines = [f"GET {self.path} HTTP/1.1"] + [f"{k}: {v}" for k, v in self.headers.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        protocol.receive_data(raw)
        events = protocol.events_received()
        request = events[0] if events and isinstance(events[0], Request) else None
        if request is None:
            return self._error(400, "not a WebSocket request")
        try:
            console = opener(path)
        except (LauncherError, _Refused) as exc:
            code = exc.code if isinstance(exc, _Refused) else 409
            message = exc.message if isinstance(exc, _Refused) else f"{what} unavailable: {exc}"
            self.close_connection = True
            return self._error(code, message)
        response = protocol.accept(request)
        protocol.send_response(response)
        self._flush(protocol)
        if response.status_code != 101:
            console.close()
            self.close_connection = True
            return
        log.info("%s of %s/%s opened by %s", what, ns, name, self.client_address[0])
        try:
            self._pump(protocol, console)
        except (OSError, ssl.SSLError) as exc:
            log.debug("%s of %s/%s: %s", what, ns, name, exc)
        finally:
            console.close()
            self.close_connection = True
            log.info("%s of %s/%s closed", what, ns, name)

    def _pump(self, protocol, console):
        """One thread moves bytes both ways (an SSL socket must not be read and written concurrently)."""
        tls = self.connection
        pending = console.recv(65536) if console._pending else b""
        if pending:
            protocol.send_binary(pending)
            self._flush(protocol)
        while True:
            if tls.pending():
                readable = [tls]
            else:
                readable, _writable, _errored = select.select([tls, console.sock], [], [], 30)
            if tls in readable:
                data = tls.recv(65536)
                if not data:
                    return
                protocol.receive_data(data)
                for frame in protocol.events_received():
                    if frame.opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
                        console.sendall(frame.data)
                    elif frame.opcode == Opcode.CLOSE:
                        self._flush(protocol)
                        return
                self._flush(protocol)  # pongs
            if console.sock in readable:
                try:
                    data = console.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    protocol.send_close(1000, "stream closed")
                    self._flush(protocol)
                    return
                protocol.send_binary(data)
                self._flush(protocol)

    def _flush(self, protocol):
        for chunk in protocol.data_to_send():
            if chunk:
                self.wfile.write(chunk)
        self.wfile.flush()


class _Refused(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _pick_subprotocol(protocol, offered):
    for sub in offered:
        if sub in SUBPROTOCOLS:
            return sub
    return None


class ConsoleServer:
    """The mTLS server; `vmi_handler` provides launcher_for(ns, name), command(ns, name, cmd), node_name."""

    def __init__(self, vmi_handler, host: str, port: int, cert_file: str, key_file: str, client_ca_file: str,
                 allowed_cns=()):
        self.server = _Server((host, port), _Handler, server_ssl_context(cert_file, key_file, client_ca_file),
                              allowed_cns, vmi_handler)
        self.thread = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> "ConsoleServer":
        self.thread = threading.Thread(target=self.server.serve_forever, name="handler-https", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
