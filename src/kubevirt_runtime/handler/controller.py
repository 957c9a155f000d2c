"""virt-handler's VMI controller: drives the launchers of this node's VMIs and writes their status.

- VMIs come from an informer restricted by the server to `kubevirt.io/nodeName=<this node>`;
- each active VMI gets one subscription to its launcher; every pushed domain state is stored and the
  VMI's key queued, so status follows libvirt events without polling;
- reconcile(key): find the launcher (locator), subscribe, `sync` a Scheduled VMI whose domain does not
  exist yet, `shutdown` a VMI being deleted, and patch status (handler/status.py) when it changes;
- a restart of virt-handler finds the launchers again and converges without touching the domains.
"""
from __future__ import annotations

import logging
import threading

from kubevirt_runtime.api.constants import VMIPhase
from kubevirt_runtime.machinery.reconciler import Reconciler
from kubevirt_runtime.machinery.resource import ApiError
from kubevirt_runtime.machinery.store import object_key, split_key
from kubevirt_runtime.machinery.workqueue import RateLimitingQueue

from .launcher_client import LauncherClient, LauncherError, Subscription
from .status import desired_status, now_iso, status_patch

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
                self.on_end(self.uid)

    def stop(self):
        self._stopped = True
        if self._sub is not None:
            self._sub.close()


