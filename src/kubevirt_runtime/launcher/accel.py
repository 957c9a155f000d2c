"""Which accelerator the guest gets when virt-handler did not say: KVM only if a probe guest proves it runs
under QEMU, else TCG. The probe payload and why a /dev/kvm that opens is not enough: machinery/kvm_probe.py
(virt-handler runs the same payload once per node, on /dev/kvm directly).
"""
from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time

from kubevirt_runtime.machinery.kvm_probe import PROBE

log = logging.getLogger(__name__)

DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"
PROBE_MARKER = b"PLMC"
PROBE_EXIT = 33


def probe_guest(accel: str, emulator: str = DEFAULT_EMULATOR, timeout: float = 2.0) -> tuple[bool, str]:
    """Boots the probe under `accel`; (True, detail) if it completed within `timeout` seconds."""
    with tempfile.NamedTemporaryFile(prefix="kvm-probe-", suffix=".bin") as image:
        image.write(PROBE)
        image.flush()
        cmd = [emulator, "-accel", accel, "-machine", "pc", "-m", "32", "-display", "none",
               "-nodefaults", "-no-user-config", "-serial", "stdio", "-no-reboot",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", image.name]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            seen = (exc.stdout or b"")[-8:]
            return False, f"probe guest made no progress within {timeout:.1f}s (serial tail {seen!r})"
        except OSError as exc:
            return False, f"cannot run {emulator}: {exc}"
        took = time.monotonic() - start
        if proc.returncode == PROBE_EXIT and proc.stdout.endswith(PROBE_MARKER):
            return True, f"probe guest completed in {took:.2f}s"
        return False, f"probe guest failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[-200:]}"


def choose_accel(use_emulation: bool = False, emulator: str = DEFAULT_EMULATOR,
                 timeout: float = 2.0) -> tuple[str, str]:
    """("kvm" | "tcg", why)."""
    if use_emulation:
        return "tcg", "emulation forced (useEmulation)"
    if not os.path.exists("/dev/kvm"):
        return "tcg", "no /dev/kvm"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        return "tcg", f"/dev/kvm unusable: {exc}"
    ok, detail = probe_guest("kvm", emulator, timeout)
    log.info("KVM probe: %s", detail)
    return ("kvm", detail) if ok else ("tcg", f"KVM rejected: {detail}")
