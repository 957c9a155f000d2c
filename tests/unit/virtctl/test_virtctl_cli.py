"""virtctl's command line: parsing, the URLs it calls, and what the user reads."""
import pytest

from kubevirt_runtime.client.subresources import ApiError, Subresources
from kubevirt_runtime.virtctl import main as virtctl


def test_global_options_before_or_after_the_command():
    args = virtctl.parse_args(["-n", "ns1", "start", "vm1"])
    assert (args.command, args.name, args.namespace) == ("start", "vm1", "ns1")
    args = virtctl.parse_args(["stop", "vm1", "-n", "ns2", "--kubeconfig", "/k"])
    assert (args.namespace, args.kubeconfig) == ("ns2", "/k")
    args = virtctl.parse_args(["pause", "vmi", "v"])
    assert (args.kind, args.name, args.namespace) == ("vmi", "v", None)
    args = virtctl.parse_args(["console", "v", "--timeout", "20", "--until", "login"])
    assert (args.timeout, args.until) == (20.0, "login")
    with pytest.raises(SystemExit):
        virtctl.parse_args(["migrate-everything", "x"])


class FakeConfig:
    host = "https://10.0.0.1:6443"
    ssl_ca_cert = None
    verify_ssl = True
    cert_file = None
    key_file = None
    refresh_api_key_hook = None

    def auth_settings(self):
        return {"BearerToken": {"in": "header", "key": "authorization", "value": "Bearer t0k"}}


class FakeApi:
    def __init__(self):
        self.configuration = FakeConfig()


def test_console_url_and_headers():
    sub = Subresources(FakeApi())
    assert sub.console_url("ns", "v") == \
        "wss://10.0.0.1:6443/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/v/console"
    assert sub.auth_headers() == {"authorization": "Bearer t0k"}
    sub.api.default_headers = {"User-Agent": "x", "Impersonate-User": "alice"}
    assert sub.headers() == [("authorization", "Bearer t0k"), ("Impersonate-User", "alice")]


def test_actions_put_to_the_aggregated_paths(monkeypatch, capsys):
    calls = []

    class Recorder(Subresources):
        def __init__(self, api):
            pass

        def vm(self, ns, name, action, body=None):
            calls.append(("vm", ns, name, action))
            if name == "missing":
                raise ApiError(404, {"message": 'virtualmachines.kubevirt.io "missing" not found'})

        def vmi(self, ns, name, action, body=None):
            calls.append(("vmi", ns, name, action))

    monkeypatch.setattr(virtctl, "connect", lambda *a: (None, "from-context"))
    monkeypatch.setattr(virtctl, "Subresources", Recorder)
    assert virtctl.main(["start", "vm1"]) == 0
    assert virtctl.main(["-n", "x", "unpause", "vm", "vm1"]) == 0
    assert virtctl.main(["stop", "missing"]) == 1
    assert calls == [("vm", "from-context", "vm1", "start"), ("vmi", "x", "vm1", "unpause"),
                     ("vm", "from-context", "missing", "stop")]
    out, err = capsys.readouterr()
    assert "VM vm1 was scheduled to start" in out
    assert 'Error: stop missing: virtualmachines.kubevirt.io "missing" not found' in err


def test_vm_paths():
    sent = []

    class FakeClient:
        def request(self, method, path, body=None, subresource=None):
            sent.append((method, path, body))

    sub = Subresources.__new__(Subresources)
    sub._vms = sub._vmis = FakeClient()
    sub.vm("ns", "a", "restart")
    sub.vmi("ns", "a", "pause")
    assert sent == [("PUT", "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/a/restart", {}),
                    ("PUT", "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/a/pause", {})]
    with pytest.raises(ValueError):
        sub.vm("ns", "a", "explode")


class FakeWS:
    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.sent = []
        self.closed = False

    def recv(self, timeout=None):
        if not self.chunks:
            raise TimeoutError
        return self.chunks.pop(0)

    def send(self, data):
        self.sent.append(data)

    def close(self):
        self.closed = True


def stream_args(*extra):
    return virtctl.parse_args(["console", "v", *extra])


def test_stream_until_text_split_across_frames(capsysbinary):
    ws = FakeWS([b"boot...\nkubevirt-ops de", b"mo: login ready\n", b"never read"])
    assert virtctl._stream(ws, stream_args("--until", "kubevirt-ops demo: login ready", "--send", "\\n"), 5) == 0
    assert ws.sent == [b"\n"] and ws.closed and ws.chunks == [b"never read"]
    assert capsysbinary.readouterr().out == b"boot...\nkubevirt-ops demo: login ready\n"


def test_stream_fails_when_the_text_never_comes(capsys):
    ws = FakeWS([b"nothing here"])
    assert virtctl._stream(ws, stream_args("--until", "login ready", "--send", "x"), 1) == 1
    assert "did not appear" in capsys.readouterr().err


def test_timeline_table_shows_each_stage_with_its_duration():
    from kubevirt_runtime.virtctl.timeline import table
    vmi = {"metadata": {"name": "v"}, "status": {"phase": "Running", "startupTimeline": [
        {"stage": "VMICreated", "time": "2026-01-01T00:00:00Z"},
        {"stage": "PodCreated", "time": "2026-01-01T00:00:00.250Z"},
        {"stage": "Running", "time": "2026-01-01T00:00:02.750Z"}]}}
    lines = table(vmi).splitlines()
    assert lines[0].split() == ["STAGE", "TIME", "SINCE", "START", "DURATION"]
    assert lines[2].split() == ["PodCreated", "2026-01-01T00:00:00.250Z", "0.250s", "0.250s"]
    assert lines[3].split() == ["Running", "2026-01-01T00:00:02.750Z", "2.750s", "2.500s"]
    assert "not recorded yet: PodScheduled" in lines[-1]
    assert "no startup stages" in table({"metadata": {"name": "v"}, "status": {}})
    assert virtctl.parse_args(["timeline", "vm1", "-n", "x"]).command == "timeline"
