"""An in-memory API server for controller unit tests (what upstream's tests get from a fake clientset).

FakeResource keeps the objects of one kind the way the API server does: uid, resourceVersion and
generation (bumped on spec changes), preconditions (resourceVersion, uid, JSON-patch `test`),
finalizers and deletionTimestamp, and a status subresource that only changes status. Every write is
delivered to the attached FakeInformer at once, as a watch would; `informer.paused = True` makes the
cache lag until `informer.resume()`.
"""
from __future__ import annotations

import copy
import itertools

from kubevirt_runtime.machinery.resource import JSON_PATCH, ApiError
from kubevirt_runtime.machinery.store import Store, object_key

_versions = itertools.count(1)
_uids = itertools.count(1)


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
    return parent, parts[-1]


def json_patch(doc, operations):
    """RFC 6902 add/replace/remove/test, enough for what the controllers send."""
    doc = copy.deepcopy(doc)
    for op in operations:
        parent, last = _pointer(doc, op["path"])
        index = int(last) if isinstance(parent, list) and last != "-" else last
        if op["op"] == "test":
            current = parent[index] if isinstance(parent, list) else parent.get(index)
            if current != op["value"]:
                raise ApiError(422, {"reason": "Invalid", "message": f"test failed at {op['path']}"})
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                parent.append(op["value"]) if last == "-" else parent.insert(index, op["value"])
            else:
                parent[index] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[index]
    return doc


class FakeInformer:
    def __init__(self, indexers=None):
        self.store = Store(indexers)
        self.handlers = []
        self.paused = False
        self._pending = []
        self.synced = True

    def add_handler(self, on_add=None, on_update=None, on_delete=None):
        self.handlers.append((on_add, on_update, on_delete))

    def has_synced(self):
        return self.synced

    def deliver(self, kind, obj):
        if self.paused:
            self._pending.append((kind, obj))
            return
        obj = copy.deepcopy(obj)
        if kind == "delete":
            old = self.store.delete(object_key(obj))
            for handler in self.handlers:
                handler[2] and handler[2](old or obj)
            return
        old = self.store.upsert(obj)
        for on_add, on_update, _ in self.handlers:
            if old is None:
                on_add and on_add(obj)
            else:
                on_update and on_update(old, obj)

    def resume(self):
        self.paused = False
        pending, self._pending = self._pending, []
        for kind, obj in pending:
            self.deliver(kind, obj)


