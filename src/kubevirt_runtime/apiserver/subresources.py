"""What the subresources do, as upstream virt-api does it.

VMs (through the kube API, with virt-api's own service account):
- start: Halted -> runStrategy Always (or ``running: true``); Manual / RerunOnFailure -> a Start state change
  request (after a Stop of a finished instance); Always / Once -> 409 (they start by themselves).
- stop: Always / Once -> runStrategy Halted (or ``running: false``); Manual / RerunOnFailure -> a Stop
  request naming the running instance, replacing any pending request (a stop always wins); nothing
  running -> 409.
- restart: a Stop request naming the running instance, then a Start; Halted or nothing running -> 409.
State change requests go to ``status.stateChangeRequests`` (the status subresource) with the VM's
resourceVersion as precondition, and (but for a stop) never on top of requests still pending. A Start
request records the VM's generation, so virt-controller can drop it once a later spec change (a stop
that set Halted) has superseded it.

VMIs (forwarded to the virt-handler of the VMI's node over mutual TLS): pause, unpause, softreboot, reset,
guestosinfo, userlist, filesystemlist, and the console, vnc and portforward streams; check_vmi_for() refuses
first what upstream's virt-api refuses (not running, paused, no guest agent, no display).
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl

from ..api import RunStrategy, StateChangeAction, VMIPhase, effective_run_strategy, vmi_is_final
from ..api.constants import REQUEST_GENERATION_KEY, ConditionType
from ..machinery.resource import PODS, VMIS, VMS, ApiError, ResourceClient

log = logging.getLogger(__name__)

SUBRESOURCE_GROUP = "subresources.kubevirt.io"
HANDLER_LABEL_SELECTOR = "kubevirt.io=virt-handler"


class SubresourceError(Exception):
    """An answer other than success: HTTP code, metav1 reason and message."""

    REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 500: "InternalError",
               502: "ServiceUnavailable", 503: "ServiceUnavailable", 504: "Timeout", 422: "Invalid"}

    def __init__(self, code: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or self.REASONS.get(code, "Unknown")

    def status(self, details: dict | None = None) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "code": self.code}
        if details:
            body["details"] = details
        return body


def _api_error(exc: ApiError) -> SubresourceError:
    return SubresourceError(exc.status, exc.body.get("message", str(exc)), exc.reason or None)


def _is_paused(vmi) -> bool:
    return any(c.get("type") == ConditionType.PAUSED and c.get("status") == "True"
               for c in (vmi.get("status") or {}).get("conditions") or [])


# ---------------------------------------------------------------- VMs

def plan_vm_action(action: str, vm: dict, vmi: dict | None):
    """Pure decision: returns ("spec", merge patch) or ("requests", [stateChangeRequests]); raises
    SubresourceError(409) when the action makes no sense in the VM's state."""
    name = vm["metadata"]["name"]
    strategy = effective_run_strategy(vm)
    uses_running = "runStrategy" not in (vm.get("spec") or {}) or not vm["spec"].get("runStrategy")
    running = vmi is not None and not vmi_is_final(vmi)
    pending = (vm.get("status") or {}).get("stateChangeRequests") or []

    def run_patch(on: bool):
        if uses_running:
            return {"spec": {"running": on}}
        return {"spec": {"runStrategy": RunStrategy.ALWAYS if on else RunStrategy.HALTED}}

    def requests(*items, replace_pending=False):
        if pending and not replace_pending:
            raise SubresourceError(409, f"VM {name} has pending state change requests; try again once they are done")
        return "requests", list(items)

    stop_current = {"action": StateChangeAction.STOP, "uid": (vmi or {}).get("metadata", {}).get("uid")}
    start = {"action": StateChangeAction.START,
             "data": {REQUEST_GENERATION_KEY: str(vm["metadata"].get("generation", 0))}}
    if action == "start":
        if strategy == RunStrategy.HALTED:
            return "spec", run_patch(True)
        if strategy in (RunStrategy.MANUAL, RunStrategy.RERUN_ON_FAILURE):
            if running:
                raise SubresourceError(409, f"VM {name} is already running")
            if vmi is not None:  # a finished instance is stopped (removed) before the new one starts
                return requests(stop_current, start)
            return requests(start)
        raise SubresourceError(409, f"{strategy} does not support manual start requests")
    if action == "stop":
        if strategy == RunStrategy.HALTED:
            raise SubresourceError(409, f"VM {name} is not running")
        if strategy in (RunStrategy.MANUAL, RunStrategy.RERUN_ON_FAILURE):
            if not running:
                raise SubresourceError(409, f"VM {name} is not running")
            return requests(stop_current, replace_pending=True)
        return "spec", run_patch(False)
    if action == "restart":
        if strategy == RunStrategy.HALTED:
            raise SubresourceError(409, f"{strategy} does not support manual restart requests")
        if vmi is None:
            raise SubresourceError(409, f"VM {name} is not running")
        return requests(stop_current, start)
    raise SubresourceError(404, f"no such subresource {action}")


