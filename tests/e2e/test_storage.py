"""DataVolumes on the local cluster (local-path PVCs): a VM whose dataVolumeTemplates import the demo disk over
http from a web server in a pod and make a blank data disk boots from the imported disk, and what the guest writes to
its data disk is still there after a restart. Two TCG boots; the VM stays for the other storage modules
(tests/e2e/storage.py), or goes when none follows."""
import time

import pytest

from tests.e2e import cluster as c
from tests.e2e import storage as s

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def booted(cluster, request):
    c.ensure_kubevirt()
    if c.get("vm", s.VM, s.NS) is not None:  # a VM of an earlier run: start from a fresh import
        s.delete_vm()
    s.disk_server()
    start = time.monotonic()
    c.apply(s.manifest())
    imported = c.wait_for("both DataVolumes Succeeded", lambda: all(
        ((c.get("dv", name, s.NS) or {}).get("status") or {}).get("phase") == "Succeeded"
        for name in (s.ROOT_DV, s.DATA_DV)), 600, 2) and time.monotonic() - start
    vmi = s.wait_for_shell()
    print(f"\nDataVolumes imported in {imported:.0f}s, guest shell up {time.monotonic() - start:.0f}s after apply; "
          f"VMI create to Running on the PVCs: {c.create_to_running(vmi):.0f}s")
    demo = c.get("vmi", "vm-demo", "default")
    if demo and demo.get("status", {}).get("phase") == "Running":
        print(f"VMI create to Running of vm-demo (containerDisk): {c.create_to_running(demo):.0f}s")
    yield vmi
    if s.last_user(request):
        s.delete_vm()


def test_the_datavolumes_are_owned_by_the_vm_and_report_100_percent(booted):
    vm = c.get("vm", s.VM, s.NS)
    for name in (s.ROOT_DV, s.DATA_DV):
        dv = c.get("dv", name, s.NS)
        assert dv["status"]["progress"] == "100.0%"
        assert [r["uid"] for r in dv["metadata"]["ownerReferences"]] == [vm["metadata"]["uid"]]
        claim = c.get("pvc", name, s.NS)
        assert claim["status"]["phase"] == "Bound" and claim["spec"]["storageClassName"] == "local-path"
    assert vm["status"]["printableStatus"] == "Running"


def test_the_guest_boots_from_the_imported_disk(booted):
    # the demo disk's root is vda, now a file on a local-path PV rather than a containerDisk
    assert s.console_line("ls /sys/block | grep vd | tr '\\n' ' '").split() == ["vda", "vdb", "vdc"]
    pod = c.kubectl_json("get", "pods", "-n", s.NS, "-l", f"kubevirt.io/created-by={booted['metadata']['uid']}")
    claims = {v["persistentVolumeClaim"]["claimName"] for p in pod["items"] for v in p["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims == {s.ROOT_DV, s.DATA_DV}


def test_what_the_guest_wrote_survives_a_restart(booted):
    token = s.write_token()
    old = booted["metadata"]["uid"]
    assert c.virtctl("restart", s.VM, "-n", s.NS).returncode == 0
    c.wait_for("a new VMI", lambda: (s.running_vmi() or {"metadata": {}})["metadata"].get("uid") not in (None, old),
               c.BOOT_TIMEOUT, 3)
    s.wait_for_shell()
    assert s.read_token() == token
