"""The web console's server against a fake kube-apiserver on loopback: who may use it (token link, cookie,
Host and Origin checks, write header), that requests carry the user's credentials and nothing of the
browser's, that watches stream and WebSockets are relayed, and the in-cluster token sign-in."""
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubevirt_runtime.ui import server as ui


class FakeAPI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []
    tokens = {"good-token": "alice"}

    def log_message(self, *args):
        pass

    def _reply(self, code, obj, chunks=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        if chunks:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps(obj).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        FakeAPI.seen.append((self.command, self.path, dict(self.headers)))
        if "watch=1" in self.path:
            events = [json.dumps({"type": "ADDED", "object": {"metadata": {"name": f"vm{i}"}}}).encode() + b"\n"
                      for i in range(3)]
            return self._reply(200, None, chunks=events)
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", "fake")
            self.end_headers()
            self.wfile.flush()
            data = self.connection.recv(100)
            self.connection.sendall(data.upper())
            self.close_connection = True
            return
        self._reply(200, {"kind": "VirtualMachineList", "items": []})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        FakeAPI.seen.append((self.command, self.path, dict(self.headers)))
        if self.path.endswith("/selfsubjectreviews"):
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if token not in self.tokens:
                return self._reply(401, {"kind": "Status", "message": "Unauthorized", "code": 401})
            return self._reply(201, {"status": {"userInfo": {"username": self.tokens[token]}}})
        self._reply(201, json.loads(body or b"{}"))


@pytest.fixture
def api():
    FakeAPI.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ui.Upstream(f"http://127.0.0.1:{server.server_address[1]}", None)
    server.shutdown()
    server.server_close()


def start(console):
    threading.Thread(target=console.serve_forever, daemon=True).start()
    return console


@pytest.fixture
def local(api, tmp_path, monkeypatch):
    monkeypatch.setattr(ui, "STATIC", tmp_path)
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    auth = ui.LocalAuth(lambda: {"Authorization": "Bearer kubeconfig-token"}, "admin", "default")
    console = start(ui.ConsoleServer(("127.0.0.1", 0), api, auth))
    yield console, auth
    console.shutdown()
    console.server_close()


def call(console, method, path, headers=None, body=None, host=None):
    port = console.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host or f"127.0.0.1:{port}", **(headers or {})}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def cookie_of(resp):
    return resp.getheader("Set-Cookie").split(";", 1)[0]


def test_the_token_link_gives_a_strict_httponly_cookie(local):
    console, auth = local
    resp, _ = call(console, "GET", "/?token=wrong")
    assert resp.status == 403
    resp, _ = call(console, "GET", f"/?token={auth.secret}")
    assert resp.status == 303 and resp.getheader("Location") == "/"
    assert "HttpOnly" in resp.getheader("Set-Cookie") and "SameSite=Strict" in resp.getheader("Set-Cookie")
    resp, data = call(console, "GET", "/ui/config", {"Cookie": cookie_of(resp)})
    assert json.loads(data) == {"mode": "local", "authenticated": True, "user": "admin", "namespace": "default",
                                "prometheus": ui.DEFAULT_PROMETHEUS}


def test_api_requests_need_the_cookie_and_carry_the_users_credentials_only(local, api):
    console, auth = local
    resp, data = call(console, "GET", "/k8s/apis/kubevirt.io/v1/virtualmachines")
    assert resp.status == 401 and "not signed in" in json.loads(data)["message"]
    cookie = f"{ui.COOKIE}={auth.secret}"
    resp, data = call(console, "GET", "/k8s/apis/kubevirt.io/v1/virtualmachines", {"Cookie": cookie})
    assert resp.status == 200 and json.loads(data)["kind"] == "VirtualMachineList"
    _, path, headers = FakeAPI.seen[-1]
    assert path == "/apis/kubevirt.io/v1/virtualmachines"
    assert headers["Authorization"] == "Bearer kubeconfig-token"
    assert "Cookie" not in headers


