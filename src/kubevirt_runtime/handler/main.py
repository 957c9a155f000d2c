"""virt-handler: the node agent (DaemonSet). Drives this node's launchers and writes VMI status.

    virt-handler --node-name NODE [--kubeconfig PATH] [--kubelet-root /var/lib/kubelet] [--metrics-port PORT]
                 [--socket-path-template PATH] [--use-emulation]
                 [--device-plugin-dir /var/lib/kubelet/device-plugins [--device-root /host]]
    virt-handler --device-plugins-only --device-plugin-dir DIR [--device-root /host]

The DaemonSet runs the device plugins in a container of their own (--device-plugins-only): the kubelet marks
a plugin's devices unhealthy the moment the plugin disconnects, so a plugin that went down with every
virt-handler restart made the kubelet reject the launcher pods it admitted meanwhile.
                 [--listen-address 0.0.0.0 --listen-port 8186 --tls-cert F --tls-key F --client-ca F
                  --allowed-client-cn virt-api]
                 [--migration-port 8187 --migration-address $POD_IP --migration-ca F]  (live migration proxy)

Stopping or restarting it never stops a VM: the launchers keep their domains, and a new virt-handler
finds them again and reconverges the status.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading

from prometheus_client import REGISTRY

from kubevirt_runtime.api.constants import APP_LABEL, LAUNCHER_APP_VALUE, NODE_NAME_LABEL
from kubevirt_runtime.api.migration import TARGET_NODE_LABEL
from kubevirt_runtime.api.volumes import HOTPLUG_APP_VALUE
from kubevirt_runtime.machinery.cluster_config import ClusterConfigSource, StaticClusterConfig
from kubevirt_runtime.machinery.events import EventRecorder
from kubevirt_runtime.machinery.health import HealthServer
from kubevirt_runtime.machinery.informer import Informer
from kubevirt_runtime.machinery.kubeconfig import load_api_client
from kubevirt_runtime.machinery.logs import setup_logging
from kubevirt_runtime.machinery.resource import PODS, VMIS, ResourceClient

from .controller import VMIHandler
from .hotplug import HotplugLookup
from .locator import DEFAULT_KUBELET_ROOT, PodSocketLocator, TemplateSocketLocator
from .metrics import DomainStatsCollector
from .migration_agent import MigrationAgent
from .node_accel import NodeAccel

log = logging.getLogger("virt-handler")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="virt-handler", description="KubeVirt's node agent.")
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME") or socket.gethostname(),
                   help="this node (default: $NODE_NAME, else the hostname)")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    p.add_argument("--kubelet-root", default=DEFAULT_KUBELET_ROOT, help="where the kubelet keeps pod volumes")
    p.add_argument("--socket-path-template", default=None,
                   help="find launcher sockets by this template ({namespace}, {name}, {uid}) instead of "
                        "through launcher pods (launchers as local processes)")
    p.add_argument("--use-emulation", action="store_true",
                   default=os.environ.get("KUBEVIRT_USE_EMULATION", "").lower() in ("1", "true", "yes"),
                   help="tell launchers to use TCG without probing KVM (KubeVirt's useEmulation)")
    p.add_argument("--accel", choices=("kvm", "tcg"), default=None,
                   help="tell launchers which accelerator to use (default: decided once for this node: TCG under "
                        "useEmulation, else KVM only if a probe guest runs on /dev/kvm)")
    p.add_argument("--kubevirt-namespace", default=os.environ.get("POD_NAMESPACE", ""),
                   help="where the KubeVirt CR lives (its useEmulation applies; default: $POD_NAMESPACE; empty: "
                        "only --use-emulation)")
    p.add_argument("--device-plugin-dir", default=None,
                   help="serve the device plugin for /dev/kvm, /dev/net/tun and /dev/vhost-net to the kubelet "
                        "of this directory (default: off)")
    p.add_argument("--device-root", default="",
                   help="where the node's root is mounted, to see its /dev as it is now (default: this /dev)")
    p.add_argument("--device-plugins-only", action="store_true",
                   help="serve only the device plugins (--device-plugin-dir), until SIGTERM: no API client")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--listen-address", default="0.0.0.0")
    p.add_argument("--listen-port", type=int, default=8186, help="mTLS port for virt-api (0: any free port)")
    p.add_argument("--tls-cert", default=os.environ.get("HANDLER_TLS_CERT"))
    p.add_argument("--tls-key", default=os.environ.get("HANDLER_TLS_KEY"))
    p.add_argument("--client-ca", default=os.environ.get("HANDLER_CLIENT_CA"),
                   help="CA that signs virt-api's client certificate")
    p.add_argument("--allowed-client-cn", action="append", default=None,
                   help="subject CN a client certificate must have (repeatable; default: any cert from the CA)")
    p.add_argument("--metrics-port", type=int, default=-1,
                   help="port of plain HTTP /healthz, /readyz and /metrics (per-VMI domain stats; the DaemonSet "
                        "uses 8443); -1 (default): off")
    p.add_argument("--migration-port", type=int, default=-1,
                   help="port of the live migration proxy (mutual TLS between handlers, with --tls-cert/--tls-key, "
                        "whose certificate must also be a client's; CA: --migration-ca); -1: no live migration")
    p.add_argument("--migration-address", default=os.environ.get("POD_IP") or "",
                   help="where other handlers reach this one's migration proxy (default: $POD_IP)")
    p.add_argument("--migration-ca", default=os.environ.get("HANDLER_MIGRATION_CA"),
                   help="CA of the handlers' certificates (default: --client-ca)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p.parse_args(argv)


def build(args, api_client):
    vmi_client = ResourceClient(api_client, VMIS)
    informer = Informer(vmi_client, label_selector=f"{NODE_NAME_LABEL}={args.node_name}")
    hotplug = None
    if args.socket_path_template:
        locator = TemplateSocketLocator(args.socket_path_template)
    else:
        # launcher pods and the attachment pods of hotplugged volumes (the locator only looks at launchers)
        selector = f"{APP_LABEL} in ({LAUNCHER_APP_VALUE},{HOTPLUG_APP_VALUE})"
        pods = Informer(ResourceClient(api_client, PODS), label_selector=selector,
                        field_selector=f"spec.nodeName={args.node_name}")
        locator = PodSocketLocator(pods, args.kubelet_root)
        hotplug = HotplugLookup(pods.store, args.kubelet_root)
    cluster = ClusterConfigSource(api_client, args.kubevirt_namespace).start() if args.kubevirt_namespace \
        else StaticClusterConfig()
    accel = NodeAccel(cluster, bool(args.use_emulation), args.accel)
    recorder = EventRecorder(api_client, "virt-handler", args.node_name)
    migrations = target_informer = None
    if args.migration_port >= 0:
        if not (args.tls_cert and args.tls_key and (args.migration_ca or args.client_ca) and args.migration_address):
            raise SystemExit("--migration-port needs --tls-cert, --tls-key, --migration-ca (or --client-ca) and "
                             "--migration-address (or $POD_IP)")
        migrations = MigrationAgent(args.migration_address, args.migration_port, args.tls_cert, args.tls_key,
                                    args.migration_ca or args.client_ca,
                                    cluster_config=cluster)
        target_informer = Informer(vmi_client, label_selector=f"{TARGET_NODE_LABEL}={args.node_name}")
    handler = VMIHandler(vmi_client, informer, locator, args.node_name, recorder, accel.sync_options,
                         migrations=migrations, target_informer=target_informer, hotplug=hotplug)
    if hotplug is not None:
        def attachment_pod_changed(pod):
            key = hotplug.vmi_key(pod)
            if key:
                handler.queue.add(key)
        pods.add_handler(attachment_pod_changed, lambda old, new: attachment_pod_changed(new),
                         attachment_pod_changed)
    return handler


def _sweep_hotplug(lookup, stop, interval: float = 30.0):
    """Hotplug mounts left in the emptyDirs of launcher pods that are gone (the kubelet cannot remove those)."""
    while not stop.wait(interval):
        try:
            for leftover in lookup.sweep():
                log.info("unmounted the leftover hotplug disk %s", leftover)
        except OSError as exc:
            log.warning("hotplug sweep: %s", exc)


def termination_event() -> threading.Event:
    """Set by SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    return stop


