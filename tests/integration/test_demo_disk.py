"""The demo containerDisk boots under QEMU (TCG) and does what a cirros user expects.

Builds the disk with the same builder the kubevirt_images role runs (cached under
~/.cache/kubevirt-ops/images/demo-disk), boots it with a NoCloud ISO (volume label `cidata`) whose
user-data is a shell script, and checks on the serial console: the user-data output and the
`login ready` marker; then fetches the page its httpd serves on port 80 through a host forward.
With #cloud-config user-data instead, the key in its ssh_authorized_keys logs in as root over SSH.
"""
import importlib.util
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR, REPO

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(900)]

BOOT_TIMEOUT = float(os.environ.get("KUBEVIRT_OPS_DEMO_BOOT_TIMEOUT", "400"))
USER_DATA_MARKER = "cloud-init ran: hello from user-data (test)"

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


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_disk():
    builder = _builder()
    result = builder.build(Path(os.environ.get("KUBEVIRT_OPS_DEMO_DISK_CACHE", CACHE_DIR / "images" / "demo-disk")))
    return builder, result


def _nocloud_iso(tmp_path, user_data: str, hostname: str) -> Path:
    src = tmp_path / "cidata"
    src.mkdir()
    (src / "user-data").write_text(user_data)
    (src / "meta-data").write_text(f"instance-id: {hostname}\nlocal-hostname: {hostname}\n")
    iso = tmp_path / "cidata.iso"
    subprocess.run(["genisoimage", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock",
                    str(src / "user-data"), str(src / "meta-data")], check=True)
    return iso


def _wait_for(path: Path, needles, proc, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if all(n in text for n in needles):
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"missing {[n for n in needles if n not in text]} on the serial console "
                         f"(qemu exit {proc.poll()}); console tail:\n{text[-3000:]}")


def test_demo_disk_boots_runs_user_data_and_serves_http(demo_disk, tmp_path):
    builder, built = demo_disk
    iso = _nocloud_iso(tmp_path, f"#!/bin/sh\necho '{USER_DATA_MARKER}'\necho \"hostname: $(hostname)\"\n",
                       "demo-test")
    serial = tmp_path / "serial.log"
    port = _free_port()
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "192", "-smp", "1",
           "-display", "none", "-no-user-config", "-nodefaults", "-no-reboot", "-snapshot",
           "-serial", f"file:{serial}",
           "-drive", f"file={built['disk']},format=raw,if=virtio",
           "-drive", f"file={iso},format=raw,if=virtio,readonly=on",
           # the addresses KubeVirt's masquerade binding gives the guest (here from QEMU's own user network)
           "-netdev", f"user,id=n0,net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.2,hostfwd=tcp:127.0.0.1:{port}-:80",
           "-device", "virtio-net-pci,netdev=n0"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = _wait_for(serial, [USER_DATA_MARKER, builder.READY_MARKER], proc, BOOT_TIMEOUT)
        print(f"demo disk: boot to '{builder.READY_MARKER}' in {time.monotonic() - start:.1f}s under TCG")
        assert "hostname: demo-test" in text  # meta-data local-hostname applied before user-data ran
        assert text.index(USER_DATA_MARKER) < text.index(builder.READY_MARKER)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    assert response.read().decode().strip() == builder.HTTP_TEXT
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        proc.kill()
        proc.wait()


def test_demo_disk_lets_the_cloud_config_key_in_over_ssh(demo_disk, tmp_path):
    builder, built = demo_disk
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@kubevirt-ops", "-f", str(key)],
                   check=True)
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    iso = _nocloud_iso(tmp_path, "#cloud-config\nssh_authorized_keys:\n"
                       f"  - {key.with_suffix('.pub').read_text().strip()}\n", "demo-ssh")
    serial = tmp_path / "serial.log"
    port = _free_port()
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "192", "-smp", "1",
           "-display", "none", "-no-user-config", "-nodefaults", "-no-reboot", "-snapshot",
           "-serial", f"file:{serial}",
           "-drive", f"file={built['disk']},format=raw,if=virtio",
           "-drive", f"file={iso},format=raw,if=virtio,readonly=on",
           "-netdev", f"user,id=n0,net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.2,hostfwd=tcp:127.0.0.1:{port}-:22",
           "-device", "virtio-net-pci,netdev=n0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ssh(identity, command):
        return subprocess.run(["ssh", "-i", str(identity), "-p", str(port), "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
                               "-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "root@127.0.0.1", command],
                              capture_output=True, text=True, timeout=120)
    try:
        text = _wait_for(serial, ["1 SSH key(s) authorized for root", "dropbear (SSH) listening on port 22",
                                  builder.READY_MARKER], proc, BOOT_TIMEOUT)
        assert "user-data is neither" not in text
        start = time.monotonic()
        result = ssh(key, "echo logged in as $(id -u) on $(hostname)")
        print(f"demo disk: first SSH command in {time.monotonic() - start:.1f}s (host key made on first use)")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "logged in as 0 on demo-ssh"
        refused = ssh(other, "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
    finally:
        proc.kill()
        proc.wait()


def test_demo_disk_without_nocloud_still_reaches_login(demo_disk, tmp_path):
    builder, built = demo_disk
    serial = tmp_path / "serial.log"
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-m", "128", "-display", "none",
           "-no-user-config", "-nodefaults", "-no-reboot", "-snapshot", "-serial", f"file:{serial}",
           "-drive", f"file={built['disk']},format=raw,if=virtio", "-nic", "none"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        text = _wait_for(serial, [builder.READY_MARKER], proc, BOOT_TIMEOUT)
        assert "no NoCloud (cidata) disk" in text
    finally:
        proc.kill()
        proc.wait()
