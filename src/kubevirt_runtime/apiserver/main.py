"""virt-api: admission webhooks and the subresources.kubevirt.io aggregated API (Deployment).

    virt-api --tls-cert-file F --tls-key-file F [--address 0.0.0.0 --port 8443] [--kubeconfig PATH]
             [--handler-client-cert F --handler-client-key F --handler-ca F]   (env HANDLER_CLIENT_CERT/KEY, HANDLER_CA)
             [--handler-namespace kubevirt (env POD_NAMESPACE)] [--handler-port 8186]
             [--handler-server-name virt-handler] [--handler-address HOST:PORT]
             [--metrics-port 8080 (plain HTTP /healthz /readyz /metrics; -1: off)] [--requestheader-refresh 60]

The front-proxy settings (request-header CA, allowed names, header names) are read from
kube-system/extension-apiserver-authentication at start and re-read every --requestheader-refresh seconds;
until they are loaded /readyz fails and subresource requests answer 503 (webhooks work right away).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from kubevirt_runtime.machinery.health import HealthServer
from kubevirt_runtime.machinery.kubeconfig import load_api_client
from kubevirt_runtime.machinery.logs import setup_logging

from .auth import Authorizer, load_requestheader_config, server_ssl_context
from .cluster_config import ClusterConfig
from .migration import ApiCluster
from .server import App, serve
from .subresources import HandlerClient, HandlerLocator, VMActions
from .volumes import VolumeActions

log = logging.getLogger("virt-api")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="virt-api", description="KubeVirt's API server: webhooks and subresources.")
    p.add_argument("--address", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8443, help="HTTPS port (0: any free port)")
    p.add_argument("--tls-cert-file", default=os.environ.get("VIRT_API_TLS_CERT"), required=False)
    p.add_argument("--tls-key-file", default=os.environ.get("VIRT_API_TLS_KEY"), required=False)
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    p.add_argument("--handler-client-cert", default=os.environ.get("HANDLER_CLIENT_CERT"))
    p.add_argument("--handler-client-key", default=os.environ.get("HANDLER_CLIENT_KEY"))
    p.add_argument("--handler-ca", default=os.environ.get("HANDLER_CA"),
                   help="CA of virt-handler's serving certificate")
    p.add_argument("--handler-namespace", default=os.environ.get("POD_NAMESPACE") or "kubevirt",
                   help="namespace of the virt-handler pods")
    p.add_argument("--handler-port", type=int, default=8186)
    p.add_argument("--handler-server-name", default="virt-handler",
                   help="name virt-handler's certificate must carry (pods are reached by IP)")
    p.add_argument("--handler-address", default=None,
                   help="HOST:PORT of the one virt-handler to use instead of looking up the VMI's node (tests)")
    p.add_argument("--metrics-address", default="0.0.0.0")
    p.add_argument("--metrics-port", type=int, default=8080)
    p.add_argument("--requestheader-refresh", type=float, default=60.0)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = p.parse_args(argv)
    if not args.tls_cert_file or not args.tls_key_file:
        p.error("--tls-cert-file and --tls-key-file are required (the API server only calls webhooks over TLS)")
    return args


class FrontProxyConfig:
    """The request-header config and the TLS context built from it; reloaded in the background."""

    def __init__(self, api_client, cert_file, key_file):
        self.api_client = api_client
        self.cert_file, self.key_file = cert_file, key_file
        self.config = None
        self._context = None
        self._webhook_only = server_ssl_context_without_clients(cert_file, key_file)
        self._lock = threading.Lock()

    def load(self) -> bool:
        try:
            config = load_requestheader_config(self.api_client)
            if config != self.config:
                context = server_ssl_context(config, self.cert_file, self.key_file)
                with self._lock:
                    self.config, self._context = config, context
                log.info("front-proxy settings loaded (allowed names %s)", list(config.allowed_names))
            return True
        except Exception as exc:  # not there yet, no permission, API down: keep serving with what we have
            log.warning("cannot load the front-proxy settings: %s", exc)
            return False

    def requestheader(self):
        return self.config

    def ssl_context(self):
        return self._context or self._webhook_only


def server_ssl_context_without_clients(cert_file, key_file):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging("virt-api", args.log_level)
    api_client = load_api_client(args.kubeconfig)
    front_proxy = FrontProxyConfig(api_client, args.tls_cert_file, args.tls_key_file)
    front_proxy.load()
    cluster_config = ClusterConfig(api_client, args.handler_namespace)
    cluster_config.start()
    app = App(front_proxy.ssl_context, front_proxy.requestheader, Authorizer(api_client), VMActions(api_client),
              HandlerLocator(api_client, args.handler_namespace, args.handler_port, args.handler_address),
              HandlerClient(args.handler_client_cert, args.handler_client_key, args.handler_ca,
                            args.handler_server_name),
              ready=lambda: front_proxy.config is not None, admission_context=cluster_config.context,
              cluster=ApiCluster(api_client, cluster_config.informer.store),
              volume_actions=VolumeActions(api_client))
    if not args.handler_client_cert:
        log.warning("no handler client certificate: pause, unpause and console answer 503")
    server, _thread = serve(app, args.address, args.port)
    log.info("serving HTTPS on %s:%d", args.address, server.server_address[1])
    health = None
    if args.metrics_port >= 0:
        health = HealthServer(args.metrics_address, args.metrics_port)
        health.add_readiness("front-proxy", app.ready)
        health.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    while not stop.wait(args.requestheader_refresh if front_proxy.config else 2.0):
        front_proxy.load()
    log.info("stopping")
    server.shutdown()
    server.server_close()
    cluster_config.stop()
    if health:
        health.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
