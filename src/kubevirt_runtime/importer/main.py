"""virt-importer: fills one PVC with a disk image, in the importer pod virt-controller makes for a DataVolume;
also the copy step of VM snapshots and restores.

    virt-importer import --source http --endpoint URL [--header 'K: V'] [--secret-dir D] [--cert-dir D]
                         --dest /data [--size BYTES]
    virt-importer import --source registry --image-dir DIR --dest /data [--size BYTES]
    virt-importer import --source pvc --from /source/disk.img --dest /data [--size BYTES]
    virt-importer import --source blank --dest /data --size BYTES
    virt-importer import --source upload --dest /data [--size BYTES]      (waits for POST /v1beta1/upload)
    virt-importer copy --from FILE --to FILE --format raw|qcow2 [--size BYTES] [--remove-source]

The result is <dest>/disk.img (raw). Progress is served on :8443/metrics while it runs. The end goes to the
termination message ({"message": ..., "permanent": bool}) the controller reads from the pod's status: exit 0
done, 1 failed but worth a retry (a connection refused), 2 failed for good (HTTP 404, an image larger than
the PVC).
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shutil
import ssl
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from kubevirt_runtime.api.cdi import DISK_FILE

from .image import ImportError_, blank, convert, decompressed, finish, grow, write_sparse
from .server import PORT, ImporterServer, Progress

log = logging.getLogger("virt-importer")
TERMINATION_LOG = os.environ.get("TERMINATION_LOG", "/dev/termination-log")
SCRATCH = "scratch.img"
EXIT_RETRY, EXIT_PERMANENT = 1, 2


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="virt-importer", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="fill <dest>/disk.img from a source")
    imp.add_argument("--source", required=True, choices=("http", "registry", "pvc", "blank", "upload"))
    imp.add_argument("--endpoint", help="http: the URL")
    imp.add_argument("--header", action="append", default=[], help="http: an extra header 'Name: value'")
    imp.add_argument("--secret-dir", help="http: a Secret with accessKeyId and secretKey (basic auth)")
    imp.add_argument("--cert-dir", help="http: a ConfigMap of CA certificates to trust")
    imp.add_argument("--image-dir", help="registry: where the image's /disk files were copied")
    imp.add_argument("--from", dest="source_file", help="pvc: the source disk image")
    imp.add_argument("--dest", required=True, help="the target PVC's mount point")
    imp.add_argument("--size", type=int, help="virtual size of the disk in bytes (grown to it)")
    cp = sub.add_parser("copy", help="convert one disk image into another (snapshot and restore)")
    cp.add_argument("--from", dest="source_file", required=True)
    cp.add_argument("--to", dest="target_file", required=True)
    cp.add_argument("--format", choices=("raw", "qcow2"), default="raw")
    cp.add_argument("--size", type=int, help="raw output: grow it to this many bytes")
    cp.add_argument("--remove-source", action="store_true", help="delete --from once the copy is complete")
    for sp in (imp, cp):
        sp.add_argument("--port", type=int, default=PORT, help="progress (and upload) port; 0: none")
        sp.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p.parse_args(argv)


# ---------------------------------------------------------------- sources

def _http_chunks(url: str, headers: list[str], secret_dir: str | None, cert_dir: str | None, progress: Progress):
    request = urllib.request.Request(url, headers=dict(_header(h) for h in headers))
    if secret_dir:
        user = (Path(secret_dir) / "accessKeyId").read_text().strip()
        password = (Path(secret_dir) / "secretKey").read_text().strip()
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    context = None
    if cert_dir:
        context = ssl.create_default_context()
        for cert in sorted(Path(cert_dir).iterdir()):
            if cert.is_file() and not cert.name.startswith(".."):
                context.load_verify_locations(cadata=cert.read_text())
    try:
        response = urllib.request.urlopen(request, timeout=60, context=context)
    except urllib.error.HTTPError as exc:
        raise ImportError_(f"Unable to connect to http data source: expected status code 200, got {exc.code}. "
                           f"Status: {exc.code} {exc.reason}", permanent=400 <= exc.code < 500) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ImportError_(f"Unable to connect to http data source: {getattr(exc, 'reason', exc)}") from exc
    total = int(response.headers.get("Content-Length") or 0) or None
    done = 0
    with response:
        while True:
            try:
                data = response.read(1 << 20)
            except OSError as exc:
                raise ImportError_(f"the download from {url} broke off after {done} bytes: {exc}") from exc
            if not data:
                break
            done += len(data)
            if total:
                progress.set(100.0 * done / total)
            yield data
    if total and done < total:
        raise ImportError_(f"the download from {url} ended after {done} of {total} bytes")


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ImportError_(f"bad extra header {text!r}: use 'Name: value'", permanent=True)
    return name.strip(), value.strip()


def _registry_file(image_dir: str) -> Path:
    files = sorted(p for p in Path(image_dir).rglob("*") if p.is_file())
    if len(files) != 1:
        raise ImportError_(f"the registry image must carry exactly one disk file under /disk, found {len(files)}",
                           permanent=True)
    return files[0]


def run_import(args, progress: Progress, server: ImporterServer | None) -> str:
    dest = Path(args.dest)
    target = dest / DISK_FILE
    scratch = dest / SCRATCH
    if target.exists():  # a restarted pod after a complete import (e.g. the kubelet restarted it)
        return "Import Complete"
    if args.source == "blank":
        if not args.size:
            raise ImportError_("a blank disk needs --size", permanent=True)
        blank(target, args.size)
        progress.set(100.0)
        return "Import Complete"
    if args.source == "http":
        write_sparse(decompressed(_http_chunks(args.endpoint, args.header, args.secret_dir, args.cert_dir,
                                               progress)), scratch)
        return _finish(scratch, target, args.size, progress)
    if args.source == "registry":
        source = _registry_file(args.image_dir)
        try:  # the init container copied it into this PVC: a rename
            source.rename(scratch)
        except OSError:
            convert(source, scratch, "raw", progress.set)
        shutil.rmtree(args.image_dir, ignore_errors=True)
        return _finish(scratch, target, args.size, progress)
    if args.source == "pvc":
        convert(Path(args.source_file), target, "raw", progress.set)
        if args.size:
            grow(target, args.size)
        progress.set(100.0)
        return "Clone Complete"
    if args.source == "upload":
        if server is None:
            raise ImportError_("upload needs the server (--port)", permanent=True)
        server.done.wait()
        return "Upload Complete"
    raise ImportError_(f"unknown source {args.source}", permanent=True)


def _finish(scratch: Path, target: Path, size: int | None, progress: Progress) -> str:
    finish(scratch, target, size)
    progress.set(100.0)
    return "Import Complete"


def upload_handler(dest: Path, size: int | None, progress: Progress):
    def on_upload(chunks, length):
        done = [0]

        def counted():
            for chunk in chunks:
                done[0] += len(chunk)
                if length:
                    progress.set(100.0 * done[0] / length)
                yield chunk
        scratch = dest / SCRATCH
        write_sparse(decompressed(counted()), scratch)
        finish(scratch, dest / DISK_FILE, size)
        progress.set(100.0)
        return "Upload Complete"
    return on_upload


def run_copy(args, progress: Progress) -> str:
    source, target = Path(args.source_file), Path(args.target_file)
    if not source.exists():
        if target.exists():  # a restarted pod after a complete copy that removed its source
            return "Copy Complete"
        raise ImportError_(f"{source} does not exist", permanent=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    convert(source, target, args.format, progress.set)
    if args.size and args.format == "raw":
        grow(target, args.size)
    if args.remove_source:
        source.unlink()
    progress.set(100.0)
    return "Copy Complete"


# ---------------------------------------------------------------- main

def _terminate(message: str, permanent: bool = False) -> None:
    try:
        with open(TERMINATION_LOG, "w") as f:
            json.dump({"message": message, "permanent": permanent}, f)
    except OSError:
        pass


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    progress = Progress(os.environ.get("OWNER_UID", ""))
    server = None
    if args.port:
        upload = args.command == "import" and args.source == "upload"
        server = ImporterServer(progress, port=args.port,
                                on_upload=upload_handler(Path(args.dest), args.size, progress) if upload else None)
        server.start()
    try:
        message = run_copy(args, progress) if args.command == "copy" else run_import(args, progress, server)
    except ImportError_ as exc:
        log.error("%s", exc)
        _terminate(str(exc), exc.permanent)
        return EXIT_PERMANENT if exc.permanent else EXIT_RETRY
    except OSError as exc:
        log.error("%s", exc)
        _terminate(str(exc))
        return EXIT_RETRY
    log.info("%s", message)
    _terminate(message)
    if server is not None:  # the controller may still want to read 100%
        threading.Timer(0, server.stop).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
