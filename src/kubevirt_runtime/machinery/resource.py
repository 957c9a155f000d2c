"""Plain-dict REST access to one Kubernetes resource (built-in or custom), on top of the `kubernetes` ApiClient.

Objects go in and come out as the API server's JSON (dicts), which is what every component handles.
`ApiError` carries the HTTP status and the server's Status object. Every request is counted in
`RequestCounter`s (for the density benchmark and the `rest_client_requests_total` metric).
"""
import json
import threading
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

from prometheus_client import Counter as PromCounter

REQUESTS_METRIC = PromCounter("rest_client_requests_total", "HTTP requests sent to the API server, by verb and "
                              "resource.", ["verb", "resource"])

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


DEFAULT_TIMEOUT = (10, 60)  # seconds to connect, to read


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status, body, verb="", path=""):
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.reason = self.body.get("reason", "")
        self.method = verb  # the HTTP method, as sent
        self.path = path
        super().__init__(f"{verb} {path}: {status} {self.reason}: {self.body.get('message', '')}")

    @property
    def not_found(self):
        return self.status == 404

    @property
    def conflict(self):
        return self.status == 409

    @property
    def already_exists(self):
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self):
        return self.status == 410


@dataclass(frozen=True)
class Resource:
    """Where a kind lives: group ("" for core), version, plural, namespaced."""

    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace=None, name=None, subresource=None):
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base


PODS = Resource("", "v1", "pods", kind="Pod")
EVENTS = Resource("", "v1", "events", kind="Event")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False, kind="Namespace")
LEASES = Resource("coordination.k8s.io", "v1", "leases", kind="Lease")
VMS = Resource("kubevirt.io", "v1", "virtualmachines", kind="VirtualMachine")
VMIS = Resource("kubevirt.io", "v1", "virtualmachineinstances", kind="VirtualMachineInstance")


class RequestCounter:
    """Counts requests by (verb, resource[/subresource]); thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = Counter()

    def add(self, verb, resource):
        with self._lock:
            self.counts[(verb, resource)] += 1

    def snapshot(self):
        with self._lock:
            return Counter(self.counts)


class ResourceClient:
    """CRUD + list/watch for one Resource, returning dicts."""

    def __init__(self, api_client, resource, counters=()):
        self.api = api_client
        self.resource = resource
        self.counters = list(counters)

    # -- plumbing

    def request(self, method, path, query=None, body=None, content_type=None, timeout=None, stream=False,
                verb=None, subresource=None):
        """One HTTP call to the API server at `path` (absolute, e.g. from `Resource.path`), for what the verbs
        below do not cover (subresources of other API groups, raw paths). Returns the decoded JSON body
        ({} when empty), or with `stream` the raw urllib3 response; raises ApiError on a non-2xx answer.
        `verb` (default: from the method) and `subresource` only label the request metrics."""
        verb = verb or _VERBS.get(method, method.lower())
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        query_list = [(k, v) for k, v in (query or {}).items() if v is not None]
        method, url, headers, _body, _post_params = self.api.param_serialize(
            method=method, resource_path=path, query_params=query_list, header_params=headers,
            auth_settings=["BearerToken"])
        label = self.resource.plural + (f"/{subresource}" if subresource else "")
        REQUESTS_METRIC.labels(verb, label).inc()
        for counter in self.counters:
            counter.add(verb, label)
        if timeout is None and not stream:
            timeout = DEFAULT_TIMEOUT  # a request that never returns would hold a controller worker forever
        # the REST layer JSON-encodes dicts and lists itself for every application/*json content type
        response = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        if stream and 200 <= response.status < 300:
            return response.response
        raw = response.read()
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = {"message": raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)}
        if not 200 <= response.status < 300:
            raise ApiError(response.status, decoded, method, path)
        return decoded

    # -- verbs

    def get(self, name, namespace=None, subresource=None):
        return self.request("GET", self.resource.path(namespace, name, subresource), subresource=subresource)

    def list(self, namespace=None, label_selector=None, field_selector=None, resource_version=None, limit=None,
             continue_token=None, timeout=60):
        query = {"labelSelector": label_selector, "fieldSelector": field_selector,
                 "resourceVersion": resource_version, "limit": limit, "continue": continue_token}
        return self.request("GET", self.resource.path(namespace), query, timeout=timeout, verb="list")

    # `dry_run`: the API server runs admission and validation and answers with the result, storing nothing.

    def create(self, obj, namespace=None, dry_run=False):
        return self.request("POST", self.resource.path(namespace or _ns(obj)), _dry_run(dry_run), body=obj)

    def update(self, obj, namespace=None, subresource=None, dry_run=False):
        meta = obj["metadata"]
        return self.request("PUT", self.resource.path(namespace or meta.get("namespace"), meta["name"], subresource),
                            _dry_run(dry_run), body=obj, subresource=subresource)

    def patch(self, name, patch, namespace=None, content_type=MERGE_PATCH, subresource=None, dry_run=False):
        return self.request("PATCH", self.resource.path(namespace, name, subresource), _dry_run(dry_run), body=patch,
                            content_type=content_type, subresource=subresource)

    def patch_status(self, name, patch, namespace=None, content_type=MERGE_PATCH):
        return self.patch(name, patch, namespace, content_type, subresource="status")

    def delete(self, name, namespace=None, uid=None, resource_version=None, propagation_policy=None,
               grace_period_seconds=None, dry_run=False):
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            body["preconditions"] = preconditions
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if dry_run:  # with a body, the API server reads the options from it and ignores the query
            body["dryRun"] = ["All"]
        return self.request("DELETE", self.resource.path(namespace, name), _dry_run(dry_run), body=body)

    def watch(self, namespace=None, resource_version=None, label_selector=None, field_selector=None,
              timeout_seconds=300, bookmarks=True):
        """Yields watch events ({"type": ..., "object": {...}}) until the server closes the stream."""
        query = {"watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
                 "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                 "allowWatchBookmarks": "true" if bookmarks else None}
        raw = self.request("GET", self.resource.path(namespace), query, stream=True, timeout=(10, timeout_seconds + 30),
                           verb="watch")
        try:
            yield from _json_lines(raw)
        finally:
            raw.release_conn()


_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _dry_run(dry_run):
    return {"dryRun": "All"} if dry_run else None


def _ns(obj):
    return (obj.get("metadata") or {}).get("namespace")


def _json_lines(raw):
    buffer = b""
    for chunk in raw.stream(amt=None, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)
