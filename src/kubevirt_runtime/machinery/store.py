"""A thread-safe cache of objects keyed by "namespace/name", with secondary indexes (client-go's Indexer)."""
import threading


def object_key(obj):
    """client-go's MetaNamespaceKeyFunc: "namespace/name", or "name" for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else meta["name"]


def split_key(key):
    """(namespace, name) of a key made by object_key."""
    namespace, _slash, name = key.rpartition("/")
    return namespace or None, name


def namespace_index(obj):
    return [(obj.get("metadata") or {}).get("namespace", "")]


def owner_uid_index(obj):
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or [] if ref.get("uid")]


def label_index(label):
    """An index function on the value of one label (e.g. kubevirt.io/created-by)."""
    def index(obj):
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return [value] if value is not None else []
    return index


class Store:
    """Objects by key, plus named indexes: index name -> function(obj) -> list of index values."""

    def __init__(self, indexers=None):
        self._lock = threading.RLock()
        self._items = {}
        self._indexers = dict(indexers or {})
        self._indices = {name: {} for name in self._indexers}

    def _unindex(self, key, obj):
        for name, func in self._indexers.items():
            for value in func(obj):
                keys = self._indices[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indices[name][value]

    def _index(self, key, obj):
        for name, func in self._indexers.items():
            for value in func(obj):
                self._indices[name].setdefault(value, set()).add(key)

    def add_indexers(self, indexers):
        with self._lock:
            for name, func in indexers.items():
                self._indexers[name] = func
                self._indices[name] = {}
                for key, obj in self._items.items():
                    for value in func(obj):
                        self._indices[name].setdefault(value, set()).add(key)

    def upsert(self, obj):
        """Adds or replaces; returns the previous object (or None)."""
        key = object_key(obj)
        with self._lock:
            old = self._items.get(key)
            if old is not None:
                self._unindex(key, old)
            self._items[key] = obj
            self._index(key, obj)
            return old

    def delete(self, key):
        """Removes; returns the removed object (or None)."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            return old

    def replace(self, objs):
        """Replaces everything; returns (added, updated (old, new), deleted) for the event handlers."""
        with self._lock:
            fresh = {object_key(o): o for o in objs}
            deleted = [self._items[k] for k in self._items.keys() - fresh.keys()]
            added, updated = [], []
            for key, obj in fresh.items():
                old = self._items.get(key)
                (added.append(obj) if old is None else updated.append((old, obj)))
            self._items = fresh
            self._indices = {name: {} for name in self._indexers}
            for key, obj in fresh.items():
                self._index(key, obj)
            return added, updated, deleted

    def get(self, key):
        with self._lock:
            return self._items.get(key)

    def get_by_name(self, namespace, name):
        return self.get(f"{namespace}/{name}" if namespace else name)

    def list(self):
        with self._lock:
            return list(self._items.values())

    def keys(self):
        with self._lock:
            return list(self._items.keys())

    def by_index(self, index_name, value):
        with self._lock:
            return [self._items[k] for k in self._indices[index_name].get(value, ())]

    def __len__(self):
        with self._lock:
            return len(self._items)
