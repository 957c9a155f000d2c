"""Rate limiters for the work queue, with client-go's semantics and defaults.

DefaultControllerRateLimiter = max(per-item exponential backoff 5 ms * 2^failures capped at 1000 s,
overall token bucket of 10 qps with a burst of 100).
"""
import threading
import time


class ItemExponentialFailureRateLimiter:
    def __init__(self, base_delay=0.005, max_delay=1000.0):
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures = {}
        self._lock = threading.Lock()

    def when(self, item):
        with self._lock:
            exp = self._failures.get(item, 0)
            self._failures[item] = exp + 1
        if exp > 64:  # 2**exp would overflow anything meaningful
            return self.max_delay
        return min(self.base_delay * (2 ** exp), self.max_delay)

    def num_requeues(self, item):
        with self._lock:
            return self._failures.get(item, 0)

    def forget(self, item):
        with self._lock:
            self._failures.pop(item, None)


class BucketRateLimiter:
    """A token bucket like golang.org/x/time/rate: a reservation may drive tokens negative; the delay is
    how long until the bucket is back at zero."""

    def __init__(self, qps=10.0, burst=100, clock=time.monotonic):
        self.qps = float(qps)
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def when(self, item):
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def num_requeues(self, item):
        return 0

    def forget(self, item):
        pass


class MaxOfRateLimiter:
    def __init__(self, *limiters):
        self.limiters = limiters

    def when(self, item):
        return max(limiter.when(item) for limiter in self.limiters)

    def num_requeues(self, item):
        return max(limiter.num_requeues(item) for limiter in self.limiters)

    def forget(self, item):
        for limiter in self.limiters:
            limiter.forget(item)


def default_controller_rate_limiter():
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10, 100))
