"""virt-controller: the cluster-wide VM and VMI controllers, active on the elected leader only.

    virt-controller [--kubeconfig PATH] [--launcher-image IMAGE] [--leader-elect/--no-leader-elect]
                    [--leader-elect-namespace NS] [--metrics-port 8443] ...

Without --kubeconfig (or $KUBECONFIG) it uses the in-cluster service account. Losing the lease ends the
process (exit code 1) so the Deployment restarts it with a fresh cache, as upstream does.
"""
import argparse
import logging
import os
import signal
import socket
import sys
import threading

from ..machinery.cluster_config import ClusterConfigSource
from ..machinery.events import EventRecorder
from ..machinery.health import HealthServer
from ..machinery.informer import Informer, wait_for_cache_sync
from ..machinery.kubeconfig import load_api_client
from ..machinery.leaderelection import LeaderElector
from ..machinery.logs import setup_logging
from ..machinery.resource import PODS, VMIS, VMS, ResourceClient
from ..machinery.store import object_key
from . import metrics
from .config import DEFAULT_LAUNCHER_IMAGE, ControllerConfig
from .datavolume import DATAVOLUMES, PVCS, STORAGE_CLASSES, STORAGE_POD_SELECTOR, DataVolumeController
from .hotplug import HOTPLUG_POD_SELECTOR, HotplugController
from .instancetype import InstancetypeExpander
from .migration_controller import VMIMS, EvacuationController, MigrationController
from .pool import POOLS, PoolController
from .replicaset import VMIRS, ReplicaSetController
from .restore import RESTORES, RestoreController
from .snapshot import CONTENTS, SNAPSHOTS, SnapshotController
from .vm_controller import VMController
from .vm_storage import VMIVolumeGate, VMStorage
from .vmi_controller import VMIController, pod_indexers

