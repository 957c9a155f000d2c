"""Does KVM run a guest on this host? A tiny guest, run straight on /dev/kvm's ioctls (no QEMU needed).

A /dev/kvm that opens is not enough (on some nested hosts it starts a guest whose vCPU then never makes
progress). The probe guest has to do real work: enter long mode with paging, touch 16 MiB of memory, run a
20-million-iteration loop, then leave through an I/O port. Under a working KVM that takes well under a second.
virt-handler runs it once per node (decide_accel in handler/node_accel.py); launchers without that decision
boot the same payload under QEMU (launcher/accel.py).

The payload is a 262-byte multiboot image built from this source (GNU as, --64; linked at 0x100000 as a flat
binary):

    header: .long 0x1BADB002, 0x00010000, -(0x1BADB002+0x00010000), header, header, 0, 0, entry
    entry (.code32):   cli; outb 'P' to 0x3f8
                       zero 12 KiB at 0x200000; PML4[0]->PDPT, PDPT[0]->PD, PD = 512 x 2 MiB identity
                       cr3=0x200000; cr4|=PAE; EFER|=LME; cr0|=PG|PE; lgdt; ljmp 0x08:long64
    long64 (.code64):  outb 'L'; store to every 4 KiB page in [16 MiB, 32 MiB); outb 'M'
                       rcx=20000000; 1: dec rcx; jnz 1b; outb 'C'
                       outl 0x10 to port 0xf4 (isa-debug-exit); hlt loop
    gdt: null, 64-bit code (0x00209A0000000000), data (0x0000920000000000)

    python -m kubevirt_runtime.machinery.kvm_probe [--timeout S]   # exit 0: KVM works; prints what happened
"""
from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import subprocess
import sys
import time

PROBE = bytes.fromhex(
    "02b0ad1b00000100fe4f51e40000100000001000000000000000000020001000fa66baf803b050eebf0000200031c0b9"
    "000c0000f3abc7050000200003102000c7050010200003202000bf00202000b883000000b90002000089070500002000"
    "83c708e2f4b8000020000f22d80f20e083c8200f22e0b9800000c00f320d000100000f300f20c00d010000800f22c00f"
    "011500011000ea9d001000080066baf803b04cee48c7c70000000148893f4881c7001000004881ff0000000272ed66ba"
    "f803b04dee48c7c1002d310148ffc975fbb043ee66baf400b810000000eff4ebfd0f1f80000000000000000000000000"
    "00000000009a200000000000009200001700e8001000")
MARKER = b"PLMC"  # what the payload writes to the serial port, in order
SERIAL_PORT, EXIT_PORT = 0x3F8, 0xF4
LOAD_ADDRESS = 0x100000
ENTRY = int.from_bytes(PROBE[28:32], "little")  # the multiboot header's entry_addr
GUEST_MEMORY = 32 << 20


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (0xAE << 8) | nr


class _Segment(ctypes.Structure):
    _fields_ = [("base", ctypes.c_uint64), ("limit", ctypes.c_uint32), ("selector", ctypes.c_uint16),
                ("type", ctypes.c_uint8), ("present", ctypes.c_uint8), ("dpl", ctypes.c_uint8),
                ("db", ctypes.c_uint8), ("s", ctypes.c_uint8), ("l", ctypes.c_uint8), ("g", ctypes.c_uint8),
                ("avl", ctypes.c_uint8), ("unusable", ctypes.c_uint8), ("padding", ctypes.c_uint8)]


class _DTable(ctypes.Structure):
    _fields_ = [("base", ctypes.c_uint64), ("limit", ctypes.c_uint16), ("padding", ctypes.c_uint16 * 3)]


class _Sregs(ctypes.Structure):
    _fields_ = [(name, _Segment) for name in ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")] + \
               [("gdt", _DTable), ("idt", _DTable)] + \
               [(name, ctypes.c_uint64) for name in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base")] + \
               [("interrupt_bitmap", ctypes.c_uint64 * 4)]


class _Regs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
                                                     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                                                     "rip", "rflags")]


class _MemoryRegion(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("guest_phys_addr", ctypes.c_uint64),
                ("memory_size", ctypes.c_uint64), ("userspace_addr", ctypes.c_uint64)]


