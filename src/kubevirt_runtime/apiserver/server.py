"""virt-api's HTTPS server: admission webhooks, the aggregated API subresources.kubevirt.io/v1, health, metrics.

    POST /virtualmachines-mutate | /virtualmachineinstances-mutate          mutating webhooks (AdmissionReview v1)
    POST /virtualmachines-validate | /virtualmachineinstances-validate      validating webhooks
    GET  /healthz /readyz /metrics  (and /apis/subresources.kubevirt.io/v1/healthz, as upstream)
    GET  /apis, /apis/subresources.kubevirt.io, /apis/subresources.kubevirt.io/v1      discovery
    POST /migration-mutate-create | /migration-validate | /launcher-eviction-validate   live migration (migration.py)
    PUT  $V1/namespaces/{ns}/virtualmachines/{name}/{start,stop,restart}
    PUT  $V1/namespaces/{ns}/virtualmachines/{name}/migrate   (MigrateOptions; creates a migration, 202)
    PUT  $V1/namespaces/{ns}/{virtualmachines,virtualmachineinstances}/{name}/{addvolume,removevolume}   (202)
    PUT  $V1/namespaces/{ns}/virtualmachineinstances/{name}/{pause,unpause,softreboot,reset}
    PUT  $V1/namespaces/{ns}/virtualmachineinstances/{name}/snapshotvolumes   (virt-controller's VM snapshots)
    GET  $V1/namespaces/{ns}/virtualmachineinstances/{name}/{guestosinfo,userlist,filesystemlist}
    GET  $V1/namespaces/{ns}/virtualmachineinstances/{name}/console   (WebSocket)
    GET  $V1/namespaces/{ns}/virtualmachineinstances/{name}/vnc[?preserveSession=]
    GET  $V1/namespaces/{ns}/{virtualmachineinstances,virtualmachines}/{name}/portforward/{port}[/tcp]
    ($V1 is /apis/subresources.kubevirt.io/v1)

Subresource requests must come from the front-proxy (auth.py) and pass a SubjectAccessReview. The WebSockets
(console, vnc, portforward) are HTTP upgrades relayed to virt-handler: the client's handshake goes to the
handler as it is, the handler's 101 comes back, and from then on virt-api copies bytes both ways (WebSocket
frames pass through unchanged, so the client and the handler speak to each other). A VM's portforward goes
to the VMI of the same name.
"""
from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest

from ..machinery.streams import read_body, read_head, splice
from . import admission
from . import migration as migration_admission
from .auth import Unauthenticated, authenticate
from .subresources import SUBRESOURCE_GROUP, SubresourceError, check_vmi_for, grace_period_from, handler_error
from .volumes import VOLUME_SUBRESOURCES

log = logging.getLogger(__name__)

GROUP_VERSION = f"{SUBRESOURCE_GROUP}/v1"
PREFIX = f"/apis/{SUBRESOURCE_GROUP}/v1"
_SUBRESOURCE = re.compile(r"^" + re.escape(PREFIX) + r"/namespaces/(?P<ns>[^/]+)/(?P<resource>virtualmachines|"
                          r"virtualmachineinstances)/(?P<name>[^/]+)/(?P<sub>[a-z]+)"
                          r"(?P<rest>/[0-9]+(?:/[a-z]+)?)?/?$")
STREAMS = ("console", "vnc", "portforward")  # WebSocket subresources
WITH_PORT = ("portforward",)

