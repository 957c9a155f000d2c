"""The demo containerDisk's QEMU guest agent, spoken to directly over its virtio-serial port (no libvirt):
it answers with the guest's OS and kernel, the console login (utmp) and the mounted NoCloud disk, and a
guest-shutdown with mode reboot reboots the guest (busybox has no `shutdown`; the disk ships one)."""
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR, REPO

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(900)]

BOOT_TIMEOUT = float(os.environ.get("KUBEVIRT_OPS_DEMO_BOOT_TIMEOUT", "400"))

_missing = [t for t in ("qemu-system-x86_64", "genisoimage", "mformat", "mcopy", "syslinux", "apt-get", "dpkg-deb")
            if not shutil.which(t)]
if _missing or not Path("/usr/lib/syslinux/mbr/mbr.bin").exists():
    pytest.skip(f"needs {', '.join(_missing) or 'syslinux-common'} (kubevirt_images_controller_packages, "
                "hack/install-node-packages.sh)", allow_module_level=True)


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_demo_disk", REPO / "roles" / "kubevirt_images" / "files" / "build_demo_disk.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Agent:
    """QGA's JSON protocol on a unix socket: guest-sync-delimited first, so stale bytes are skipped."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buf = b""

    def call(self, execute: str, timeout: float = 10, **arguments):
        self.sock.settimeout(timeout)
        message = {"execute": execute, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(message).encode())
        while b"\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line.lstrip(b"\xff"))

    def sync(self, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            token = int(time.time() * 1000) % 1_000_000
            self.sock.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited",
                                                    "arguments": {"id": token}}).encode())
            self.sock.settimeout(2)
            try:
                while True:
                    self.buf += self.sock.recv(65536)
                    if b"\xff" in self.buf and b"\n" in self.buf.rsplit(b"\xff", 1)[1]:
                        answer = json.loads(self.buf.rsplit(b"\xff", 1)[1].split(b"\n", 1)[0])
                        self.buf = b""
                        if answer.get("return") == token:
                            return
            except (TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the guest agent did not answer guest-sync")


def _wait_for(path: Path, needle: str, proc, timeout: float, count: int = 1) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if text.count(needle) >= count:
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} x{count} not on the serial console (qemu exit {proc.poll()}):\n{text[-3000:]}")


def test_guest_agent_answers_and_reboots_the_guest(tmp_path):
    builder = _builder()
    built = builder.build(Path(os.environ.get("KUBEVIRT_OPS_DEMO_DISK_CACHE", CACHE_DIR / "images" / "demo-disk")))
    src = tmp_path / "cidata"
    src.mkdir()
    (src / "user-data").write_text("#!/bin/sh\necho hi\n")
    (src / "meta-data").write_text("instance-id: agent\nlocal-hostname: agent-test\n")
    iso = tmp_path / "cidata.iso"
    subprocess.run(["genisoimage", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock",
                    str(src / "user-data"), str(src / "meta-data")], check=True)
    serial, qga = tmp_path / "serial.log", str(tmp_path / "qga.sock")
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "192", "-display", "none",
           "-no-user-config", "-nodefaults", "-snapshot", "-serial", f"file:{serial}",
           "-drive", f"file={built['disk']},format=raw,if=virtio",
           "-drive", f"file={iso},format=raw,if=virtio,readonly=on", "-nic", "none",
           "-chardev", f"socket,id=qga0,path={qga},server=on,wait=off",
           "-device", "virtio-serial-pci", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        text = _wait_for(serial, builder.READY_MARKER, proc, BOOT_TIMEOUT)
        assert "guest agent on /dev/vport" in text
        agent = Agent(qga)
        agent.sync(60)
        osinfo = agent.call("guest-get-osinfo")["return"]
        assert osinfo["id"] == "kubevirt-ops-demo"
        assert osinfo["kernel-release"] in built["inputs"]["kernel"]  # linux-image-<release>=<version>
        assert agent.call("guest-get-host-name")["return"]["host-name"] == "agent-test"
        users = agent.call("guest-get-users")["return"]
        assert [u["user"] for u in users] == ["root"]  # the console login
        mounts = {fs["mountpoint"]: fs for fs in agent.call("guest-get-fsinfo")["return"]}
        assert mounts["/mnt/cidata"]["type"] == "iso9660"
        assert mounts["/mnt/cidata"]["disk"][0]["bus-type"] == "virtio"
        agent.sock.sendall(json.dumps({"execute": "guest-shutdown", "arguments": {"mode": "reboot"}}).encode())
        _wait_for(serial, builder.READY_MARKER, proc, BOOT_TIMEOUT, count=2)
    finally:
        proc.kill()
        proc.wait()
