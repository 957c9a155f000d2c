"""virt-handler's loop against an in-memory API: a healthy VM is never failed for what the handler does
not know yet, and is failed (with a reason) once its launcher is really gone."""
import pytest

from kubevirt_runtime.handler import decide as d
from kubevirt_runtime.handler import hotplug as hp
from kubevirt_runtime.handler.controller import VMIHandler
from kubevirt_runtime.handler.decide import MAX_MISSES, Lookup, Where
from tests.unit.fakeapi import FakeRecorder, FakeResource

KEY = "ns/v1"


class FakeLocator:
    def __init__(self, lookup, synced=True):
        self.result, self.synced = lookup, synced

    def lookup(self, vmi):
        return self.result

    def locate(self, vmi):
        return self.result.path

    def has_synced(self):
        return self.synced


@pytest.fixture
def vmis():
    resource = FakeResource("VirtualMachineInstance", "kubevirt.io/v1")
    resource.put({"metadata": {"name": "v1", "namespace": "ns", "labels": {"kubevirt.io/nodeName": "node01"}},
                  "spec": {}, "status": {"phase": "Running", "nodeName": "node01",
                                         "conditions": [{"type": "Ready", "status": "True"}]}})
    return resource


def handler_for(vmis, locator):
    handler = VMIHandler(vmis, vmis.informer, locator, "node01", FakeRecorder())
    return handler


def phase(vmis):
    return vmis.get("v1", "ns")["status"]["phase"]


def test_nothing_is_concluded_before_the_pod_cache_syncs(vmis):
    handler = handler_for(vmis, FakeLocator(Lookup(Where.ABSENT), synced=False))
    for _ in range(MAX_MISSES + 2):
        handler.sync(KEY)
    assert phase(vmis) == "Running" and not {"patch/status", "update/status"} & set(vmis.verbs())
    handler.stop()


def test_a_briefly_missing_socket_is_retried_then_taken_as_gone(vmis):
    handler = handler_for(vmis, FakeLocator(Lookup(Where.NO_SOCKET)))
    for _ in range(MAX_MISSES):
        handler.sync(KEY)
        assert phase(vmis) == "Running"
    handler.sync(KEY)
    status = vmis.get("v1", "ns")["status"]
    assert status["phase"] == "Failed" and status["reason"] == "LauncherGone"
    handler.stop()


@pytest.mark.parametrize("lookup,final_phase", [
    (Lookup(Where.ABSENT), "Failed"),
    (Lookup(Where.ENDED, outcome="Failed"), "Failed"),
    (Lookup(Where.ENDED, outcome="Succeeded"), "Succeeded"),
])
def test_positive_evidence_ends_the_vmi(vmis, lookup, final_phase):
    handler = handler_for(vmis, FakeLocator(lookup))
    handler.sync(KEY)
    assert phase(vmis) == final_phase
    assert handler.recorder.reasons()[-1] in ("Failed", "Stopped")
    handler.stop()


def test_a_starting_pod_is_waited_for(vmis):
    vmis.patch_status("v1", {"status": {"phase": "Scheduled"}}, "ns")
    handler = handler_for(vmis, FakeLocator(Lookup(Where.ABSENT)))
    handler.sync(KEY)
    handler.locator.result = Lookup(Where.STARTING)
    handler.sync(KEY)
    assert phase(vmis) == "Scheduled"
    handler.stop()


@pytest.mark.parametrize("action", [d.MountVolume("disk1", "/pvc/disk.img"), d.UnmountVolume("disk1")])
def test_a_hotplug_mount_change_is_looked_at_again(vmis, monkeypatch, action):
    """No watch event follows a mount or an unmount, and this sync's view of the mounts is stale: without a
    requeue the volume stayed Detaching until some unrelated event (74 s in the e2e)."""
    calls = []
    monkeypatch.setattr(hp, "mount", lambda *args: calls.append("mount"))
    monkeypatch.setattr(hp, "unmount", lambda *args: calls.append("unmount"))
    handler = handler_for(vmis, FakeLocator(Lookup(Where.ABSENT)))
    handler.hotplug = hp.HotplugLookup(pod_store=None, kubelet_root="/nowhere")
    vmi = vmis.get("v1", "ns")
    assert handler._hotplug(KEY, vmi, "uid-1", action, hp.HotplugView(launcher_pod_uid="launcher-uid"))
    assert calls and handler.queue.get(timeout=1) == KEY
    handler.stop()
