"""The VM modules' shared pieces: hidden fields, change detection, connection options and their K8S_AUTH_*
fallbacks, waiting, and scripted console sessions."""
import pytest

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt import client
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.objects import diff_objects, field_path, hide_fields
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.waiter import condition_met, wait
from kubevirt_runtime.client.console import ConsoleClosed, ConsoleSession, ExpectTimeout, run_steps


@pytest.mark.parametrize("text,parts", [
    ("metadata.managedFields", ["metadata", "managedFields"]),
    ("metadata.annotations[kubemacpool.io/transaction-timestamp]", ["metadata", "annotations",
                                                                     "kubemacpool.io/transaction-timestamp"]),
    ("spec.template.spec.domain.devices.disks[1].bootOrder", ["spec", "template", "spec", "domain", "devices",
                                                              "disks", "1", "bootOrder"]),
    ("[a][b].c", ["a", "b", "c"]),
])
def test_field_paths(text, parts):
    assert field_path(text) == parts


def test_hide_fields_drops_what_becomes_empty_and_leaves_the_input_alone():
    obj = {"metadata": {"name": "a", "annotations": {"kubemacpool.io/transaction-timestamp": "t"},
                        "managedFields": [{}]},
           "spec": {"disks": [{"name": "a"}, {"name": "b", "bootOrder": 1}]}}
    hidden = hide_fields(obj, ["metadata.annotations[kubemacpool.io/transaction-timestamp]", "metadata.managedFields",
                               "spec.disks[1].bootOrder", "spec.disks[0]", "nothing.here[3]"])
    assert hidden == {"metadata": {"name": "a"}, "spec": {"disks": [{"name": "b"}]}}
    assert obj["metadata"]["managedFields"] == [{}]


def test_only_bookkeeping_metadata_is_no_change():
    before = {"metadata": {"name": "a", "resourceVersion": "1", "generation": 1}, "spec": {"x": 1}}
    bumped = dict(before, metadata={"name": "a", "resourceVersion": "2", "generation": 2})
    assert diff_objects(before, bumped)[0] is False
    changed, diff = diff_objects(before, {"metadata": {"name": "a", "resourceVersion": "2"}, "spec": {"x": 2}})
    assert changed and diff == {"before": {"spec": {"x": 1}}, "after": {"spec": {"x": 2}}}
    assert diff_objects(before, before) == (False, {})


def test_managed_fields_hidden_by_default_do_not_count():
    before = {"metadata": {"managedFields": [{"time": "1"}]}}
    after = {"metadata": {"managedFields": [{"time": "2"}]}}
    assert diff_objects(before, after, ["metadata.managedFields"])[0] is False


def test_connection_options_fall_back_to_k8s_auth_environment():
    env = {"K8S_AUTH_HOST": "https://api:6443", "K8S_AUTH_API_KEY": "tok", "K8S_AUTH_VERIFY_SSL": "no",
           "K8S_AUTH_SSL_CA_CERT": "/ca.crt", "K8S_AUTH_IMPERSONATE_GROUPS": "a, b,",
           "K8S_AUTH_PROXY_HEADERS_USER_AGENT": "me/1"}
    auth = client.resolve({"host": None, "context": "given"}, env)
    assert auth == {"host": "https://api:6443", "api_key": "tok", "validate_certs": False, "ca_cert": "/ca.crt",
                    "impersonate_groups": ["a", "b"], "proxy_headers": {"user_agent": "me/1"}, "context": "given"}
    assert client.resolve({"validate_certs": True}, {"K8S_AUTH_VALIDATE_CERTS": "false"})["validate_certs"] is True


def test_host_and_token_need_no_kubeconfig_and_impersonation_repeats_headers():
    api = client.api_client({"host": "https://api:6443/", "api_key": "tok", "validate_certs": False,
                             "impersonate_user": "alice", "impersonate_groups": ["dev", "ops"]}, environ={})
    cfg = api.configuration
    assert (cfg.host, cfg.verify_ssl, cfg.api_key) == ("https://api:6443", False, {"authorization": "Bearer tok"})
    headers = [(str(k), v) for k, v in api.default_headers.items() if str(k).startswith("Impersonate")]
    assert headers == [("Impersonate-User", "alice"), ("Impersonate-Group", "dev"), ("Impersonate-Group", "ops")]


