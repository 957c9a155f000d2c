"""Attachment pods of hotplugged volumes, by table: made for each hotplugged volume of a running VMI on its
node, deleted once the volume left the spec and virt-handler no longer lists it."""
import pytest

from kubevirt_runtime.api.volumes import HOTPLUG_VOLUME_LABEL
from kubevirt_runtime.controller import hotplug as hp

IMAGE = "docker.io/kubevirt-ops/virt-launcher:devel"
HOT = {"name": "hot", "persistentVolumeClaim": {"claimName": "hot-pvc", "hotpluggable": True}}
COLD = {"name": "cold", "persistentVolumeClaim": {"claimName": "cold-pvc"}}


def vmi(volumes, phase="Running", listed=(), deleting=False):
    meta = {"name": "vm1", "namespace": "ns", "uid": "vmi-uid"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"volumes": volumes},
            "status": {"phase": phase, "nodeName": "node1", "volumeStatus": [{"name": n} for n in listed]}}


LAUNCHER = {"metadata": {"name": "virt-launcher-vm1-abcde", "uid": "pod-uid"}, "status": {"phase": "Running"}}


def pod(volume, deleting=False):
    meta = {"name": f"hp-{volume}", "uid": f"uid-{volume}", "labels": {HOTPLUG_VOLUME_LABEL: volume}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


@pytest.mark.parametrize("the_vmi,launcher,pods,create,delete", [
    (vmi([COLD, HOT]), LAUNCHER, [], ["hot"], []),                     # a new hotplugged volume
    (vmi([COLD, HOT]), LAUNCHER, [pod("hot")], [], []),                # its pod is there
    (vmi([COLD, HOT], phase="Scheduled"), LAUNCHER, [], [], []),       # not running yet
    (vmi([COLD, HOT]), {**LAUNCHER, "status": {"phase": "Pending"}}, [], [], []),
    (vmi([COLD], listed=["hot"]), LAUNCHER, [pod("hot")], [], []),     # removed, still attached: wait
    (vmi([COLD]), LAUNCHER, [pod("hot")], [], ["hot"]),                # removed and detached: delete
    (vmi([COLD]), LAUNCHER, [pod("hot", deleting=True)], [], []),      # already going
    (vmi([HOT], phase="Succeeded", listed=["hot"]), LAUNCHER, [pod("hot")], [], ["hot"]),  # guest ended
    (vmi([HOT], deleting=True, listed=["hot"]), LAUNCHER, [pod("hot")], [], ["hot"]),
    (None, LAUNCHER, [pod("hot")], [], ["hot"]),
])
def test_plan(the_vmi, launcher, pods, create, delete):
    todo = hp.plan(the_vmi, launcher, pods, IMAGE)
    assert [p["metadata"]["labels"][HOTPLUG_VOLUME_LABEL] for p in todo.create] == create
    assert [p["metadata"]["labels"][HOTPLUG_VOLUME_LABEL] for p in todo.delete] == delete


def test_the_attachment_pod_mounts_the_claim_on_the_vmis_node_and_goes_with_the_launcher():
    body = hp.attachment_pod(vmi([HOT]), LAUNCHER, HOT, IMAGE)
    assert body["spec"]["volumes"] == [{"name": "hotplug", "persistentVolumeClaim": {"claimName": "hot-pvc",
                                                                                     "readOnly": False}}]
    terms = body["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["node1"]
    assert body["metadata"]["ownerReferences"][0]["uid"] == "pod-uid"
    assert len(body["metadata"]["name"]) <= 63
