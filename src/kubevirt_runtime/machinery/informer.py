"""Informer: keeps a Store in sync with the API server by list + watch, as client-go's Reflector does.

- list (paged), then watch from the list's resourceVersion with bookmarks, so a restart of the watch
  resumes where it stopped without a relist;
- a watch that ends (server timeout, connection drop) is resumed from the last seen resourceVersion;
- "410 Gone" (resourceVersion too old, compacted) triggers a full relist, and the handlers see the
  difference as adds/updates/deletes;
- label and field selectors are applied by the server.

Event handlers run on the informer's thread, in order; keep them short (enqueue a key).
"""
import logging
import random
import threading
import time

from .resource import ApiError
from .store import Store, object_key

log = logging.getLogger(__name__)


class Informer:
    def __init__(self, client, namespace=None, label_selector=None, field_selector=None, indexers=None,
                 page_size=500, watch_timeout=(240, 360), name=None):
        self.client = client
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.store = Store(indexers)
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.name = name or client.resource.plural
        self._handlers = []
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.resource_version = None
        self.relists = 0

    # -- handlers

    def add_handler(self, on_add=None, on_update=None, on_delete=None):
        self._handlers.append((on_add, on_update, on_delete))

    def _emit(self, kind, *args):
        for handler in self._handlers:
            func = handler[{"add": 0, "update": 1, "delete": 2}[kind]]
            if func is None:
                continue
            try:
                func(*args)
            except Exception:  # a handler bug must not kill the informer
                log.exception("informer %s: %s handler failed", self.name, kind)

    # -- lifecycle

    def start(self):
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def has_synced(self):
        return self._synced.is_set()

    def wait_for_sync(self, timeout=None):
        return self._synced.wait(timeout)

    def run(self):
        backoff = 0.8
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._list()
                self._watch()
                backoff = 0.8
            except _Gone:
                log.info("informer %s: resourceVersion %s is gone, relisting", self.name, self.resource_version)
                self.resource_version = None
            except Exception as exc:  # connection refused, timeouts, 5xx ...
                if self._stop.is_set():
                    break
                log.warning("informer %s: %s; retrying in %.1fs", self.name, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30)

    # -- list and watch

    def _list(self):
        items, token, version = [], None, None
        while True:
            page = self.client.list(self.namespace, self.label_selector, self.field_selector,
                                    limit=self.page_size, continue_token=token)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            version = meta.get("resourceVersion")
            token = meta.get("continue")
            if not token:
                break
        kind = (page.get("kind") or "").removesuffix("List")
        for item in items:  # list items come without apiVersion/kind; make them look like watched objects
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", page.get("apiVersion"))
        added, updated, deleted = self.store.replace(items)
        self.relists += 1
        self.resource_version = version
        for obj in deleted:
            self._emit("delete", obj)
        for obj in added:
            self._emit("add", obj)
        for old, new in updated:
            if old.get("metadata", {}).get("resourceVersion") != new.get("metadata", {}).get("resourceVersion"):
                self._emit("update", old, new)
        self._synced.set()

    def _watch(self):
        timeout = random.randint(*self.watch_timeout)
        try:
            events = self.client.watch(self.namespace, self.resource_version, self.label_selector,
                                       self.field_selector, timeout_seconds=timeout)
            for event in events:
                if self._stop.is_set():
                    return
                self._handle(event)
        except ApiError as exc:
            if exc.gone:
                raise _Gone() from exc
            raise

    def _handle(self, event):
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise RuntimeError(f"watch error: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self.resource_version = version
            return
        if kind in ("ADDED", "MODIFIED"):
            old = self.store.upsert(obj)
            if old is None:
                self._emit("add", obj)
            else:
                self._emit("update", old, obj)
        elif kind == "DELETED":
            old = self.store.delete(object_key(obj))
            self._emit("delete", old or obj)
        if version:
            self.resource_version = version


class _Gone(Exception):
    pass


def wait_for_cache_sync(informers, timeout=None):
    deadline = None if timeout is None else time.monotonic() + timeout
    for informer in informers:
        left = None if deadline is None else max(0, deadline - time.monotonic())
        if not informer.wait_for_sync(left):
            return False
    return True
