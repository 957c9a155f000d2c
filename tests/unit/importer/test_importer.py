"""virt-importer against real files, qemu-img and a local HTTP server: what ends in the PVC, what the
controller reads back (termination message, exit code, progress)."""
import gzip
import http.server
import json
import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from kubevirt_runtime.importer import main as importer
from kubevirt_runtime.importer.image import decompressed, write_sparse
from kubevirt_runtime.importer.server import ImporterServer, Progress

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (make node-packages) is missing")
MiB = 1 << 20


@pytest.fixture
def files(tmp_path):
    """A directory served over HTTP: a raw image with data at both ends, its qcow2 and gzip forms."""
    root = tmp_path / "www"
    root.mkdir()
    raw = root / "disk.img"
    with open(raw, "wb") as f:
        f.write(b"BOOT" * 128)
        f.seek(3 * MiB)
        f.write(b"END!")
        f.truncate(4 * MiB)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(root / "disk.qcow2")], check=True)
    (root / "disk.img.gz").write_bytes(gzip.compress(raw.read_bytes()))
    return root


@pytest.fixture
def server(files):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(files), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def run(tmp_path, monkeypatch):
    log = tmp_path / "termination-log"
    monkeypatch.setattr(importer, "TERMINATION_LOG", str(log))

    def call(*argv):
        code = importer.main(list(argv) + ["--port", "0"])
        return code, json.loads(log.read_text())
    return call


def same_content(a: Path, b: Path):
    return a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("name", ["disk.img", "disk.qcow2", "disk.img.gz"])
def test_http_import_leaves_a_raw_disk_grown_to_the_size(tmp_path, files, server, run, name):
    dest = tmp_path / "pvc"
    dest.mkdir()
    code, term = run("import", "--source", "http", "--endpoint", f"{server}/{name}", "--dest", str(dest),
                     "--size", str(8 * MiB))
    assert (code, term["message"]) == (0, "Import Complete")
    disk = dest / "disk.img"
    assert disk.stat().st_size == 8 * MiB
    assert disk.read_bytes()[:4 * MiB] == (files / "disk.img").read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["disk.img"]  # no scratch left
    assert os.stat(disk).st_blocks * 512 < 2 * MiB  # the holes stayed holes


def test_a_missing_url_fails_for_good_with_cdis_message(tmp_path, server, run):
    dest = tmp_path / "pvc"
    dest.mkdir()
    code, term = run("import", "--source", "http", "--endpoint", f"{server}/nope.img", "--dest", str(dest))
    assert code == importer.EXIT_PERMANENT and term["permanent"]
    assert "expected status code 200, got 404" in term["message"]


def test_an_unreachable_server_is_worth_a_retry(tmp_path, run):
    dest = tmp_path / "pvc"
    dest.mkdir()
    code, term = run("import", "--source", "http", "--endpoint", "http://127.0.0.1:9/disk.img", "--dest", str(dest))
    assert code == importer.EXIT_RETRY and not term["permanent"]
    assert "Unable to connect to http data source" in term["message"]


def test_an_image_larger_than_the_pvc_fails_for_good(tmp_path, server, run):
    dest = tmp_path / "pvc"
    dest.mkdir()
    code, term = run("import", "--source", "http", "--endpoint", f"{server}/disk.qcow2", "--dest", str(dest),
                     "--size", str(MiB))
    assert code == importer.EXIT_PERMANENT and "A larger PVC is required" in term["message"]
    assert list(dest.iterdir()) == []


def test_blank_clone_and_registry(tmp_path, files, run):
    blank = tmp_path / "blank"
    blank.mkdir()
    assert run("import", "--source", "blank", "--dest", str(blank), "--size", str(2 * MiB))[0] == 0
    assert (blank / "disk.img").stat().st_size == 2 * MiB
    clone = tmp_path / "clone"
    clone.mkdir()
    code, term = run("import", "--source", "pvc", "--from", str(files / "disk.qcow2"), "--dest", str(clone),
                     "--size", str(6 * MiB))
    assert (code, term["message"]) == (0, "Clone Complete")
    assert (clone / "disk.img").read_bytes()[:4 * MiB] == (files / "disk.img").read_bytes()
    registry = tmp_path / "registry"
    (registry / ".registry").mkdir(parents=True)
    shutil.copy(files / "disk.qcow2", registry / ".registry" / "demo.qcow2")
    code, _ = run("import", "--source", "registry", "--image-dir", str(registry / ".registry"), "--dest",
                  str(registry))
    assert code == 0 and (registry / "disk.img").read_bytes() == (files / "disk.img").read_bytes()


def test_copy_to_qcow2_and_back_keeps_the_content(tmp_path, files, run):
    snap = tmp_path / "snap" / "disk.qcow2"
    code, _ = run("copy", "--from", str(files / "disk.img"), "--to", str(snap), "--format", "qcow2")
    assert code == 0 and snap.read_bytes()[:4] == b"QFI\xfb"
    back = tmp_path / "restore" / "disk.img"
    code, _ = run("copy", "--from", str(snap), "--to", str(back), "--format", "raw", "--remove-source")
    assert code == 0 and same_content(back, files / "disk.img") and not snap.exists()


def test_upload_through_the_server_and_progress_on_metrics(tmp_path, files):
    dest = tmp_path / "pvc"
    dest.mkdir()
    progress = Progress("uid-1")
    server = ImporterServer(progress, "127.0.0.1", 0, importer.upload_handler(dest, 8 * MiB, progress)).start()
    try:
        body = (files / "disk.qcow2").read_bytes()
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1beta1/upload", data=body, method="POST")
        with urllib.request.urlopen(request) as response:
            assert response.read().strip() == b"Upload Complete"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics").read().decode()
        assert 'kubevirt_cdi_import_progress_total{ownerUID="uid-1"} 100.00' in metrics
        again = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1beta1/upload", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(again)
        assert refused.value.code == 409
    finally:
        server.stop()
    assert (dest / "disk.img").read_bytes()[:4 * MiB] == (files / "disk.img").read_bytes()


def test_sparse_writer_and_decompression(tmp_path):
    data = b"\0" * (256 << 10) + b"x" + b"\0" * 10
    out = tmp_path / "f"
    assert write_sparse(decompressed([gzip.compress(data)[:7], gzip.compress(data)[7:]]), out) == len(data)
    assert out.read_bytes() == data
