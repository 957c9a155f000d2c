"""Worker loop shared by controllers: take a key from the queue, sync it, requeue with backoff on error."""
import logging
import threading

from .resource import ApiError
from .workqueue import ShutDown

log = logging.getLogger(__name__)


class Reconciler:
    """Subclasses set self.queue and implement sync(key); errors requeue the key rate-limited."""

    name = "reconciler"
    queue = None

    def sync(self, key):  # pragma: no cover - abstract
        raise NotImplementedError

    def process_next(self, timeout=None):
        """One item; False when the queue is shut down."""
        try:
            key = self.queue.get(timeout)
        except ShutDown:
            return False
        if key is None:
            return True
        try:
            self.sync(key)
            self.queue.forget(key)
        except ApiError as exc:
            level = logging.INFO if exc.conflict or exc.not_found else logging.WARNING
            log.log(level, "%s: sync %s: %s; requeued", self.name, key, exc)
            self.queue.add_rate_limited(key)
        except Exception:
            log.exception("%s: sync %s failed; requeued", self.name, key)
            self.queue.add_rate_limited(key)
        finally:
            self.queue.done(key)
        return True

    def start_workers(self, count):
        threads = []
        for i in range(count):
            thread = threading.Thread(target=self._worker, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def _worker(self):
        while self.process_next():
            pass
