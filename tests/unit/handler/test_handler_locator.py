"""Finding a launcher's socket: through its pod on this node, or by a path template."""
from kubevirt_runtime.handler.locator import PodSocketLocator, TemplateSocketLocator
from kubevirt_runtime.machinery.store import Store

VMI = {"metadata": {"name": "v", "namespace": "ns", "uid": "vmi-uid"}}


class FakeInformer:
    def __init__(self, pods):
        self.store = Store()
        for pod in pods:
            self.store.upsert(pod)


def pod(name, uid, vmi_uid, phase="Running"):
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid,
                         "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi_uid}},
            "status": {"phase": phase}}


def test_pod_locator_uses_the_sockets_empty_dir(tmp_path):
    sock = tmp_path / "pods" / "pod-uid-2" / "volumes" / "kubernetes.io~empty-dir" / "sockets" / "launcher.sock"
    sock.parent.mkdir(parents=True)
    sock.touch()
    informer = FakeInformer([pod("old", "pod-uid-1", "vmi-uid", "Failed"), pod("other", "pod-uid-3", "x"),
                             pod("cur", "pod-uid-2", "vmi-uid")])
    assert PodSocketLocator(informer, str(tmp_path)).locate(VMI) == str(sock)


def test_pod_locator_without_socket_yet(tmp_path):
    informer = FakeInformer([pod("cur", "pod-uid-2", "vmi-uid")])
    assert PodSocketLocator(informer, str(tmp_path)).locate(VMI) is None
    assert PodSocketLocator.label_selector() == "kubevirt.io=virt-launcher"


def test_template_locator(tmp_path):
    sock = tmp_path / "ns" / "v" / "launcher.sock"
    locator = TemplateSocketLocator(str(tmp_path / "{namespace}" / "{name}" / "launcher.sock"))
    assert locator.locate(VMI) is None
    sock.parent.mkdir(parents=True)
    sock.touch()
    assert locator.locate(VMI) == str(sock)


def test_pod_outcome(tmp_path):
    informer = FakeInformer([pod("cur", "pod-uid-2", "vmi-uid", "Succeeded")])
    assert PodSocketLocator(informer, str(tmp_path)).outcome(VMI) == "Succeeded"
    assert TemplateSocketLocator("/nowhere/{name}").outcome(VMI) is None
