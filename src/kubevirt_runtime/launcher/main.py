"""virt-launcher: the compute container of a VMI pod.

Runs libvirt's QEMU driver (embedded in this process; a private libvirtd with --libvirt-daemon, which a
live migration's target needs), serves launcher.sock, starts the domain when virt-handler sends sync, and
exits when the domain ends (status 0 when the guest shut down or was stopped on request, 1 when it
failed), so the pod lives exactly as long as the VM. SIGTERM (pod deletion) shuts the guest down
gracefully: ACPI power button, then destroy after the grace period.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("virt-launcher")
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """QEMU is daemonized by libvirtd, so it is re-parented to the nearest subreaper. In a pod the launcher
    is PID 1 and gets it anyway; making the launcher a subreaper everywhere gives local runs the same
    process tree (and the same reaping duty)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children() -> set[int]:
    pids = set()
    for task in os.listdir("/proc/self/task"):
        try:
            pids.update(int(p) for p in Path(f"/proc/self/task/{task}/children").read_text().split())
        except OSError:
            continue
    return pids


def release_free_heap() -> None:
    """Starting a domain leaves the heap with megabytes of freed memory (libvirt's RPC buffers, XML, the
    VMI's JSON) that glibc keeps for reuse; the launcher then idles for the VM's lifetime, so give it back."""
    import ctypes
    ctypes.CDLL(None).malloc_trim(0)


