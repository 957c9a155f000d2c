"""The launcher's streams (what the console, vnc and portforward subresources end in): real libvirt + QEMU
(TCG) booting the test guest, one boot.

Prints:
- serial console: keystroke-to-echo round trip (median of 20 single characters; the guest's shell echoes);
- VNC: stream open -> RFB greeting, and -> the first framebuffer update (RFB 3.8, security None);
- port-forward: stream open -> the guest's first byte through the launcher (which dials the guest behind the
  pod's bridge, as for any guest port), against a connection to the pod's address, where the pod's NAT
  forwards the port (declared in `ports`);
- the web console's bundle sizes (src/kubevirt_runtime/ui/static), when it is built.
"""
import socket
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT))

def recv_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.recv(n - len(data))
        if not chunk:
            raise EOFError("stream closed")
        data += chunk
    return data


def vnc_first_update(stream) -> tuple[float, float]:
    """(seconds to the greeting, seconds to the first FramebufferUpdate) over an RFB stream."""
    start = time.monotonic()
    assert recv_exact(stream, 12).startswith(b"RFB ")
    greeting = time.monotonic() - start
    stream.sendall(b"RFB 003.008\n")
    count = recv_exact(stream, 1)[0]
    types = recv_exact(stream, count)
    assert 1 in types, f"no None security type offered: {list(types)}"
    stream.sendall(b"\x01")
    assert recv_exact(stream, 4) == b"\0\0\0\0"
    stream.sendall(b"\x01")  # shared
    width, height = struct.unpack(">HH", recv_exact(stream, 4))
    recv_exact(stream, 16)
    recv_exact(stream, struct.unpack(">I", recv_exact(stream, 4))[0])  # desktop name
    stream.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # FramebufferUpdateRequest, full
    assert recv_exact(stream, 1)[0] == 0  # FramebufferUpdate
    return greeting, time.monotonic() - start


def main():
    import guest as guest_mod

    from kubevirt_runtime.handler.launcher_client import open_console, open_stream
    guest = guest_mod.build()
    work = Path(tempfile.mkdtemp(prefix="kvb-", dir="/tmp"))
    uid = str(uuid.uuid4())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        declared = probe.getsockname()[1]
    launcher = guest_mod.LocalLauncher(work / "s", guest, "bench", uid=uid, extra_args=("--accel", "tcg")).start()
    try:
        launcher.sync(guest_mod.vmi("bench", guest, uid=uid, ports=[declared], serve_port=declared))
        console = open_console(launcher.socket, history=True)
        guest_mod.read_until(console, guest_mod.MARKER.encode(), 180)
        time.sleep(2)
        trips = []
        for ch in "abcdefghijklmnopqrst":
            start = time.monotonic()
            console.sendall(ch.encode())
            guest_mod.read_until(console, ch.encode(), 10)
            trips.append(time.monotonic() - start)
        console.sendall(b"\x15")  # clear the typed line
        print(f"serial console: keystroke echo round trip median {statistics.median(trips) * 1000:.1f} ms, "
              f"max {max(trips) * 1000:.1f} ms (20 keys)")

        stream = open_stream(launcher.socket, "vnc")
        stream.settimeout(30)
        greeting, update = vnc_first_update(stream)
        stream.close()
        print(f"VNC: greeting after {greeting * 1000:.1f} ms, first framebuffer update after {update * 1000:.1f} ms")

        def first_byte(connect):
            for _ in range(20):  # the guest's nc loop listens again a moment after each client
                start = time.monotonic()
                conn = connect()
                try:
                    conn.settimeout(10)
                    if conn.recv(100).startswith(b"hello"):
                        return time.monotonic() - start
                except OSError:
                    pass
                finally:
                    conn.close()
                time.sleep(0.5)
            raise RuntimeError("the guest never answered")

        forwarded = [first_byte(lambda: open_stream(launcher.socket, "portforward", port=declared,
                                                    protocol="tcp")) for _ in range(5)]
        direct = [first_byte(lambda: socket.create_connection((launcher.pod_ip, declared), timeout=10))
                  for _ in range(5)]
        print(f"port-forward: first guest byte after {statistics.median(forwarded) * 1000:.1f} ms through the "
              f"launcher, {statistics.median(direct) * 1000:.1f} ms through the pod's NAT (medians of 5)")
        console.close()
    finally:
        launcher.stop(timeout=20)
    static = ROOT / "src" / "kubevirt_runtime" / "ui" / "static"
    for name in ("app.js", "app.css"):
        if (static / name).exists():
            size = (static / name).stat().st_size / 1024
            gz = (static / f"{name}.gz").stat().st_size / 1024 if (static / f"{name}.gz").exists() else 0
            print(f"web console {name}: {size:.1f} KiB ({gz:.1f} KiB gzip)")


if __name__ == "__main__":
    main()
