"""The launcher's VNC and port-forward streams and reset against real libvirt + QEMU (TCG), one boot of the
small test guest: QEMU's VNC server answers RFB on the domain's socket, a guest port that is not declared in
`ports` is reached at the guest's address behind the pod's bridge (and, from outside, at the pod's address:
with no port declared, the pod forwards every one), and reset reboots the guest in place."""
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from kubevirt_runtime.handler.launcher_client import LauncherClient, LauncherError, open_console, open_stream

try:
    from . import guest as guest_mod
except ImportError:  # tests/integration is not a package: pytest put it on sys.path
    import guest as guest_mod

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(300)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd"):
    pytest.skip("needs root, libvirtd and qemu-system-x86_64 (hack/install-node-packages.sh)",
                allow_module_level=True)

MARKER = guest_mod.MARKER.encode()
BOOT_TIMEOUT = 120
GUEST_PORT = 7777


def test_vnc_portforward_and_reset():
    guest = guest_mod.build()
    work = Path(tempfile.mkdtemp(prefix="kvs-", dir="/tmp"))  # unix socket paths are short
    uid = str(uuid.uuid4())
    launcher = guest_mod.LocalLauncher(work / "s", guest, "streams", uid=uid, grace=2,
                                       extra_args=("--accel", "tcg")).start()
    try:
        client = LauncherClient(launcher.socket)
        launcher.sync(guest_mod.vmi("streams", guest, uid=uid, ports=(), serve_port=GUEST_PORT))
        console = open_console(launcher.socket, history=True)
        guest_mod.read_until(console, MARKER, BOOT_TIMEOUT)

        vnc = open_stream(launcher.socket, "vnc")
        vnc.settimeout(10)
        assert vnc.recv(12) == b"RFB 003.008\n"  # QEMU's VNC server greets with its protocol version
        vnc.close()

        reply = b""
        for _ in range(30):  # the guest starts listening just after the marker, and between two clients
            try:
                stream = open_stream(launcher.socket, "portforward", port=GUEST_PORT, protocol="tcp")
            except LauncherError as exc:  # the guest refused: not listening (yet)
                assert "Connection refused" in str(exc), exc
                time.sleep(1)
                continue
            stream.settimeout(10)
            try:
                reply = stream.recv(100)
            except OSError:
                reply = b""
            stream.close()
            if reply.startswith(b"hello from"):
                break
            time.sleep(1)
        assert reply.startswith(b"hello from"), reply
        # no port declared: the pod's NAT forwards every port, as upstream's masquerade does
        reply = b""
        for _ in range(30):
            try:
                with socket.create_connection((launcher.pod_ip, GUEST_PORT), timeout=5) as conn:
                    reply = conn.recv(100)
            except OSError:
                reply = b""
            if reply.startswith(b"hello from"):
                break
            time.sleep(1)
        assert reply.startswith(b"hello from"), reply
        with pytest.raises(LauncherError, match="only tcp"):
            open_stream(launcher.socket, "portforward", port=GUEST_PORT, protocol="udp")

        client.call("reset")  # a hard reset: the guest boots again, the domain stays
        guest_mod.read_until(console, MARKER, BOOT_TIMEOUT)
        assert client.state()["status"] == "Running"
        with pytest.raises(LauncherError, match="guest agent"):
            client.call("userlist")
        console.close()
    finally:
        launcher.stop(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
