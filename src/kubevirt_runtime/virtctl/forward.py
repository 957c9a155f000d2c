"""virtctl's local ends of the streaming subresources: port-forward (TCP listeners or stdio) and the VNC proxy.

Each accepted local connection gets its own WebSocket (as upstream virtctl does), and bytes are copied both
ways until either side closes.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading

KINDS = {"vm": "virtualmachines", "vms": "virtualmachines", "virtualmachine": "virtualmachines",
         "virtualmachines": "virtualmachines", "vmi": "virtualmachineinstances",
         "vmis": "virtualmachineinstances", "virtualmachineinstance": "virtualmachineinstances",
         "virtualmachineinstances": "virtualmachineinstances"}


class UsageError(ValueError):
    pass


def parse_target(text: str) -> tuple[str, str, str | None]:
    """TYPE/NAME[/NAMESPACE] -> (resource, name, namespace or None), as upstream's port-forward and ssh."""
    parts = text.split("/")
    if len(parts) not in (2, 3):
        raise UsageError(f"target {text!r}: expected TYPE/NAME[/NAMESPACE], e.g. vmi/vm-demo")
    kind, name = parts[0].lower(), parts[1]
    if kind not in KINDS:
        raise UsageError(f"target {text!r}: unsupported resource type {parts[0]!r} (vm or vmi)")
    if not name:
        raise UsageError(f"target {text!r}: name cannot be empty")
    namespace = parts[2] if len(parts) == 3 else None
    if namespace == "":
        raise UsageError(f"target {text!r}: namespace cannot be empty")
    return KINDS[kind], name, namespace


def parse_port(text: str) -> tuple[str, int, int]:
    """[PROTOCOL/]LOCAL[:REMOTE] -> (protocol, local, remote)."""
    protocol, _slash, ports = text.rpartition("/")
    protocol = (protocol or "tcp").lower()
    local, _colon, remote = ports.partition(":")
    try:
        local_port = int(local)
        remote_port = int(remote) if remote else local_port
    except ValueError:
        raise UsageError(f"port {text!r}: expected [tcp/]LOCAL[:REMOTE] with numbers") from None
    if protocol not in ("tcp", "udp"):
        raise UsageError(f"port {text!r}: protocol must be tcp or udp")
    if not 0 <= local_port < 65536 or not 0 < remote_port < 65536:
        raise UsageError(f"port {text!r}: ports must be between 1 and 65535 (local 0: any free port)")
    return protocol, local_port, remote_port


def pump(ws, sock_recv, sock_send, on_close=None) -> None:
    """Copies bytes between a WebSocket and a local endpoint until either ends (blocks)."""
    from websockets.exceptions import ConnectionClosed
    done = threading.Event()

    def local_to_ws():
        try:
            while data := sock_recv():
                ws.send(data)
        except (OSError, ConnectionClosed):
            pass
        finally:
            done.set()
            try:
                ws.close()
            except Exception:  # already closed
                pass

    threading.Thread(target=local_to_ws, daemon=True).start()
    try:
        while True:
            data = ws.recv()
            sock_send(data.encode() if isinstance(data, str) else data)
    except (OSError, ConnectionClosed):
        pass
    finally:
        if on_close:
            on_close()
        done.wait(1)


def _serve_socket(ws, conn: socket.socket) -> None:
    def close():
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
    pump(ws, lambda: conn.recv(65536), conn.sendall, close)


def listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(16)
    return sock


def serve_forever(listener: socket.socket, open_ws, first_ws=None) -> None:
    """Accepts local connections; each gets a WebSocket from open_ws() (the first may be opened already)."""
    while True:
        conn, _address = listener.accept()
        ws, first_ws = first_ws, None
        try:
            ws = ws or open_ws()
        except Exception as exc:  # the VMI went away, RBAC changed...: tell, keep listening
            print(f"Error: {exc}", file=sys.stderr)
            conn.close()
            continue
        threading.Thread(target=_serve_socket, args=(ws, conn), daemon=True).start()


# ---------------------------------------------------------------- port-forward

def port_forward(open_ws, ports, address: str, stdio: bool) -> int:
    """open_ws(remote_port, protocol) -> WebSocket. Blocks until interrupted (or stdio ends)."""
    if stdio:
        if len(ports) != 1:
            raise UsageError("--stdio forwards exactly one port")
        protocol, _local, remote = ports[0]
        ws = open_ws(remote, protocol)
        out = sys.stdout.buffer
        fd = sys.stdin.fileno()

        def send(data):
            out.write(data)
            out.flush()
        pump(ws, lambda: os.read(fd, 65536), send)
        return 0
    for protocol, _local, _remote in ports:
        if protocol != "tcp":
            raise UsageError(f"{protocol} port-forwarding is not supported: only tcp")
    for protocol, local, remote in ports:
        listener = listen(address, local)
        bound = listener.getsockname()[1]
        print(f"Forwarding from {address}:{bound} -> {remote}", flush=True)
        threading.Thread(target=serve_forever, args=(listener, lambda r=remote, p=protocol: open_ws(r, p)),
                         daemon=True).start()
    threading.Event().wait()
    return 0


# ---------------------------------------------------------------- vnc

VIEWERS = {"remote-viewer": ("remote-viewer", lambda port: [f"vnc://127.0.0.1:{port}"]),
           "tiger": ("vncviewer", lambda port: [f"127.0.0.1::{port}"])}


def find_viewer(vnc_type: str | None, vnc_path: str | None) -> tuple[str, list] | None:
    """(executable, args builder) of the VNC viewer to start, or None when there is none."""
    kinds = [vnc_type] if vnc_type else list(VIEWERS)
    for kind in kinds:
        if kind not in VIEWERS:
            raise UsageError(f"--vnc-type {kind!r}: supported are {', '.join(VIEWERS)}")
        binary, args = VIEWERS[kind]
        path = vnc_path or shutil.which(binary)
        if path and os.path.exists(path):
            return path, args
    return None


def vnc(open_ws, address: str, port: int, proxy_only: bool, vnc_type=None, vnc_path=None) -> int:
    """Opens the VNC stream first (so a missing VMI fails now), then serves it on address:port."""
    viewer = None if proxy_only else find_viewer(vnc_type, vnc_path)
    if not proxy_only and viewer is None:
        raise UsageError("no VNC viewer found (remote-viewer or TigerVNC's vncviewer): install one, or run "
                         "`virtctl vnc --proxy-only NAME` and point a viewer at the printed port")
    first = open_ws()
    listener = listen(address if proxy_only else "127.0.0.1", port)
    bound = listener.getsockname()[1]
    threading.Thread(target=serve_forever, args=(listener, open_ws, first), daemon=True).start()
    if proxy_only:
        print(json.dumps({"port": bound}), flush=True)
        threading.Event().wait()
        return 0
    path, args = viewer
    return subprocess.call([path, *args(bound)])
