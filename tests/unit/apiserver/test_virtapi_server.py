"""virt-api's HTTPS server with fakes behind it: routing, discovery, front-proxy authentication over real TLS,
SubjectAccessReview attributes, and how errors reach the user."""
import http.client
import json
import ssl

import pytest
import virtapi_certs as certs

from kubevirt_runtime.apiserver import server as srv
from kubevirt_runtime.apiserver.auth import RequestHeaderConfig, server_ssl_context
from kubevirt_runtime.apiserver.subresources import SubresourceError

PREFIX = "/apis/subresources.kubevirt.io/v1"


class FakeAuthorizer:
    def __init__(self, allow=True):
        self.allow = allow
        self.calls = []

    def allowed(self, user, attributes):
        self.calls.append((user, attributes))
        return self.allow, "" if self.allow else "no RBAC rule"


class FakeVMActions:
    def __init__(self):
        self.calls = []
        self.error = None

    def run(self, action, ns, name, grace_period=None):
        self.calls.append((action, ns, name) if grace_period is None else (action, ns, name, grace_period))
        if self.error:
            raise self.error


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    front_ca = certs.make("front-proxy-ca", ca=True)
    other_ca = certs.make("other-ca", ca=True)
    serving_ca = certs.make("serving-ca", ca=True)
    return {
        "dir": d, "front_ca": front_ca,
        "serving": certs.write(d, "serving", certs.make("virt-api", serving_ca, sans=("localhost", "127.0.0.1"))),
        "serving_ca": certs.write(d, "serving-ca", serving_ca)[0],
        "proxy": certs.write(d, "proxy", certs.make("front-proxy-client", front_ca, client=True)),
        "wrong_cn": certs.write(d, "wrongcn", certs.make("someone", front_ca, client=True)),
        "other": certs.write(d, "other", certs.make("front-proxy-client", other_ca, client=True)),
    }


@pytest.fixture
def running(pki):
    config = RequestHeaderConfig(client_ca=certs.pem(pki["front_ca"]), allowed_names=("front-proxy-client",))
    context = server_ssl_context(config, *pki["serving"])
    authorizer, actions = FakeAuthorizer(), FakeVMActions()
    app = srv.App(lambda: context, lambda: config, authorizer, actions, None, None)
    server, _ = srv.serve(app, "127.0.0.1", 0)
    yield server.server_address[1], authorizer, actions
    server.shutdown()
    server.server_close()


def call(pki, port, method, path, client=None, headers=None, body=None):
    ctx = ssl.create_default_context(cafile=pki["serving_ca"])
    if client:
        ctx.load_cert_chain(*pki[client])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data and resp.getheader("Content-Type") == "application/json"
                             else data)
    finally:
        conn.close()


USER = {"X-Remote-User": "alice", "X-Remote-Group": "devs", "X-Remote-Extra-Scopes": "a"}


def test_route_table():
    assert srv.route("POST", "/virtualmachines-mutate") == ("admission", "/virtualmachines-mutate")
    assert srv.route("GET", "/virtualmachines-mutate") is None
    kind, match = srv.route("PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/start")
    assert kind == "subresource" and match == {"ns": "ns1", "resource": "virtualmachines", "name": "vm1",
                                               "sub": "start", "rest": None}
    assert srv.route("GET", PREFIX + "/namespaces/ns1/virtualmachines/vm1/start")[0] == "badmethod"
    assert srv.route("PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/frob") is None
    assert srv.route("GET", PREFIX + "/namespaces/n/virtualmachineinstances/v/console")[0] == "subresource"
    assert srv.route("GET", PREFIX)[1]["kind"] == "APIResourceList"
    # upstream virtctl's paths: portforward/{port}/{protocol} on VMIs and VMs, vnc with a query
    for resource in ("virtualmachineinstances", "virtualmachines"):
        kind, match = srv.route("GET", PREFIX + f"/namespaces/n/{resource}/v/portforward/22/tcp")
        assert kind == "subresource" and match["sub"] == "portforward" and match["rest"] == "/22/tcp"
    assert srv.route("GET", PREFIX + "/namespaces/n/virtualmachineinstances/v/portforward/80")[1]["rest"] == "/80"
    assert srv.route("GET", PREFIX + "/namespaces/n/virtualmachineinstances/v/portforward") is None
    assert srv.route("GET", PREFIX + "/namespaces/n/virtualmachineinstances/v/console/80") is None
    assert srv.route("GET", PREFIX + "/namespaces/n/virtualmachineinstances/v/vnc?preserveSession=true")[0] \
        == "subresource"
    for sub in ("softreboot", "reset"):
        assert srv.route("PUT", PREFIX + f"/namespaces/n/virtualmachineinstances/v/{sub}")[0] == "subresource"
    for sub in ("guestosinfo", "userlist", "filesystemlist"):
        assert srv.route("GET", PREFIX + f"/namespaces/n/virtualmachineinstances/v/{sub}")[0] == "subresource"


