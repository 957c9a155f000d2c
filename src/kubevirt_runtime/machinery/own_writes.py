"""Which cached object versions a controller has itself superseded by a write.

After a write the informer's cache still holds the old object until the watch delivers the new one. A sync in
between (another event for the same key) sees the old version, decides the same write again and sends it: a
second write, or a 409 Conflict and a rate-limited retry. A controller records the resourceVersion each of its
writes was based on; while the cache still shows such a version, the sync waits (the watch event of its own
write requeues the key).
"""
import threading


class OwnWrites:
    def __init__(self):
        self._lock = threading.Lock()
        self._superseded: dict[str, set] = {}

    def wrote(self, key: str, based_on: str | None) -> None:
        """A write to `key` that was based on resourceVersion `based_on` succeeded."""
        if based_on:
            with self._lock:
                self._superseded.setdefault(key, set()).add(based_on)

    def superseded(self, key: str, version: str | None) -> bool:
        """Whether the cached `version` of `key` is older than one of this controller's own writes; a newer
        version clears what was recorded for the key."""
        with self._lock:
            versions = self._superseded.get(key)
            if not versions:
                return False
            if version in versions:
                return True
            del self._superseded[key]
            return False

    def forget(self, key: str) -> None:
        with self._lock:
            self._superseded.pop(key, None)