# (resource, subresource) -> (HTTP method, verb for authorization)
SUBRESOURCES = {
    ("virtualmachines", "start"): ("PUT", "update"),
    ("virtualmachines", "stop"): ("PUT", "update"),
    ("virtualmachines", "restart"): ("PUT", "update"),
    ("virtualmachines", "migrate"): ("PUT", "update"),
    ("virtualmachines", "addvolume"): ("PUT", "update"),
    ("virtualmachines", "removevolume"): ("PUT", "update"),
    ("virtualmachineinstances", "addvolume"): ("PUT", "update"),
    ("virtualmachineinstances", "removevolume"): ("PUT", "update"),
    # virt-controller's snapshot of a running VM (kubevirt-ops; upstream freezes here and lets CSI snapshot)
    ("virtualmachineinstances", "snapshotvolumes"): ("PUT", "update"),
    ("virtualmachineinstances", "pause"): ("PUT", "update"),
    ("virtualmachineinstances", "unpause"): ("PUT", "update"),
    ("virtualmachineinstances", "softreboot"): ("PUT", "update"),
    ("virtualmachineinstances", "reset"): ("PUT", "update"),
    ("virtualmachineinstances", "guestosinfo"): ("GET", "get"),
    ("virtualmachineinstances", "userlist"): ("GET", "get"),
    ("virtualmachineinstances", "filesystemlist"): ("GET", "get"),
    ("virtualmachineinstances", "console"): ("GET", "get"),
    ("virtualmachineinstances", "vnc"): ("GET", "get"),
    ("virtualmachineinstances", "portforward"): ("GET", "get"),
    ("virtualmachines", "portforward"): ("GET", "get"),
}
JSON_ANSWERS = ("guestosinfo", "userlist", "filesystemlist", "snapshotvolumes")
# A block copy of a running guest's disks takes longer than a pause.
SLOW = {"snapshotvolumes": 300.0}

ADMISSION_TOTAL = Counter("kubevirt_virt_api_admission_reviews_total", "Admission reviews answered by virt-api.",
                          ["webhook", "allowed"])
SUBRESOURCE_TOTAL = Counter("kubevirt_virt_api_subresource_requests_total",
                            "Subresource requests served by virt-api, by resource, subresource and HTTP code.",
                            ["resource", "subresource", "code"])
# labels as upstream's: namespace and vmi
CONSOLE_ACTIVE = Gauge("kubevirt_console_active_connections", "Amount of active Console connections, broken down by "
                       "namespace and vmi name.", ["namespace", "vmi"])
VNC_ACTIVE = Gauge("kubevirt_vnc_active_connections", "Amount of active VNC connections, broken down by namespace "
                   "and vmi name.", ["namespace", "vmi"])
PORTFORWARD_ACTIVE = Gauge("kubevirt_portforward_active_tunnels", "Amount of active portforward tunnels, broken down "
                           "by namespace and vmi name.", ["namespace", "vmi"])
STREAM_GAUGES = {"console": CONSOLE_ACTIVE, "vnc": VNC_ACTIVE, "portforward": PORTFORWARD_ACTIVE}


def api_resource_list() -> dict:
    resources = []
    for (resource, sub), (_method, verb) in SUBRESOURCES.items():
        kind = "VirtualMachine" if resource == "virtualmachines" else "VirtualMachineInstance"
        resources.append({"name": f"{resource}/{sub}", "singularName": "", "namespaced": True, "kind": kind,
                          "verbs": [verb]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": resources}


def api_group() -> dict:
    version = {"groupVersion": GROUP_VERSION, "version": "v1"}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": SUBRESOURCE_GROUP, "versions": [version],
            "preferredVersion": version}


def route(method: str, path: str):
    """("admission", webhook) | ("discovery", body) | ("health", name) | ("subresource", match dict) | None."""
    path = path.split("?", 1)[0]
    if method == "POST" and (path in admission.ROUTES or path in migration_admission.ROUTES):
        return "admission", path
    if method == "GET":
        if path in ("/healthz", "/readyz", "/livez", f"{PREFIX}/healthz"):
            return "health", path
        if path == "/metrics":
            return "metrics", path
        if path in ("/apis", "/apis/"):
            return "discovery", {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group()]}
        if path.rstrip("/") == f"/apis/{SUBRESOURCE_GROUP}":
            return "discovery", api_group()
        if path.rstrip("/") == PREFIX:
            return "discovery", api_resource_list()
        if path == f"{PREFIX}/version":
            return "discovery", {"gitVersion": f"v{_version()}", "platform": "python"}
    match = _SUBRESOURCE.match(path)
    if match:
        found = SUBRESOURCES.get((match["resource"], match["sub"]))
        if found is None or (match["rest"] is not None) != (match["sub"] in WITH_PORT):
            return None
        if found[0] != method:
            return "badmethod", path
        return "subresource", match.groupdict()
    return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("kubevirt-runtime")
    except PackageNotFoundError:
        return "0.0.0"


class VirtAPIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            request = self.app.ssl_context().wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            request.close()
            return
        request.settimeout(300)
        self.RequestHandlerClass(request, client_address, self)


class App:
    """What the handlers need; built by main.py (tests build it with fakes)."""

    def __init__(self, context_provider, requestheader_provider, authorizer, vm_actions, handler_locator,
                 handler_client, ready=lambda: True, admission_context=lambda: None, cluster=None,
                 volume_actions=None):
        self.ssl_context = context_provider          # () -> ssl.SSLContext (swapped when the CA changes)
        self.requestheader = requestheader_provider  # () -> RequestHeaderConfig | None
        self.authorizer = authorizer
        self.vm_actions = vm_actions
        self.handler_locator = handler_locator
        self.handler_client = handler_client
        self.ready = ready
        self.admission_context = admission_context  # () -> api.ValidationContext | None
        self.cluster = cluster  # migration.Cluster: what the migration webhooks and `migrate` read and write
        self.volume_actions = volume_actions  # apiserver.volumes.VolumeActions


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: VirtAPIServer

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.client_address[0], *args)

    # -- plumbing

    def _send(self, code: int, body: bytes, content_type="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj):
        self._send(code, json.dumps(obj).encode())

    def _status(self, err: SubresourceError, details=None):
        self._json(err.code, err.status(details))

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def _dispatch(self, method):
        body = b"" if method == "GET" else self._body()
        found = route(method, self.path)
        try:
            if found is None:
                raise SubresourceError(404, f"the server could not find the requested resource ({self.path})")
            kind, arg = found
            if kind == "admission":
                return self._admission(arg, body)
            if kind == "discovery":
                return self._json(200, arg)
            if kind == "health":
                ok = arg in ("/healthz", "/livez", f"{PREFIX}/healthz") or self.server.app.ready()
                return self._send(200 if ok else 503, b"ok\n" if ok else b"not ready\n", "text/plain")
            if kind == "metrics":
                return self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            if kind == "badmethod":
                raise SubresourceError(405, f"{method} is not supported on {arg}", "MethodNotAllowed")
            return self._subresource(method, arg, body)
        except SubresourceError as err:
            self._status(err)
        except Exception as exc:  # a bug must not kill the connection silently
            log.exception("%s %s failed", method, self.path)
            self._status(SubresourceError(500, f"internal error: {exc}"))

    # -- admission

    def _admission(self, path, body):
        try:
            if path in migration_admission.ROUTES:
                answer = migration_admission.review(path, body, self.server.app.cluster)
            else:
                answer = admission.review(path, body, self.server.app.admission_context())
        except (admission.BadReview, ValueError) as exc:
            raise SubresourceError(400, str(exc)) from exc
        ADMISSION_TOTAL.labels(path.lstrip("/"), str(answer["response"]["allowed"]).lower()).inc()
        if not answer["response"]["allowed"]:
            log.info("rejected by %s: %s", path, answer["response"]["status"]["message"])
        self._json(200, answer)

    # -- subresources

    def _subresource(self, method, match, body=b""):
        ns, resource, name, sub = match["ns"], match["resource"], match["name"], match["sub"]
        code = 200
        try:
            self._authorize(match)
            app = self.server.app
            if resource == "virtualmachines" and sub == "migrate":
                code = 202
                return self._migrate(ns, name, body)
            if sub in VOLUME_SUBRESOURCES:
                if app.volume_actions is None:
                    raise SubresourceError(503, "virt-api serves no volume hotplug")
                app.volume_actions.run(resource, sub, ns, name, body)
                code = 202
                return self._send(202, b"")
            if resource == "virtualmachines" and sub not in STREAMS:
                app.vm_actions.run(sub, ns, name, grace_period=grace_period_from(sub, body))
                return self._send(200, b"")
            vmi = app.handler_locator.vmi(ns, name)  # a VM's portforward: its VMI has the VM's name
            if sub in STREAMS:
                return self._relay(sub, vmi, match.get("rest") or "")
            check_vmi_for(sub, vmi)
            address = app.handler_locator.address_for(vmi)
            status, body = app.handler_client.request(address, method, app.handler_client.path(ns, name, sub),
                                                      body=body, timeout=SLOW.get(sub))
            if status != 200:
                raise handler_error(status, body)
            return self._send(200, body if sub in JSON_ANSWERS else b"")
        except SubresourceError as err:
            code = err.code
            raise
        finally:
            SUBRESOURCE_TOTAL.labels(resource, sub, str(code)).inc()

    def _migrate(self, ns, name, body):
        app = self.server.app
        try:
            options = migration_admission.migrate_options(body)
            migration = migration_admission.migrate(app.cluster, ns, name, options, app.vm_actions.exists(ns, name))
        except migration_admission.MigrateError as exc:
            raise SubresourceError(exc.code, exc.message) from exc
        log.info("migration %s created for VM %s/%s", migration["metadata"].get("name"), ns, name)
        self._send(202, b"")

    def _authorize(self, match):
        config = self.server.app.requestheader()
        if config is None:
            raise SubresourceError(503, "virt-api has not loaded the front-proxy settings yet")
        try:
            user = authenticate(config, self.connection.getpeercert(), self.headers)
        except Unauthenticated as exc:
            raise SubresourceError(401, f"Unauthorized: {exc}", "Unauthorized") from exc
        verb = SUBRESOURCES[(match["resource"], match["sub"])][1]
        attributes = {"namespace": match["ns"], "verb": verb, "group": SUBRESOURCE_GROUP, "version": "v1",
                      "resource": match["resource"], "subresource": match["sub"], "name": match["name"]}
        allowed, reason = self.server.app.authorizer.allowed(user, attributes)
        if not allowed:
            raise SubresourceError(403, f'{match["resource"]}.{SUBRESOURCE_GROUP} "{match["name"]}" is forbidden: '
                                        f'User "{user.name}" cannot {verb} resource "{match["resource"]}/'
                                        f'{match["sub"]}" in API group "{SUBRESOURCE_GROUP}" in the namespace '
                                        f'"{match["ns"]}"' + (f": {reason}" if reason else ""))

    # -- console, vnc, portforward: relay the upgrade to virt-handler, then copy bytes

    def _relay(self, sub, vmi, rest):
        if (self.headers.get("Upgrade") or "").lower() != "websocket":
            raise SubresourceError(400, f"{sub} is a WebSocket: send an Upgrade: websocket request")
        ns, name = vmi["metadata"]["namespace"], vmi["metadata"]["name"]
        check_vmi_for(sub, vmi)
        app = self.server.app
        address = app.handler_locator.address_for(vmi)
        query = self.path.partition("?")[2]
        target = app.handler_client.path(ns, name, sub) + rest + (f"?{query}" if query else "")
        upstream = app.handler_client.connect(address)
        try:
            lines = [f"GET {target} HTTP/1.1", f"Host: {address[0]}:{address[1]}"]
            for key in ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                        "Sec-WebSocket-Protocol"):
                if self.headers.get(key):
                    lines.append(f"{key}: {self.headers[key]}")
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            head, rest = read_head(upstream)
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            code = int(status_line.split()[1]) if len(status_line.split()) > 1 else 502
            if code != 101:
                body = read_body(upstream, head, rest)
                raise handler_error(code, body or status_line.encode())
            self.wfile.write(head + rest)
            self.wfile.flush()
        except BaseException:
            upstream.close()
            raise
        self.close_connection = True
        gauge = STREAM_GAUGES[sub].labels(ns, name)
        gauge.inc()
        log.info("%s of %s/%s relayed to virt-handler %s:%s", sub, ns, name, *address)
        try:
            splice(self.connection, upstream)
        finally:
            gauge.dec()
            upstream.close()
            log.info("%s of %s/%s closed", sub, ns, name)


def serve(app: App, host: str, port: int) -> tuple[VirtAPIServer, threading.Thread]:
    server = VirtAPIServer((host, port), app)
    thread = threading.Thread(target=server.serve_forever, name="virt-api-https", daemon=True)
    thread.start()
    return server, thread
