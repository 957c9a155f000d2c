"""Kubernetes service discovery for a Prometheus without it: an HTTP SD endpoint fed by a pod informer.

Debian's prometheus is built without the kubernetes_sd_configs plugin (client-go is not packaged there), but it
has http_sd_configs. This process follows the pods of a namespace through the Kubernetes API (list + watch,
label selector) and answers GET /targets with Prometheus's HTTP SD format: one target group per running pod
and container port of the given name, labelled as kubernetes_sd_configs (role: pod) would label it
(__meta_kubernetes_namespace, _pod_name, _pod_node_name, _pod_label_<label>, _pod_container_name, ...), so the
relabelling is the same. The monitoring role runs it beside Prometheus (roles/monitoring).

    python3 -m kubevirt_runtime.machinery.prometheus_sd --namespace kubevirt \\
        --label-selector 'kubevirt.io in (virt-handler,virt-controller,virt-api)' --port-name metrics --listen 8081
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("prometheus-sd")
_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def _label_name(key: str) -> str:
    return _LABEL_CHARS.sub("_", key)


def target_groups(pods, port_name: str) -> list[dict]:
    """Prometheus HTTP SD target groups of the running pods' container ports named `port_name` (pure)."""
    groups = []
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        if status.get("phase") != "Running" or not status.get("podIP") or meta.get("deletionTimestamp"):
            continue
        base = {"__meta_kubernetes_namespace": meta.get("namespace", ""),
                "__meta_kubernetes_pod_name": meta["name"],
                "__meta_kubernetes_pod_ip": status["podIP"],
                "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
                "__meta_kubernetes_pod_phase": status["phase"]}
        for key, value in (meta.get("labels") or {}).items():
            base[f"__meta_kubernetes_pod_label_{_label_name(key)}"] = value
        for container in spec.get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("name") != port_name:
                    continue
                labels = dict(base, __meta_kubernetes_pod_container_name=container["name"],
                              __meta_kubernetes_pod_container_port_name=port_name,
                              __meta_kubernetes_pod_container_port_number=str(port["containerPort"]))
                groups.append({"targets": [f"{status['podIP']}:{port['containerPort']}"], "labels": labels})
    return groups


class DiscoveryServer:
    def __init__(self, informer, port_name: str, address: str = "127.0.0.1", port: int = 8081):
        self.informer, self.port_name = informer, port_name
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] != "/targets":
                    return self._send(404, b"not found\n", "text/plain")
                if not server.informer.has_synced():
                    return self._send(503, b"pods not listed yet\n", "text/plain")
                body = json.dumps(target_groups(server.informer.store.list(), server.port_name)).encode()
                return self._send(200, body, "application/json")

            def _send(self, code, body, content_type):
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def start(self) -> "DiscoveryServer":
        threading.Thread(target=self.httpd.serve_forever, name="prometheus-sd", daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv=None) -> int:
    from .informer import Informer
    from .kubeconfig import load_api_client
    from .resource import PODS, ResourceClient

    p = argparse.ArgumentParser(prog="python3 -m kubevirt_runtime.machinery.prometheus_sd",
                                description="Prometheus HTTP service discovery of a namespace's pods.")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    p.add_argument("--namespace", required=True)
    p.add_argument("--label-selector", default=None)
    p.add_argument("--port-name", default="metrics", help="container ports of this name are the targets")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--listen", type=int, default=8081)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s prometheus-sd %(levelname)s %(message)s")
    informer = Informer(ResourceClient(load_api_client(args.kubeconfig), PODS), args.namespace,
                        label_selector=args.label_selector).start()
    server = DiscoveryServer(informer, args.port_name, args.address, args.listen).start()
    log.info("serving %s pods' %r ports on %s:%s/targets", args.namespace, args.port_name, args.address, server.port)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
