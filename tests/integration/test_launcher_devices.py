"""Issue 11's devices and volumes in a real guest (virt-launcher + libvirt + QEMU under TCG): virtio-rng, the
swtpm TPM, Hyper-V enlightenments, clock timers, and config volumes as ISO disks (a ConfigMap, a Secret, a
cloud-init config drive), plus a hostDisk created on first use. One boot."""
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from kubevirt_runtime.api import validate_vmi
from kubevirt_runtime.handler.launcher_client import open_console

try:
    from . import guest as guest_mod
except ImportError:
    import guest as guest_mod

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(300)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd") \
        or not shutil.which("swtpm"):
    pytest.skip("needs root, libvirtd, qemu-system-x86_64 and swtpm (hack/install-node-packages.sh)",
                allow_module_level=True)


def run(console, command, marker, timeout=60):
    """Runs a shell command on the guest's console; returns what it printed up to `marker` (split in the
    typed line, so the echo of the line itself does not match)."""
    console.sendall(f"{command}; echo {marker[:2]}\"\"{marker[2:]}\n".encode())
    return guest_mod.read_until(console, f"\n{marker}".encode(), timeout).decode(errors="replace")


def test_devices_and_config_volumes_in_a_booted_guest(tmp_path):
    guest = guest_mod.build()
    uid = str(uuid.uuid4())
    workdir = Path(f"/tmp/kvd-{uid[:8]}")
    launcher = guest_mod.LocalLauncher(workdir, guest, "devices", uid=uid).start()
    try:
        private = launcher.private
        (private / "config-map" / "cm").mkdir(parents=True)
        (private / "config-map" / "cm" / "greeting").write_text("hello from a configmap\n")
        (private / "secret" / "sec").mkdir(parents=True)
        (private / "secret" / "sec" / "password").write_text("s3cret\n")
        (private / "host-disks" / "host").mkdir(parents=True)
        vmi = guest_mod.vmi("devices", guest, uid=uid, volumes=[
            {"name": "cm", "configMap": {"name": "app", "volumeLabel": "APPCFG"}},
            {"name": "sec", "secret": {"secretName": "app"}},
            {"name": "cd", "cloudInitConfigDrive": {"userData": "#!/bin/sh\necho configdrive\n"}},
            {"name": "host", "hostDisk": {"path": "/var/data/host.img", "type": "DiskOrCreate",
                                          "capacity": "16Mi"}}],
            disks=[{"name": "cm", "disk": {"bus": "virtio"}}, {"name": "sec", "disk": {"bus": "virtio"}},
                   {"name": "cd", "disk": {"bus": "virtio"}}, {"name": "host", "disk": {"bus": "virtio"}}])
        domain = vmi["spec"]["domain"]
        domain["devices"].update(rng={}, tpm={})
        domain["features"] = {"acpi": {}, "apic": {}, "smm": {}, "hyperv": {
            "relaxed": {}, "vapic": {}, "spinlocks": {"spinlocks": 8191}, "vpindex": {}, "runtime": {}, "synic": {},
            "synictimer": {"direct": {}}, "reset": {}, "frequencies": {}, "tlbflush": {}, "ipi": {}}}
        domain["clock"] = {"utc": {}, "timer": {"hpet": {"present": False}, "pit": {"tickPolicy": "delay"},
                                                "rtc": {"tickPolicy": "catchup"}, "hyperv": {}}}
        from kubevirt_runtime.api import default_vmi
        vmi = default_vmi(vmi)
        assert validate_vmi(vmi) == []
        state = launcher.sync(vmi, {"accel": "tcg"})
        assert state["status"] == "Running", state
        console = open_console(launcher.socket, history=True)
        guest_mod.read_until(console, guest_mod.MARKER.encode(), 180)

        out = run(console, "cat /sys/class/misc/hw_random/rng_available; ls /dev/hwrng", "RNG-DONE")
        assert "virtio_rng" in out and "/dev/hwrng" in out, out
        out = run(console, "ls /sys/class/tpm/", "TPM-DONE")
        assert "tpm0" in out, out
        # the guest reads each ISO's bytes: the file contents (upper-cased by the guest, so the echo of the
        # typed line cannot match) and the volume label are on the disk
        out = run(console, "grep -a -o 'hello from a configmap' /dev/vda | tr a-z A-Z; "
                           "dd if=/dev/vda bs=1 skip=32808 count=6 2>/dev/null; echo", "CM-DONE", 90)
        assert "HELLO FROM A CONFIGMAP" in out and "APPCFG" in out, out
        out = run(console, "grep -a -o s3cret /dev/vdb | tr a-z A-Z", "SEC-DONE")
        assert "S3CRET" in out, out
        out = run(console, "grep -a -o 'echo configdrive' /dev/vdc | tr a-z A-Z; "
                           "dd if=/dev/vdc bs=1 skip=32808 count=8 2>/dev/null; echo", "CD-DONE")
        assert "ECHO CONFIGDRIVE" in out and "config-2" in out, out
        out = run(console, "cat /sys/block/vdd/size", "HOST-DONE")
        assert str(16 * 2048) in out, out  # 16 MiB in 512-byte sectors
        assert (private / "host-disks" / "host" / "host.img").stat().st_size == 16 << 20
        xml = (private / "domain.xml").read_text()
        assert "<hyperv mode=\"custom\">" in xml and "<timer name=\"hpet\" present=\"no\"" in xml
        console.sendall(b"poweroff -f\n")
        launcher.proc.wait(60)
    finally:
        launcher.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