def test_discovery_lists_the_subresources(pki, running):
    port, _, _ = running
    code, body = call(pki, port, "GET", PREFIX)
    assert code == 200 and body["groupVersion"] == "subresources.kubevirt.io/v1"
    names = {r["name"]: r["verbs"] for r in body["resources"]}
    assert names["virtualmachines/start"] == ["update"] and names["virtualmachineinstances/console"] == ["get"]
    assert names["virtualmachineinstances/vnc"] == ["get"] and names["virtualmachines/portforward"] == ["get"]
    assert names["virtualmachineinstances/softreboot"] == ["update"]
    code, group = call(pki, port, "GET", "/apis/subresources.kubevirt.io")
    assert group["preferredVersion"]["version"] == "v1"
    assert call(pki, port, "GET", "/healthz")[0] == 200


def test_webhook_over_https(pki, running):
    port, _, _ = running
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": "x", "operation": "DELETE",
                          "resource": {"group": "kubevirt.io", "version": "v1", "resource": "virtualmachines"}}}
    code, body = call(pki, port, "POST", "/virtualmachines-validate", body=json.dumps(review),
                      headers={"Content-Type": "application/json"})
    assert code == 200 and body["response"] == {"uid": "x", "allowed": True}
    assert call(pki, port, "POST", "/virtualmachines-validate", body="{}")[0] == 400


def test_front_proxy_request_is_authorized_with_the_users_identity(pki, running):
    port, authorizer, actions = running
    code, _ = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/start", "proxy", USER, b"{}")
    assert code == 200 and actions.calls == [("start", "ns1", "vm1")]
    user, attributes = authorizer.calls[0]
    assert user.name == "alice" and user.groups == ("devs",) and user.extra == {"scopes": ["a"]}
    assert attributes == {"namespace": "ns1", "verb": "update", "group": "subresources.kubevirt.io",
                          "version": "v1", "resource": "virtualmachines", "subresource": "start", "name": "vm1"}


@pytest.mark.parametrize("client,headers", [(None, USER), ("wrong_cn", USER), ("proxy", {})])
def test_requests_not_from_the_front_proxy_are_unauthorized(pki, running, client, headers):
    port, authorizer, actions = running
    code, body = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/stop", client, headers)
    assert code == 401 and body["reason"] == "Unauthorized"
    assert not actions.calls and not authorizer.calls


def test_a_stops_grace_period_reaches_the_action(pki, running):
    port, _, actions = running
    actions.calls.clear()
    code, _ = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/stop", "proxy", USER,
                   b'{"gracePeriod": 3}')
    assert code == 200 and actions.calls == [("stop", "ns1", "vm1", 3)]
    code, body = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/restart", "proxy", USER,
                      b'{"gracePeriodSeconds": 9}')
    assert code == 400 and "only gracePeriod=0" in body["message"]


def test_a_client_cert_from_another_ca_fails_the_handshake(pki, running):
    port, _, actions = running
    with pytest.raises((ssl.SSLError, OSError)):
        call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/stop", "other", USER)
    assert not actions.calls


