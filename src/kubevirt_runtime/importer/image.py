"""Disk images on a PVC: writing a stream sparsely, recognising formats, converting and sizing with qemu-img.

Everything ends as CDI leaves it on a Filesystem volume: one raw ``disk.img`` whose virtual size fills the
PVC (less CDI's filesystem overhead). A qcow2 (or any format qemu-img reads) is converted to raw; a raw image
is kept as it is and only grown. A gzip or xz stream is decompressed on the way in.
"""
from __future__ import annotations

import json
import lzma
import os
import re
import subprocess
import zlib
from pathlib import Path
from typing import Callable, Iterable

QEMU_IMG = "qemu-img"
CHUNK = 1 << 20
_GZIP, _XZ = b"\x1f\x8b", b"\xfd7zXZ\x00"
_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


class ImportError_(Exception):
    """The import cannot succeed as asked; `permanent` errors are not retried (a bad URL, a too small PVC)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def decompressed(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """The stream itself, or its gzip / xz content (recognised by the first bytes)."""
    chunks = iter(chunks)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 6:
            break
    if head.startswith(_GZIP):
        decoder = zlib.decompressobj(wbits=47)
    elif head.startswith(_XZ):
        decoder = lzma.LZMADecompressor()
    else:
        if head:
            yield head
        yield from chunks
        return
    try:
        yield decoder.decompress(head)
        for chunk in chunks:
            yield decoder.decompress(chunk)
        if hasattr(decoder, "flush"):  # zlib keeps a tail; lzma hands everything out as it goes
            yield decoder.flush()
    except (zlib.error, lzma.LZMAError) as exc:
        raise ImportError_(f"the compressed image is corrupt: {exc}", permanent=True) from exc


def write_sparse(chunks: Iterable[bytes], path: Path) -> int:
    """Writes the stream to `path`, leaving holes where whole blocks are zero; returns the bytes written."""
    total = 0
    zero = bytes(64 << 10)
    with open(path, "wb") as out:
        for chunk in chunks:
            for offset in range(0, len(chunk), len(zero)):
                block = chunk[offset:offset + len(zero)]
                if block == zero[:len(block)]:
                    out.seek(len(block), os.SEEK_CUR)
                else:
                    out.write(block)
            total += len(chunk)
        out.truncate(total)
    return total


def info(path: Path) -> dict:
    proc = subprocess.run([QEMU_IMG, "info", "--output=json", str(path)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ImportError_(f"not a disk image qemu-img can read: {proc.stderr.strip()}", permanent=True)
    return json.loads(proc.stdout)


def convert(src: Path, dest: Path, out_format: str = "raw", on_progress: Callable[[float], None] | None = None,
            src_format: str | None = None) -> None:
    """qemu-img convert (sparse output), reporting its progress in percent; written beside `dest`, then renamed."""
    tmp = dest.with_name(dest.name + ".part")
    argv = [QEMU_IMG, "convert", "-p", "-O", out_format]
    if src_format:
        argv += ["-f", src_format]
    argv += [str(src), str(tmp)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pending = b""
    while True:
        data = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not data:
            break
        pending += data
        found = _PROGRESS.findall(pending)
        if found and on_progress:
            on_progress(float(found[-1]))
        pending = pending[-64:]
    stderr = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        tmp.unlink(missing_ok=True)
        raise ImportError_(f"qemu-img convert failed: {stderr.strip()}")
    tmp.rename(dest)


def grow(path: Path, size: int) -> None:
    """A raw image grown (sparsely) to `size` bytes; never shrunk."""
    if path.stat().st_size < size:
        os.truncate(path, size)


def finish(scratch: Path, dest: Path, target_size: int | None,
           on_progress: Callable[[float], None] | None = None) -> dict:
    """Turns what was written to `scratch` into the raw `dest` of `target_size` (None: as the image is);
    returns qemu-img's info of the result. A raw scratch is renamed, anything else converted."""
    found = info(scratch)
    virtual = int(found.get("virtual-size") or 0)
    if target_size is not None and virtual > target_size:
        scratch.unlink(missing_ok=True)
        raise ImportError_(f"Virtual image size {virtual} is larger than the reported available storage "
                           f"{target_size}. A larger PVC is required.", permanent=True)
    if found.get("format") == "raw":
        scratch.rename(dest)
    else:
        convert(scratch, dest, "raw", on_progress, src_format=found.get("format"))
        scratch.unlink(missing_ok=True)
    if target_size is not None:
        grow(dest, target_size)
    return info(dest)


def blank(dest: Path, size: int) -> None:
    tmp = dest.with_name(dest.name + ".part")
    with open(tmp, "wb") as out:
        out.truncate(size)
    tmp.rename(dest)
