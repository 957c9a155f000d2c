"""Finding a launcher's socket through its pod on this node, or by a path template; and what the
locator reports when it is not there."""
import pytest

from kubevirt_runtime.handler.decide import Lookup, Where
from kubevirt_runtime.handler.locator import PodSocketLocator, TemplateSocketLocator
from kubevirt_runtime.machinery.store import Store

VMI = {"metadata": {"name": "v", "namespace": "ns", "uid": "vmi-uid"}}


class FakeInformer:
    def __init__(self, pods, synced=True):
        self.store = Store()
        self.synced = synced
        for pod in pods:
            self.store.upsert(pod)

    def has_synced(self):
        return self.synced


def pod(name, uid, vmi_uid, phase="Running"):
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid,
                         "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi_uid}},
            "status": {"phase": phase}}


def make_socket(root, pod_uid):
    sock = root / "pods" / pod_uid / "volumes" / "kubernetes.io~empty-dir" / "sockets" / "launcher.sock"
    sock.parent.mkdir(parents=True)
    sock.touch()
    return str(sock)


def test_pod_locator_uses_the_sockets_empty_dir(tmp_path):
    sock = make_socket(tmp_path, "pod-uid-2")
    informer = FakeInformer([pod("old", "pod-uid-1", "vmi-uid", "Failed"), pod("other", "pod-uid-3", "x"),
                             pod("cur", "pod-uid-2", "vmi-uid")])
    locator = PodSocketLocator(informer, str(tmp_path))
    assert locator.lookup(VMI) == Lookup(Where.READY, sock)
    assert locator.locate(VMI) == sock
    assert PodSocketLocator.label_selector() == "kubevirt.io=virt-launcher"


@pytest.mark.parametrize("pods,synced,expected", [
    ([pod("cur", "p2", "vmi-uid")], False, Lookup(Where.UNSYNCED)),
    ([], False, Lookup(Where.UNSYNCED)),
    ([], True, Lookup(Where.ABSENT)),
    ([pod("other", "p3", "x")], True, Lookup(Where.ABSENT)),
    ([pod("cur", "p2", "vmi-uid")], True, Lookup(Where.NO_SOCKET)),
    ([pod("cur", "p2", "vmi-uid", "Pending")], True, Lookup(Where.STARTING)),
    ([pod("cur", "p2", "vmi-uid", "Succeeded")], True, Lookup(Where.ENDED, outcome="Succeeded")),
    ([pod("cur", "p2", "vmi-uid", "Failed")], True, Lookup(Where.ENDED, outcome="Failed")),
])
def test_pod_locator_without_a_ready_socket(tmp_path, pods, synced, expected):
    locator = PodSocketLocator(FakeInformer(pods, synced), str(tmp_path))
    assert locator.lookup(VMI) == expected
    assert locator.locate(VMI) is None
    assert locator.has_synced() is synced


def test_template_locator(tmp_path):
    sock = tmp_path / "ns" / "v" / "launcher.sock"
    locator = TemplateSocketLocator(str(tmp_path / "{namespace}" / "{name}" / "launcher.sock"))
    assert locator.lookup(VMI) == Lookup(Where.NO_SOCKET)
    sock.parent.mkdir(parents=True)
    sock.touch()
    assert locator.lookup(VMI) == Lookup(Where.READY, str(sock))
    assert locator.has_synced()