def test_forbidden_by_subject_access_review(pki, running):
    port, authorizer, actions = running
    authorizer.allow = False
    code, body = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/stop", "proxy", USER)
    assert code == 403 and 'cannot update resource "virtualmachines/stop"' in body["message"]
    assert not actions.calls


def test_action_errors_come_back_as_status(pki, running):
    port, _, actions = running
    actions.error = SubresourceError(409, "VM vm1 is not running")
    code, body = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachines/vm1/stop", "proxy", USER)
    assert code == 409 and body["kind"] == "Status" and body["reason"] == "Conflict"
    assert body["message"] == "VM vm1 is not running"


def test_wrong_method_and_unknown_paths(pki, running):
    port, _, _ = running
    assert call(pki, port, "GET", PREFIX + "/namespaces/n/virtualmachines/v/start", "proxy", USER)[0] == 405
    assert call(pki, port, "GET", "/nothing")[0] == 404


def test_requestheader_config_from_the_configmap():
    config = RequestHeaderConfig.from_configmap({
        "requestheader-client-ca-file": "PEM", "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]', "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]'})
    assert config.allowed_names == ("front-proxy-client",) and config.username_headers == ("X-Remote-User",)
    with pytest.raises(ValueError, match="aggregation layer"):
        RequestHeaderConfig.from_configmap({})


# ---------------------------------------------------------------- console relay and pause through a fake handler

@pytest.fixture
def with_handler(pki):
    """virt-api wired to a fake virt-handler: mTLS server (websockets) echoing console bytes upper-cased and
    answering pause; it requires virt-api's client certificate."""
    from websockets.sync.server import serve as ws_serve

    from kubevirt_runtime.apiserver.subresources import HandlerClient

    d = pki["dir"]
    handler_ca = certs.make("handler-ca", ca=True)
    handler_ca_file = certs.write(d, "handler-ca", handler_ca)[0]
    handler_cert = certs.write(d, "handler", certs.make("virt-handler", handler_ca, sans=("virt-handler",)))
    api_client_cert = certs.write(d, "api-client", certs.make("virt-api", handler_ca, client=True))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*handler_cert)
    server_ctx.load_verify_locations(handler_ca_file)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    seen = []

    def echo(conn):
        seen.append(conn.request.path)
        for message in conn:
            conn.send(message.upper() if isinstance(message, bytes) else message)

    def process_request(conn, request):
        if "preserveSession=true" in request.path:
            seen.append(request.path)
            return conn.respond(503, '{"kind": "Status", "message": "Active VNC connection. Request denied."}')
        if not request.path.split("?")[0].endswith(("/console", "/vnc", "/80/tcp")):
            seen.append(request.path)
            return conn.respond(200, '{"status": "ok"}')
        return None

    handler = ws_serve(echo, "127.0.0.1", 0, ssl=server_ctx, process_request=process_request,
                       select_subprotocol=lambda conn, offered: "plain.kubevirt.io")
    import threading
    threading.Thread(target=handler.serve_forever, daemon=True).start()
    port = handler.socket.getsockname()[1]

    class Locator:
        def vmi(self, ns, name):
            if name == "missing":
                raise SubresourceError(404, 'virtualmachineinstances.kubevirt.io "missing" not found')
            conditions = [] if name == "noagent" else [{"type": "AgentConnected", "status": "True"}]
            return {"metadata": {"name": name, "namespace": ns},
                    "status": {"phase": "Running", "nodeName": "n1", "conditions": conditions}}

        def address_for(self, vmi):
            return "127.0.0.1", port

    config = RequestHeaderConfig(client_ca=certs.pem(pki["front_ca"]), allowed_names=("front-proxy-client",))
    context = server_ssl_context(config, *pki["serving"])
    app = srv.App(lambda: context, lambda: config, FakeAuthorizer(), FakeVMActions(), Locator(),
                  HandlerClient(*api_client_cert, handler_ca_file))
    server, _ = srv.serve(app, "127.0.0.1", 0)
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()
    handler.shutdown()


