"""virt-handler's server for virt-api: HTTPS with mutual TLS.

Only a client presenting a certificate signed by the configured CA (and, when --allowed-client-cn is
given, whose subject CN is in that list) gets through the TLS handshake and the CN check; nothing else
on the network can pause a VM or open its console.

    GET  /healthz
    PUT  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/pause      -> 200 | 404 | 409
    PUT  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/unpause    -> 200 | 404 | 409
    GET  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/guestosinfo -> JSON
    GET  /v1/namespaces/{namespace}/virtualmachineinstances/{name}/console    -> WebSocket (binary frames:
         the raw serial console; subprotocol plain.kubevirt.io as upstream's virt-api speaks it)
"""
from __future__ import annotations

import json
import logging
import re
import select
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from .launcher_client import LauncherError, open_console

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/v1/namespaces/(?P<ns>[^/]+)/virtualmachineinstances/(?P<name>[^/]+)/(?P<verb>[a-z]+)/?$")
SUBPROTOCOLS = ["plain.kubevirt.io"]


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
            return self._console(ns, name)
        if verb == "guestosinfo":
            return self._command(ns, name, "guestinfo")
        return self._error(404, f"no such endpoint {self.path}")

    def do_PUT(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if not self._allowed():
            return
        ns, name, verb = self._route()
        if verb in ("pause", "unpause"):
            return self._command(ns, name, verb)
        return self._error(404, f"no such endpoint {self.path}")

    def _command(self, ns, name, cmd):
        try:
            result = self.server.vmi_handler.command(ns, name, cmd)
        except KeyError as exc:
            return self._error(404, str(exc.args[0]))
        except LookupError as exc:
            return self._error(409, str(exc))
        except LauncherError as exc:
            return self._error(409, str(exc))
        if cmd == "guestinfo":
            return self._json(200, result or {})
        return self._json(200, {"status": "ok"})

    # ------------------------------------------------------------------ console over WebSocket

    def _console(self, ns, name):
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
            console = open_console(path, history=True)
        except LauncherError as exc:
            response = protocol.reject(409, f"console unavailable: {exc}\n")
            protocol.send_response(response)
            self._flush(protocol)
            self.close_connection = True
            return
        response = protocol.accept(request)
        protocol.send_response(response)
        self._flush(protocol)
        if response.status_code != 101:
            console.close()
            self.close_connection = True
            return
        log.info("console of %s/%s opened by %s", ns, name, self.client_address[0])
        try:
            self._pump(protocol, console)
        except (OSError, ssl.SSLError) as exc:
            log.debug("console of %s/%s: %s", ns, name, exc)
        finally:
            console.close()
            self.close_connection = True
            log.info("console of %s/%s closed", ns, name)

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
                readable, _, _ = select.select([tls, console.sock], [], [], 30)
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
                data = console.recv(65536)
                if not data:
                    protocol.send_close(1000, "console closed")
                    self._flush(protocol)
                    return
                protocol.send_binary(data)
                self._flush(protocol)

    def _flush(self, protocol):
        for chunk in protocol.data_to_send():
            if chunk:
                self.wfile.write(chunk)
        self.wfile.flush()


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
