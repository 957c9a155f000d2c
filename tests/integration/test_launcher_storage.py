"""virt-launcher's storage commands against real libvirt + QEMU (one TCG boot of the small test guest): a disk
attached to and detached from the running domain, and a consistent copy of a running disk."""
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from kubevirt_runtime.handler.launcher_client import LauncherClient, LauncherError, open_console

try:
    from . import guest as guest_mod
except ImportError:  # tests/integration is not a package: pytest put it on sys.path
    import guest as guest_mod

import os

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(300)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd"):
    pytest.skip("needs root, libvirtd and qemu-system-x86_64 (hack/install-node-packages.sh)",
                allow_module_level=True)

MiB = 1 << 20


@pytest.fixture(scope="module")
def running():
    """One booted guest for the module, with a PVC-like disk (vmi-disks/data/disk.img) and a hotplug dir."""
    guest = guest_mod.build()
    base = Path(tempfile.mkdtemp(prefix="kvs-", dir="/tmp"))
    hotplug_dir = base / "hotplug"
    data = base / "launcher" / "private" / "vmi-disks" / "data"
    data.mkdir(parents=True)
    with open(data / "disk.img", "wb") as f:
        f.write(b"first state\n")
        f.truncate(8 * MiB)
    uid = str(uuid.uuid4())
    launcher = guest_mod.LocalLauncher(base / "launcher", guest, "storage", uid=uid,
                                       extra_args=("--hotplug-disk-dir", str(hotplug_dir))).start()
    vmi = guest_mod.vmi("storage", guest, uid=uid, disks=[{"name": "data", "disk": {"bus": "virtio"}}],
                        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    try:
        launcher.sync(vmi)
        guest_mod.read_until(open_console(launcher.socket, history=True), guest_mod.MARKER.encode(), 120)
        yield {"launcher": launcher, "client": LauncherClient(launcher.socket), "hotplug": hotplug_dir,
               "data": data, "base": base}
    finally:
        launcher.stop(timeout=20)
        shutil.rmtree(base, ignore_errors=True)


def hotplug_volume(name):
    return ({"name": name, "disk": {"bus": "scsi"}},
            {"name": name, "persistentVolumeClaim": {"claimName": name, "hotpluggable": True}})


def test_attach_and_detach_a_disk_on_the_running_guest(running):
    client, hotplug_dir = running["client"], running["hotplug"]
    hotplug_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(hotplug_dir / "extra.img"), "16M"], check=True)
    state = client.state()
    assert {"name": "data", "target": "vda", "hotplug": False} in state["volumes"]
    disk, volume = hotplug_volume("extra")
    state = client.attach_volume(disk, volume)
    assert {"name": "extra", "target": "sda", "hotplug": True} in state["volumes"]
    assert client.attach_volume(disk, volume)["volumes"] == state["volumes"]  # again: nothing changes
    state = client.detach_volume("extra")
    assert [v["name"] for v in state["volumes"]] == ["data"]


def test_attaching_a_volume_whose_disk_is_missing_says_so(running):
    disk, volume = hotplug_volume("absent")
    with pytest.raises(LauncherError) as refused:
        running["client"].attach_volume(disk, volume)
    assert "absent.img is not there" in str(refused.value)


def test_a_running_disk_is_copied_consistently_beside_itself(running):
    client, data = running["client"], running["data"]
    result = client.snapshot_volumes("snap-1", ["data"])
    staged = data / ".vmsnapshot-snap-1.qcow2"
    assert result["files"] == {"data": staged.name}
    assert result["guestAgent"] is False and result["frozen"] is False  # the test guest runs no agent
    assert staged.read_bytes()[:4] == b"QFI\xfb"
    raw = running["base"] / "copy.img"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(staged), str(raw)], check=True)
    assert raw.read_bytes()[:12] == b"first state\n" and raw.stat().st_size == 8 * MiB
    assert not list(data.glob("*.part"))
    again = client.snapshot_volumes("snap-1", ["data"])  # a retry returns the finished copy
    assert again["reused"] and again["files"] == result["files"]
    with pytest.raises(LauncherError) as refused:
        client.snapshot_volumes("snap-2", ["nope"])
    assert "no file-backed disk for volume(s) nope" in str(refused.value)
