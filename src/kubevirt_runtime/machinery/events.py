"""Kubernetes Events on objects (what `kubectl describe vm` shows), recorded without blocking the caller.

Events are sent by a background thread; identical events (same object, type, reason, message) are
aggregated by bumping `count` on the existing Event, as client-go's recorder does.
"""
import datetime
import logging
import queue
import threading
import uuid

from .resource import EVENTS, ApiError, ResourceClient

log = logging.getLogger(__name__)
NORMAL, WARNING = "Normal", "Warning"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, api_client, component, host="", counters=(), max_pending=10000):
        self.client = ResourceClient(api_client, EVENTS, counters)
        self.component, self.host = component, host
        self._queue = queue.Queue(max_pending)
        self._sent = {}  # (uid, type, reason, message) -> (event name, namespace, count)
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def event(self, obj, event_type, reason, message):
        try:
            self._queue.put_nowait((obj, event_type, reason, message))
        except queue.Full:
            log.warning("dropping event %s %s: queue full", reason, message)

    def flush(self, timeout=5.0):
        self._queue.join() if timeout is None else _join(self._queue, timeout)

    def _run(self):
        while True:
            item = self._queue.get()
            try:
                self._send(*item)
            except Exception as exc:
                log.warning("could not record event %s: %s", item[2], exc)
            finally:
                self._queue.task_done()

    def _send(self, obj, event_type, reason, message):
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid"), event_type, reason, message)
        now = _now()
        previous = self._sent.get(key)
        if previous:
            name, count = previous
            try:
                self.client.patch(name, {"count": count + 1, "lastTimestamp": now}, namespace,
                                  content_type="application/merge-patch+json")
                self._sent[key] = (name, count + 1)
                return
            except ApiError:
                pass
        name = f"{meta.get('name', 'unknown')}.{uuid.uuid4().hex[:16]}"
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                               "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "type": event_type, "reason": reason, "message": message,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        self.client.create(body, namespace)
        if len(self._sent) > 4096:
            self._sent.clear()
        self._sent[key] = (name, 1)


def _join(q, timeout):
    deadline = threading.Event()
    waiter = threading.Thread(target=lambda: (q.join(), deadline.set()), daemon=True)
    waiter.start()
    deadline.wait(timeout)


class FakeRecorder:
    """Collects events in memory (unit tests)."""

    def __init__(self):
        self.events = []

    def event(self, obj, event_type, reason, message):
        self.events.append((event_type, reason, message))

    def flush(self, timeout=None):
        pass
