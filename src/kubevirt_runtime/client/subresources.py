"""Calls on subresources.kubevirt.io/v1 through the kube-apiserver (the aggregated API), shared by virtctl and
the Ansible modules.

    api_client, namespace = connect(kubeconfig=None, context=None)    # KUBECONFIG / ~/.kube/config / in-cluster
    sub = Subresources(api_client)
    sub.vm(namespace, "vm1", "start")             # start | stop | restart  (PUT, 200 or ApiError)
    sub.vmi(namespace, "vm1", "pause")            # pause | unpause | softreboot | reset
    sub.guestosinfo(namespace, "vm1")             # dict (also userlist, filesystemlist)
    ws = sub.console(namespace, "vm1")            # websockets.sync.client.ClientConnection (binary frames)
    ws = sub.stream(namespace, "vm1", "vnc", query="preserveSession=false")
    ws = sub.stream(namespace, "vm1", "portforward/22/tcp", resource="virtualmachines")
    ws = sub.open_console(namespace, "vm1", timeout=300)   # the same, retrying until the VMI runs

The streams are WebSocket upgrades of GET .../{resource}/{name}/{console,vnc,portforward/...} with the
subprotocol plain.kubevirt.io, authenticated to the kube-apiserver with the kubeconfig's credentials.
"""
from __future__ import annotations

import os
import ssl
import time

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from ..machinery.resource import VMIS, ApiError, Resource, ResourceClient

GROUP = "subresources.kubevirt.io"
VERSION = "v1"
CONSOLE_SUBPROTOCOL = "plain.kubevirt.io"
VM_SUBRESOURCES = ("start", "stop", "restart", "migrate")
VMI_SUBRESOURCES = ("pause", "unpause", "softreboot", "reset")

_VMS = Resource(GROUP, VERSION, "virtualmachines", kind="VirtualMachine")
_VMIS = Resource(GROUP, VERSION, "virtualmachineinstances", kind="VirtualMachineInstance")

__all__ = ["ApiError", "Subresources", "connect", "CONSOLE_SUBPROTOCOL"]


def connect(kubeconfig: str | None = None, context: str | None = None):
    """(ApiClient, default namespace) from a kubeconfig (argument, $KUBECONFIG, ~/.kube/config), else the
    in-cluster service account."""
    configuration = k8s_client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if kubeconfig or os.path.exists(path.split(os.pathsep)[0]):
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        _contexts, active = k8s_config.list_kube_config_contexts(config_file=path)
        if context:
            contexts, _active = k8s_config.list_kube_config_contexts(config_file=path)
            active = next((c for c in contexts if c["name"] == context), active)
        namespace = ((active or {}).get("context") or {}).get("namespace") or "default"
    else:
        k8s_config.load_incluster_config(client_configuration=configuration)
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as fh:
                namespace = fh.read().strip() or "default"
        except OSError:
            namespace = "default"
    return k8s_client.ApiClient(configuration), namespace


class Subresources:
    def __init__(self, api_client):
        self.api = api_client
        self._vms = ResourceClient(api_client, _VMS)
        self._vmis = ResourceClient(api_client, _VMIS)

    def vm(self, namespace: str, name: str, action: str, body: dict | None = None) -> None:
        if action not in VM_SUBRESOURCES:
            raise ValueError(f"unknown VM subresource {action!r}")
        self._vms.request("PUT", _VMS.path(namespace, name, action), body=body or {}, subresource=action)

    def vmi(self, namespace: str, name: str, action: str, body: dict | None = None) -> None:
        if action not in VMI_SUBRESOURCES:
            raise ValueError(f"unknown VMI subresource {action!r}")
        self._vmis.request("PUT", _VMIS.path(namespace, name, action), body=body or {}, subresource=action)

    def get_vmi(self, namespace: str, name: str) -> dict:
        """The VirtualMachineInstance itself (kubevirt.io/v1)."""
        return ResourceClient(self.api, VMIS).get(name, namespace)

    def guestosinfo(self, namespace: str, name: str) -> dict:
        return self._vmis.get(name, namespace, subresource="guestosinfo")

    def userlist(self, namespace: str, name: str) -> dict:
        return self._vmis.get(name, namespace, subresource="userlist")

    def filesystemlist(self, namespace: str, name: str) -> dict:
        return self._vmis.get(name, namespace, subresource="filesystemlist")

    # -- streams (console, vnc, portforward)

    def stream_url(self, namespace: str, name: str, subresource: str, resource: str = "virtualmachineinstances",
                   query: str = "") -> str:
        host = self.api.configuration.host.rstrip("/")
        scheme = "wss" if host.startswith("https") else "ws"
        res = _VMS if resource == "virtualmachines" else _VMIS
        return scheme + host[host.index(":"):] + res.path(namespace, name, subresource) + (f"?{query}" if query else "")

    def console_url(self, namespace: str, name: str) -> str:
        return self.stream_url(namespace, name, "console")

    def ssl_context(self):
        cfg = self.api.configuration
        if not cfg.host.startswith("https"):
            return None
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if not cfg.verify_ssl:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif getattr(cfg, "assert_hostname", None) is False:
            ctx.check_hostname = False
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        return ctx

    def auth_headers(self) -> dict:
        cfg = self.api.configuration
        if cfg.refresh_api_key_hook is not None:
            cfg.refresh_api_key_hook(cfg)
        return {setting["key"]: setting["value"] for setting in cfg.auth_settings().values()
                if setting.get("in") == "header" and setting.get("value")}

    def headers(self) -> list[tuple[str, str]]:
        """The credentials plus the ApiClient's default headers (impersonation may repeat Impersonate-Group)."""
        pairs = list(self.auth_headers().items())
        pairs += [(str(k), str(v)) for k, v in (getattr(self.api, "default_headers", None) or {}).items()
                  if str(k).lower() != "user-agent"]
        return pairs

    def console(self, namespace: str, name: str, open_timeout: float = 30):
        """Opens the serial console; raises ApiError with the server's Status when the upgrade is refused."""
        return self.stream(namespace, name, "console", open_timeout=open_timeout)

    def stream(self, namespace: str, name: str, subresource: str, resource: str = "virtualmachineinstances",
               query: str = "", open_timeout: float = 30):
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect as ws_connect
        url = self.stream_url(namespace, name, subresource, resource, query)
        try:
            return ws_connect(url, ssl=self.ssl_context(),
                              additional_headers=self.headers(), subprotocols=[CONSOLE_SUBPROTOCOL],
                              open_timeout=open_timeout, compression=None, max_size=None, ping_interval=None,
                              user_agent_header="virtctl (kubevirt-ops)")
        except InvalidStatus as exc:
            response = exc.response
            import json
            try:
                body = json.loads(response.body or b"{}")
            except ValueError:
                body = {"message": (response.body or b"").decode(errors="replace")}
            raise ApiError(response.status_code, body, "GET", url) from None

    def open_console(self, namespace: str, name: str, timeout: float = 300.0, on_wait=None):
        """console(), retried while the VMI does not exist or does not run yet (404, 409, 502, 503 or a refused
        connection) until `timeout` seconds have passed, as upstream virtctl waits; on_wait(reason) hears why."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.console(namespace, name, open_timeout=max(5.0, min(30.0, deadline - time.monotonic())))
            except ApiError as exc:
                if exc.status not in (404, 409, 502, 503) or time.monotonic() > deadline:
                    raise
                reason = exc.body.get("message") or str(exc)
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise ApiError(503, {"message": str(exc)}) from exc
                reason = str(exc)
            if on_wait is not None:
                on_wait(reason)
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())) or 0.1)