class VMIHandler(Reconciler):
    name = "virt-handler"

    def __init__(self, vmi_client, vmi_informer, locator, node_name: str, recorder=None,
                 sync_options: dict | None = None):
        self.client = vmi_client
        self.informer = vmi_informer
        self.locator = locator
        self.node_name = node_name
        self.recorder = recorder
        self.sync_options = dict(sync_options or {})
        self.queue = RateLimitingQueue("virt-handler-vmi")
        self.lock = threading.Lock()
        self.domains: dict[str, dict] = {}  # vmi uid -> last pushed domain state
        self.watches: dict[str, LauncherWatch] = {}
        self.clients: dict[str, LauncherClient] = {}
        self.gone: set[str] = set()
        self.stopping: set[str] = set()
        self.keys: dict[str, str] = {}  # uid -> key
        vmi_informer.add_handler(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                 on_delete=self._on_delete)

    # ------------------------------------------------------------------ informer and launcher callbacks

    def _enqueue(self, vmi):
        self.queue.add(object_key(vmi))

    def _on_delete(self, vmi):
        uid = vmi.get("metadata", {}).get("uid")
        with self.lock:
            watch = self.watches.get(uid)
        if watch and not (self.domains.get(uid) or {}).get("final"):
            try:  # the VMI is gone (finalizers removed): stop its guest
                self._client(uid, watch.path).shutdown()
            except LauncherError as exc:
                log.info("shutdown of deleted VMI %s: %s", object_key(vmi), exc)
        self._forget(uid)

    def _on_state(self, uid, state):
        with self.lock:
            self.domains[uid] = state
            key = self.keys.get(uid)
        if key:
            self.queue.add(key)

    def _on_end(self, uid):
        with self.lock:
            self.gone.add(uid)
            self.watches.pop(uid, None)
            key = self.keys.get(uid)
        client = self.clients.pop(uid, None)
        if client:
            client.close()
        if key:
            self.queue.add(key)

    def _forget(self, uid):
        with self.lock:
            watch = self.watches.pop(uid, None)
            self.domains.pop(uid, None)
            self.gone.discard(uid)
            self.stopping.discard(uid)
            self.keys.pop(uid, None)
        if watch:
            watch.stop()
        client = self.clients.pop(uid, None)
        if client:
            client.close()

    def _client(self, uid, path) -> LauncherClient:
        client = self.clients.get(uid)
        if client is None or client.path != path:
            client = self.clients[uid] = LauncherClient(path)
        return client

    # ------------------------------------------------------------------ commands (for the console server)

    def launcher_for(self, namespace: str, name: str):
        """(vmi, socket path) of a VMI on this node, or (None, None)."""
        vmi = self.informer.store.get(f"{namespace}/{name}")
        if vmi is None:
            return None, None
        return vmi, self.locator.locate(vmi)

    def command(self, namespace: str, name: str, cmd: str):
        vmi, path = self.launcher_for(namespace, name)
        if vmi is None:
            raise KeyError(f"VMI {namespace}/{name} is not on node {self.node_name}")
        if path is None or vmi.get("status", {}).get("phase") != VMIPhase.RUNNING:
            raise LookupError(f"VMI {namespace}/{name} is not running")
        return self._client(vmi["metadata"]["uid"], path).call(cmd)

    # ------------------------------------------------------------------ reconcile

    def sync(self, key):
        vmi = self.informer.store.get(key)
        if vmi is None:
            return
        meta, status = vmi["metadata"], vmi.get("status") or {}
        uid, phase = meta["uid"], status.get("phase")
        with self.lock:
            self.keys[uid] = key
        if phase in VMIPhase.FINAL:
            with self.lock:
                domain = self.domains.get(uid)
            if domain and not domain.get("final") and uid not in self.gone and uid not in self.stopping:
                self.stopping.add(uid)  # e.g. the controller failed it: do not leave the guest running
                try:
                    self._client(uid, self.watches[uid].path).kill()
                except (LauncherError, KeyError) as exc:
                    log.info("kill of final VMI %s: %s", key, exc)
            return
        if phase not in (VMIPhase.SCHEDULED, VMIPhase.RUNNING):
            return
        if (status.get("nodeName") or meta.get("labels", {}).get("kubevirt.io/nodeName")) not in (None, self.node_name):
            return
        with self.lock:
            watch, gone = self.watches.get(uid), uid in self.gone
        if watch is None and not gone:
            path = self.locator.locate(vmi)
            if path is None:
                if phase == VMIPhase.RUNNING:
                    with self.lock:
                        self.gone.add(uid)
                    gone = True
                else:
                    self.queue.add_after(key, 0.5)  # the launcher has not created its socket yet
                    return
            else:
                try:
                    watch = LauncherWatch(uid, path, self._on_state, self._on_end)
                    with self.lock:
                        self.watches[uid] = watch
                    watch.start()
                except LauncherError as exc:
                    log.info("launcher of %s unreachable: %s", key, exc)
                    with self.lock:
                        self.watches.pop(uid, None)
                        if phase == VMIPhase.RUNNING:
                            self.gone.add(uid)
                    gone = phase == VMIPhase.RUNNING
                    if not gone:
                        self.queue.add_after(key, 1.0)
                        return
        with self.lock:
            domain = self.domains.get(uid)
        if not gone and domain is not None and watch is not None:
            deleting = bool(meta.get("deletionTimestamp"))
            if deleting and not domain.get("final") and uid not in self.stopping:
                self.stopping.add(uid)
                grace = meta.get("deletionGracePeriodSeconds", vmi["spec"].get("terminationGracePeriodSeconds"))
                self._client(uid, watch.path).shutdown(grace)
                self._event(vmi, "Normal", "ShuttingDown", "Signaled Graceful Shutdown")
            elif domain.get("status") == "Missing" and phase == VMIPhase.SCHEDULED and not deleting:
                log.info("syncing %s to its launcher", key)
                try:
                    result = self._client(uid, watch.path).sync(vmi, self.sync_options)
                except LauncherError as exc:
                    self._sync_failed(vmi, str(exc))
                    raise
                with self.lock:
                    current = self.domains.get(uid)
                    if current is None or current.get("status") == "Missing":
                        self.domains[uid] = domain = result
                    else:
                        domain = current
                self._event(vmi, "Normal", "Created", f"VirtualMachineInstance defined ({result.get('message', '')}).")
        outcome = self.locator.outcome(vmi) if gone else None
        new_status = desired_status(vmi, domain, launcher_gone=gone, gone_outcome=outcome)
        patch = status_patch(vmi, new_status)
        if patch is None:
            return
        namespace, name = split_key(key)
        try:
            self.client.patch_status(name, patch, namespace)
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        old_phase, new_phase = phase, new_status.get("phase")
        if old_phase != new_phase:
            log.info("VMI %s: %s -> %s", key, old_phase, new_phase)
            reason = {"Running": "Started", "Succeeded": "Stopped", "Failed": "Failed"}.get(new_phase, new_phase)
            self._event(vmi, "Warning" if new_phase == VMIPhase.FAILED else "Normal", reason,
                        f"VirtualMachineInstance {new_phase.lower()}.")

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
        with self.lock:
            watches = list(self.watches.values())
            self.watches.clear()
        for watch in watches:
            watch.stop()
        for client in list(self.clients.values()):
            client.close()
