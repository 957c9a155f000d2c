"""Restore controller's pure pieces, by table: where each volume is restored to, the restored PVC, the VM spec
after the restore and the DataVolumes it no longer names."""
import pytest

from kubevirt_runtime.api import cdi
from kubevirt_runtime.api import snapshot as snap
from kubevirt_runtime.controller import restore as rc

ROOT = {"name": "root", "dataVolume": {"name": "vm1-root"}}
DATA = {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}}


def vm(volumes, templates=(), run_strategy="Halted"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "ns", "uid": "vm-uid"},
            "spec": {"runStrategy": run_strategy, "dataVolumeTemplates": [{"metadata": {"name": t}} for t in templates],
                     "template": {"spec": {"volumes": volumes}}}}


def content(volumes, templates=("vm1-root",)):
    source = vm(volumes, templates, run_strategy="Always")
    return {"metadata": {"name": "c1", "namespace": "ns", "uid": "content-uid"},
            "spec": {"source": {"virtualMachine": {"metadata": source["metadata"], "spec": source["spec"]}},
                     "volumeBackups": [{"volumeName": v["name"], "volumeSnapshotName": f"vs-{v['name']}",
                                        "persistentVolumeClaim": {
                                            "metadata": {"name": v.get("dataVolume", {}).get("name") or
                                                         v["persistentVolumeClaim"]["claimName"],
                                                         "annotations": {cdi.PRE_POPULATED: "x", "keep": "me"}},
                                            "spec": {"resources": {"requests": {"storage": "64Mi"}}}}}
                                       for v in volumes]}}


def restore(policy=None):
    spec = {"target": {"kind": "VirtualMachine", "name": "vm1"}, "virtualMachineSnapshotName": "s1"}
    if policy:
        spec["volumeRestorePolicy"] = policy
    return {"metadata": {"name": "r1", "namespace": "ns", "uid": "restore-uid"}, "spec": spec}


@pytest.mark.parametrize("policy,current,expected", [
    (None, [ROOT, DATA], {"root": snap.restore_claim_name("restore-uid", "root"),
                          "data": snap.restore_claim_name("restore-uid", "data")}),
    ("InPlace", [ROOT, DATA], {"root": "vm1-root", "data": "data-pvc"}),
    # in place, a volume the VM no longer has goes back to the PVC it had at the snapshot
    ("InPlace", [ROOT], {"root": "vm1-root", "data": "data-pvc"}),
])
def test_target_claims(policy, current, expected):
    assert rc.target_claims(restore(policy), content([ROOT, DATA]), vm(current)) == expected


@pytest.mark.parametrize("datavolume,prepopulated", [(True, "restored"), (False, None)])
def test_restore_claim_is_owned_by_the_vm_and_adopted_by_its_datavolume(datavolume, prepopulated):
    backup = content([ROOT])["spec"]["volumeBackups"][0]
    claim = rc.restore_claim(restore(), backup, "restored", vm([ROOT]), datavolume)
    assert claim["metadata"]["annotations"].get(cdi.PRE_POPULATED) == prepopulated
    assert claim["metadata"]["annotations"]["keep"] == "me"
    assert claim["metadata"]["labels"][snap.RESTORE_LABEL] == "vm1"
    assert claim["metadata"]["ownerReferences"][0]["uid"] == "vm-uid"
    assert claim["spec"] == {"resources": {"requests": {"storage": "64Mi"}}}


def test_restored_spec_points_at_the_restored_claims_and_keeps_the_current_run_strategy():
    spec = rc.restored_spec(content([ROOT, DATA]), vm([ROOT, DATA]), {"root": "r-root", "data": "r-data"})
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["root"]["dataVolume"]["name"] == "r-root"
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "r-data"
    assert [t["metadata"]["name"] for t in spec["dataVolumeTemplates"]] == ["r-root"]
    assert spec["runStrategy"] == "Halted"


@pytest.mark.parametrize("current,restored,orphans", [
    (["vm1-root"], ["r-root"], ["vm1-root"]),
    (["vm1-root"], ["vm1-root"], []),
    ([], ["r-root"], []),
])
def test_orphaned_datavolumes(current, restored, orphans):
    new_spec = {"dataVolumeTemplates": [{"metadata": {"name": n}} for n in restored]}
    assert rc.orphaned_datavolumes(vm([], current), new_spec) == orphans
