"""virt-handler's VMI controller: drives the launchers of this node's VMIs and writes their status.

- VMIs come from an informer restricted by the server to `kubevirt.io/nodeName=<this node>`;
- each active VMI gets one subscription to its launcher; every pushed domain state is stored in the
  registry and the VMI's key queued, so status follows libvirt events without polling;
- sync(key) asks decide.decide() what to do (watch, retry, wire the pod network, sync, shutdown, kill,
  mark the launcher gone, write status) and only performs those actions; status comes from
  handler/status.py; the pod network is wired by handler/network before the launcher starts the domain;
- nothing is reconciled before the VMI and pod caches have synced, and a restart of virt-handler finds
  the launchers again and converges without touching the domains.
"""
from __future__ import annotations

import dataclasses
import logging
import threading

from kubevirt_runtime.api.constants import NODE_NAME_LABEL, VMIPhase
from kubevirt_runtime.api.status import now_iso
from kubevirt_runtime.machinery.own_writes import OwnWrites
from kubevirt_runtime.machinery.reconciler import Reconciler
from kubevirt_runtime.machinery.resource import ApiError
from kubevirt_runtime.machinery.store import object_key
from kubevirt_runtime.machinery.workqueue import RateLimitingQueue

from . import decide as d
from . import hotplug as hp
from .launcher_client import LauncherClient, LauncherError, Subscription, peer_pid
from .migration_agent import ACTIONS
from .network import netns as pod_network
from .network.plan import NetworkPlanError
from .status import desired_status, status_patch
from .volumes import volume_status

log = logging.getLogger(__name__)


class LauncherWatch:
    """A thread that follows one launcher's pushed domain states."""

    def __init__(self, uid: str, path: str, on_state, on_end):
        self.uid, self.path = uid, path
        self.on_state, self.on_end = on_state, on_end
        self.ended = threading.Event()
        self.connected = threading.Event()
        self.error: Exception | None = None
        self._stopped = False
        self._sub: Subscription | None = None
        self.thread = threading.Thread(target=self._run, name=f"launcher-watch-{uid[:8]}", daemon=True)

    def start(self, timeout: float = 10.0) -> "LauncherWatch":
        self.thread.start()
        self.connected.wait(timeout)
        if self.error is not None:
            raise self.error
        return self

    def _run(self):
        try:
            self._sub = Subscription(self.path)
            if self._stopped:
                self._sub.close()
            first = True
            for state in self._sub:
                if first:
                    first = False
                    self.connected.set()
                self.on_state(self.uid, state)
        except Exception as exc:  # connection refused: the launcher is gone
            self.error = exc if isinstance(exc, LauncherError) else LauncherError(str(exc))
        finally:
            self.connected.set()
            self.ended.set()
            if not self._stopped:
                self.on_end(self.uid, self)

    def stop(self):
        self._stopped = True
        if self._sub is not None:
            self._sub.close()


@dataclasses.dataclass
class LauncherRecord:
    """What the handler holds for one VMI (by uid)."""
    key: str
    watch: LauncherWatch | None = None
    client: LauncherClient | None = None
    domain: dict | None = None
    gone: bool = False
    gone_outcome: str | None = None
    stopping: bool = False
    misses: int = 0
    network: dict | None = None  # the launcher's network config from SetupNetwork, sent with Sync

    def view(self) -> d.LauncherView:
        return d.LauncherView(watching=self.watch is not None, domain=self.domain, gone=self.gone,
                              gone_outcome=self.gone_outcome, stopping=self.stopping, misses=self.misses)


