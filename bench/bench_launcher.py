"""virt-launcher benchmark: real libvirt + QEMU (TCG) booting the test guest (Debian kernel + busybox).

Prints, per TCG translation-cache size (QEMU's default, 32, 16 (the launcher's default) and 8 MiB):
- launcher start -> command socket ready, sync -> domain running, sync -> console marker (seconds);
- memory once the guest is up: RSS of the launcher (Python), libvirtd and QEMU, QEMU's RSS without the
  guest's RAM, the TCG code buffer's share, and the launcher-side overhead = everything except guest RAM
  (goal: under 100 MiB).

$BENCH_LAUNCHER_MEMORY (default 256Mi) sets the guest RAM, $BENCH_LAUNCHER_TB ("0,32,16,8") the cache sizes.
"""
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024

from bench.procmem import pss_kib, qemu_breakdown, rss_kib  # noqa: E402 - after the path setup


def run_one(guest, tb_mib, memory):
    import guest as guest_mod

    from kubevirt_runtime.api.quantity import memory_bytes
    from kubevirt_runtime.handler.launcher_client import LauncherClient, open_console

    base = Path(tempfile.mkdtemp(prefix="kvb-", dir="/tmp"))
    uid = str(uuid.uuid4())
    args = ("--accel", "tcg", "--tb-cache-mib", str(tb_mib))
    launcher = guest_mod.LocalLauncher(base, guest, "bench", uid=uid, grace=1, extra_args=args)
    try:
        t0 = time.monotonic()
        launcher.start()
        t_socket = time.monotonic() - t0
        client = LauncherClient(launcher.socket)
        vmi = guest_mod.vmi("bench", guest, uid=uid, memory=memory)
        # no NIC: its pod network is what virt-handler wires into a launcher pod, and there is no pod here
        vmi["spec"]["domain"]["devices"]["interfaces"], vmi["spec"]["networks"] = [], []
        t1 = time.monotonic()
        launcher.sync(vmi)  # wires the pod network as virt-handler does, then syncs
        t_running = time.monotonic() - t1
        console = open_console(launcher.socket, history=True)
        guest_mod.read_until(console, guest_mod.MARKER.encode(), 180)
        t_marker = time.monotonic() - t1
        time.sleep(2)  # let the guest settle
        qemu = launcher.qemu_pid()
        libvirtd = launcher.libvirtd_pid()
        r_launcher, r_libvirtd, r_qemu = rss_kib(launcher.proc.pid), rss_kib(libvirtd) if libvirtd else 0, rss_kib(qemu)
        guest_kib, code_kib = qemu_breakdown(qemu, memory_bytes(memory))
        pss = pss_kib(launcher.proc.pid) + (pss_kib(libvirtd) if libvirtd else 0) + pss_kib(qemu)
        client.kill()
        launcher.proc.wait(30)
        console.close()
        return {"socket": t_socket, "running": t_running, "marker": t_marker, "launcher": r_launcher,
                "libvirtd": r_libvirtd, "qemu": r_qemu, "guest": guest_kib, "code": code_kib,
                "pss": pss}
    finally:
        launcher.stop(10)
        shutil.rmtree(base, ignore_errors=True)


def main():
    if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd"):
        print("skipped: needs root, libvirtd and qemu-system-x86_64 (hack/install-node-packages.sh)")
        return
    import guest as guest_mod

    memory = os.environ.get("BENCH_LAUNCHER_MEMORY", "256Mi")
    sizes = [int(x) for x in os.environ.get("BENCH_LAUNCHER_TB", "0,32,16,8").split(",")]
    guest = guest_mod.build()
    print(f"guest: {Path(guest['kernel']).parent.name}, RAM {memory}, TCG")
    header = (f"{'tb-cache':>10} {'socket s':>9} {'running s':>9} {'marker s':>9} {'launcher':>9} {'libvirtd':>9} "
              f"{'qemu':>9} {'guest RAM':>10} {'tcg code':>9} {'qemu-guest':>10} {'overhead':>9} {'ovh(PSS)':>9}")
    print(header)
    for tb in sizes:
        r = run_one(guest, tb, memory)
        qemu_wo_guest = r["qemu"] - r["guest"]
        overhead = r["launcher"] + r["libvirtd"] + qemu_wo_guest
        label = "qemu dflt" if tb == 0 else f"{tb} MiB"
        print(f"{label:>10} {r['socket']:9.2f} {r['running']:9.2f} {r['marker']:9.2f} "
              f"{r['launcher'] / 1024:8.1f}M {r['libvirtd'] / 1024:8.1f}M {r['qemu'] / 1024:8.1f}M "
              f"{r['guest'] / 1024:9.1f}M {r['code'] / 1024:8.1f}M {qemu_wo_guest / 1024:9.1f}M "
              f"{overhead / 1024:8.1f}M {(r['pss'] - r['guest']) / 1024:8.1f}M", flush=True)
    print("overhead = RSS of launcher + libvirtd + QEMU without guest RAM (goal < 100 MiB); ovh(PSS) counts\n"
          "shared library pages once across those processes (what one more VM costs a node)")


if __name__ == "__main__":
    main()
