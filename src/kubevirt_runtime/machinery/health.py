"""One small HTTP server per component: /healthz (alive), /readyz (checks pass), /metrics (Prometheus).

Checks are callables returning True/False (or raising); /readyz answers 200 only when all pass and lists
each check with ?verbose, like the Kubernetes components do.
"""
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)


class HealthServer:
    def __init__(self, host="0.0.0.0", port=8443, registry=REGISTRY):
        self.liveness = {}
        self.readiness = {}
        self.registry = registry
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                path, _mark, query = self.path.partition("?")
                if path == "/metrics":
                    return self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                if path in ("/healthz", "/livez"):
                    return self._checks(server.liveness, "verbose" in query)
                if path == "/readyz":
                    return self._checks({**server.liveness, **server.readiness}, "verbose" in query)
                return self._send(404, b"not found\n")

            def _checks(self, checks, verbose):
                lines, ok = [], True
                for name, check in sorted(checks.items()):
                    try:
                        passed = bool(check())
                    except Exception:  # a failing check is a failed check
                        passed = False
                    ok &= passed
                    lines.append(f"[{'+' if passed else '-'}]{name} {'ok' if passed else 'failed'}")
                body = ("\n".join(lines) + "\n" if verbose or not ok else "") + ("ok\n" if ok else "failed\n")
                self._send(200 if ok else 503, body.encode())

            def _send(self, code, body, content_type="text/plain; charset=utf-8"):
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def add_liveness(self, name, check):
        self.liveness[name] = check

    def add_readiness(self, name, check):
        self.readiness[name] = check

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True).start()
        log.info("serving /healthz, /readyz and /metrics on port %d", self.port)
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
