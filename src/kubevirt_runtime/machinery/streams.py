"""Raw byte streams between sockets: what virt-api and the web console do once an HTTP upgrade
(WebSocket) has been relayed, so the two ends speak to each other unchanged."""
from __future__ import annotations

import select
import socket
import ssl
import time


def read_head(sock, limit=65536) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            break
    head, sep, rest = data.partition(b"\r\n\r\n")
    return head + sep, rest


def read_body(sock, head: bytes, rest: bytes, limit=65536) -> bytes:
    """The body of a (refused upgrade's) response whose head read_head returned, up to its Content-Length."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _colon, value = line.partition(b":")
        if key.strip().lower() == b"content-length" and value.strip().isdigit():
            length = min(int(value.strip()), limit)
    body = rest
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return body


def splice(a, b, idle_timeout: float | None = None) -> None:
    """Copies bytes between two (TLS) sockets in one thread until either side closes. An SSL socket must
    not be read and written from two threads at once, and select() does not see bytes TLS has already
    decrypted, hence pending()."""
    for sock in (a, b):
        sock.settimeout(None)
    peers = {a: b, b: a}
    last = time.monotonic()
    while True:
        ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _writable, _errored = select.select([a, b], [], [], 30)
        if not ready:
            if idle_timeout and time.monotonic() - last > idle_timeout:
                return
            continue
        last = time.monotonic()
        for sock in ready:
            try:
                data = sock.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except (OSError, ssl.SSLError):
                return
            if not data:
                try:
                    peers[sock].shutdown(socket.SHUT_WR) if not isinstance(peers[sock], ssl.SSLSocket) else None
                except OSError:
                    pass
                return
            try:
                peers[sock].sendall(data)
            except (OSError, ssl.SSLError):
                return
