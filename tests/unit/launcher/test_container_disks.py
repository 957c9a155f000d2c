"""Finding a containerDisk's image through /proc (a fake /proc here; tests/integration runs a real one)."""
import pytest

from kubevirt_runtime.launcher import container_disks as cd
from kubevirt_runtime.launcher import disks
from kubevirt_runtime.launcher.converter import ConversionError


def fake_proc(tmp_path, processes):
    proc = tmp_path / "proc"
    for pid, argv in processes.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / "self").mkdir(parents=True)
    return proc


def test_containers_are_found_by_their_command_line(tmp_path):
    bb = "/var/run/kubevirt/bin/busybox"
    idle = f"; trap 'kill $! 2>/dev/null; exit 0' TERM; while :; do {bb} sleep 3600 & wait $!; done"
    proc = fake_proc(tmp_path, {1: ["/pause"], 7: [bb, "sh", "-c", ": kubevirt-container-disk=rootdisk" + idle],
                                8: [bb, "sleep", "3600"],
                                9: [bb, "sh", "-c", ": kubevirt-container-disk=kernel-boot" + idle],
                                10: ["/bin/sh", "-c", "echo kubevirt-container-disk=nope;"],
                                12: ["virt-launcher", "--name", "x"]})
    assert cd.find_all(proc) == {"rootdisk": 7, "kernel-boot": 9}
    assert cd.root_of("rootdisk", tmp_path / "none", proc=proc) == proc / "7" / "root"


def test_a_local_directory_wins_and_a_missing_container_is_named(tmp_path):
    proc = fake_proc(tmp_path, {})
    (tmp_path / "cds" / "rootdisk").mkdir(parents=True)
    assert cd.root_of("rootdisk", tmp_path / "cds", proc=proc) == tmp_path / "cds" / "rootdisk"
    with pytest.raises(LookupError, match="'other'"):
        cd.root_of("other", tmp_path / "cds", timeout=0.2, proc=proc)


def test_the_disk_file_of_an_image(tmp_path):
    root = tmp_path / "root"
    (root / "disk").mkdir(parents=True)
    (root / "disk" / "fedora.qcow2").write_bytes(b"x")
    (root / "custom").mkdir()
    (root / "custom" / "my.img").write_bytes(b"y")
    volume = {"name": "rootdisk", "containerDisk": {"image": "i"}}
    assert disks._container_disk_file(root, volume) == root / "disk" / "fedora.qcow2"
    volume["containerDisk"]["path"] = "/custom/my.img"
    assert disks._container_disk_file(root, volume) == root / "custom" / "my.img"
    volume["containerDisk"]["path"] = "/custom/nope.img"
    with pytest.raises(ConversionError, match=r"spec.volumes\[rootdisk\].containerDisk.path: /custom/nope.img"):
        disks._container_disk_file(root, volume)
    (root / "disk" / "second.img").write_bytes(b"z")
    del volume["containerDisk"]["path"]
    with pytest.raises(ConversionError, match="expected one disk file in the image's /disk, found 2"):
        disks._container_disk_file(root, volume)


def test_a_shutdown_ends_the_wait_for_a_container_at_once(tmp_path, monkeypatch):
    """A pod deleted while its sync waits for a containerDisk must not wait out the 30 s (the sync holds the
    domain lock that the shutdown needs; the integration run was SIGKILLed and leaked its libvirtd)."""
    import threading
    import time
    monkeypatch.setattr(cd, "_shutting_down", threading.Event())
    proc = fake_proc(tmp_path, {})
    threading.Timer(0.2, cd.cancel_waits).start()
    started = time.monotonic()
    with pytest.raises(LookupError, match="shutting down"):
        cd.root_of("rootdisk", tmp_path / "none", timeout=30, proc=proc)
    assert time.monotonic() - started < 2
