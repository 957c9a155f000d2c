import threading
import time

import pytest

from kubevirt_runtime.machinery.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)
from kubevirt_runtime.machinery.workqueue import RateLimitingQueue, ShutDown


def test_item_exponential_backoff_doubles_from_5ms_to_1000s():
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0
    assert limiter.num_requeues("a") == 20
    limiter.forget("a")
    assert limiter.when("a") == 0.005
    assert limiter.when("b") == 0.005


def test_bucket_allows_burst_then_limits_to_qps():
    now = [0.0]
    bucket = BucketRateLimiter(qps=10, burst=100, clock=lambda: now[0])
    assert all(bucket.when(i) == 0 for i in range(100))
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    now[0] = 10.0
    assert bucket.when("z") == 0


def test_default_limiter_is_max_of_both():
    limiter = default_controller_rate_limiter()
    assert isinstance(limiter, MaxOfRateLimiter)
    assert limiter.when("a") == 0.005


def test_queue_deduplicates():
    q = RateLimitingQueue("t1")
    q.add("a"), q.add("a"), q.add("b")
    assert len(q) == 2
    assert q.get() == "a"
    assert q.get() == "b"


def test_item_added_while_processing_is_requeued_after_done():
    q = RateLimitingQueue("t2")
    q.add("a")
    item = q.get()
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    q.done(item)
    assert q.get(timeout=1) == "a"


def test_add_after_and_rate_limited():
    q = RateLimitingQueue("t3")
    start = time.monotonic()
    q.add_after("late", 0.2)
    q.add_rate_limited("soon")
    assert q.get(timeout=1) == "soon"
    assert q.get(timeout=1) == "late"
    assert time.monotonic() - start >= 0.2
    assert q.num_requeues("soon") == 1
    q.forget("soon")
    assert q.num_requeues("soon") == 0


def test_add_after_keeps_the_earliest_time():
    q = RateLimitingQueue("t4")
    q.add_after("a", 5)
    q.add_after("a", 0.05)
    assert q.get(timeout=1) == "a"


def test_shutdown_wakes_getters():
    q = RateLimitingQueue("t5")
    errors = []

    def worker():
        try:
            q.get()
        except ShutDown:
            errors.append("shutdown")

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.05)
    q.shutdown()
    thread.join(1)
    assert errors == ["shutdown"]


def test_queue_metrics_have_kubevirts_names():
    from prometheus_client import REGISTRY, generate_latest

    from kubevirt_runtime.machinery.workqueue import RateLimitingQueue
    queue = RateLimitingQueue("metrics-test")
    queue.add("a")
    item = queue.get(timeout=1)
    text = generate_latest(REGISTRY).decode()
    assert 'kubevirt_workqueue_longest_running_processor_seconds{name="metrics-test"}' in text  # "a" is running
    queue.done(item)
    text = generate_latest(REGISTRY).decode()
    for name in ("adds_total", "depth", "queue_duration_seconds_count", "work_duration_seconds_count",
                 "unfinished_work_seconds", "longest_running_processor_seconds"):
        assert f'kubevirt_workqueue_{name}{{name="metrics-test"}}' in text, name
    queue.shutdown()
