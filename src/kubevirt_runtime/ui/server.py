"""The web console's server: the built frontend (static/) and a proxy to the kube-apiserver that acts with the
user's own credentials, so everything the console does is checked by RBAC as that user.

Two ways to run it:
- `virtctl ui` (serve_local): on 127.0.0.1 with the kubeconfig's credentials. The printed address carries a
  random token; the first visit trades it for an HttpOnly, SameSite=Strict cookie. Requests with another
  Host header (DNS rebinding), WebSockets from another Origin and writes without the console's own header
  (cross-site forms) are refused, so other web pages and local users cannot act as you.
- in the cluster (`python -m kubevirt_runtime.ui.server --in-cluster`): a login page takes the user's bearer
  token, checks it with a SelfSubjectReview and keeps it in a server-side session; every API request carries
  that token. The pod mounts no ServiceAccount token: it has no rights of its own to lend.

    GET  /                      the single-page app (static/index.html, app.js, app.css)
    GET  /ui/config             {"mode", "user", "namespace", "authenticated", "prometheus"}
    POST /ui/login {"token"}    (in-cluster) -> session cookie;   POST /ui/logout
    *    /k8s/<path>            the kube-apiserver's /<path> (watches stream; WebSockets are relayed)
"""
from __future__ import annotations

import argparse
import hmac
import http.client
import json
import logging
import mimetypes
import os
import secrets
import socket
import ssl
import sys
import threading
import time
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kubevirt_runtime.machinery.streams import read_head, splice

log = logging.getLogger("virt-ui")

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "kvo-ui-session"
WRITE_HEADER = "X-KubeVirt-UI"  # sent by the app on every write; a cross-site form cannot set it
SESSION_SECONDS = 8 * 3600
# NAMESPACE/SERVICE:PORT of Prometheus, reached through the API server's service proxy as the user
DEFAULT_PROMETHEUS = "monitoring/prometheus:9090"
FORWARDED_HEADERS = ("Content-Type", "Accept", "Content-Length")
HOP_HEADERS = ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol",
               "Sec-WebSocket-Extensions")
CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
       "style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


class Upstream:
    """Where the kube-apiserver is and how to reach it: (host, port), a TLS context, and a function giving the
    credential headers for a request (the session's, or the kubeconfig's)."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None, server_hostname: str | None = None):
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base = parts.path.rstrip("/")
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or self.host

    def connect_raw(self, timeout: float = 30):
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        if self.scheme == "https":
            sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        return sock

    def connection(self, timeout: float | None = 60):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, context=self.ssl_context, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


class LocalAuth:
    """`virtctl ui`: one secret per run; the kubeconfig's credentials for every request."""

    mode = "local"

    def __init__(self, headers_provider, user: str | None, namespace: str):
        self.secret = secrets.token_urlsafe(24)
        self.headers_provider = headers_provider
        self.user = user
        self.namespace = namespace

    def session(self, cookie: str | None):
        return {"user": self.user} if cookie and hmac.compare_digest(cookie, self.secret) else None

    def credentials(self, session) -> dict:
        return self.headers_provider()


