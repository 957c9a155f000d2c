"""The importer pod's HTTP server (plain HTTP inside the pod network, port 8443 as CDI's importer):

    GET  /metrics            kubevirt_cdi_import_progress_total{ownerUID="<DataVolume uid>"} <percent>
    GET  /healthz            ok
    POST|PUT /v1beta1/upload  (upload mode) the image as the request body: raw, qcow2, or gzip/xz of them

virt-controller reads /metrics while the DataVolume imports (CDI's controller does the same), and
`virtctl image-upload` sends the image through the API server's proxy to this pod.
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

log = logging.getLogger(__name__)

PORT = 8443
UPLOAD_PATH = "/v1beta1/upload"
PROGRESS_METRIC = "kubevirt_cdi_import_progress_total"


class Progress:
    """The import's progress in percent (None: unknown yet), shared between the worker and the server."""

    def __init__(self, owner_uid: str = ""):
        self.owner_uid = owner_uid
        self.percent: float | None = None
        self.lock = threading.Lock()

    def set(self, percent: float | None) -> None:
        with self.lock:
            self.percent = None if percent is None else max(0.0, min(100.0, percent))

    def metrics(self) -> str:
        with self.lock:
            value = self.percent
        if value is None:
            return ""
        return (f"# TYPE {PROGRESS_METRIC} counter\n"
                f'{PROGRESS_METRIC}{{ownerUID="{self.owner_uid}"}} {value:.2f}\n')


def request_chunks(rfile, headers) -> Iterable[bytes]:
    """The request body, from Content-Length or chunked transfer encoding."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return
            left = size
            while left:
                data = rfile.read(min(left, 1 << 20))
                if not data:
                    raise ConnectionError("the upload ended early")
                left -= len(data)
                yield data
            rfile.readline()
    length = int(headers.get("Content-Length") or 0)
    while length > 0:
        data = rfile.read(min(length, 1 << 20))
        if not data:
            raise ConnectionError("the upload ended early")
        length -= len(data)
        yield data


class ImporterServer:
    """`on_upload(chunks, length)` (upload mode) takes the body; it returns a message or raises."""

    def __init__(self, progress: Progress, host: str = "0.0.0.0", port: int = PORT,
                 on_upload: Callable[[Iterable[bytes], int | None], str] | None = None):
        self.progress = progress
        self.on_upload = on_upload
        self.upload_lock = threading.Lock()
        self.done = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] == "/metrics":
                    return self._send(200, server.progress.metrics())
                if self.path.split("?")[0] in ("/healthz", "/readyz"):
                    return self._send(200, "ok\n")
                self._send(404, "not found\n")

            def do_POST(self):  # noqa: N802
                if self.path.split("?")[0].rstrip("/") != UPLOAD_PATH or server.on_upload is None:
                    return self._send(404, "not found\n")
                if not server.upload_lock.acquire(blocking=False) or server.done.is_set():
                    return self._send(409, "an upload is already under way or done\n")
                try:
                    length = self.headers.get("Content-Length")
                    message = server.on_upload(request_chunks(self.rfile, self.headers),
                                               int(length) if length else None)
                except Exception as exc:  # the client learns why; the pod's end says it too
                    log.warning("upload failed: %s", exc)
                    server.upload_lock.release()
                    self.close_connection = True
                    return self._send(400, f"upload failed: {exc}\n")
                server.done.set()
                self._send(200, message + "\n")

            do_PUT = do_POST  # noqa: N815

            def _send(self, code, text):
                body = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                log.debug(fmt, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def start(self) -> "ImporterServer":
        threading.Thread(target=self.httpd.serve_forever, name="importer-http", daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
