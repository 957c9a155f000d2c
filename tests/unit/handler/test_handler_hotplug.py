"""virt-handler's hotplug decisions and volumeStatus, by table (pure: spec, domain and what the node has)."""
import pytest

from kubevirt_runtime.handler.decide import AttachVolume, DetachVolume, MountVolume, UnmountVolume, hotplug_actions
from kubevirt_runtime.handler.hotplug import HotplugLookup, HotplugView, attachment_source
from kubevirt_runtime.handler.volumes import volume_status

HOT = {"name": "hot", "persistentVolumeClaim": {"claimName": "hot-pvc", "hotpluggable": True}}
ROOT = {"name": "root", "dataVolume": {"name": "vm1-root"}}


def vmi(volumes):
    return {"metadata": {"name": "vm1"}, "spec": {"volumes": volumes}}


def domain(*hotplugged):
    return {"volumes": [{"name": "root", "target": "vda", "hotplug": False}]
            + [{"name": n, "target": "sda", "hotplug": True} for n in hotplugged]}


@pytest.mark.parametrize("volumes,attached,view,actions", [
    ([ROOT, HOT], (), HotplugView(), []),                                              # no attachment pod yet
    ([ROOT, HOT], (), HotplugView(sources={"hot": "/pv/hot"}),
     [MountVolume("hot", "/pv/hot"), AttachVolume("hot")]),
    ([ROOT, HOT], (), HotplugView(mounted=frozenset({"hot"}), sources={"hot": "/pv/hot"}), [AttachVolume("hot")]),
    ([ROOT, HOT], ("hot",), HotplugView(mounted=frozenset({"hot"})), []),             # steady
    ([ROOT], ("hot",), HotplugView(mounted=frozenset({"hot"})), [DetachVolume("hot")]),
    ([ROOT], (), HotplugView(mounted=frozenset({"hot"})), [UnmountVolume("hot")]),   # detached: unmount
])
def test_hotplug_actions(volumes, attached, view, actions):
    assert hotplug_actions(vmi(volumes), domain(*attached), view) == actions


@pytest.mark.parametrize("attached,view,phase", [
    ((), HotplugView(), "Pending"),
    ((), HotplugView(sources={"hot": "/pv"}, pods={"hot": ("hp-1", "u1", "Running")}), "AttachedToNode"),
    ((), HotplugView(mounted=frozenset({"hot"})), "MountedToPod"),
    (("hot",), HotplugView(mounted=frozenset({"hot"})), "Ready"),
])
def test_volume_status_phases_of_a_hotplugged_volume(attached, view, phase):
    status = {v["name"]: v for v in volume_status(vmi([ROOT, HOT]), domain(*attached), view)}
    assert status["root"] == {"name": "root", "target": "vda", "persistentVolumeClaimInfo": {"claimName": "vm1-root"}}
    assert status["hot"]["phase"] == phase


def test_a_removed_volume_is_listed_detaching_until_unmounted():
    listed = volume_status(vmi([ROOT]), domain("hot"), HotplugView(mounted=frozenset({"hot"})))
    assert [(v["name"], v.get("phase")) for v in listed] == [("root", None), ("hot", "Detaching")]
    assert [v["name"] for v in volume_status(vmi([ROOT]), domain(), HotplugView())] == ["root"]


def test_a_failed_attachment_pod_is_named_in_the_message():
    view = HotplugView(pods={"hot": ("hp-1", "u1", "Failed")})
    hot = volume_status(vmi([HOT]), domain(), view)[0]
    assert hot["phase"] == "Pending" and "hp-1 of volume hot is Failed" in hot["message"]


class Store:
    def __init__(self, pods):
        self.pods = pods

    def list(self):
        return self.pods


LAUNCHER = {"metadata": {"name": "virt-launcher-vm1-x", "namespace": "ns", "uid": "launcher-uid",
                         "labels": {"kubevirt.io": "virt-launcher"}, "annotations": {"kubevirt.io/domain": "vm1"}}}


@pytest.mark.parametrize("labels,owner,key", [
    ({"kubevirt.io": "hotplug-disk"}, "launcher-uid", "ns/vm1"),
    ({"kubevirt.io": "hotplug-disk"}, "another-uid", None),
    ({"kubevirt.io": "virt-launcher"}, "launcher-uid", None),
])
def test_an_attachment_pod_leads_to_the_vmi_it_serves(labels, owner, key):
    pod = {"metadata": {"name": "hp-1", "namespace": "ns", "labels": labels, "ownerReferences": [{"uid": owner}]}}
    assert HotplugLookup(Store([LAUNCHER, pod]), "/var/lib/kubelet").vmi_key(pod) == key


def test_the_attachment_pods_volume_is_found_from_the_mount_table(tmp_path):
    # a local PV is a bind mount from the node's own filesystem: only the mount table tells it is mounted
    pv = tmp_path / "pods" / "pod-uid" / "volumes" / "kubernetes.io~local-volume" / "pvc-1"
    pv.mkdir(parents=True)
    assert attachment_source(str(tmp_path), "pod-uid", points=["/", str(tmp_path)]) is None
    assert attachment_source(str(tmp_path), "pod-uid", points=["/", str(pv)]) == str(pv)
    assert attachment_source(str(tmp_path), "other-uid", points=[str(pv)]) is None