def grace_period_from(action: str, body: bytes) -> int | None:
    """The grace period a stop ({"gracePeriod": N}) or restart ({"gracePeriodSeconds": 0}) asks for, as
    upstream's StopOptions and RestartOptions carry it; 400 for what upstream refuses."""
    if not body.strip():
        return None
    try:
        options = json.loads(body)
    except ValueError as exc:
        raise SubresourceError(400, f"the request body is not JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise SubresourceError(400, "the request body must be an object")
    key = {"stop": "gracePeriod", "restart": "gracePeriodSeconds"}.get(action)
    value = options.get(key) if key else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SubresourceError(400, f"{key} must be an integer")
    if value < 0:
        raise SubresourceError(400, f"{key} has to be greater or equal to 0")
    if action == "restart" and value > 0:
        raise SubresourceError(400, "For force restart, only gracePeriod=0 is supported for now")
    # A forced restart still gives the guest the shortest safe period, as upstream does.
    return max(value, 1) if action == "restart" else value


class VMActions:
    def __init__(self, api_client):
        self.vms = ResourceClient(api_client, VMS)
        self.vmis = ResourceClient(api_client, VMIS)

    def exists(self, namespace: str, name: str) -> bool:
        try:
            self.vms.get(name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def run(self, action: str, namespace: str, name: str, attempts: int = 5, grace_period: int | None = None) -> None:
        """Performs start/stop/restart; `grace_period` first shortens the running instance's
        terminationGracePeriodSeconds, so virt-handler stops its guest that fast."""
        for attempt in range(attempts):
            try:
                vm = self.vms.get(name, namespace)
            except ApiError as exc:
                raise _api_error(exc) from exc
            try:
                vmi = self.vmis.get(name, namespace)
            except ApiError as exc:
                if not exc.not_found:
                    raise _api_error(exc) from exc
                vmi = None
            kind, plan = plan_vm_action(action, vm, vmi)
            rv = vm["metadata"]["resourceVersion"]
            try:
                if grace_period is not None and vmi is not None and not vmi_is_final(vmi):
                    self.vmis.patch(name, {"spec": {"terminationGracePeriodSeconds": grace_period}}, namespace)
                if kind == "spec":
                    self.vms.patch(name, {"metadata": {"resourceVersion": rv}, **plan}, namespace)
                else:
                    self.vms.patch_status(name, {"metadata": {"resourceVersion": rv},
                                                 "status": {"stateChangeRequests": plan}}, namespace)
                log.info("%s %s/%s: %s", action, namespace, name, plan)
                return
            except ApiError as exc:
                if exc.conflict and attempt + 1 < attempts:
                    continue  # the VM changed under us: decide again on the new version
                raise _api_error(exc) from exc


# ---------------------------------------------------------------- VMIs -> virt-handler

class HandlerLocator:
    """Finds the virt-handler serving a VMI's node: its pod IP in `namespace` (label kubevirt.io=virt-handler)
    and the handler's mTLS port. `static_address` ("host:port") replaces the lookup (tests, local runs)."""

    def __init__(self, api_client, namespace: str, port: int, static_address: str | None = None):
        self.pods = ResourceClient(api_client, PODS)
        self.vmis = ResourceClient(api_client, VMIS)
        self.namespace = namespace
        self.port = port
        self.static_address = static_address

    def vmi(self, namespace: str, name: str) -> dict:
        try:
            return self.vmis.get(name, namespace)
        except ApiError as exc:
            raise _api_error(exc) from exc

    def address_for(self, vmi: dict) -> tuple[str, int]:
        if self.static_address:
            host, _colon, port = self.static_address.rpartition(":")
            return host, int(port)
        node = (vmi.get("status") or {}).get("nodeName")
        if not node:
            raise SubresourceError(409, f"VMI {vmi['metadata']['name']} is not scheduled to a node yet")
        try:
            pods = self.pods.list(self.namespace, label_selector=HANDLER_LABEL_SELECTOR,
                                  field_selector=f"spec.nodeName={node}").get("items") or []
        except ApiError as exc:
            raise _api_error(exc) from exc
        for pod in pods:
            status = pod.get("status") or {}
            deleting = pod["metadata"].get("deletionTimestamp")
            if status.get("phase") == "Running" and status.get("podIP") and not deleting:
                return status["podIP"], self.port
        raise SubresourceError(503, f"no running virt-handler on node {node}")


def _has_condition(vmi, cond_type: str) -> bool:
    return any(c.get("type") == cond_type and c.get("status") == "True"
               for c in (vmi.get("status") or {}).get("conditions") or [])


def check_vmi_for(verb: str, vmi: dict) -> None:
    """Upstream's preconditions, so the user gets a clear error before anything reaches the node."""
    name = vmi["metadata"]["name"]
    spec = vmi.get("spec") or {}
    devices = (spec.get("domain") or {}).get("devices") or {}
    if verb == "vnc" and devices.get("autoattachGraphicsDevice") is False:
        raise SubresourceError(400, "No graphics devices are present.")
    phase = (vmi.get("status") or {}).get("phase")
    if phase != VMIPhase.RUNNING:
        raise SubresourceError(400 if verb == "vnc" else 409, f"VMI {name} is not running")
    paused = _is_paused(vmi)
    if verb == "pause" and paused:
        raise SubresourceError(409, f"VMI {name} is already paused")
    if verb == "unpause" and not paused:
        raise SubresourceError(409, f"VMI {name} is not paused")
    if verb in ("softreboot", "portforward") and paused:
        raise SubresourceError(409, f"VMI {name} is paused")
    agent = _has_condition(vmi, ConditionType.AGENT_CONNECTED)
    if verb in ("guestosinfo", "userlist", "filesystemlist") and not agent:
        raise SubresourceError(409, f"VMI {name} does not have guest agent connected")
    acpi = (((spec.get("domain") or {}).get("features") or {}).get("acpi") or {}).get("enabled", True)
    if verb == "softreboot" and not agent and acpi is False:
        raise SubresourceError(409, f"VMI {name} neither has the guest agent connected nor the ACPI feature enabled")


class HandlerClient:
    """HTTPS with virt-api's client certificate to virt-handler (server certificate checked against the
    handler CA, for the name `server_name`, since pods are reached by IP)."""

    def __init__(self, cert_file: str | None, key_file: str | None, ca_file: str | None,
                 server_name: str = "virt-handler", timeout: float = 30):
        self.server_name = server_name
        self.timeout = timeout
        self.context = None
        if cert_file and key_file and ca_file:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
            ctx.load_cert_chain(cert_file, key_file)
            self.context = ctx

    def _ctx(self):
        if self.context is None:
            raise SubresourceError(503, "virt-api has no client certificate for virt-handler "
                                        "(--handler-client-cert/--handler-client-key/--handler-ca)")
        return self.context

    @staticmethod
    def path(namespace, name, verb) -> str:
        return f"/v1/namespaces/{namespace}/virtualmachineinstances/{name}/{verb}"

    def request(self, address, method: str, path: str, body: bytes = b"", timeout: float | None = None
                ) -> tuple[int, bytes]:
        timeout = timeout or self.timeout
        conn = http.client.HTTPSConnection(address[0], address[1], context=self._ctx(), timeout=timeout)
        conn.sock = None
        try:
            raw = socket.create_connection(address, timeout=timeout)
            conn.sock = self._ctx().wrap_socket(raw, server_hostname=self.server_name)
            conn.request(method, path, body=body if method == "PUT" else None)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            raise SubresourceError(502, f"virt-handler at {address[0]}:{address[1]}: {exc}") from exc
        finally:
            conn.close()

    def connect(self, address) -> ssl.SSLSocket:
        try:
            raw = socket.create_connection(address, timeout=self.timeout)
            return self._ctx().wrap_socket(raw, server_hostname=self.server_name)
        except (OSError, ssl.SSLError) as exc:
            raise SubresourceError(502, f"virt-handler at {address[0]}:{address[1]}: {exc}") from exc


def handler_error(code: int, body: bytes) -> SubresourceError:
    try:
        message = json.loads(body).get("message") or body.decode(errors="replace")
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    return SubresourceError(code if code in (400, 404, 409, 503) else 502, f"virt-handler: {message.strip()}")