def test_kubeconfig_as_a_dict(tmp_path):
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "k", "cluster": {"server": "https://10.0.0.1:6443",
                                                     "insecure-skip-tls-verify": True}}],
              "users": [{"name": "u", "user": {"token": "secret"}}],
              "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}
    api = client.api_client({"kubeconfig": config}, environ={})
    assert api.configuration.host == "https://10.0.0.1:6443"
    assert api.configuration.auth_settings()["BearerToken"]["value"] == "Bearer secret"
    from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.core import kubeconfig_secrets
    assert kubeconfig_secrets(config) == {"secret"}


def test_an_unusable_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(client.ConfigurationError, match="could not load a Kubernetes configuration"):
        client.api_client({"kubeconfig": str(tmp_path / "missing")}, environ={})


def test_conditions_and_waiting():
    vm = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "VMINotExists"}]}}
    assert condition_met(vm, {"type": "Ready", "status": False, "reason": "VMINotExists"})
    assert not condition_met(vm, {"type": "Ready", "status": True})
    assert not condition_met(vm, {"type": "Ready", "status": False, "reason": "Other"})
    assert not condition_met(None, {"type": "Ready", "status": True})
    now = [0.0]
    values = iter([1, 2, 3, 4])
    done, last, took = wait(lambda: next(values), lambda v: v == 3, timeout=10, sleep=2,
                            clock=lambda: now[0], sleeper=lambda s: now.__setitem__(0, now[0] + s))
    assert (done, last, took) == (True, 3, 4.0)
    now[0] = 0.0
    done, last, took = wait(lambda: 0, bool, timeout=5, sleep=2, clock=lambda: now[0],
                            sleeper=lambda s: now.__setitem__(0, now[0] + s))
    assert (done, took) == (False, 5.0)


class FakeConsole:
    """Answers each send with what a shell would print; starts with replayed history."""

    def __init__(self, history=b"", answers=None):
        self.pending = [history] if history else []
        self.answers = answers or {}
        self.sent = []
        self.closed = False

    def send(self, data):
        self.sent.append(data)
        self.pending.append(data + self.answers.get(data, b""))

    def recv(self, timeout=None):
        if self.closed:
            raise EOFError("closed")
        if not self.pending:
            raise TimeoutError
        return self.pending.pop(0)


def test_steps_send_expect_and_return_groups():
    conn = FakeConsole(b"boot...\nkubevirt-ops demo: login ready\n# ",
                       {b"uname -r\n": b"6.1.0-28-amd64\n# ", b"echo $((6*7))\n": b"42\n# "})
    session = ConsoleSession(conn, clock=iter(range(0, 1000)).__next__)
    results = run_steps(session, [{"expect": "login ready"},
                                  {"send": "uname -r", "expect": r"^(\d+)\.(\d+)\.\S+$"},
                                  {"send": "echo $((6*7))", "expect": r"^(?P<answer>\d+)\s*$"}], 30)
    assert [r["matched"] for r in results] == ["login ready", "6.1.0-28-amd64", "42"]
    assert results[1]["groups"] == ["6", "1"] and results[2]["named"] == {"answer": "42"}
    assert conn.sent == [b"uname -r\n", b"echo $((6*7))\n"]
    assert "6.1.0-28-amd64" in session.transcript


def test_an_expectation_ignores_output_from_before_its_send():
    conn = FakeConsole(b"old answer: 7\n# ", {b"ask\n": b""})
    session = ConsoleSession(conn, clock=iter(range(0, 1000)).__next__)
    with pytest.raises(ExpectTimeout, match="step 1"):
        run_steps(session, [{"send": "ask", "expect": r"answer: (\d)", "timeout": 3}], 30)


def test_a_closed_console_ends_the_session():
    conn = FakeConsole()
    conn.closed = True
    with pytest.raises(ConsoleClosed):
        ConsoleSession(conn).expect("x", 5)


def test_raw_sends_and_utf8_split_across_frames():
    conn = FakeConsole()
    session = ConsoleSession(conn, clock=iter(range(0, 1000)).__next__)
    run_steps(session, [{"send": "\x03", "newline": False}], 5)
    assert conn.sent == [b"\x03"]
    conn.pending = ["é".encode()[:1], "é".encode()[1:] + b" ok"]
    session.expect("é ok", 5)