class TokenAuth:
    """In the cluster: sessions made from a bearer token the user pasted, kept in memory only."""

    mode = "cluster"

    def __init__(self, upstream: Upstream, namespace: str = "default"):
        self.upstream = upstream
        self.namespace = namespace
        self.sessions: dict[str, dict] = {}
        self.lock = threading.Lock()

    def session(self, cookie: str | None):
        with self.lock:
            session = self.sessions.get(cookie or "")
            if session and session["expires"] < time.time():
                del self.sessions[cookie]
                return None
            return session

    def credentials(self, session) -> dict:
        return {"Authorization": f"Bearer {session['token']}"}

    def login(self, token: str) -> tuple[str, str]:
        """(session id, user name); raises PermissionError with the API's reason when the token is refused."""
        token = token.strip()
        if not token or any(c in token for c in "\r\n "):
            raise PermissionError("paste a bearer token (one line, no spaces)")
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        conn = self.upstream.connection(timeout=15)
        try:
            conn.request("POST", self.upstream.base + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                         body=json.dumps(review), headers={"Authorization": f"Bearer {token}",
                                                           "Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status not in (200, 201):
            raise PermissionError(_status_message(body, resp.status))
        user = json.loads(body).get("status", {}).get("userInfo", {}).get("username") or "unknown"
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.sessions[sid] = {"token": token, "user": user, "expires": time.time() + SESSION_SECONDS}
        return sid, user

    def logout(self, cookie: str | None) -> None:
        with self.lock:
            self.sessions.pop(cookie or "", None)


def _status_message(body: bytes, code: int) -> str:
    try:
        return json.loads(body).get("message") or f"HTTP {code}"
    except ValueError:
        return body.decode(errors="replace").strip() or f"HTTP {code}"


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, upstream: Upstream, auth, allowed_hosts=None, tls_context=None,
                 prometheus: str | None = DEFAULT_PROMETHEUS):
        self.upstream = upstream
        self.auth = auth
        self.prometheus = prometheus
        self.allowed_hosts = set(allowed_hosts or ())
        self.tls_context = tls_context
        super().__init__(address, _Handler)
        if not self.allowed_hosts and auth.mode == "local":
            port = self.server_address[1]
            self.allowed_hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}

    def finish_request(self, request, client_address):
        if self.tls_context is not None:
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
        self.RequestHandlerClass(request, client_address, self)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        scheme = "https" if self.tls_context else "http"
        return f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ConsoleServer

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.client_address[0], *args)

    # -- plumbing

    def _send(self, code: int, body: bytes, content_type="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj, headers=()):
        self._send(code, json.dumps(obj).encode(), headers=headers)

    def _error(self, code: int, message: str):
        self._json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                          "message": message})

    def _cookie(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, _eq, value = part.strip().partition("=")
            if key == COOKIE:
                return value
        return None

    def _set_cookie(self, value: str, max_age: int = SESSION_SECONDS) -> tuple[str, str]:
        secure = "; Secure" if self.server.tls_context else ""
        return "Set-Cookie", f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _host_ok(self) -> bool:
        return not self.server.allowed_hosts or self.headers.get("Host") in self.server.allowed_hosts

    def _origin_ok(self) -> bool:
        origin = self.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc == self.headers.get("Host")

    # -- dispatch

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_HEAD(self):  # noqa: N802
        self._dispatch()

    def do_POST(self):  # noqa: N802
        self._dispatch()

    def do_PUT(self):  # noqa: N802
        self._dispatch()

    def do_PATCH(self):  # noqa: N802
        self._dispatch()

    def do_DELETE(self):  # noqa: N802
        self._dispatch()

    def _dispatch(self):
        try:
            if not self._host_ok():
                return self._error(421, "this console answers only on the address virtctl ui printed")
            path = urlsplit(self.path).path
            auth = self.server.auth
            session = auth.session(self._cookie())
            if path == "/" and auth.mode == "local" and "token" in parse_qs(urlsplit(self.path).query):
                return self._trade_token(parse_qs(urlsplit(self.path).query)["token"][-1])
            if path.startswith("/ui/"):
                return self._ui(path, session)
            if path.startswith("/k8s/"):
                if session is None:
                    return self._error(401, "not signed in: open the address virtctl ui printed, or sign in")
                return self._proxy(session)
            if self.command not in ("GET", "HEAD"):
                return self._error(405, f"{self.command} is not supported here")
            return self._static(path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _trade_token(self, token: str):
        if not hmac.compare_digest(token, self.server.auth.secret):
            return self._error(403, "this link's token is not valid (virtctl ui prints a new one each run)")
        self.send_response(303)
        self.send_header("Location", "/")
        self.send_header(*self._set_cookie(token))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _ui(self, path, session):
        auth = self.server.auth
        if path == "/ui/config" and self.command == "GET":
            return self._json(200, {"mode": auth.mode, "authenticated": session is not None,
                                    "user": (session or {}).get("user"), "namespace": auth.namespace,
                                    "prometheus": self.server.prometheus})
        if self.command != "POST" or self.headers.get(WRITE_HEADER) is None:
            return self._error(405, f"{self.command} {path} is not supported")
        if path == "/ui/login" and auth.mode == "cluster":
            try:
                token = json.loads(self._body() or b"{}").get("token") or ""
                sid, user = auth.login(token)
            except (ValueError, AttributeError):
                return self._error(400, "send JSON {\"token\": \"...\"}")
            except PermissionError as exc:
                return self._error(401, f"the API server refused this token: {exc}")
            except OSError as exc:
                return self._error(502, f"cannot reach the API server: {exc}")
            return self._json(200, {"user": user}, headers=[self._set_cookie(sid)])
        if path == "/ui/logout" and auth.mode == "cluster":
            auth.logout(self._cookie())
            return self._json(200, {}, headers=[self._set_cookie("", 0)])
        return self._error(404, f"no such endpoint {path}")

    def _static(self, path):
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        target = (STATIC / name).resolve()
        if STATIC not in target.parents or not target.is_file():
            if not (STATIC / "index.html").is_file():
                return self._error(500, "the web console was not built (make ui, or pip install the wheel)")
            return self._error(404, f"{path} not found")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        headers = [("Content-Security-Policy", CSP), ("Referrer-Policy", "no-referrer"), ("Vary", "Accept-Encoding")]
        gz = target.with_name(target.name + ".gz")
        if gz.is_file() and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            return self._send(200, gz.read_bytes(), ctype, headers + [("Content-Encoding", "gzip")])
        self._send(200, target.read_bytes(), ctype, headers)

    # -- the API proxy

    def _proxy(self, session):
        upstream, auth = self.server.upstream, self.server.auth
        target = upstream.base + self.path[len("/k8s"):]
        credentials = auth.credentials(session)
        if (self.headers.get("Upgrade") or "").lower() == "websocket":
            if not self._origin_ok():
                return self._error(403, "WebSocket from another origin refused")
            return self._relay(target, credentials)
        if self.command not in ("GET", "HEAD") and self.headers.get(WRITE_HEADER) is None:
            return self._error(403, f"writes need the {WRITE_HEADER} header (cross-site requests are refused)")
        body = self._body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else None
        headers = {k: self.headers[k] for k in FORWARDED_HEADERS if self.headers.get(k) and k != "Content-Length"}
        headers.update(credentials)
        watch = "watch=1" in self.path or "watch=true" in self.path
        conn = upstream.connection(timeout=None if watch else 60)
        try:
            conn.request(self.command, target, body=body, headers=headers)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            return self._error(502, f"cannot reach the Kubernetes API server: {exc}")
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.getheader("Content-Type") or "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                chunk = resp.read1(65536) if watch else resp.read(65536)
                if not chunk:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()

    def _relay(self, target, credentials):
        upstream = self.server.upstream
        try:
            remote = upstream.connect_raw()
        except OSError as exc:
            return self._error(502, f"cannot reach the Kubernetes API server: {exc}")
        try:
            lines = [f"GET {target} HTTP/1.1", f"Host: {upstream.host}:{upstream.port}"]
            lines += [f"{k}: {self.headers[k]}" for k in HOP_HEADERS if self.headers.get(k)]
            lines += [f"{k}: {v}" for k, v in credentials.items()]
            remote.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            head, rest = read_head(remote)
            if not head:
                raise OSError("the API server closed the connection")
            self.wfile.write(head + rest)
            self.wfile.flush()
            self.close_connection = True
            if b" 101 " in head.split(b"\r\n", 1)[0]:
                splice(self.connection, remote)
        except OSError as exc:
            log.info("relay of %s ended: %s", target, exc)
        finally:
            remote.close()


# ---------------------------------------------------------------- running it

def kubeconfig_upstream(api_client) -> tuple[Upstream, callable]:
    """Upstream + credential headers from a kubernetes ApiClient (what virtctl loaded from the kubeconfig)."""
    from kubevirt_runtime.client.subresources import Subresources
    helper = Subresources(api_client)
    return Upstream(api_client.configuration.host, helper.ssl_context()), helper.auth_headers


def whoami(upstream: Upstream, headers: dict) -> str | None:
    """The user name the API server sees for these credentials (SelfSubjectReview), None if it cannot tell."""
    conn = upstream.connection(timeout=10)
    try:
        conn.request("POST", upstream.base + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                     body=json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
                     headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status in (200, 201):
            return json.loads(body)["status"]["userInfo"].get("username")
    except (OSError, ValueError, KeyError):
        pass
    finally:
        conn.close()
    return None


def serve_local(api_client, address: str = "127.0.0.1", port: int = 0, open_browser: bool = True,
                namespace: str = "default", prometheus: str | None = DEFAULT_PROMETHEUS) -> int:
    """`virtctl ui`: serve until interrupted; prints the address (with its token) first."""
    upstream, headers = kubeconfig_upstream(api_client)
    auth = LocalAuth(headers, whoami(upstream, headers()), namespace)
    server = ConsoleServer((address, port), upstream, auth, prometheus=prometheus)
    url = f"{server.url}?token={auth.secret}"
    print(f"The KubeVirt web console is at {url}", flush=True)
    print("It acts as you (your kubeconfig's credentials); stop it with Ctrl+C.", flush=True)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def in_cluster_upstream(ca_file: str) -> Upstream:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise SystemExit("not in a cluster: KUBERNETES_SERVICE_HOST is not set (use --api-server)")
    ctx = ssl.create_default_context(cafile=ca_file)
    return Upstream(f"https://{host}:{port}", ctx, server_hostname="kubernetes.default.svc")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="virt-ui", description="The KubeVirt web console, in the cluster: users "
                                "sign in with their own bearer token.")
    p.add_argument("--address", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--api-server", default=None, help="API server URL (default: the in-cluster service)")
    p.add_argument("--api-ca", default="/etc/kube-root-ca/ca.crt",
                   help="CA of the API server (the kube-root-ca.crt ConfigMap, mounted)")
    p.add_argument("--tls-cert", default=os.environ.get("UI_TLS_CERT"))
    p.add_argument("--tls-key", default=os.environ.get("UI_TLS_KEY"))
    p.add_argument("--namespace", default="default", help="namespace the console opens with")
    p.add_argument("--prometheus", default=DEFAULT_PROMETHEUS, help="NAMESPACE/SERVICE:PORT of Prometheus")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s virt-ui %(levelname)s %(message)s")
    if args.api_server:
        upstream = Upstream(args.api_server, ssl.create_default_context(cafile=args.api_ca))
    else:
        upstream = in_cluster_upstream(args.api_ca)
    tls = None
    if args.tls_cert and args.tls_key:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    else:
        log.warning("no --tls-cert/--tls-key: tokens cross the network in clear text; put TLS in front")
    server = ConsoleServer((args.address, args.port), upstream, TokenAuth(upstream, args.namespace),
                           tls_context=tls, prometheus=args.prometheus)
    log.info("serving on %s", server.url)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
