"""ResourceClient's public request method and server-side dry runs, over a recording ApiClient."""
import json

import pytest

from kubevirt_runtime.machinery.resource import DEFAULT_TIMEOUT, VMS, ApiError, ResourceClient


class Response:
    def __init__(self, status, body):
        self.status = status
        self._body = json.dumps(body).encode() if body is not None else b""

    def read(self):
        return self._body


class RecordingApi:
    def __init__(self, status=200, body=None):
        self.sent = []
        self.timeouts = []
        self.status, self.body = status, body

    def param_serialize(self, method, resource_path, query_params, header_params, auth_settings):
        query = "&".join(f"{k}={v}" for k, v in query_params)
        return method, resource_path + (f"?{query}" if query else ""), header_params, None, None

    def call_api(self, method, url, header_params, body, _request_timeout):
        self.sent.append((method, url, header_params.get("Content-Type"), body))
        self.timeouts.append(_request_timeout)
        return Response(self.status, self.body)


def test_writes_can_be_dry_runs():
    api = RecordingApi(body={"kind": "VirtualMachine"})
    vms = ResourceClient(api, VMS)
    vms.create({"metadata": {"name": "a"}}, "ns", dry_run=True)
    vms.patch("a", {"spec": {}}, "ns", dry_run=True)
    vms.delete("a", "ns", dry_run=True)
    vms.create({"metadata": {"name": "b"}}, "ns")
    urls = [url for _, url, _, _ in api.sent]
    assert urls == ["/apis/kubevirt.io/v1/namespaces/ns/virtualmachines?dryRun=All",
                    "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/a?dryRun=All",
                    "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/a?dryRun=All",
                    "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines"]
    assert api.sent[1][2] == "application/merge-patch+json"
    assert api.sent[2][3]["dryRun"] == ["All"]  # a DELETE's options come from its body


def test_request_reaches_any_path_and_errors_carry_method_and_path():
    api = RecordingApi(status=403, body={"kind": "Status", "reason": "Forbidden", "message": "no"})
    vms = ResourceClient(api, VMS)
    path = "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/a/start"
    with pytest.raises(ApiError) as err:
        vms.request("PUT", path, body={}, subresource="start")
    assert (err.value.status, err.value.method, err.value.path, err.value.reason) == (403, "PUT", path, "Forbidden")
    assert api.sent == [("PUT", path, "application/json", {})]


def test_every_plain_request_has_a_timeout_so_a_hung_server_cannot_hold_a_worker_forever():
    api = RecordingApi(body={})
    vms = ResourceClient(api, VMS)
    vms.create({"metadata": {"name": "a"}}, "ns")
    vms.patch("a", {"spec": {}}, "ns")
    vms.request("GET", "/api/v1/pods", timeout=5)
    assert api.timeouts[:2] == [DEFAULT_TIMEOUT, DEFAULT_TIMEOUT]
    assert api.timeouts[2] == 5