def test_dns_rebinding_and_cross_site_writes_are_refused(local):
    console, auth = local
    cookie = {"Cookie": f"{ui.COOKIE}={auth.secret}"}
    resp, _ = call(console, "GET", "/k8s/api/v1/namespaces", cookie, host="evil.example:80")
    assert resp.status == 421
    resp, data = call(console, "POST", "/k8s/apis/kubevirt.io/v1/namespaces/default/virtualmachines", cookie,
                      body=b"{}")
    assert resp.status == 403 and ui.WRITE_HEADER in json.loads(data)["message"]
    resp, _ = call(console, "POST", "/k8s/apis/kubevirt.io/v1/namespaces/default/virtualmachines",
                   {**cookie, ui.WRITE_HEADER: "1", "Content-Type": "application/json"}, body=b'{"a": 1}')
    assert resp.status == 201
    resp, _ = call(console, "GET", "/k8s/apis/subresources.kubevirt.io/v1/namespaces/d/virtualmachineinstances/v/vnc",
                   {**cookie, "Upgrade": "websocket", "Connection": "Upgrade", "Origin": "http://evil.example"})
    assert resp.status == 403


def test_watches_stream_through(local):
    console, auth = local
    resp, data = call(console, "GET", "/k8s/apis/kubevirt.io/v1/virtualmachines?watch=1",
                      {"Cookie": f"{ui.COOKIE}={auth.secret}"})
    lines = [json.loads(line) for line in data.splitlines()]
    assert [e["object"]["metadata"]["name"] for e in lines] == ["vm0", "vm1", "vm2"]


def test_websocket_upgrades_are_relayed_with_credentials(local):
    import socket
    console, auth = local
    port = console.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((f"GET /k8s/apis/subresources.kubevirt.io/v1/namespaces/d/virtualmachineinstances/v/console "
                      f"HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Origin: http://127.0.0.1:{port}\r\nSec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Protocol: plain.kubevirt.io\r\n"
                      f"Cookie: {ui.COOKIE}={auth.secret}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1000)
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(b"hello")
        assert sock.recv(100) == b"HELLO"
    _, _, headers = FakeAPI.seen[-1]
    assert headers["Authorization"] == "Bearer kubeconfig-token"
    assert headers["Sec-WebSocket-Protocol"] == "plain.kubevirt.io" and "Cookie" not in headers


def test_static_files_gzip_and_no_path_escape(local, tmp_path):
    import gzip
    console, _ = local
    resp, data = call(console, "GET", "/")
    assert resp.status == 200 and b"console" in data
    assert "default-src 'self'" in resp.getheader("Content-Security-Policy")
    assert call(console, "GET", "/../../etc/passwd")[0].status == 404
    (tmp_path / "app.js").write_text("console.log(1)")
    (tmp_path / "app.js.gz").write_bytes(gzip.compress(b"console.log(1)"))
    resp, data = call(console, "GET", "/app.js", {"Accept-Encoding": "gzip, br"})
    assert resp.getheader("Content-Encoding") == "gzip" and gzip.decompress(data) == b"console.log(1)"
    assert resp.getheader("Content-Type") in ("text/javascript", "application/javascript")
    resp, data = call(console, "GET", "/app.js")
    assert resp.getheader("Content-Encoding") is None and data == b"console.log(1)"


def test_in_cluster_sign_in_uses_the_users_token(api):
    console = start(ui.ConsoleServer(("127.0.0.1", 0), api, ui.TokenAuth(api)))
    try:
        resp, data = call(console, "GET", "/ui/config")
        assert json.loads(data)["authenticated"] is False and json.loads(data)["mode"] == "cluster"
        resp, data = call(console, "POST", "/ui/login", {ui.WRITE_HEADER: "1"}, body=b'{"token": "bad"}')
        assert resp.status == 401 and "refused this token" in json.loads(data)["message"]
        resp, data = call(console, "POST", "/ui/login", {ui.WRITE_HEADER: "1"}, body=b'{"token": "good-token"}')
        assert resp.status == 200 and json.loads(data) == {"user": "alice"}
        cookie = {"Cookie": cookie_of(resp)}
        resp, data = call(console, "GET", "/k8s/api/v1/namespaces", cookie)
        assert resp.status == 200
        assert FakeAPI.seen[-1][2]["Authorization"] == "Bearer good-token"
        resp, _ = call(console, "POST", "/ui/logout", {**cookie, ui.WRITE_HEADER: "1"})
        assert call(console, "GET", "/k8s/api/v1/namespaces", cookie)[0].status == 401
    finally:
        console.shutdown()
        console.server_close()
