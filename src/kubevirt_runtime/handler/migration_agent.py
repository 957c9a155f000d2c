"""What virt-handler does for live migrations (the I/O of handler/migration.py's actions): its TLS proxy
(migration_proxy.py), the launcher commands, and the VMI writes.

A launcher's private directory is its socket's: ``<volumes>/sockets/launcher.sock`` -> ``<volumes>/private``
(the pod's emptyDirs side by side; a local launcher's directories likewise).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from kubevirt_runtime.machinery.resource import ApiError

from . import migration as mig
from . import migration_proxy as proxy
from .launcher_client import LauncherError

log = logging.getLogger(__name__)
ACTIONS = (mig.PrepareTarget, mig.RegisterTarget, mig.UnregisterTarget, mig.StartMigration, mig.AbortMigration,
           mig.StopSourceProxy, mig.WriteMigrationState, mig.AckMigration, mig.Wait)


def private_dir(socket_path: str) -> Path:
    return Path(socket_path).parent.parent / "private"


class MigrationAgent:
    def __init__(self, address: str, port: int, cert: str, key: str, ca: str, allowed_cns=("virt-handler",),
                 cluster_config=None):
        """`address`: where other handlers reach this one (its pod IP); `cluster_config`: the KubeVirt CR
        (machinery/cluster_config.py, started and stopped by its owner), whose configuration.migrations the source
        launchers get."""
        self.server = proxy.TargetServer("0.0.0.0", port, proxy.server_context(cert, key, ca), allowed_cns)
        self.client_context = proxy.client_context(cert, key, ca)
        self.endpoint = (address, self.server.port)
        self.cluster_config = cluster_config
        self._lock = threading.Lock()
        self._sources: dict[str, proxy.SourceProxy] = {}
        self._failures: dict[str, int] = {}  # VMI uid -> failed attempts to reach the target proxy

    def start(self) -> "MigrationAgent":
        self.server.start()
        return self

    def launcher_options(self) -> dict:
        return self.cluster_config.current().migrations.launcher_options() if self.cluster_config else {}

    def stop(self) -> None:
        self.server.stop()
        with self._lock:
            sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            source.stop()

    def view(self, vmi_uid: str) -> mig.MigrationView:
        with self._lock:
            sources = frozenset(self._sources)
            failures = self._failures.get(vmi_uid, 0)
        return mig.MigrationView(endpoint=self.endpoint, registered=self.server.registered_uids(),
                                 source_proxies=sources, proxy_failures=failures, now=time.time())

    def forget(self, vmi: dict) -> None:
        """The VMI left this node's informers: close whatever its migration opened here."""
        uid = mig.state(vmi).get("migrationUid")
        with self._lock:
            self._failures.pop(vmi["metadata"].get("uid"), None)
            source = self._sources.pop(uid, None) if uid else None
        if source is not None:
            source.stop()
        if uid:
            self.server.unregister(uid)

    # -- actions

    def act(self, handler, key: str, vmi: dict, uid: str, action) -> bool:
        """Performs one migration action for VMIHandler; False ends the sync (the key was requeued)."""
        meta = vmi["metadata"]
        path = handler.registry.watch_path(uid)
        if isinstance(action, mig.PrepareTarget):
            if path is None:
                raise LauncherError("the target launcher's subscription ended")
            options = {"migrationUid": action.migration_uid}
            if handler.registry.network(uid) is not None:
                options["network"] = handler.registry.network(uid)
            handler.registry.client(uid, path).prepare_migration_target(vmi, options)
            log.info("VMI %s: the target launcher is prepared for migration %s", key, action.migration_uid)
            return True
        if isinstance(action, mig.RegisterTarget):
            if path is None:
                raise LauncherError("the target launcher's subscription ended")
            self.server.register(action.migration_uid, private_dir(path))
            handler._event(vmi, "Normal", "PreparingTarget",
                           f"Migration Target is listening at {self.endpoint[0]}, on ports: {self.endpoint[1]}")
            return True
        if isinstance(action, mig.Wait):
            handler.queue.add_after(key, action.seconds)
            return False
        if isinstance(action, mig.UnregisterTarget):
            self.server.unregister(action.migration_uid)
            return True
        if isinstance(action, mig.StartMigration):
            return self._start(handler, key, vmi, uid, path, action)
        if isinstance(action, mig.AbortMigration):
            if path is not None:
                handler.registry.client(uid, path).abort_migration()
                handler._event(vmi, "Normal", "Migrating", "Aborting the migration (it was cancelled)")
            return True
        if isinstance(action, mig.StopSourceProxy):
            with self._lock:
                source = self._sources.pop(action.migration_uid, None)
            if source is not None:
                source.stop()
            return True
        if isinstance(action, mig.WriteMigrationState):
            self._patch_status(handler, vmi, {"migrationState": action.fields})
            if action.note:
                handler._event(vmi, "Normal", "Migrated", action.note)
            if action.fields.get("failed"):
                handler._event(vmi, "Warning", "Migrated", "The migration failed: "
                               f"{action.fields.get('failureReason') or 'see the source launcher'}")
            return True
        if isinstance(action, mig.AckMigration):
            status, labels = mig.ack_patch(vmi, handler.node_name, action.fields)
            handler.client.patch_status(meta["name"], status, meta["namespace"])
            handler.client.patch(meta["name"], labels, meta["namespace"])
            self.server.unregister(mig.state(vmi).get("migrationUid"))
            log.info("VMI %s migrated to this node", key)
            handler._event(vmi, "Normal", "Migrated",
                           f"The VirtualMachineInstance migrated to node {handler.node_name}.")
            return True
        raise TypeError(f"unknown migration action {action!r}")

    def _start(self, handler, key, vmi, uid, path, action) -> bool:
        if path is None:
            raise LauncherError("the source launcher's subscription ended")
        with self._lock:
            source = self._sources.get(action.migration_uid)
        if source is None:
            source = proxy.SourceProxy(action.migration_uid, private_dir(path), action.address, action.port,
                                       self.client_context).start()
            with self._lock:
                self._sources[action.migration_uid] = source
        try:
            source.check_target()
        except (proxy.ProxyError, OSError) as exc:
            with self._lock:
                self._failures[uid] = self._failures.get(uid, 0) + 1
            log.warning("VMI %s: the migration target does not answer yet: %s", key, exc)
            handler.queue.add_after(key, 2.0)
            return False
        options = {"migrationUid": action.migration_uid, **self.launcher_options()}
        handler.registry.client(uid, path).migrate(options)
        log.info("VMI %s: migrating to %s:%s (migration %s)", key, action.address, action.port, action.migration_uid)
        handler._event(vmi, "Normal", "Migrating", "VirtualMachineInstance is migrating.")
        return True

    @staticmethod
    def _patch_status(handler, vmi, status: dict) -> None:
        meta = vmi["metadata"]
        try:
            handler.client.patch_status(meta["name"], {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                                                       "status": status}, meta["namespace"])
        except ApiError as exc:
            if not exc.not_found:
                raise