class LauncherRegistry:
    """The per-VMI records, behind one lock. Callers get views and apply changes through methods."""

    def __init__(self):
        self._lock = threading.Lock()
        self._records: dict[str, LauncherRecord] = {}

    def track(self, uid: str, key: str) -> d.LauncherView:
        with self._lock:
            record = self._records.setdefault(uid, LauncherRecord(key))
            record.key = key
            return record.view()

    def key(self, uid: str) -> str | None:
        with self._lock:
            record = self._records.get(uid)
            return record.key if record else None

    def update(self, uid: str, **changes) -> None:
        with self._lock:
            record = self._records.get(uid)
            if record is not None:
                for name, value in changes.items():
                    setattr(record, name, value)

    def add_watch(self, uid: str, watch: LauncherWatch) -> None:
        self.update(uid, watch=watch)

    def drop_watch(self, uid: str, watch: LauncherWatch) -> LauncherClient | None:
        """Forgets `watch` (if it is still the current one) and its command client."""
        with self._lock:
            record = self._records.get(uid)
            if record is None or record.watch is not watch:
                return None
            client, record.watch, record.client = record.client, None, None
            return client

    def network(self, uid: str) -> dict | None:
        with self._lock:
            record = self._records.get(uid)
            return record.network if record else None

    def watch_path(self, uid: str) -> str | None:
        with self._lock:
            record = self._records.get(uid)
            return record.watch.path if record and record.watch else None

    def client(self, uid: str, path: str) -> LauncherClient:
        with self._lock:
            record = self._records.get(uid)
            if record is None:
                return LauncherClient(path)
            if record.client is None or record.client.path != path:
                if record.client is not None:
                    record.client.close()
                record.client = LauncherClient(path)
            return record.client

    def forget(self, uid: str) -> LauncherRecord | None:
        with self._lock:
            return self._records.pop(uid, None)

    def all(self) -> list[LauncherRecord]:
        with self._lock:
            return list(self._records.values())

    def followed(self) -> list[tuple[str, str, str]]:
        """(uid, key, socket path) of every launcher with an open subscription and a live domain."""
        with self._lock:
            return [(uid, r.key, r.watch.path) for uid, r in self._records.items()
                    if r.watch is not None and r.domain and r.domain.get("status") not in ("Missing", None)
                    and not r.domain.get("final")]