KVM_GET_API_VERSION = _ioc(0, 0x00, 0)
KVM_CREATE_VM = _ioc(0, 0x01, 0)
KVM_GET_VCPU_MMAP_SIZE = _ioc(0, 0x04, 0)
KVM_CREATE_VCPU = _ioc(0, 0x41, 0)
KVM_SET_USER_MEMORY_REGION = _ioc(1, 0x46, ctypes.sizeof(_MemoryRegion))
KVM_SET_TSS_ADDR = _ioc(0, 0x47, 0)
KVM_RUN = _ioc(0, 0x80, 0)
KVM_GET_REGS, KVM_SET_REGS = _ioc(2, 0x81, ctypes.sizeof(_Regs)), _ioc(1, 0x82, ctypes.sizeof(_Regs))
KVM_GET_SREGS, KVM_SET_SREGS = _ioc(2, 0x83, ctypes.sizeof(_Sregs)), _ioc(1, 0x84, ctypes.sizeof(_Sregs))
KVM_EXIT_IO, KVM_EXIT_IO_OUT = 2, 1


def _flat(segment: _Segment, selector: int, segment_type: int) -> None:
    segment.base, segment.limit, segment.selector, segment.type = 0, 0xFFFFFFFF, selector, segment_type
    segment.present, segment.dpl, segment.db, segment.s, segment.l, segment.g = 1, 0, 1, 1, 0, 1


def run_guest(device: str = "/dev/kvm") -> str:
    """Runs the payload on KVM in this process (it blocks while the vCPU makes no progress: run it in a child,
    see probe()); returns the bytes written to the serial port when the guest leaves, raises on failure."""
    kvm = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    if fcntl.ioctl(kvm, KVM_GET_API_VERSION, 0) != 12:
        raise RuntimeError("unexpected KVM API version")
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    # an unsigned long argument above INT_MAX: through libc (fcntl.ioctl takes a C int)
    if ctypes.CDLL(None, use_errno=True).ioctl(vm, KVM_SET_TSS_ADDR, ctypes.c_ulong(0xFFFBD000)) != 0:
        raise OSError(ctypes.get_errno(), "KVM_SET_TSS_ADDR")
    memory = mmap.mmap(-1, GUEST_MEMORY, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    memory[LOAD_ADDRESS:LOAD_ADDRESS + len(PROBE)] = PROBE
    region = _MemoryRegion(0, 0, 0, GUEST_MEMORY, ctypes.addressof(ctypes.c_char.from_buffer(memory)))
    fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region)
    vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    run = mmap.mmap(vcpu, fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), mmap.MAP_SHARED,
                    mmap.PROT_READ | mmap.PROT_WRITE)
    sregs = _Sregs()
    fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs)
    _flat(sregs.cs, 0x08, 0xB)  # 32-bit protected mode, flat, as a multiboot loader leaves it
    for name in ("ds", "es", "fs", "gs", "ss"):
        _flat(getattr(sregs, name), 0x10, 0x3)
    sregs.cr0 |= 1
    fcntl.ioctl(vcpu, KVM_SET_SREGS, sregs)
    regs = _Regs(rax=0x2BADB002, rip=ENTRY, rflags=0x2)
    fcntl.ioctl(vcpu, KVM_SET_REGS, regs)
    serial = b""
    for _exit in range(64):
        fcntl.ioctl(vcpu, KVM_RUN, 0)
        reason = int.from_bytes(run[8:12], "little")
        if reason != KVM_EXIT_IO or run[32] != KVM_EXIT_IO_OUT:
            raise RuntimeError(f"guest stopped with exit reason {reason} after {serial!r}")
        port, offset = int.from_bytes(run[34:36], "little"), int.from_bytes(run[40:48], "little")
        if port == SERIAL_PORT:
            serial += run[offset:offset + 1]
        elif port == EXIT_PORT:
            return serial.decode(errors="replace")
    raise RuntimeError(f"guest did not leave (serial {serial!r})")


def probe(timeout: float = 2.0, device: str = "/dev/kvm") -> tuple[bool, str]:
    """(True, detail) if the payload completes under KVM within `timeout` seconds (in a child process, which is
    killed when the vCPU makes no progress)."""
    if not os.path.exists(device):
        return False, f"no {device}"
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "kubevirt_runtime.machinery.kvm_probe", "--device", device],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, f"probe guest made no progress within {timeout:.1f}s"
    took = time.monotonic() - started
    if proc.returncode == 0:
        return True, f"probe guest completed in {took:.2f}s"
    return False, f"probe guest failed: {(proc.stdout + proc.stderr).strip()[-200:]}"


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m kubevirt_runtime.machinery.kvm_probe")
    parser.add_argument("--device", default="/dev/kvm")
    args = parser.parse_args(argv)
    try:
        serial = run_guest(args.device)
    except Exception as exc:  # every failure is a "no"
        print(f"KVM probe failed: {exc}")
        return 1
    print(f"KVM probe guest wrote {serial!r}")
    return 0 if serial == MARKER.decode() else 1


if __name__ == "__main__":
    sys.exit(main())
