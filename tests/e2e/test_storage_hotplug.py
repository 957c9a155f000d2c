"""Disk hotplug on the local cluster: virtctl addvolume attaches a blank DataVolume to the running storage VM
(the guest sees a new SCSI disk and can write it), removevolume takes it away again. No extra boot: the
shared VM of tests/e2e/storage.py is reused."""
import time

import pytest

from tests.e2e import cluster as c
from tests.e2e import storage as s

pytestmark = pytest.mark.e2e
HOTPLUG_DV = f"{s.VM}-hotplug"


def volume_status(name):
    vmi = s.running_vmi() or {}
    return next((v for v in (vmi.get("status") or {}).get("volumeStatus") or [] if v["name"] == name), None)


def scsi_disks():
    return s.console_line("ls /sys/block | grep sd | tr '\\n' ' '").split()


@pytest.fixture(scope="module")
def blank_dv(cluster, request):
    c.ensure_kubevirt()
    node = s.ensure_vm()["status"]["nodeName"]
    # node-local storage: the claim goes where the VM runs (the DataVolume's annotations reach its claim)
    c.apply({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
             "metadata": {"name": HOTPLUG_DV, "namespace": s.NS,
                          "annotations": {"volume.kubernetes.io/selected-node": node}},
             "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "8Mi"}}}}})
    c.wait_for(f"{HOTPLUG_DV} Succeeded", lambda: ((c.get("dv", HOTPLUG_DV, s.NS) or {}).get("status") or {})
               .get("phase") == "Succeeded", 300, 2)
    yield HOTPLUG_DV
    c.virtctl("removevolume", s.VM, "-n", s.NS, "--volume-name", HOTPLUG_DV)
    c.wait_for("the volume gone from the VMI", lambda: volume_status(HOTPLUG_DV) is None, 120, 2)
    c.kubectl("delete", "dv", HOTPLUG_DV, "-n", s.NS, "--ignore-not-found", timeout=120)
    if s.last_user(request):
        s.delete_vm()


def test_addvolume_attaches_a_disk_the_guest_can_write_and_removevolume_detaches_it(blank_dv):
    assert scsi_disks() == []
    start = time.monotonic()
    added = c.virtctl("addvolume", s.VM, "-n", s.NS, "--volume-name", blank_dv)
    assert added.returncode == 0, added.stderr
    status = c.wait_for("volumeStatus Ready", lambda: (volume_status(blank_dv) or {}).get("phase") == "Ready"
                        and volume_status(blank_dv), 300, 1)
    attached = time.monotonic() - start
    assert status["target"] == "sda" and status["hotplugVolume"]["attachPodName"]
    vm = c.get("vm", s.VM, s.NS)
    assert any(v["name"] == blank_dv and v["dataVolume"].get("hotpluggable")
               for v in vm["spec"]["template"]["spec"]["volumes"])
    c.wait_for("the guest's new SCSI disk", lambda: scsi_disks() == ["sda"], 120, 2)
    token = s.write_token("/dev/sda")
    assert s.read_token("/dev/sda") == token
    start = time.monotonic()
    removed = c.virtctl("removevolume", s.VM, "-n", s.NS, "--volume-name", blank_dv)
    assert removed.returncode == 0, removed.stderr
    c.wait_for("the volume gone from volumeStatus", lambda: volume_status(blank_dv) is None, 300, 1)
    detached = time.monotonic() - start
    c.wait_for("the guest's SCSI disk gone", lambda: scsi_disks() == [], 120, 2)
    c.wait_for("the attachment pod gone", lambda: not c.kubectl_json(
        "get", "pods", "-n", s.NS, "-l", "kubevirt.io=hotplug-disk")["items"], 120, 2)
    print(f"\nhotplug: attached (volumeStatus Ready) in {attached:.1f}s, detached in {detached:.1f}s")