class VMIHandler(Reconciler):
    name = "virt-handler"

    def __init__(self, vmi_client, vmi_informer, locator, node_name: str, recorder=None,
                 sync_options=None, network_setup=None, migrations=None, target_informer=None,
                 hotplug=None):
        """`sync_options`: what every launcher sync carries (a dict, or a callable returning one: the node's
        accelerator decision, handler/node_accel.py). `migrations`: the MigrationAgent (handler/migration_agent.py),
        None without live migration; `target_informer`: VMIs whose migration targets this node (label
        kubevirt.io/migrationTargetNodeName); `hotplug`: a hotplug.HotplugLookup (None: hotplugged volumes are not
        handled on this node)."""
        self.hotplug = hotplug
        self.client = vmi_client
        self.informer = vmi_informer
        self.migrations = migrations
        self.target_informer = target_informer
        self.locator = locator
        self.node_name = node_name
        self.recorder = recorder
        self.sync_options = sync_options if callable(sync_options) else (lambda: dict(sync_options or {}))
        # (vmi, launcher pid) -> the launcher's network config; injectable for tests
        self.network_setup = network_setup or pod_network.setup
        self.queue = RateLimitingQueue("virt-handler-vmi")
        self.registry = LauncherRegistry()
        self.own_writes = OwnWrites()
        vmi_informer.add_handler(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                 on_delete=self._on_delete)
        if target_informer is not None:
            target_informer.add_handler(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                        on_delete=self._on_target_delete)

    def _informers(self):
        return [i for i in (self.informer, self.target_informer) if i is not None]

    def _get(self, key):
        """The VMI from whichever informer has it (the newer copy when both do)."""
        found = [i.store.get(key) for i in self._informers()]
        found = [vmi for vmi in found if vmi is not None]
        return max(found, key=lambda v: int(v["metadata"].get("resourceVersion") or 0)) if found else None

    def has_synced(self) -> bool:
        return all(i.has_synced() for i in self._informers()) and self.locator.has_synced()

    # ------------------------------------------------------------------ informer and launcher callbacks

    def _enqueue(self, vmi):
        self.queue.add(object_key(vmi))

    def _on_target_delete(self, vmi):
        """The VMI is no longer migrating to this node: it arrived (its nodeName label is this node; the two
        watches deliver in no set order), or the migration ended without it (the target pod goes)."""
        labels = (vmi.get("metadata") or {}).get("labels") or {}
        if self.informer.store.get(object_key(vmi)) is not None or labels.get(NODE_NAME_LABEL) == self.node_name:
            self._enqueue(vmi)
            return
        self.migrations.forget(vmi)
        record = self.registry.forget(vmi.get("metadata", {}).get("uid"))
        if record is not None:
            _close(record)

    def _on_delete(self, vmi):
        if self.migrations is not None:
            self.migrations.forget(vmi)
        uid = vmi.get("metadata", {}).get("uid")
        record = self.registry.forget(uid)
        if record is None:
            return
        if record.watch is not None and not (record.domain or {}).get("final"):
            try:  # the VMI is gone (finalizers removed): stop its guest
                (record.client or LauncherClient(record.watch.path)).shutdown()
            except LauncherError as exc:
                log.info("shutdown of deleted VMI %s: %s", object_key(vmi), exc)
        _close(record)

    def _on_state(self, uid, state):
        self.registry.update(uid, domain=state, misses=0)
        self._requeue(uid)

    def _on_end(self, uid, watch):
        """The subscription ended: the next sync looks for the launcher again and decides from there."""
        client = self.registry.drop_watch(uid, watch)
        if client is not None:
            client.close()
        self._requeue(uid)

    def _requeue(self, uid):
        key = self.registry.key(uid)
        if key:
            self.queue.add(key)

    # ------------------------------------------------------------------ commands (for the console server)

    def followed_launchers(self) -> list[tuple[str, str, str]]:
        """(uid, VMI key, socket path) of this node's running domains (the metrics collector asks them)."""
        return self.registry.followed()

    def launcher_for(self, namespace: str, name: str):
        """(vmi, socket path) of a VMI on this node, or (None, None)."""
        vmi = self.informer.store.get(f"{namespace}/{name}")
        if vmi is None:
            return None, None
        return vmi, self.locator.locate(vmi)

    def command(self, namespace: str, name: str, cmd: str, **args):
        vmi, path = self.launcher_for(namespace, name)
        if vmi is None:
            raise KeyError(f"VMI {namespace}/{name} is not on node {self.node_name}")
        if path is None or vmi.get("status", {}).get("phase") != VMIPhase.RUNNING:
            raise LookupError(f"VMI {namespace}/{name} is not running")
        client = self.registry.client(vmi["metadata"]["uid"], path)
        if cmd == "snapshot_volumes":
            return client.snapshot_volumes(args["snapshot_id"], args["volumes"])
        return client.call(cmd)

    # ------------------------------------------------------------------ reconcile: decide, then act

    def sync(self, key):
        if not self.has_synced():
            self.queue.add_after(key, d.STARTING_RETRY_SECONDS)
            return
        vmi = self._get(key)
        if vmi is None:
            self.own_writes.forget(key)
            return
        if self.own_writes.superseded(key, vmi["metadata"].get("resourceVersion")):
            return  # the cache is older than our own last status write: its watch event requeues the key
        uid = vmi["metadata"]["uid"]
        view = self.registry.track(uid, key)
        lookup = None if view.watching else self.locator.lookup(vmi)
        mview = self.migrations.view(uid) if self.migrations is not None else None
        hotplug = self.hotplug.view(vmi) if self.hotplug is not None else None
        for action in d.decide(vmi, self.node_name, view, lookup, mview, hotplug):
            if not self._act(key, vmi, uid, action, hotplug):
                return

    def _act(self, key, vmi, uid, action, hotplug=None) -> bool:
        """Performs one action; False ends this sync (e.g. the VMI was requeued)."""
        if isinstance(action, (d.MountVolume, d.AttachVolume, d.DetachVolume, d.UnmountVolume)):
            return self._hotplug(key, vmi, uid, action, hotplug)
        if isinstance(action, d.Retry):
            self.queue.add_after(key, action.after)
            return False
        if isinstance(action, d.CountMiss):
            self.registry.update(uid, misses=self.registry.track(uid, key).misses + 1)
            return True
        if isinstance(action, d.MarkGone):
            log.info("VMI %s: its launcher is gone (pod outcome: %s)", key, action.outcome or "unknown")
            self.registry.update(uid, gone=True, gone_outcome=action.outcome)
            return True
        if isinstance(action, d.Watch):
            self._watch(key, vmi, uid, action.path)
            return False
        if isinstance(action, d.Kill):
            self._signal(key, uid, "kill")
            return True
        if isinstance(action, d.Shutdown):
            self._signal(key, uid, "shutdown", action.grace_seconds)
            self._event(vmi, "Normal", "ShuttingDown", "Signaled Graceful Shutdown")
            return True
        if isinstance(action, d.SetupNetwork):
            self._setup_network(vmi, uid)
            return True
        if isinstance(action, d.Sync):
            self._sync_domain(key, vmi, uid)
            return True
        if isinstance(action, d.WriteStatus):
            self._write_status(key, vmi, self.registry.track(uid, key), hotplug)
            return True
        if self.migrations is not None and isinstance(action, ACTIONS):
            return self.migrations.act(self, key, vmi, uid, action)
        raise TypeError(f"unknown action {action!r}")

    def _watch(self, key, vmi, uid, path):
        watch = LauncherWatch(uid, path, self._on_state, self._on_end)
        self.registry.add_watch(uid, watch)
        try:
            watch.start()
        except LauncherError as exc:
            log.info("launcher of %s unreachable: %s", key, exc)
            self.registry.drop_watch(uid, watch)
            if (vmi.get("status") or {}).get("phase") == VMIPhase.RUNNING:
                self.registry.update(uid, misses=self.registry.track(uid, key).misses + 1)
            self.queue.add_after(key, d.MISS_RETRY_SECONDS)

    def _signal(self, key, uid, cmd, *args):
        self.registry.update(uid, stopping=True)
        path = self.registry.watch_path(uid)
        if path is None:
            return
        try:
            getattr(self.registry.client(uid, path), cmd)(*args)
        except LauncherError as exc:
            log.info("%s of VMI %s: %s", cmd, key, exc)

    def _setup_network(self, vmi, uid):
        path = self.registry.watch_path(uid)
        try:
            if path is None:
                raise LauncherError("the launcher subscription ended")
            pid = peer_pid(path)
            if pid <= 0:
                raise LauncherError("the launcher's pid is not visible: virt-handler needs the host's pid namespace")
            config = self.network_setup(vmi, pid)
        except (LauncherError, NetworkPlanError, pod_network.NetworkSetupError) as exc:
            self._sync_failed(vmi, f"pod network setup failed: {exc}")
            raise
        self.registry.update(uid, network=config)

    def _sync_domain(self, key, vmi, uid):
        log.info("syncing %s to its launcher", key)
        path = self.registry.watch_path(uid)
        options = dict(self.sync_options())
        if self.registry.network(uid) is not None:
            options["network"] = self.registry.network(uid)
        try:
            if path is None:
                raise LauncherError("the launcher subscription ended")
            result = self.registry.client(uid, path).sync(vmi, options)
        except LauncherError as exc:
            self._sync_failed(vmi, str(exc))
            raise
        current = self.registry.track(uid, key).domain
        if current is None or current.get("status") == "Missing":
            self.registry.update(uid, domain=result)
        self._event(vmi, "Normal", "Created", f"VirtualMachineInstance defined ({result.get('message', '')}).")

    def _hotplug(self, key, vmi, uid, action, hotplug) -> bool:
        """Mount/attach/detach/unmount one hotplugged volume; a failure is an event and a retry, never the end of
        the guest."""
        try:
            if isinstance(action, (d.MountVolume, d.UnmountVolume)):
                if isinstance(action, d.MountVolume):
                    hp.mount(action.source, self.hotplug.kubelet_root, hotplug.launcher_pod_uid, action.volume)
                else:
                    hp.unmount(self.hotplug.kubelet_root, hotplug.launcher_pod_uid, action.volume)
                # this sync's view of the mounts is now stale and no event follows a mount: look again
                self.queue.add(key)
            else:
                path = self.registry.watch_path(uid)
                if path is None:
                    raise LauncherError("the launcher subscription ended")
                client = self.registry.client(uid, path)
                if isinstance(action, d.AttachVolume):
                    spec = vmi.get("spec") or {}
                    volume = next(v for v in spec.get("volumes") or [] if v.get("name") == action.volume)
                    disk = next((x for x in (spec.get("domain") or {}).get("devices", {}).get("disks") or []
                                 if x.get("name") == action.volume), {"name": action.volume, "disk": {"bus": "scsi"}})
                    state = client.attach_volume(disk, volume)
                    self._event(vmi, "Normal", "VolumeReady",
                                f"Successfully attach hotplugged volume {action.volume} to VM")
                else:
                    state = client.detach_volume(action.volume)
                    self._event(vmi, "Normal", "VolumeDetached",
                                f"Successfully detach hotplugged volume {action.volume} from VM")
                self.registry.update(uid, domain=state)
        except (hp.HotplugError, LauncherError, StopIteration) as exc:
            log.warning("VMI %s: %s of volume %s failed: %s", key, type(action).__name__, action.volume, exc)
            self._event(vmi, "Warning", "HotplugFailed", f"volume {action.volume}: {exc}")
            self.queue.add_rate_limited(key)
            return False
        return True

    def _write_status(self, key, vmi, view, hotplug=None):
        new_status = desired_status(vmi, view.domain, launcher_gone=view.gone, gone_outcome=view.gone_outcome)
        domain = view.domain or {}
        if new_status.get("phase") == VMIPhase.RUNNING and not domain.get("final") and "volumes" in domain:
            new_status["volumeStatus"] = volume_status(vmi, domain, hotplug)
        if status_patch(vmi, new_status) is None:
            return
        try:  # an UPDATE of the whole status, as upstream's handler writes it (the resourceVersion guards it)
            self.client.update(dict(vmi, status=new_status), subresource="status")
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        self.own_writes.wrote(key, vmi["metadata"].get("resourceVersion"))
        old_phase, new_phase = (vmi.get("status") or {}).get("phase"), new_status.get("phase")
        if old_phase != new_phase:
            log.info("VMI %s: %s -> %s", key, old_phase, new_phase)
            reason = {"Running": "Started", "Succeeded": "Stopped", "Failed": "Failed"}.get(new_phase, new_phase)
            why = f" ({new_status['reason']})" if new_status.get("reason") and new_phase == VMIPhase.FAILED else ""
            self._event(vmi, "Warning" if new_phase == VMIPhase.FAILED else "Normal", reason,
                        f"VirtualMachineInstance {new_phase.lower()}{why}.")

    def _sync_failed(self, vmi, message):
        """Like upstream: the VMI stays Scheduled with Synchronized=False saying why; the key is retried
        with backoff."""
        self._event(vmi, "Warning", "SyncFailed", message)
        status = dict(vmi.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Synchronized"]
        conditions.append({"type": "Synchronized", "status": "False", "reason": "SyncFailed", "message": message,
                           "lastProbeTime": None, "lastTransitionTime": now_iso()})
        meta = vmi["metadata"]
        try:
            self.client.patch_status(meta["name"], {"status": {"conditions": conditions}}, meta["namespace"])
        except ApiError as exc:
            log.info("could not record the sync failure of %s: %s", object_key(vmi), exc)

    def _event(self, vmi, kind, reason, message):
        if self.recorder is not None:
            self.recorder.event(vmi, kind, reason, message)

    def stop(self):
        self.queue.shutdown()
        for record in self.registry.all():
            _close(record)


def _close(record: LauncherRecord):
    if record.watch is not None:
        record.watch.stop()
    if record.client is not None:
        record.client.close()