log = logging.getLogger("virt-controller")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="virt-controller", description="KubeVirt's VM and VMI controllers.")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    p.add_argument("--launcher-image", default=os.environ.get("LAUNCHER_IMAGE", DEFAULT_LAUNCHER_IMAGE),
                   help="image of the virt-launcher pods (default: %(default)s)")
    p.add_argument("--launcher-pull-policy", default="IfNotPresent", choices=["Always", "IfNotPresent", "Never"])
    p.add_argument("--importer-image", default=os.environ.get("IMPORTER_IMAGE"),
                   help="image of the importer, snapshot and restore pods (virt-importer, qemu-img, busybox; "
                        "default: the launcher image, which has them)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="elect one active replica through a Lease (default: on)")
    p.add_argument("--leader-elect-namespace", default=os.environ.get("POD_NAMESPACE", "kubevirt"),
                   help="namespace of the Lease (default: $POD_NAMESPACE or kubevirt)")
    p.add_argument("--leader-elect-name", default="virt-controller", help="name of the Lease")
    p.add_argument("--leader-elect-identity", default=f"{socket.gethostname()}_{os.getpid()}")
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--metrics-host", default="0.0.0.0")
    p.add_argument("--metrics-port", type=int, default=8443, help="port of /healthz, /readyz, /metrics")
    p.add_argument("--namespace", default=None, help="only watch this namespace (default: all)")
    p.add_argument("--vm-workers", type=int, default=3)
    p.add_argument("--vmi-workers", type=int, default=3)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p.parse_args(argv)


class VirtController:
    """Informers + the two controllers, started when leading."""

    def __init__(self, api_client, config, namespace=None, counters=()):
        self.config = config
        vms, vmis, pods = (ResourceClient(api_client, resource, counters) for resource in (VMS, VMIS, PODS))
        self.vm_informer = Informer(vms, namespace)
        self.vmi_informer = Informer(vmis, namespace)
        self.pod_informer = Informer(pods, namespace, label_selector="kubevirt.io=virt-launcher",
                                     indexers=pod_indexers())
        self.recorder = EventRecorder(api_client, "virt-controller", socket.gethostname(), counters)
        self.cluster_config = ClusterConfigSource(api_client, config.namespace, counters)
        self.vmi_controller = VMIController(vmis, pods, self.vmi_informer, self.pod_informer, self.recorder, config,
                                            self.cluster_config)
        self.vm_controller = VMController(vms, vmis, self.vm_informer, self.vmi_informer, self.recorder,
                                          InstancetypeExpander(api_client, counters))
        replicasets, pools = (ResourceClient(api_client, resource, counters) for resource in (VMIRS, POOLS))
        self.replicaset_informer = Informer(replicasets, namespace)
        self.pool_informer = Informer(pools, namespace)
        self.replicaset_controller = ReplicaSetController(replicasets, vmis, self.replicaset_informer,
                                                          self.vmi_informer, self.recorder)
        self.pool_controller = PoolController(pools, vms, self.pool_informer, self.vm_informer, self.recorder)
        migrations = ResourceClient(api_client, VMIMS, counters)
        self.migration_informer = Informer(migrations, namespace)
        self.migration_controller = MigrationController(migrations, vmis, pods, self.migration_informer,
                                                        self.vmi_informer, self.pod_informer, self.recorder, config,
                                                        self.cluster_config)
        self.evacuation_controller = EvacuationController(migrations, self.migration_informer.store,
                                                          self.vmi_informer, self.recorder)
        self.vmi_informer.add_handler(on_update=metrics.observe_vmi_update)
        self._storage(api_client, config, namespace, counters)
        self.synced = threading.Event()

    def _storage(self, api_client, config, namespace, counters):
        """DataVolumes (CDI's API), the pods that fill them, and the PVCs and StorageClasses they use."""
        dvs, pvcs, pods = (ResourceClient(api_client, r, counters) for r in (DATAVOLUMES, PVCS, PODS))
        self.dv_informer = Informer(dvs, namespace)
        self.pvc_informer = Informer(pvcs, namespace)
        self.storage_pod_informer = Informer(pods, namespace, label_selector=STORAGE_POD_SELECTOR)
        self.class_informer = Informer(ResourceClient(api_client, STORAGE_CLASSES, counters))
        self.datavolume_controller = DataVolumeController(
            dvs, pvcs, pods, self.dv_informer, self.pvc_informer, self.storage_pod_informer, self.class_informer,
            self.recorder, config.importer_image or config.launcher_image, config.launcher_pull_policy)
        self.vm_controller.storage = VMStorage(
            dvs, ResourceClient(api_client, VMIS, counters), self.dv_informer, self.pvc_informer, self.vm_informer,
            lambda vm: self.vm_controller.queue.add(object_key(vm)), self.recorder)
        self.hotplug_informer = Informer(pods, namespace, label_selector=HOTPLUG_POD_SELECTOR)
        self.hotplug_controller = HotplugController(pods, self.vmi_informer, self.pod_informer, self.hotplug_informer,
                                                    self.recorder, config.launcher_image, config.launcher_pull_policy)
        image = config.importer_image or config.launcher_image
        snapshots, contents, restores = (ResourceClient(api_client, r, counters)
                                         for r in (SNAPSHOTS, CONTENTS, RESTORES))
        vms = ResourceClient(api_client, VMS, counters)
        self.snapshot_informer = Informer(snapshots, namespace)
        self.content_informer = Informer(contents, namespace)
        self.restore_informer = Informer(restores, namespace)
        self.snapshot_controller = SnapshotController(
            snapshots, contents, pvcs, pods, vms, vms, self.snapshot_informer, self.content_informer,
            self.vm_informer, self.vmi_informer, self.pvc_informer, self.storage_pod_informer, self.recorder, image,
            config.launcher_pull_policy)
        self.restore_controller = RestoreController(
            restores, pvcs, pods, vms, dvs, self.restore_informer, self.snapshot_informer, self.content_informer,
            self.vm_informer, self.vmi_informer, self.pvc_informer, self.storage_pod_informer, self.recorder, image,
            config.launcher_pull_policy)
        gate = VMIVolumeGate(self.dv_informer, self.vmi_informer, lambda vmi: self.vmi_controller.queue.add(
            object_key(vmi)))
        self.vmi_controller.volumes_waiting = gate.waiting

    def informers(self):
        return [self.vm_informer, self.vmi_informer, self.pod_informer, self.replicaset_informer, self.pool_informer,
                self.dv_informer, self.pvc_informer, self.storage_pod_informer, self.class_informer,
                self.migration_informer,
                self.hotplug_informer, self.snapshot_informer, self.content_informer, self.restore_informer]

    def run(self, sync_timeout=None):
        self.cluster_config.start()
        for informer in self.informers():
            informer.start()
        if not wait_for_cache_sync(self.informers(), sync_timeout):
            raise RuntimeError("caches did not sync")
        self.synced.set()
        metrics.READY.set(1)
        self.vmi_controller.start_workers(self.config.vmi_workers)
        self.vm_controller.start_workers(self.config.vm_workers)
        self.replicaset_controller.start_workers(1)
        self.pool_controller.start_workers(1)
        self.datavolume_controller.start_workers(2)
        self.migration_controller.start_workers(2)
        self.evacuation_controller.start_workers(1)
        self.hotplug_controller.start_workers(1)
        self.snapshot_controller.start_workers(1)
        self.restore_controller.start_workers(1)
        log.info("virt-controller is reconciling")

    def stop(self):
        self.cluster_config.stop()
        for informer in self.informers():
            informer.stop()
        for controller in (self.vm_controller, self.vmi_controller, self.replicaset_controller, self.pool_controller,
                           self.datavolume_controller, self.migration_controller, self.evacuation_controller,
                           self.hotplug_controller, self.snapshot_controller, self.restore_controller):
            controller.queue.shutdown()


def main(argv=None):
    args = parse_args(argv)
    setup_logging("virt-controller", args.log_level)
    api_client = load_api_client(args.kubeconfig)
    config = ControllerConfig(launcher_image=args.launcher_image, launcher_pull_policy=args.launcher_pull_policy,
                              importer_image=args.importer_image,
                              namespace=args.leader_elect_namespace, lease_name=args.leader_elect_name,
                              vm_workers=args.vm_workers, vmi_workers=args.vmi_workers)
    controller = VirtController(api_client, config, args.namespace)
    metrics.register_vmi_collector(controller.vmi_informer.store, controller.pod_informer.store)
    health = HealthServer(args.metrics_host, args.metrics_port)
    health.add_liveness("ping", lambda: True)
    stop = threading.Event()

    def start_leading():
        metrics.LEADING.set(1)
        try:
            controller.run()
        except Exception:
            log.exception("controller failed to start")
            os._exit(1)

    elector = None
    if args.leader_elect:
        def stopped_leading():
            metrics.LEADING.set(0)
            if not stop.is_set():
                log.error("lost the leader lease; exiting")
                os._exit(1)

        elector = LeaderElector(api_client, args.leader_elect_namespace, args.leader_elect_name,
                                args.leader_elect_identity, args.leader_elect_lease_duration,
                                args.leader_elect_renew_deadline, args.leader_elect_retry_period,
                                on_started_leading=start_leading, on_stopped_leading=stopped_leading,
                                on_new_leader=lambda who: log.info("leader is %s", who))
        # A standby is ready (it serves /metrics and takes over when needed); the leader once its caches sync.
        health.add_readiness("leader-caches-synced", lambda: not elector.is_leader() or controller.synced.is_set())
    else:
        health.add_readiness("caches-synced", controller.synced.is_set)
    health.start()

    def on_signal(signum, _frame):
        log.info("signal %d: shutting down", signum)
        stop.set()
        if elector:
            elector.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    election = None
    if elector:
        election = threading.Thread(target=elector.run, name="leader-election", daemon=True)
        election.start()
    else:
        start_leading()
    stop.wait()
    controller.stop()
    controller.recorder.flush(2)
    if election:
        election.join(5)  # it releases the lease on the way out, so a standby takes over at once
    health.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
