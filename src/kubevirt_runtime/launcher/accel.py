"""Which accelerator the guest gets: KVM only if a probe guest proves it runs, else TCG.

A /dev/kvm that opens is not enough (on some nested hosts it starts a guest whose vCPU then never
makes progress: a Linux kernel hangs while decompressing). So the probe boots a tiny guest under
KVM and requires it to finish real work within a deadline: enter long mode with paging, touch 16 MiB
of memory, run a 20-million-iteration loop, then leave through isa-debug-exit. Under a working KVM
that takes well under a second; TCG needs about 0.2 s.

The probe payload is a 262-byte multiboot image built from this source (GNU as, --64; linked at
0x100000 as a flat binary):

    header: .long 0x1BADB002, 0x00010000, -(0x1BADB002+0x00010000), header, header, 0, 0, entry
    entry (.code32):   cli; outb 'P' to 0x3f8
                       zero 12 KiB at 0x200000; PML4[0]->PDPT, PDPT[0]->PD, PD = 512 x 2 MiB identity
                       cr3=0x200000; cr4|=PAE; EFER|=LME; cr0|=PG|PE; lgdt; ljmp 0x08:long64
    long64 (.code64):  outb 'L'; store to every 4 KiB page in [16 MiB, 32 MiB); outb 'M'
                       rcx=20000000; 1: dec rcx; jnz 1b; outb 'C'
                       outl 0x10 to port 0xf4 (isa-debug-exit: QEMU exits with status 33); hlt loop
    gdt: null, 64-bit code (0x00209A0000000000), data (0x0000920000000000)
"""
from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time

log = logging.getLogger(__name__)

DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"
PROBE_MARKER = b"PLMC"
PROBE_EXIT = 33
PROBE = bytes.fromhex(
    "02b0ad1b00000100fe4f51e40000100000001000000000000000000020001000fa66baf803b050eebf0000200031c0b9"
    "000c0000f3abc7050000200003102000c7050010200003202000bf00202000b883000000b90002000089070500002000"
    "83c708e2f4b8000020000f22d80f20e083c8200f22e0b9800000c00f320d000100000f300f20c00d010000800f22c00f"
    "011500011000ea9d001000080066baf803b04cee48c7c70000000148893f4881c7001000004881ff0000000272ed66ba"
    "f803b04dee48c7c1002d310148ffc975fbb043ee66baf400b810000000eff4ebfd0f1f80000000000000000000000000"
    "00000000009a200000000000009200001700e8001000")


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
