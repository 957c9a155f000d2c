"""libvirt's QEMU capability cache, warmed once and installed into a fresh libvirtd, or into the QEMU driver
embedded in a launcher: no second probe.

Runs a real libvirtd and QEMU (TCG) on this host, in private mount namespaces (child processes: entering one
needs a single-threaded process).
"""
import json
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.integration

# Installs the variant the way the launcher does (with the file times of an image unpacked elsewhere), starts
# libvirt's QEMU driver (argv[3]: "daemon", a private libvirtd, or "embedded" in this process) on an empty cache
# directory and reports how long the capabilities took and whether libvirt kept the installed file (it rewrites
# the file when it probes).
START = textwrap.dedent("""
    import ctypes, json, sys, threading, time
    from pathlib import Path
    from kubevirt_runtime.launcher import caps_cache, libvirtd
    variants, work, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    driver_class = libvirtd.EmbeddedDriver if mode == "embedded" else libvirtd.Libvirtd
    libvirtd.enter_private_mount_namespace(work)
    caps_cache.hide_kvm(work)  # TCG only, as a launcher under useEmulation
    (work / "cache").mkdir()
    assert ctypes.CDLL(None).mount(str(work / "cache").encode(), b"/var/cache/libvirt", None,
                                   libvirtd.MS_BIND, None) == 0
    cache = driver_class.capabilities_cache
    variant = caps_cache.install(variants, cache, kvm=caps_cache.kvm_usable(), embedded=mode == "embedded")
    installed = {p.name: p.read_text() for p in cache.glob("*.xml")}
    daemon = driver_class()
    daemon.start()
    import libvirt
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)], daemon=True).start()
    daemon.wait_ready()
    conn = libvirt.open(daemon.uri)
    started = time.monotonic()
    conn.getDomainCapabilities()
    took = time.monotonic() - started
    conn.close()
    daemon.stop()
    kept = all((cache / name).read_text() == text for name, text in installed.items())
    print(json.dumps({"variant": variant, "seconds": took, "installed": len(installed), "kept": kept}))
""")


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
def test_a_warmed_cache_installed_elsewhere_spares_the_probe(tmp_path, mode):
    """The tcg variant, as the image build makes it and a launcher under useEmulation installs it (the QEMU driver
    embedded in an ordinary launcher, libvirtd in a migration target)."""
    variant = "tcg"
    warm = subprocess.run([sys.executable, "-m", "kubevirt_runtime.launcher.caps_cache", "warm", "--no-kvm",
                           str(tmp_path / "variants" / variant)], capture_output=True, text=True, timeout=300)
    assert warm.returncode == 0, warm.stderr[-2000:]
    cached = list((tmp_path / "variants" / variant).glob("*.xml"))
    assert cached, warm.stdout
    # the image's copy carries the build's file times, which never match a node's unpacked files
    for path in cached:
        path.write_text(path.read_text().replace("<qemuctime>", "<qemuctime>1").replace("<selfctime>", "<selfctime>1"))
    script = tmp_path / "start.py"
    script.write_text(START)
    runs = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        started = time.monotonic()
        out = subprocess.run([sys.executable, str(script), str(tmp_path / "variants"), str(tmp_path / name), mode],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(dict(json.loads(out.stdout.splitlines()[-1]), wall=time.monotonic() - started))
    for run in runs:
        assert run["variant"] == variant and run["installed"] == len(cached)
        assert run["kept"], run  # libvirt loaded the installed file instead of probing QEMU again
    print(f"capabilities from the installed cache: {[round(r['seconds'], 2) for r in runs]}s")
