"""The domain manager of one launcher: starts the VMI's domain, follows it through libvirt events,
relays its serial console, and publishes every change to the subscribers (virt-handler)."""
from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from pathlib import Path

import libvirt

from kubevirt_runtime.api import timeline
from kubevirt_runtime.api.network import interface_mac

from . import accel as accel_mod
from . import capture, container_disks, disks, guest_agent, guest_ports, hotplug, network
from . import migration as mig
from .converter import ConverterContext, convert, domain_name, graphics_enabled
from .podnet import pod_addresses

log = logging.getLogger(__name__)

# The final reason of a domain stopped because its pod was deleted (virt-handler reports it as is).
POD_TERMINATED = "PodTerminated"
_EVENT_STATUS = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: "Running",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "Running",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "Paused",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "Shutdown",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "Shutoff",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "Crashed",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "Paused",
}
_STOPPED_REASON = {
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: "Shutdown",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED: "Destroyed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED: "Crashed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED: "Migrated",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED: "Saved",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED: "Failed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: "FromSnapshot",
}
_SUSPENDED_REASON = {
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED: "PausedByUser",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR: "IOError",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG: "Watchdog",
}
_GUEST_INFO_KEYS = {"os.id": "id", "os.name": "name", "os.pretty-name": "prettyName", "os.version": "version",
                    "os.version-id": "versionId", "os.kernel-release": "kernelRelease",
                    "os.kernel-version": "kernelVersion", "os.machine": "machine"}
HISTORY_BYTES = 64 << 10
ADDRESS_POLL_SECONDS = 15


def device_aliases(xml: str) -> dict:
    """{"drives": {target dev: VMI disk name}, "interfaces": {target dev: VMI interface name}} from a live domain
    XML (devices carry the user alias ua-<name>)."""
    import xml.etree.ElementTree as ET
    out = {"drives": {}, "interfaces": {}}
    root = ET.fromstring(xml)
    for tag, key in (("disk", "drives"), ("interface", "interfaces")):
        for device in root.iter(tag):
            target, alias = device.find("target"), device.find("alias")
            if target is not None and target.get("dev") and alias is not None and \
                    (alias.get("name") or "").startswith("ua-"):
                out[key][target.get("dev")] = alias.get("name")[3:]
    return out


