"""libvirt's QEMU capability cache, pre-warmed in the launcher image.

Without a cache libvirt probes QEMU when it first needs its capabilities: it runs QEMU and asks it hundreds
of QMP questions, about 4 s of CPU per launcher (and 50 launchers starting together pay it 50 times on the same
cores). The image build (roles/kubevirt_images, files/warm_caps.sh) runs

    python3 -m kubevirt_runtime.launcher.caps_cache warm OUT_DIR

in the launcher's root filesystem, once seeing /dev/kvm (variant ``kvm``, when the build host has one) and once
with it hidden (``--no-kvm``: variant ``tcg``), and the image carries the results under
VARIANTS_DIR/<variant>/. A launcher that runs TCG guests only (useEmulation) hides /dev/kvm from libvirt too
(hide_kvm), so it always gets the ``tcg`` variant: with KVM usable libvirt also compares the host's CPUID, which
on some hosts differs from one probe to the next. At start the launcher calls install(): the variant matching
its own view of /dev/kvm goes to libvirt's cache directory with the three file
times libvirt compares re-stamped to this container's files (the ctimes of an image's files are when the node
unpacked it, never the build's): <qemuctime> (the emulator's ctime), <qemumoddirmtime> (QEMU's module
directory) and <selfctime> (the newest ctime of libvirtd and the driver module it loads; of the module alone
for the driver embedded in the launcher, whose cache is under its own root). Everything else
(libvirt's version; with KVM the host's kernel, microcode and CPU) libvirt still checks itself, and on any
mismatch it probes as before: the cache can make a start faster, never wrong.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from . import libvirtd

VARIANTS_DIR = Path("/usr/share/kubevirt-ops/qemu-capabilities")
CACHE_DIR = libvirtd.Libvirtd.capabilities_cache
QEMU_MODULE_DIR = Path("/usr/lib/x86_64-linux-gnu/qemu")
KVM_DEVICE = "/dev/kvm"
MS_RDONLY, MS_REMOUNT = 1, 32


def kvm_usable(device: str = KVM_DEVICE) -> bool:
    """What libvirt asks to decide whether its cache must hold KVM's capabilities."""
    return os.access(device, os.R_OK | os.W_OK)


def hide_kvm(private_dir: Path, device: str = KVM_DEVICE) -> bool:
    """Makes `device` unusable for this mount namespace (a read-only empty file over it: libvirt's access check
    for writing fails), so libvirt neither probes nor expects KVM. True when there was one to hide."""
    import ctypes
    if not os.path.exists(device):
        return False
    placeholder = private_dir / "kvm-hidden"
    placeholder.touch()
    libc = ctypes.CDLL(None, use_errno=True)
    for flags, source in ((libvirtd.MS_BIND, str(placeholder).encode()),
                          (libvirtd.MS_BIND | MS_REMOUNT | MS_RDONLY, None)):
        if libc.mount(source, device.encode(), None, flags, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"hiding {device}: {os.strerror(err)}")
    return True


def restamp(xml: str, stamps: dict[str, int]) -> str:
    """The cache file with <tag>value</tag> replaced for each tag of `stamps` that it has."""
    for tag, value in stamps.items():
        xml = re.sub(rf"<{tag}>-?\d+</{tag}>", f"<{tag}>{int(value)}</{tag}>", xml, count=1)
    return xml


def local_stamps(emulator: str, embedded: bool = False) -> dict[str, int]:
    """The values libvirt computes in this container for the three file times it keeps in the cache. Its own
    time is the newest ctime of what it loaded: libvirtd and the driver module, or (embedded in a process that
    libvirt does not count) the driver module alone."""
    driver = Path(libvirtd.DRIVER_DIR) / "libvirt_driver_qemu.so"
    own = [driver] if embedded else [Path(libvirtd.LIBVIRTD), driver]
    stamps = {"qemuctime": int(os.stat(emulator).st_ctime),
              "selfctime": int(max(os.stat(path).st_ctime for path in own))}
    if QEMU_MODULE_DIR.is_dir():
        stamps["qemumoddirmtime"] = int(QEMU_MODULE_DIR.stat().st_mtime)
    return stamps


def install(variants: Path = VARIANTS_DIR, cache: Path = CACHE_DIR, kvm: bool | None = None,
            embedded: bool = False) -> str | None:
    """Puts the matching pre-warmed variant into libvirt's cache `cache` (before the driver starts; `embedded`:
    the driver runs in this process); returns the variant's name, or None when the image carries none."""
    variant = "kvm" if (kvm_usable() if kvm is None else kvm) else "tcg"
    files = sorted((variants / variant).glob("*.xml"))
    if not files:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    for source in files:
        xml = source.read_text()
        emulator = re.search(r"<emulator>([^<]+)</emulator>", xml)
        if emulator is None or not os.path.exists(emulator.group(1)):
            continue
        (cache / source.name).write_text(restamp(xml, local_stamps(emulator.group(1), embedded)))
    return variant


def warm(out_dir: Path, kvm: bool = True) -> list[Path]:
    """Lets a private libvirtd probe QEMU into an empty cache (with /dev/kvm hidden unless `kvm`) and copies
    the result to `out_dir` (this process must still be single-threaded: it enters its own mount namespace)."""
    import ctypes
    work = Path(tempfile.mkdtemp(prefix="kvo-caps-"))
    libvirtd.enter_private_mount_namespace(work)
    if not kvm:
        hide_kvm(work)
    fresh = work / "cache"
    fresh.mkdir()
    target = CACHE_DIR.parent.parent
    target.mkdir(parents=True, exist_ok=True)
    if ctypes.CDLL(None, use_errno=True).mount(str(fresh).encode(), str(target).encode(), None, libvirtd.MS_BIND,
                                               None) != 0:
        raise OSError(ctypes.get_errno(), f"bind-mounting {fresh} on {target}")
    import libvirt
    daemon = libvirtd.Libvirtd()
    daemon.start()
    try:
        daemon.wait_ready()
        conn = libvirt.open(daemon.uri)
        conn.getDomainCapabilities()
        conn.close()
    finally:
        daemon.stop()
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for source in sorted(CACHE_DIR.glob("*.xml")):
        shutil.copy(source, out_dir / source.name)
        copied.append(out_dir / source.name)
    shutil.rmtree(work, ignore_errors=True)
    return copied


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m kubevirt_runtime.launcher.caps_cache")
    sub = parser.add_subparsers(dest="command", required=True)
    warm_parser = sub.add_parser("warm", help="probe QEMU into an empty cache and copy it out")
    warm_parser.add_argument("out_dir", type=Path)
    warm_parser.add_argument("--no-kvm", action="store_true", help="hide /dev/kvm from libvirt (the tcg variant)")
    args = parser.parse_args(argv)
    copied = warm(args.out_dir, kvm=not args.no_kvm)
    print(f"{'kvm' if kvm_usable() else 'tcg'}: {', '.join(p.name for p in copied) or 'nothing cached'}")
    return 0 if copied else 1


if __name__ == "__main__":
    sys.exit(main())