class FakeResource:
    def __init__(self, kind, api_version, informer: FakeInformer | None = None):
        self.kind, self.api_version = kind, api_version
        self.informer = informer or FakeInformer()
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple] = []

    # -- reads

    def get(self, name, namespace=None, subresource=None):
        obj = self.objects.get(f"{namespace}/{name}")
        if obj is None:
            raise ApiError(404, {"reason": "NotFound", "message": f"{self.kind} {name} not found"}, "get")
        return copy.deepcopy(obj)

    def list(self, namespace=None, label_selector=None, limit=None, **_):
        """Equality selectors only (`k=v,k2=v2`), as the callers under test use."""
        wanted = dict(term.split("=", 1) for term in (label_selector or "").split(",") if term)
        items = [copy.deepcopy(o) for o in self.objects.values()
                 if namespace in (None, o["metadata"].get("namespace"))
                 and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
        self.calls.append(("list", namespace))
        return {"items": items[:limit] if limit else items}

    # -- writes

    def create(self, obj, namespace=None):
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        if not meta.get("name") and meta.get("generateName"):  # as the API server: a random suffix
            meta["name"] = f"{meta['generateName']}{next(_uids):05d}"
        key = f"{meta['namespace']}/{meta['name']}"
        self.calls.append(("create", key))
        if key in self.objects:
            raise ApiError(409, {"reason": "AlreadyExists", "message": f"{self.kind} {meta['name']} already exists"})
        obj.setdefault("apiVersion", self.api_version)
        obj.setdefault("kind", self.kind)
        meta.update(uid=f"uid-{next(_uids)}", generation=1, creationTimestamp="2026-01-01T00:00:00Z")
        if self.kind == "Pod":
            obj["status"] = {"phase": "Pending"}
        return self._store(key, obj, "add")

    def update(self, obj, namespace=None, subresource=None):
        meta = obj["metadata"]
        key = f"{meta.get('namespace', namespace)}/{meta['name']}"
        self.calls.append(("update" + (f"/{subresource}" if subresource else ""), key))
        current = self._current(key)
        if meta.get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
            raise ApiError(409, {"reason": "Conflict", "message": "the object has been modified"})
        if subresource == "status":
            new = _with_status(current, obj.get("status"))
        else:
            new = _with_status(obj, current.get("status"))
        return self._write(key, current, new)

    def patch(self, name, patch, namespace=None, content_type=None, subresource=None):
        key = f"{namespace}/{name}"
        self.calls.append(("patch" + (f"/{subresource}" if subresource else ""), key))
        current = self._current(key)
        if content_type == JSON_PATCH:
            new = json_patch(current, patch)
        else:
            expected = (patch.get("metadata") or {}).get("resourceVersion")
            if expected not in (None, current["metadata"]["resourceVersion"]):
                raise ApiError(409, {"reason": "Conflict", "message": "the object has been modified"})
            new = merge_patch(current, patch)
        new = _with_status(current, new.get("status")) if subresource == "status" else \
            _with_status(new, current.get("status"))
        return self._write(key, current, new)

    def patch_status(self, name, patch, namespace=None, content_type=None):
        return self.patch(name, patch, namespace, content_type, subresource="status")

    def delete(self, name, namespace=None, uid=None, **_):
        key = f"{namespace}/{name}"
        self.calls.append(("delete", key))
        current = self._current(key)
        if uid is not None and current["metadata"]["uid"] != uid:
            raise ApiError(409, {"reason": "Conflict", "message": "uid precondition failed"})
        if current["metadata"].get("finalizers"):
            if current["metadata"].get("deletionTimestamp"):
                return current
            new = copy.deepcopy(current)
            new["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:01Z"
            return self._store(key, new, "update")
        return self._remove(key)

    # -- helpers for tests

    def put(self, obj):
        """Adds an object as if someone else had created it (uid and versions kept when given)."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(_uids)}")
        meta.setdefault("generation", 1)
        return self._store(f"{meta['namespace']}/{meta['name']}", obj, "add")

    def remove(self, key):
        """Removes an object outright (a garbage collector, or a user with --force)."""
        return self._remove(key)

    def verbs(self):
        return [verb for verb, _ in self.calls]

    # -- internals

    def _current(self, key):
        if key not in self.objects:
            raise ApiError(404, {"reason": "NotFound", "message": f"{self.kind} {key} not found"})
        return self.objects[key]

    def _write(self, key, current, new):
        if current.get("spec") != new.get("spec"):
            new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._remove(key)
        return self._store(key, new, "update")

    def _store(self, key, obj, _kind):
        obj["metadata"]["resourceVersion"] = str(next(_versions))
        self.objects[key] = obj
        self.informer.deliver("upsert", obj)
        return copy.deepcopy(obj)

    def _remove(self, key):
        obj = self.objects.pop(key)
        self.informer.deliver("delete", obj)
        return copy.deepcopy(obj)


def _with_status(obj, status):
    """A copy of obj whose status is `status` (absent when empty, as the API server returns it)."""
    new = copy.deepcopy(obj)
    new.pop("status", None)
    if status:
        new["status"] = copy.deepcopy(status)
    return new


class FakeRecorder:
    def __init__(self):
        self.events = []

    def event(self, obj, event_type, reason, message):
        self.events.append((obj["metadata"].get("name"), event_type, reason, message))

    def reasons(self):
        return [reason for _, _, reason, _ in self.events]