class ConsoleRelay:
    """Holds the one connection to QEMU's serial socket; fans output out to console clients and
    keeps the last 64 KiB so a client can see what it missed."""

    def __init__(self, on_first_output=None):
        self.on_first_output = on_first_output
        self.lock = threading.Lock()
        self.clients: list[socket.socket] = []
        self.history = collections.deque()
        self.history_len = 0
        self.serial: socket.socket | None = None
        self.closed = threading.Event()

    def attach(self, path: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                break
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    log.warning("serial console socket %s did not appear", path)
                    return
                time.sleep(0.05)
        self.serial = sock
        threading.Thread(target=self._pump, name="console-pump", daemon=True).start()

    def _pump(self):
        first = True
        while True:
            try:
                data = self.serial.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if first and self.on_first_output is not None:
                self.on_first_output()
            first = False
            with self.lock:
                self.history.append(data)
                self.history_len += len(data)
                while self.history_len > HISTORY_BYTES and len(self.history) > 1:
                    self.history_len -= len(self.history.popleft())
                for client in list(self.clients):
                    try:
                        client.sendall(data)
                    except OSError:
                        self.clients.remove(client)
        self.closed.set()
        with self.lock:
            for client in self.clients:
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.clients.clear()

    def serve(self, client: socket.socket, history: bool, pending: bytes = b"") -> None:
        """Runs in the client's connection thread until either side closes."""
        if self.serial is None:
            raise RuntimeError("the domain has no serial console")
        client.settimeout(None)
        with self.lock:
            if history:
                client.sendall(b"".join(self.history))
            self.clients.append(client)
        try:
            if pending:
                self.serial.sendall(pending)
            while not self.closed.is_set():
                data = client.recv(4096)
                if not data:
                    break
                self.serial.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                if client in self.clients:
                    self.clients.remove(client)


class DomainManager:
    def __init__(self, conn: libvirt.virConnect, name: str, namespace: str, uid: str, private_dir: Path,
                 container_disk_dir: Path, grace_period: int, accel: str | None = None,
                 use_emulation: bool = False, tb_cache_mib: int | None = 16, hotplug_dir: Path | None = None):
        self.conn = conn
        self.name, self.namespace, self.uid = name, namespace, uid
        self.private_dir, self.container_disk_dir = private_dir, container_disk_dir
        self.grace_period = grace_period
        self.tb_cache_mib = tb_cache_mib
        self.hotplug_dir = hotplug_dir or private_dir / "hotplug-disks"
        self.targets: dict[str, str] = {}  # volume -> target dev of every attached disk
        self.hotplugged: set[str] = set()  # the volumes attached to the running domain
        self.lock = threading.RLock()
        self.subscribers: list[socket.socket] = []
        self.timeline: dict[str, str] = {}  # startup stages this launcher saw (api/timeline.py)
        self.console = ConsoleRelay(on_first_output=lambda: self.stage("FirstConsoleOutput"))
        self.final = threading.Event()
        self.dom: libvirt.virDomain | None = None
        self.vmi: dict | None = None
        self.stop_requested = False
        self.stop_commanded = False  # virt-handler asked for a shutdown
        self.pod_terminated = False  # SIGTERM: the pod is being deleted
        self.shutdown_timer: threading.Timer | None = None
        self.status = {"status": "Missing", "reason": "", "final": False, "outcome": None}
        self.guest_info: dict = {}
        self.agent_connected = False
        self.taps: dict = {}  # interface name -> converter.TapInterface, once synced
        self.dhcp = None  # the guest's DHCP server (launcher/network.py), started with the domain
        self.started_at: float | None = None
        self.acpi = True
        self.message = ""
        self._aliases: dict | None = None
        # a live migration this launcher takes part in (role source or target), as published to virt-handler
        self.migration: dict | None = None
        self.migration_thread: threading.Thread | None = None
        self.job_completed = threading.Event()
        self._accel = accel
        self._accel_reason = "given" if accel else ""
        self._use_emulation = use_emulation
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None)
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, self._on_agent, None)
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_job_completed, None)

    # ------------------------------------------------------------------ accelerator

    def accel(self, options: dict) -> str:
        """virt-handler decides once per node and says so in the sync options; only a launcher told nothing
        (run locally, or by a handler that does not decide) probes KVM itself."""
        if options.get("useEmulation"):
            return "tcg"
        if options.get("accel") in ("kvm", "tcg"):
            return options["accel"]
        if self._accel is None:
            try:
                self._accel, self._accel_reason = accel_mod.choose_accel(self._use_emulation)
            except Exception as exc:  # pragma: no cover - defensive
                self._accel, self._accel_reason = "tcg", f"probe error: {exc}"
            log.info("accelerator: %s (%s)", self._accel, self._accel_reason)
        return self._accel

    # ------------------------------------------------------------------ state

    @property
    def domain_name(self) -> str:
        return domain_name(self.namespace, self.name)

    def snapshot(self) -> dict:
        with self.lock:
            state = dict(self.status)
            state.update(name=self.domain_name, uid=self.uid, accel=self._accel if self.dom else None,
                         interfaces=self._interfaces(), guestOSInfo=dict(self.guest_info),
                         agentConnected=self.agent_connected, startedAt=self.started_at, message=self.message,
                         timeline=dict(self.timeline), migration=dict(self.migration) if self.migration else None,
                         volumes=[{"name": n, "target": t, "hotplug": n in self.hotplugged}
                                  for n, t in sorted(self.targets.items())])
            return state

    def stage(self, name: str, epoch: float | None = None, publish: bool = True) -> None:
        """Records a startup stage (the first time only) and tells the subscribers."""
        with self.lock:
            if name in self.timeline:
                return
            self.timeline[name] = timeline.format_stamp(time.time() if epoch is None else epoch)
            if publish:
                self._publish_locked()

    def _interfaces(self) -> list:
        if not self.vmi:
            return []
        addresses = pod_addresses()  # masquerade: the guest is reached at the pod's addresses
        out = []
        for iface in self.vmi["spec"]["domain"].get("devices", {}).get("interfaces") or []:
            tap = self.taps.get(iface["name"])
            entry = {"name": iface["name"], "mac": tap.mac if tap else interface_mac(self.vmi, iface),
                     "infoSource": "domain",
                     "podInterfaceName": "eth0", "queueCount": 1}
            if addresses:
                entry.update(ipAddress=addresses[0], ipAddresses=addresses)
            out.append(entry)
        return out

    def _follow_addresses(self):
        """Publishes again when the reported interfaces change without a libvirt event (an address that
        appears or moves), until the domain has ended."""
        while not self.final.wait(ADDRESS_POLL_SECONDS):
            with self.lock:
                if self._interfaces() != self.published_interfaces:
                    self._publish_locked()

    def _set(self, **fields):
        with self.lock:
            self.status.update(fields)
            self._publish_locked()

    def _publish_locked(self):
        from .protocol import encode
        state = self.snapshot()
        self.published_interfaces = state["interfaces"]
        message = encode({"event": "domain", "domain": state})
        for sub in list(self.subscribers):
            try:
                sub.sendall(message)
            except OSError:
                self.subscribers.remove(sub)

    def subscribe(self, sock: socket.socket) -> None:
        from .protocol import encode
        sock.settimeout(10)
        with self.lock:
            sock.sendall(encode({"event": "domain", "domain": self.snapshot()}))
            self.subscribers.append(sock)

    def unsubscribe(self, sock: socket.socket) -> None:
        with self.lock:
            if sock in self.subscribers:
                self.subscribers.remove(sock)

    # ------------------------------------------------------------------ libvirt events

    def _mine(self, dom) -> bool:
        return dom.name() == self.domain_name

    def _on_lifecycle(self, conn, dom, event, detail, opaque):
        if not self._mine(dom):
            return
        status = _EVENT_STATUS.get(event, "NoState")
        log.info("domain event %s detail %s -> %s", event, detail, status)
        if self._migration_event(dom, event, detail):
            return
        if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            reason = _STOPPED_REASON.get(detail, "Unknown")
            if self.pod_terminated and not self.stop_commanded:
                outcome, reason = "Failed", POD_TERMINATED  # nobody asked virt-handler for this stop
            elif reason == "Shutdown" or (reason == "Destroyed" and self.stop_requested):
                outcome = "Succeeded"
            else:
                outcome = "Failed"
            if self.shutdown_timer:
                self.shutdown_timer.cancel()
            self._set(status=status, reason=reason, final=True, outcome=outcome)
            self.final.set()
        elif event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
            self._set(status=status, reason=_SUSPENDED_REASON.get(detail, "Paused"))
        elif event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
            self._set(status=status, reason="Crashed")
        else:
            self._set(status=status, reason="")

    def _on_agent(self, conn, dom, state, reason, opaque):
        if not self._mine(dom):
            return
        connected = state == libvirt.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED
        with self.lock:
            self.agent_connected = connected
        if connected:
            threading.Thread(target=self._refresh_guest_info, daemon=True).start()
        else:
            self._set()

    def _refresh_guest_info(self):
        info = self.guestinfo()
        with self.lock:
            self.guest_info = info
            self._publish_locked()

    # ------------------------------------------------------------------ commands

    def sync(self, vmi: dict, options: dict) -> dict:
        meta = vmi.get("metadata") or {}
        if meta.get("uid") and self.uid and meta["uid"] != self.uid:
            raise ValueError(f"VMI uid {meta['uid']} does not match this launcher ({self.uid})")
        with self.lock:
            if self.dom is not None or self.final.is_set():
                return self.snapshot()
            if self.stop_requested:
                raise RuntimeError("the launcher is shutting down")
            if self.migration and self.migration.get("role") == "target":
                raise RuntimeError("this launcher waits for an incoming migration; it does not start a domain")
            accel = self.accel(options or {})
            volumes, kernel, initrd, net_config, taps = self._prepare(vmi, options)
            ctx = ConverterContext(
                accel=accel, disks=volumes, interfaces=taps, serial_socket=str(self.private_dir / "virt-serial0"),
                serial_log=str(self.private_dir / "virt-serial0.log"), vnc_socket=str(self.vnc_socket),
                tb_cache_mib=self.tb_cache_mib,
                nvram_path=disks.nvram_path(self.private_dir), kernel_path=kernel, initrd_path=initrd)
            xml = convert(vmi, ctx)
            (self.private_dir / "domain.xml").write_text(xml)
            self.stage("DomainDefined", publish=False)
            self._start_dhcp(vmi, net_config)
            self.vmi, self.taps = vmi, taps
            self.acpi = ((vmi["spec"]["domain"].get("features") or {}).get("acpi") or {}).get("enabled", True) \
                is not False
            self.started_at = time.time()
            self.dom = self.conn.createXML(xml, 0)
            self.targets = hotplug.disk_targets(xml)
            self.stage("DomainStarted", publish=False)
            self.message = f"accelerator {accel} ({self._accel_reason or 'from options'})"
            self._accel = accel
            log.info("domain %s started (%s)", self.domain_name, self.message)
        if (vmi["spec"]["domain"].get("devices") or {}).get("autoattachSerialConsole", True) is not False:
            self.console.attach(ctx.serial_socket)
        threading.Thread(target=self._follow_addresses, name="addresses", daemon=True).start()
        with self.lock:
            if self.status["status"] == "Missing":
                self.status.update(status="Running", reason="")
            self._publish_locked()
            return self.snapshot()

    def stats(self) -> dict:
        """libvirt's domain stats (the raw keys: cpu.time, vcpu.<n>.time, balloon.rss, block.<n>.rd.bytes, ...) and
        which VMI disk and interface each block and net entry is, from the live domain's user aliases."""
        dom = self._domain()
        wanted = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
                  | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
        records = self.conn.domainListGetStats([dom], wanted, 0)
        raw = records[0][1] if records else {}
        if self._aliases is None:
            self._aliases = device_aliases(dom.XMLDesc(0))
        return {"stats": raw, **self._aliases}

    def _prepare(self, vmi: dict, options: dict):
        """What the domain needs in this pod before it runs here (started, or migrated in)."""
        volumes = disks.prepare_volumes(vmi, self.private_dir, self.container_disk_dir)
        kernel, initrd = disks.kernel_boot_paths(vmi, self.container_disk_dir)
        net_config = (options or {}).get("network")
        return volumes, kernel, initrd, net_config, network.attachments(vmi, net_config)

    def _start_dhcp(self, vmi: dict, net_config) -> None:
        if self.dhcp is None:  # before the guest runs here: it asks for its address at once
            self.dhcp = network.start_dhcp(vmi, net_config)

    def _domain(self) -> libvirt.virDomain:
        if self.dom is None:
            raise RuntimeError("no domain")
        return self.dom

    # ------------------------------------------------------------------ live migration (see migration.py)

    def _set_migration(self, **fields) -> None:
        with self.lock:
            self.migration = {**(self.migration or {}), **fields}
            self._publish_locked()

    def prepare_migration_target(self, vmi: dict, options: dict) -> dict:
        """Makes this (fresh) launcher the target of a migration: the volumes, the network and the socket
        directory are ready; libvirt starts the domain here when the source sends it."""
        meta = vmi.get("metadata") or {}
        if meta.get("uid") and self.uid and meta["uid"] != self.uid:
            raise ValueError(f"VMI uid {meta['uid']} does not match this launcher ({self.uid})")
        uid = (options or {}).get("migrationUid") or ""
        with self.lock:
            if self.migration and self.migration.get("role") == "target":
                return self.snapshot()
            if self.dom is not None or self.final.is_set() or self.stop_requested:
                raise RuntimeError("this launcher already runs (or ran) a domain; it cannot be a migration target")
            _volumes, _kernel, _initrd, net_config, taps = self._prepare(vmi, options)
            (Path(mig.DIR)).mkdir(parents=True, exist_ok=True)
            self._start_dhcp(vmi, net_config)
            self.vmi, self.taps = vmi, taps
            self.acpi = ((vmi["spec"]["domain"].get("features") or {}).get("acpi") or {}).get("enabled", True) \
                is not False
            self.migration = {"role": "target", "migrationUid": uid, "prepared": True}
            log.info("prepared as the target of migration %s", uid)
            self._publish_locked()
            return self.snapshot()

    def _migration_event(self, dom, event, detail) -> bool:
        """Lifecycle events of a migration; True when handled here."""
        role = (self.migration or {}).get("role")
        arriving = event in (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_RESUMED)
        if role == "target" and self.dom is None and arriving:
            with self.lock:
                self.dom = dom  # the incoming domain: from now on it is this launcher's
            self._set_migration(domainDetected=True)
            if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
                return True
        if role == "target" and event == libvirt.VIR_DOMAIN_EVENT_RESUMED and \
                detail == libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED:
            self._incoming_done(dom)
            return True
        if role == "source" and event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED and \
                detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED:
            return True  # the last pages move: the guest is not paused by anyone
        if role == "source" and event == libvirt.VIR_DOMAIN_EVENT_STOPPED and \
                detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
            return True  # the domain left; _run_migration ends this launcher once libvirt's job returned
        return False

    def _on_job_completed(self, conn, dom, stats, opaque):
        """libvirt's statistics of a finished job; for a migration QEMU's measured downtime (the guest's pause)."""
        if not self._mine(dom) or not self.migration or "downtime" not in stats:
            return
        self._set_migration(downtimeMs=stats["downtime"], transferredBytes=stats.get("memory_processed"))
        log.info("migration job completed: downtime %s ms, %s ms in all", stats["downtime"], stats.get("time_elapsed"))
        self.job_completed.set()

    def _incoming_done(self, dom) -> None:
        """The domain runs here now: the migration completed on this (target) side."""
        with self.lock:
            self.started_at = time.time()
            self.status.update(status="Running", reason="")
            self.migration.update(domainReadyTimestamp=mig.stamp(), completed=True)
            self._publish_locked()
        (self.private_dir / mig.DOMAIN_HERE).touch()  # the target pod's readiness probe
        log.info("incoming migration completed")
        if ((self.vmi or {}).get("spec", {}).get("domain", {}).get("devices") or {}).get(
                "autoattachSerialConsole", True) is not False:
            threading.Thread(target=self.console.attach, args=(str(self.private_dir / "virt-serial0"),),
                             daemon=True).start()
        threading.Thread(target=self._follow_addresses, name="addresses", daemon=True).start()

    def migrate(self, options: dict) -> dict:
        """Starts the live migration of the running domain to the target launcher (through virt-handler's
        proxy); returns at once. Progress and the outcome are published in the state's `migration`."""
        with self.lock:
            dom = self._domain()
            if self.final.is_set() or self.stop_requested:
                raise RuntimeError("the domain is stopping")
            running = self.migration_thread is not None and self.migration_thread.is_alive()
            uid = (options or {}).get("migrationUid") or ""
            if running or (self.migration or {}).get("completed") and self.migration.get("migrationUid") == uid:
                return self.snapshot()
            self.migration = {"role": "source", "migrationUid": uid, "startTimestamp": mig.stamp(), "mode": "PreCopy"}
            self._publish_locked()
            self.migration_thread = threading.Thread(target=self._run_migration, args=(dom, mig.Options.from_dict(
                options)), name="migration", daemon=True)
            self.migration_thread.start()
            return self.snapshot()

    def _run_migration(self, dom, options: "mig.Options") -> None:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        local = mig.local_disks(xml)
        done = threading.Event()
        threading.Thread(target=self._monitor_migration, args=(dom, options, done), name="migration-monitor",
                         daemon=True).start()
        started = time.monotonic()
        log.info("migrating %s (disks copied: %s)", self.domain_name, ", ".join(local) or "none")
        try:
            dom.migrateToURI3(mig.dest_uri(), mig.params(xml, options, local), mig.flags(options, local))
        except libvirt.libvirtError as exc:
            done.set()
            reason = (self.migration or {}).get("abortReason") or str(exc)
            log.warning("migration of %s failed after %.1fs: %s", self.domain_name, time.monotonic() - started, reason)
            aborting = (self.migration or {}).get("abortStatus") == "Aborting"
            self._set_migration(failed=True, completed=True, failureReason=reason, endTimestamp=mig.stamp(),
                                **({"abortStatus": "Succeeded"} if aborting else {}))
            return
        done.set()
        log.info("migration of %s completed after %.1fs", self.domain_name, time.monotonic() - started)
        self.job_completed.wait(2)  # libvirt's statistics (the downtime) come as an event of their own
        with self.lock:
            self.migration.update(completed=True, endTimestamp=mig.stamp())
            self.status.update(status="Shutoff", reason="Migrated", final=True, outcome="Succeeded")
            self._publish_locked()
        self.final.set()

    def _monitor_migration(self, dom, options: "mig.Options", done: threading.Event) -> None:
        memory = 0
        try:
            memory = dom.info()[1] * 1024
        except libvirt.libvirtError:
            pass
        progress = mig.Progress(started=time.monotonic())
        while not done.wait(mig.MONITOR_INTERVAL):
            try:
                info = dom.jobStats()
            except libvirt.libvirtError:
                continue
            remaining = info.get("data_remaining")
            why = mig.should_abort(progress, remaining, time.monotonic(), options, memory)
            if why:
                log.warning("aborting the migration of %s: %s", self.domain_name, why)
                with self.lock:
                    self.migration["abortReason"] = f"live migration aborted: {why}"
                try:
                    dom.abortJob()
                except libvirt.libvirtError as exc:
                    log.info("abort: %s", exc)
                return

    def abort_migration(self) -> dict:
        """virt-handler's cancel (the migration was deleted, abortRequested): libvirt aborts the job."""
        with self.lock:
            running = self.migration_thread is not None and self.migration_thread.is_alive()
            if not running:
                return self.snapshot()
            self.migration.update(abortStatus="Aborting", abortReason="live migration aborted: cancelled by the user")
            self._publish_locked()
        try:
            self._domain().abortJob()
        except libvirt.libvirtError as exc:
            with self.lock:
                self.migration["abortStatus"] = "Failed"
            raise RuntimeError(f"abort failed: {exc}") from None
        return self.snapshot()

    def shutdown(self, grace: int | None = None) -> dict:
        """virt-handler's request (the VMI is deleted or stopped): the guest's end is a success."""
        self.stop_commanded = True
        return self._shut_down(grace)

    def terminate(self) -> dict:
        """SIGTERM: the launcher pod is being deleted. Unless virt-handler also asks for the stop before
        the guest has ended, the VMI fails with reason PodTerminated (as when upstream's pod goes away)."""
        self.pod_terminated = True
        return self._shut_down(None)

    def _shut_down(self, grace: int | None) -> dict:
        grace = self.grace_period if grace is None else int(grace)
        container_disks.cancel_waits()  # a sync still waiting for a containerDisk holds the lock
        with self.lock:
            first = not self.stop_requested
            self.stop_requested = True
            if self.dom is None:
                self.final.set()
                return self.snapshot()
        if first:
            log.info("shutting down %s (grace %ss)", self.domain_name, grace)
            try:
                self._domain().shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            except libvirt.libvirtError as exc:
                log.info("ACPI shutdown failed: %s", exc)
                grace = 0
            self.shutdown_timer = threading.Timer(grace, self._destroy_if_running)
            self.shutdown_timer.daemon = True
            self.shutdown_timer.start()
        return self.snapshot()

    def _destroy_if_running(self):
        if not self.final.is_set():
            log.info("grace period over: destroying %s", self.domain_name)
            try:
                self._domain().destroy()
            except libvirt.libvirtError as exc:
                log.info("destroy: %s", exc)

    def kill(self) -> dict:
        container_disks.cancel_waits()
        with self.lock:
            self.stop_requested = True
            if self.dom is None:
                self.final.set()
                return self.snapshot()
        self._destroy_if_running()
        return self.snapshot()

    def pause(self) -> dict:
        dom = self._domain()
        if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            dom.suspend()
        return self.snapshot()

    def unpause(self) -> dict:
        dom = self._domain()
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
        return self.snapshot()

    def guestinfo(self) -> dict:
        if self.dom is None or not self.agent_connected:
            return {}
        try:
            raw = self.dom.guestInfo(libvirt.VIR_DOMAIN_GUEST_INFO_OS, 0)
        except libvirt.libvirtError:
            return {}
        return {ours: raw[theirs] for theirs, ours in _GUEST_INFO_KEYS.items() if theirs in raw}

    def softreboot(self) -> dict:
        """As upstream: through the guest agent when it is connected, else the ACPI power button (the domain
        restarts in place: on_reboot is restart)."""
        dom = self._domain()
        if self.agent_connected:
            flags, how = libvirt.VIR_DOMAIN_REBOOT_GUEST_AGENT, "guest agent"
        elif self.acpi:
            flags, how = libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN, "ACPI"
        else:
            raise RuntimeError("VMI neither has the guest agent connected nor the ACPI feature enabled")
        log.info("soft reboot of %s through the %s", self.domain_name, how)
        dom.reboot(flags)
        return self.snapshot()

    def reset(self) -> dict:
        self._domain().reset(0)
        log.info("reset %s", self.domain_name)
        return self.snapshot()

    # ------------------------------------------------------------------ hotplug (virt-handler's requests)

    def attach_volume(self, disk: dict, volume: dict) -> dict:
        """Attaches a hotplugged volume (already mounted at hotplug_dir/<volume>.img) as `disk`."""
        name = volume.get("name")
        if not name or disk.get("name") != name:
            raise ValueError("attachvolume needs a volume and the disk of the same name")
        with self.lock:
            target = hotplug.attach(self._domain(), disk, volume, self.hotplug_dir / f"{name}.img")
            self.targets = hotplug.disk_targets(self.dom.XMLDesc(0))  # what libvirt has now
            self.hotplugged.add(name)
            log.info("attached volume %s as %s", name, target)
            self._publish_locked()
            return self.snapshot()

    def detach_volume(self, name: str) -> dict:
        with self.lock:
            if hotplug.detach(self._domain(), name):
                log.info("detached volume %s", name)
            self.targets = hotplug.disk_targets(self.dom.XMLDesc(0))
            if name not in self.targets:
                self.hotplugged.discard(name)
            self._publish_locked()
            return self.snapshot()

    def snapshot_volumes(self, snapshot_id: str, volumes: list) -> dict:
        """A point-in-time copy of the named volumes' disks beside them (capture.py); the guest is frozen for the
        cut when its agent is connected. Result: capture's, plus whether an agent was there."""
        if not snapshot_id or not volumes:
            raise ValueError("snapshotvolumes needs an id and volumes")
        dom = self._domain()
        with self.lock:
            agent = self.agent_connected
        result = capture.capture(self.conn, dom, snapshot_id, volumes, freeze=agent)
        result["guestAgent"] = agent
        return result

    def _agent(self, what: tuple[str, ...]) -> dict:
        if not self.agent_connected:
            raise RuntimeError("VMI does not have guest agent connected")
        return guest_agent.query(self._domain(), what)

    def guestosinfo(self) -> dict:
        return guest_agent.agent_info(self._agent(tuple(guest_agent.COMMANDS)))

    def userlist(self) -> dict:
        return guest_agent.user_list(self._agent(("users",))["users"])

    def filesystemlist(self) -> dict:
        return guest_agent.filesystem_list(self._agent(("fs",))["fs"])

    # ------------------------------------------------------------------ streams (see server.py)

    @property
    def vnc_socket(self) -> Path:
        return self.private_dir / "virt-vnc"

    def open_vnc(self) -> socket.socket:
        """A connection to QEMU's VNC server (RFB bytes)."""
        self._domain()
        if not graphics_enabled(self.vmi or {}):
            raise RuntimeError("No graphics devices are present.")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.vnc_socket))
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"VNC socket: {exc}") from None
        return sock

    def open_guest_port(self, port: int, protocol: str = "tcp") -> socket.socket:
        self._domain()
        return guest_ports.connect(self.vmi or {}, port, protocol)
