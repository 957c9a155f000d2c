"""Snapshot controller's pure pieces, by table: which volumes are copied, the content and the snapshot PVC it
asks for, the failure deadline, the indications and the status transitions."""
import datetime

import pytest

from kubevirt_runtime.api import snapshot as snap
from kubevirt_runtime.controller import snapshot as sc

NOW = "2026-01-01T00:00:00Z"


def vm(volumes):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "ns", "uid": "vm-uid", "generation": 3},
            "spec": {"runStrategy": "Always", "template": {"spec": {"volumes": volumes}}}}


ROOT = {"name": "root", "dataVolume": {"name": "vm1-root"}}
DATA = {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}}
HOT = {"name": "hot", "persistentVolumeClaim": {"claimName": "hot-pvc", "hotpluggable": True}}
CIDATA = {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#!/bin/sh"}}
CDISK = {"name": "cd", "containerDisk": {"image": "demo"}}


@pytest.mark.parametrize("volumes,online,included,excluded", [
    ([ROOT, DATA, CIDATA], False, ["root", "data"], ["cloudinit"]),
    ([CDISK, CIDATA], True, [], ["cd", "cloudinit"]),
    ([ROOT, HOT], False, ["root", "hot"], []),   # stopped: a hotplugged PVC is a file like any other
    ([ROOT, HOT], True, ["root"], ["hot"]),      # running: no room beside the bind-mounted file
])
def test_split_volumes(volumes, online, included, excluded):
    inc, exc = sc.split_volumes(vm(volumes), online)
    assert [v["name"] for v in inc] == included and [v["name"] for v in exc] == excluded


def snapshot(policy=None, created=NOW, deadline=None):
    spec = {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "vm1"}}
    if policy:
        spec["deletionPolicy"] = policy
    if deadline:
        spec["failureDeadline"] = deadline
    return {"metadata": {"name": "s1", "namespace": "ns", "uid": "snap-uid", "creationTimestamp": created},
            "spec": spec}


CLAIMS = {"vm1-root": {"metadata": {"name": "vm1-root", "annotations": {
    "pv.kubernetes.io/bind-completed": "yes", "cdi.kubevirt.io/storage.import.endpoint": "docker://demo"}},
    "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv-1", "storageClassName": "local-path",
             "resources": {"requests": {"storage": "64Mi"}}}}}


@pytest.mark.parametrize("policy,owned", [(None, True), ("Delete", True), ("Retain", False)])
def test_content_keeps_the_vm_and_clean_claims_and_is_owned_unless_retained(policy, owned):
    body = sc.content_body(snapshot(policy), vm([ROOT, CIDATA]), [ROOT], CLAIMS)
    backup = body["spec"]["volumeBackups"][0]
    assert backup["volumeName"] == "root"
    assert backup["volumeSnapshotName"] == snap.volume_snapshot_name("snap-uid", "root")
    claim = backup["persistentVolumeClaim"]
    assert "volumeName" not in claim["spec"] and claim["spec"]["storageClassName"] == "local-path"
    assert list(claim["metadata"]["annotations"]) == ["cdi.kubevirt.io/storage.import.endpoint"]
    assert body["spec"]["source"]["virtualMachine"]["spec"]["runStrategy"] == "Always"
    assert bool(body["metadata"].get("ownerReferences")) is owned


def test_the_snapshot_claim_takes_the_sources_class_and_size_and_is_owned_by_the_content():
    content = sc.content_body(snapshot(), vm([ROOT]), [ROOT], CLAIMS)
    content["metadata"]["uid"] = "content-uid"
    claim = sc.snapshot_claim(content, content["spec"]["volumeBackups"][0])
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                             "storageClassName": "local-path", "resources": {"requests": {"storage": "64Mi"}}}
    assert claim["metadata"]["ownerReferences"][0]["uid"] == "content-uid"


@pytest.mark.parametrize("deadline,seconds_later,passed", [
    (None, 60, False), (None, 5 * 60 + 1, True),        # upstream's default: 5 minutes
    ("1m", 59, False), ("1m", 61, True), ("1h", 3000, False),
])
def test_deadline_passed(deadline, seconds_later, passed):
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds_later)
    assert sc.deadline_passed(snapshot(deadline=deadline), now) is passed


@pytest.mark.parametrize("online,capture,expected", [
    (False, None, []),
    (True, {"guestAgent": True}, ["Online", "GuestAgent"]),
    (True, {"guestAgent": False}, ["Online", "NoGuestAgent"]),
])
def test_indications(online, capture, expected):
    found, described = sc.indications(online, capture)
    assert found == expected and [d["indication"] for d in described] == expected


@pytest.mark.parametrize("make,phase,ready,failure", [
    (lambda s: sc.progressing_status(s, NOW, "going"), "InProgress", False, None),
    (lambda s: sc.failed_status(s, NOW, "copy failed"), "Failed", False, "True"),
    (lambda s: sc.succeeded_status(s, NOW, NOW), "Succeeded", True, None),
])
def test_status_transitions(make, phase, ready, failure):
    status = make({"error": {"message": "old"}})
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert status["phase"] == phase and status["readyToUse"] is ready
    assert conditions["Ready"] == ("True" if ready else "False")
    assert conditions.get("Failure") == failure
    assert ("error" in status) is (phase != "Succeeded")


def test_done_volumes_counts_only_ready_ones():
    content = {"status": {"volumeSnapshotStatus": [{"volumeSnapshotName": "a", "readyToUse": True},
                                                   {"volumeSnapshotName": "b", "readyToUse": False}]}}
    assert sc.done_volumes(content) == {"a"} and sc.done_volumes({}) == set()


@pytest.mark.parametrize("conditions,connected", [
    ([{"type": "AgentConnected", "status": "True"}], True),
    ([{"type": "AgentConnected", "status": "False"}], False),
    ([{"type": "Ready", "status": "True"}], False),
])
def test_agent_connected_decides_the_indication_written_at_the_start(conditions, connected):
    assert sc.agent_connected({"status": {"conditions": conditions}}) is connected
    assert sc.agent_connected(None) is False