def serve_device_plugins(args) -> int:
    if not args.device_plugin_dir:
        log.error("--device-plugins-only needs --device-plugin-dir")
        return 2
    from .deviceplugin.server import DevicePluginManager
    plugins = DevicePluginManager(args.device_plugin_dir, args.device_root).start()
    log.info("serving the device plugins in %s", args.device_plugin_dir)
    termination_event().wait()
    plugins.stop()
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging("virt-handler", args.log_level)
    if args.device_plugins_only:
        return serve_device_plugins(args)
    api_client = load_api_client(args.kubeconfig)
    handler = build(args, api_client)
    plugins = None
    if args.device_plugin_dir:
        from .deviceplugin.server import DevicePluginManager
        plugins = DevicePluginManager(args.device_plugin_dir, args.device_root).start()
    handler.locator.start()
    for informer in handler._informers():
        informer.start()
    if handler.migrations is not None:
        handler.migrations.start()
        log.info("live migration proxy on %s:%s (mutual TLS)", *handler.migrations.endpoint)
    server = None
    if args.tls_cert and args.tls_key and args.client_ca:
        from .server import ConsoleServer
        server = ConsoleServer(handler, args.listen_address, args.listen_port, args.tls_cert, args.tls_key,
                               args.client_ca, args.allowed_client_cn or ()).start()
        log.info("serving virt-api on %s:%s (mutual TLS)", args.listen_address, server.port)
    else:
        log.warning("no --tls-cert/--tls-key/--client-ca: the console and pause endpoints are off")
    health = None
    if args.metrics_port >= 0:
        health = HealthServer(args.listen_address, args.metrics_port)
        health.add_liveness("ping", lambda: True)
        health.add_readiness("caches-synced", handler.has_synced)
        REGISTRY.register(DomainStatsCollector(handler))
        health.start()
    for informer in handler._informers():
        informer.wait_for_sync()
    handler.locator.wait_for_sync()  # never conclude anything about a launcher from an empty pod cache
    handler.start_workers(args.workers)
    log.info("virt-handler on node %s is running", args.node_name)

    stop = termination_event()
    if handler.hotplug is not None:
        threading.Thread(target=_sweep_hotplug, args=(handler.hotplug, stop), name="hotplug-sweep",
                         daemon=True).start()
    stop.wait()
    log.info("stopping (VMs keep running)")
    for informer in handler._informers():
        informer.stop()
    handler.stop()
    if handler.migrations is not None:
        handler.migrations.stop()
    if plugins:
        plugins.stop()
    if server:
        server.stop()
    if health:
        health.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