def reap_orphans() -> None:
    """Reaps exited processes that were re-parented to us (QEMU, and the QEMUs libvirt runs to probe
    capabilities: both daemonize, i.e. start their own session). libvirt polls such a pid after killing
    it and would otherwise wait on the zombie for ~15 s, more than once. Our own subprocess children stay
    in our session and are left to their Popen objects (peeked with WNOWAIT, never stolen)."""
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return
    if info is None or not info.si_pid:
        return
    my_session = os.getsid(0)
    for pid in _children():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if state == "Z" and session != my_session:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def process_start_time() -> float:
    """When this process started (seconds since the epoch; the kernel's clock-tick resolution)."""
    ticks = os.sysconf("SC_CLK_TCK")
    started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
    boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))
    return boot + started


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="virt-launcher", description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--name", required=True, help="VMI name")
    p.add_argument("--namespace", required=True, help="VMI namespace")
    p.add_argument("--uid", default="", help="VMI uid (sync commands for another uid are refused)")
    p.add_argument("--socket-dir", default="/var/run/kubevirt/sockets", help="where launcher.sock is created")
    p.add_argument("--private-dir", default="/var/run/kubevirt-private",
                   help="libvirt runtime dirs, overlays, ISOs, console socket")
    p.add_argument("--container-disk-dir", default="/var/run/kubevirt/container-disks",
                   help="containerDisk contents, one directory per volume")
    p.add_argument("--hotplug-disk-dir", default="/var/run/kubevirt/hotplug-disks",
                   help="hotplugged PVCs' disks, <volume>.img (virt-handler mounts them here)")
    p.add_argument("--grace-period", type=int, default=30, help="terminationGracePeriodSeconds")
    p.add_argument("--stop-container-disks", action="store_true",
                   help="on exit, stop the pod's containerDisk containers (so the pod ends with the launcher)")
    p.add_argument("--accel", choices=("kvm", "tcg"), default=os.environ.get("KUBEVIRT_ACCEL") or None,
                   help="skip the KVM probe and use this accelerator")
    p.add_argument("--use-emulation", action="store_true",
                   default=os.environ.get("KUBEVIRT_USE_EMULATION", "").lower() in ("1", "true", "yes"),
                   help="always use TCG (like KubeVirt's useEmulation)")
    p.add_argument("--tb-cache-mib", type=int, default=int(os.environ.get("KUBEVIRT_TB_CACHE_MIB", "16")),
                   help="TCG translation cache size in MiB (0: QEMU's default)")
    p.add_argument("--no-namespace", action="store_true",
                   help="do not unshare a mount namespace (libvirt dirs are shared with the host)")
    p.add_argument("--in-pod", action="store_true",
                   help="the container is this launcher's own mount namespace: use libvirt's directories in it "
                        "(an unprivileged launcher cannot unshare a namespace)")
    p.add_argument("--libvirt-daemon", action="store_true",
                   help="run a private libvirtd instead of the embedded QEMU driver (a migration target: the "
                        "source's libvirt connects to it)")
    p.add_argument("--debug", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s virt-launcher %(levelname)s %(name)s: %(message)s")
    t0 = time.monotonic()
    private = Path(args.private_dir)
    private.mkdir(parents=True, exist_ok=True)
    Path(args.socket_dir).mkdir(parents=True, exist_ok=True)

    become_subreaper()
    # Must happen while the process is single-threaded.
    from . import libvirtd
    if args.in_pod:
        libvirtd.prepare_container()
    elif not args.no_namespace:
        libvirtd.enter_private_mount_namespace(private)
    driver_class = libvirtd.Libvirtd if args.libvirt_daemon else libvirtd.EmbeddedDriver
    if args.in_pod or not args.no_namespace:
        from . import caps_cache
        # In a pod the device plugin hands out /dev/kvm only where KVM is wanted; a local TCG-only launcher
        # hides the host's from libvirt in its own mount namespace.
        hidden = not args.in_pod and (args.use_emulation or args.accel == "tcg") and caps_cache.hide_kvm(private)
        if hidden:
            log.info("TCG only: /dev/kvm is hidden from libvirt")
        variant = caps_cache.install(cache=driver_class.capabilities_cache, kvm=False if hidden else None,
                                     embedded=driver_class.embedded)
        log.info("QEMU capabilities: %s", f"pre-warmed cache ({variant})" if variant else "libvirt probes QEMU")
    daemon = driver_class(debug=args.debug)
    daemon.start()

    import libvirt

    from .domain import DomainManager
    from .server import CommandServer

    libvirt.virEventRegisterDefaultImpl()

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, name="libvirt-events", daemon=True).start()
    libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors surface as exceptions
    try:
        daemon.wait_ready()
        conn = libvirt.open(daemon.uri)
    except Exception as exc:
        log.error("libvirt did not start: %s", exc)
        daemon.stop()
        _stop_container_disks(args)
        return 2
    log.info("libvirt %s ready after %.2fs", f"daemon (pid {daemon.pid})" if daemon.pid else "QEMU driver (embedded)",
             time.monotonic() - t0)

    lost = threading.Event()
    if daemon.pid:
        conn.registerCloseCallback(lambda c, reason, opaque: lost.set(), None)

    manager = DomainManager(conn, args.name, args.namespace, args.uid, private, Path(args.container_disk_dir),
                            args.grace_period, accel="tcg" if args.use_emulation else args.accel,
                            use_emulation=args.use_emulation, tb_cache_mib=args.tb_cache_mib or None,
                            hotplug_dir=Path(args.hotplug_disk_dir))
    manager.stage("ContainersStarted", process_start_time(), publish=False)
    server = CommandServer(os.path.join(args.socket_dir, "launcher.sock"), manager)
    server.start()
    manager.stage("LauncherReady", publish=False)
    log.info("serving %s after %.2fs", server.path, time.monotonic() - t0)

    def on_term(signum, frame):
        log.info("signal %s: the pod is being deleted, graceful shutdown", signum)
        threading.Thread(target=manager.terminate, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    heap_released = False
    while not manager.final.wait(0.2):
        reap_orphans()
        if not heap_released and "DomainStarted" in manager.timeline:
            release_free_heap()
            heap_released = True
        if lost.is_set():
            log.error("lost the connection to libvirtd")
            manager._set(status="Crashed", reason="LibvirtDied", final=True, outcome="Failed")
            manager.final.set()
    state = manager.snapshot()
    log.info("domain ended: %s/%s -> %s", state["status"], state["reason"], state["outcome"])
    time.sleep(0.3)  # the final event is in the subscribers' socket buffers; let them read it
    server.stop()
    daemon.stop()
    reap_orphans()
    _stop_container_disks(args)
    return 0 if state.get("outcome") in ("Succeeded", None) else 1


def _stop_container_disks(args) -> None:
    if args.stop_container_disks:
        from .container_disks import stop_all
        log.info("stopped the containerDisk containers (pids %s)", stop_all())


if __name__ == "__main__":
    sys.exit(main())
