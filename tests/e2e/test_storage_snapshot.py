"""Snapshot and restore on the local cluster: a VirtualMachineSnapshot of the running storage VM (libvirt copies
its disks while it runs), then, with the VM stopped, a VirtualMachineRestore brings back what the data disk
held at the snapshot; one boot (the restored VM's). The shared VM goes at the end unless a later
storage module uses it."""
import time

import pytest

from tests.e2e import cluster as c
from tests.e2e import storage as s

pytestmark = pytest.mark.e2e
SNAPSHOT, RESTORE = f"{s.VM}-snap", f"{s.VM}-restore"
API = "snapshot.kubevirt.io/v1beta1"


def status(kind, name):
    return (c.get(kind, name, s.NS) or {}).get("status") or {}


@pytest.fixture(scope="module")
def snapshotted(cluster, request):
    c.ensure_kubevirt()
    s.ensure_vm()
    c.kubectl("delete", "vmrestore", RESTORE, "-n", s.NS, "--ignore-not-found", timeout=120)
    c.kubectl("delete", "vmsnapshot", SNAPSHOT, "-n", s.NS, "--ignore-not-found", timeout=120)
    kept = s.write_token()
    start = time.monotonic()
    c.apply({"apiVersion": API, "kind": "VirtualMachineSnapshot", "metadata": {"name": SNAPSHOT, "namespace": s.NS},
             "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": s.VM}}})
    c.wait_for("the snapshot ready", lambda: status("vmsnapshot", SNAPSHOT).get("readyToUse")
               or status("vmsnapshot", SNAPSHOT).get("phase") == "Failed", 600, 1)
    took = time.monotonic() - start
    print(f"\nonline snapshot of {s.VM} ready in {took:.1f}s")
    yield kept
    c.kubectl("delete", "vmrestore", RESTORE, "-n", s.NS, "--ignore-not-found", timeout=120)
    c.kubectl("delete", "vmsnapshot", SNAPSHOT, "-n", s.NS, "--ignore-not-found", timeout=300)
    if s.last_user(request):
        s.delete_vm()


def test_a_running_vm_is_snapshotted_with_all_its_disks(snapshotted):
    snap = status("vmsnapshot", SNAPSHOT)
    assert snap["phase"] == "Succeeded", snap
    assert "Online" in snap["indications"]
    assert sorted(snap["snapshotVolumes"]["includedVolumes"]) == ["datadisk", "rootdisk"]
    content = c.get("vmsnapshotcontent", snap["virtualMachineSnapshotContentName"], s.NS)
    assert content["status"]["readyToUse"]
    assert not (c.get("vm", s.VM, s.NS)["status"]).get("snapshotInProgress")  # unlocked again


def test_restore_brings_back_what_the_disk_held_at_the_snapshot(snapshotted):
    assert s.read_token() == snapshotted
    s.write_token()  # written after the snapshot: the restore must drop it
    assert c.virtctl("stop", s.VM, "-n", s.NS).returncode == 0
    c.wait_for("the VMI gone", lambda: c.get("vmi", s.VM, s.NS) is None, 300, 2)
    start = time.monotonic()
    c.apply({"apiVersion": API, "kind": "VirtualMachineRestore", "metadata": {"name": RESTORE, "namespace": s.NS},
             "spec": {"target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": s.VM},
                      "virtualMachineSnapshotName": SNAPSHOT}})
    c.wait_for("the restore complete", lambda: status("vmrestore", RESTORE).get("complete"), 600, 1)
    took = time.monotonic() - start
    vm = c.get("vm", s.VM, s.NS)
    assert not vm["status"].get("restoreInProgress")
    print(f"\nrestore of {s.VM} complete in {took:.1f}s")
    assert c.virtctl("start", s.VM, "-n", s.NS).returncode == 0
    s.wait_for_shell()
    assert s.read_token() == snapshotted
