"""The informer against a scripted fake API: list, watch, resume, relist on 410, bookmarks."""
import threading

from kubevirt_runtime.machinery.informer import Informer
from kubevirt_runtime.machinery.resource import ApiError, Resource


def obj(name, rv):
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}}


class FakeClient:
    resource = Resource("", "v1", "pods")

    def __init__(self, lists, watches):
        self.lists = list(lists)
        self.watches = list(watches)
        self.watch_calls = []
        self.done = threading.Event()

    def list(self, namespace, label_selector, field_selector, limit=None, continue_token=None):
        return self.lists.pop(0)

    def watch(self, namespace, resource_version, label_selector, field_selector, timeout_seconds):
        self.watch_calls.append(resource_version)
        if not self.watches:
            self.done.set()
            threading.Event().wait(5)
            return iter(())
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        return iter(step)


def record(informer):
    seen = []
    informer.add_handler(lambda o: seen.append(("add", o["metadata"]["name"])),
                         lambda old, new: seen.append(("update", new["metadata"]["name"])),
                         lambda o: seen.append(("delete", o["metadata"]["name"])))
    return seen


def test_list_watch_resume_and_relist():
    client = FakeClient(
        lists=[{"metadata": {"resourceVersion": "10"}, "items": [obj("a", 5), obj("b", 6)]},
               {"metadata": {"resourceVersion": "30"}, "items": [obj("a", 12), obj("c", 25)]}],
        watches=[
            [{"type": "ADDED", "object": obj("d", 11)}, {"type": "MODIFIED", "object": obj("a", 12)},
             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}],
            [{"type": "DELETED", "object": obj("d", 16)}],
            [{"type": "ERROR", "object": {"code": 410, "message": "too old"}}],
            ApiError(410, {"reason": "Expired"}),  # a 410 answer to the watch request itself also relists
        ])
    client.lists.append({"metadata": {"resourceVersion": "40"}, "items": [obj("a", 12)]})
    informer = Informer(client, namespace="ns")
    seen = record(informer)
    informer.start()
    assert client.done.wait(5)
    informer.stop()
    assert informer.has_synced()
    # resumed from the list's version, then from the bookmark, then from the last event
    assert client.watch_calls[:3] == ["10", "15", "16"]
    assert informer.relists == 3
    assert seen[:5] == [("add", "a"), ("add", "b"), ("add", "d"), ("update", "a"), ("delete", "d")]
    # relist after 410: b vanished (delete), c is new (add), a unchanged (no event)
    assert ("delete", "b") in seen and ("add", "c") in seen
    assert [o["metadata"]["name"] for o in informer.store.list()] == ["a"]
