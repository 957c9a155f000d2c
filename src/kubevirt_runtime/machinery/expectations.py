"""Controller expectations (client-go's ControllerExpectations, plus UID tracking for deletions).

Before a controller creates or deletes children for a key it records how many events it expects; until
the informer has delivered them (or the TTL expires, in case an event was lost), `satisfied(key)` is
False and the controller must not act on its possibly stale cache. This is what stops a second create
when the cache has not seen the first one yet.
"""
import threading
import time

EXPECTATIONS_TTL = 300.0  # seconds, as client-go


class ControllerExpectations:
    def __init__(self, ttl=EXPECTATIONS_TTL, clock=time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._records = {}  # key -> [adds, deletes, timestamp, set of uids expected to be deleted]

    def expect_creations(self, key, count=1):
        with self._lock:
            record = self._records.setdefault(key, [0, 0, 0.0, set()])
            record[0] += count
            record[2] = self._clock()

    def expect_deletions(self, key, uids):
        uids = set(uids)
        with self._lock:
            record = self._records.setdefault(key, [0, 0, 0.0, set()])
            new = uids - record[3]
            record[1] += len(new)
            record[3] |= new
            record[2] = self._clock()

    def creation_observed(self, key):
        with self._lock:
            record = self._records.get(key)
            if record and record[0] > 0:
                record[0] -= 1

    def deletion_observed(self, key, uid=None):
        with self._lock:
            record = self._records.get(key)
            if not record:
                return
            if uid is not None:
                if uid not in record[3]:
                    return
                record[3].discard(uid)
            if record[1] > 0:
                record[1] -= 1

    def lower(self, key, adds=0, deletes=0):
        """Undo expectations for requests the server rejected."""
        with self._lock:
            record = self._records.get(key)
            if record:
                record[0] = max(0, record[0] - adds)
                record[1] = max(0, record[1] - deletes)

    def satisfied(self, key):
        """True when nothing is pending for key (or the pending expectations expired)."""
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return True
            if record[0] <= 0 and record[1] <= 0:
                return True
            return self._clock() - record[2] > self._ttl

    def pending(self, key):
        """(adds, deletes) still expected for key."""
        with self._lock:
            record = self._records.get(key)
            return (record[0], record[1]) if record else (0, 0)

    def delete(self, key):
        with self._lock:
            self._records.pop(key, None)
