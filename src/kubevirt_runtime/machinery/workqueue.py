"""A deduplicating, rate-limited work queue with client-go's semantics.

- an item added while queued is queued once; an item added while being processed is queued again only
  after done() (so one key is never processed by two workers at once);
- add_after() delays an item; add_rate_limited() delays it by the rate limiter (per-item exponential
  backoff plus the overall token bucket); forget() resets the item's backoff after a success.

Metrics, as KubeVirt's (client-go's workqueue metrics with the kubevirt_ prefix), by queue ``name``:
kubevirt_workqueue_{adds_total, depth, queue_duration_seconds, work_duration_seconds, retries_total,
unfinished_work_seconds, longest_running_processor_seconds}; the last two are computed when scraped.
"""
import heapq
import itertools
import threading
import time
import weakref

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from .ratelimit import default_controller_rate_limiter

_BUCKETS = tuple(10.0 ** e for e in range(-8, 2))  # client-go's: 10ns .. 10s, x10
DEPTH = Gauge("kubevirt_workqueue_depth", "Current depth of workqueue.", ["name"])
ADDS = Counter("kubevirt_workqueue_adds_total", "Total number of adds handled by workqueue.", ["name"])
RETRIES = Counter("kubevirt_workqueue_retries_total", "Total number of retries handled by workqueue.", ["name"])
QUEUE_TIME = Histogram("kubevirt_workqueue_queue_duration_seconds",
                       "How long in seconds an item stays in workqueue before being requested.", ["name"],
                       buckets=_BUCKETS)
WORK = Histogram("kubevirt_workqueue_work_duration_seconds",
                 "How long in seconds processing an item from workqueue takes.", ["name"], buckets=_BUCKETS)
_QUEUES = weakref.WeakSet()


class _InFlightCollector:
    """unfinished_work_seconds and longest_running_processor_seconds of every live queue, at scrape time."""

    def collect(self):
        unfinished = GaugeMetricFamily(
            "kubevirt_workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been considered in the "
            "longest running processor.", labels=["name"])
        longest = GaugeMetricFamily("kubevirt_workqueue_longest_running_processor_seconds",
                                    "How many seconds has the longest running processor for workqueue been "
                                    "running.", labels=["name"])
        for queue in list(_QUEUES):
            running = queue.in_flight_seconds()
            unfinished.add_metric([queue.name], sum(running))
            longest.add_metric([queue.name], max(running, default=0.0))
        yield unfinished
        yield longest


REGISTRY.register(_InFlightCollector())


class ShutDown(Exception):
    """get() on a queue that was shut down."""


class RateLimitingQueue:
    def __init__(self, name="queue", rate_limiter=None, clock=time.monotonic):
        self.name = name
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()
        self._clock = clock
        self._cond = threading.Condition()
        self._queue = []
        self._dirty = set()
        self._processing = set()
        self._started = {}
        self._queued_at = {}
        self._shutting_down = False
        self._waiting = []  # heap of (ready_at, seq, item)
        self._waiting_at = {}  # item -> ready_at of its earliest pending delay
        self._seq = itertools.count()
        self._delay_thread = threading.Thread(target=self._delay_loop, name=f"workqueue-{name}-delay", daemon=True)
        self._delay_thread.start()
        _QUEUES.add(self)

    # -- basic queue

    def add(self, item):
        with self._cond:
            self._add_locked(item)

    def _add_locked(self, item):
        if self._shutting_down or item in self._dirty:
            return
        ADDS.labels(self.name).inc()
        self._dirty.add(item)
        self._queued_at.setdefault(item, self._clock())
        if item in self._processing:
            return
        self._queue.append(item)
        DEPTH.labels(self.name).set(len(self._queue))
        self._cond.notify_all()

    def get(self, timeout=None):
        """The next item; blocks. Raises ShutDown once the queue is shut down and drained."""
        with self._cond:
            deadline = None if timeout is None else self._clock() + timeout
            while not self._queue and not self._shutting_down:
                left = None if deadline is None else deadline - self._clock()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if not self._queue:
                raise ShutDown()
            item = self._queue.pop(0)
            DEPTH.labels(self.name).set(len(self._queue))
            queued = self._queued_at.pop(item, None)
            if queued is not None:
                QUEUE_TIME.labels(self.name).observe(self._clock() - queued)
            self._processing.add(item)
            self._dirty.discard(item)
            self._started[item] = self._clock()
            return item

    def done(self, item):
        with self._cond:
            self._processing.discard(item)
            started = self._started.pop(item, None)
            if started is not None:
                WORK.labels(self.name).observe(self._clock() - started)
            if item in self._dirty:
                self._queue.append(item)
                DEPTH.labels(self.name).set(len(self._queue))
                self._cond.notify_all()
            elif not self._processing and not self._queue:
                self._cond.notify_all()

    def in_flight_seconds(self):
        """How long each item being processed has been processing."""
        with self._cond:
            now = self._clock()
            return [now - started for started in self._started.values()]

    def __len__(self):
        with self._cond:
            return len(self._queue)

    def shutdown(self):
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def shutting_down(self):
        with self._cond:
            return self._shutting_down

    # -- delays and rate limiting

    def add_after(self, item, delay):
        if delay <= 0:
            self.add(item)
            return
        with self._cond:
            if self._shutting_down:
                return
            ready_at = self._clock() + delay
            current = self._waiting_at.get(item)
            if current is not None and current <= ready_at:
                return
            self._waiting_at[item] = ready_at
            heapq.heappush(self._waiting, (ready_at, next(self._seq), item))
            self._cond.notify_all()

    def add_rate_limited(self, item):
        RETRIES.labels(self.name).inc()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item):
        self.rate_limiter.forget(item)

    def num_requeues(self, item):
        return self.rate_limiter.num_requeues(item)

    def _delay_loop(self):
        with self._cond:
            while not self._shutting_down:
                now = self._clock()
                while self._waiting and self._waiting[0][0] <= now:
                    ready_at, _seq, item = heapq.heappop(self._waiting)
                    if self._waiting_at.get(item) == ready_at:
                        del self._waiting_at[item]
                        self._add_locked(item)
                wait = self._waiting[0][0] - now if self._waiting else None
                self._cond.wait(wait)
