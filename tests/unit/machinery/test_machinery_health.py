import json
import logging
import urllib.error
import urllib.request

from kubevirt_runtime.machinery.health import HealthServer
from kubevirt_runtime.machinery.logs import JsonFormatter, obj_fields


def fetch(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_readyz_metrics():
    ready = [False]
    server = HealthServer("127.0.0.1", 0)
    server.add_liveness("ping", lambda: True)
    server.add_readiness("informers-synced", lambda: ready[0])
    server.start()
    try:
        assert fetch(server.port, "/healthz") == (200, "ok\n")
        code, body = fetch(server.port, "/readyz")
        assert code == 503 and "[-]informers-synced failed" in body
        ready[0] = True
        assert fetch(server.port, "/readyz?verbose")[0] == 200
        code, body = fetch(server.port, "/metrics")
        assert code == 200 and "python_info" in body or "process_" in body
    finally:
        server.stop()


def test_json_log_line():
    record = logging.makeLogRecord({"msg": "hello %s", "args": ("vm",), "levelname": "INFO", "levelno": 20,
                                    **obj_fields({"kind": "VirtualMachine", "metadata": {"name": "a", "namespace":
                                                                                          "ns", "uid": "u"}})})
    line = json.loads(JsonFormatter("virt-controller").format(record))
    assert line["component"] == "virt-controller" and line["level"] == "info" and line["msg"] == "hello vm"
    assert line["kind"] == "VirtualMachine" and line["name"] == "a" and line["uid"] == "u"