def test_console_is_relayed_to_the_handler(pki, with_handler):
    from websockets.sync.client import connect
    port, seen = with_handler
    ctx = ssl.create_default_context(cafile=pki["serving_ca"])
    ctx.load_cert_chain(*pki["proxy"])
    url = f"wss://127.0.0.1:{port}{PREFIX}/namespaces/ns1/virtualmachineinstances/v1/console"
    with connect(url, ssl=ctx, additional_headers=USER, subprotocols=["plain.kubevirt.io"]) as ws:
        assert ws.subprotocol == "plain.kubevirt.io"
        ws.send(b"hello console")
        assert ws.recv(timeout=5) == b"HELLO CONSOLE"
    assert seen == ["/v1/namespaces/ns1/virtualmachineinstances/v1/console"]


def test_pause_goes_to_the_handler_and_missing_vmis_are_404(pki, with_handler):
    port, seen = with_handler
    # the fake VMI has no Paused condition: pause is forwarded, unpause is refused before the handler
    assert call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachineinstances/v1/pause", "proxy", USER)[0] == 200
    assert seen == ["/v1/namespaces/ns1/virtualmachineinstances/v1/pause"]
    code, body = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachineinstances/v1/unpause", "proxy", USER)
    assert code == 409 and "not paused" in body["message"]
    code, body = call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachineinstances/missing/pause", "proxy",
                      USER)
    assert code == 404 and body["reason"] == "NotFound"


def test_a_refused_upgrade_comes_back_with_the_handlers_reason(pki, with_handler):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect
    port, _ = with_handler
    ctx = ssl.create_default_context(cafile=pki["serving_ca"])
    ctx.load_cert_chain(*pki["proxy"])
    url = f"wss://127.0.0.1:{port}{PREFIX}/namespaces/ns1/virtualmachineinstances/v1/vnc?preserveSession=true"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, ssl=ctx, additional_headers=USER, subprotocols=["plain.kubevirt.io"])
    assert refused.value.response.status_code == 503
    assert "Active VNC connection" in json.loads(refused.value.response.body)["message"]


@pytest.mark.parametrize("path, handler_path", [
    ("virtualmachineinstances/v1/vnc?preserveSession=false",
     "/v1/namespaces/ns1/virtualmachineinstances/v1/vnc?preserveSession=false"),
    ("virtualmachineinstances/v1/portforward/80/tcp",
     "/v1/namespaces/ns1/virtualmachineinstances/v1/portforward/80/tcp"),
    # a VM's port-forward reaches the VMI of the same name
    ("virtualmachines/v1/portforward/80/tcp", "/v1/namespaces/ns1/virtualmachineinstances/v1/portforward/80/tcp"),
])
def test_vnc_and_portforward_are_relayed_with_port_and_query(pki, with_handler, path, handler_path):
    from websockets.sync.client import connect
    port, seen = with_handler
    ctx = ssl.create_default_context(cafile=pki["serving_ca"])
    ctx.load_cert_chain(*pki["proxy"])
    with connect(f"wss://127.0.0.1:{port}{PREFIX}/namespaces/ns1/{path}", ssl=ctx, additional_headers=USER,
                 subprotocols=["plain.kubevirt.io"]) as ws:
        ws.send(b"rfb")
        assert ws.recv(timeout=5) == b"RFB"
    assert seen[-1] == handler_path


def test_agent_subresources_need_the_agent(pki, with_handler):
    port, seen = with_handler
    code, body = call(pki, port, "GET", PREFIX + "/namespaces/ns1/virtualmachineinstances/noagent/userlist", "proxy",
                      USER)
    assert code == 409 and "guest agent" in body["message"]
    code, _ = call(pki, port, "GET", PREFIX + "/namespaces/ns1/virtualmachineinstances/v1/filesystemlist", "proxy",
                   USER)
    assert code == 200 and seen[-1] == "/v1/namespaces/ns1/virtualmachineinstances/v1/filesystemlist"
    assert call(pki, port, "PUT", PREFIX + "/namespaces/ns1/virtualmachineinstances/noagent/softreboot", "proxy",
                USER)[0] == 200  # ACPI
