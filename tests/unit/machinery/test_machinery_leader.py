"""Leader election against an in-memory Lease API with optimistic concurrency."""
import copy
import threading

from kubevirt_runtime.machinery.leaderelection import LeaderElector
from kubevirt_runtime.machinery.resource import ApiError


class LeaseAPI:
    def __init__(self):
        self.lease = None
        self.version = 0
        self.lock = threading.Lock()

    def get(self, name, namespace):
        with self.lock:
            if self.lease is None:
                raise ApiError(404, {"reason": "NotFound"})
            return copy.deepcopy(self.lease)

    def create(self, body, namespace):
        with self.lock:
            if self.lease is not None:
                raise ApiError(409, {"reason": "AlreadyExists"})
            self.version += 1
            self.lease = copy.deepcopy(body)
            self.lease["metadata"]["resourceVersion"] = str(self.version)
            return copy.deepcopy(self.lease)

    def update(self, body, namespace):
        with self.lock:
            if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
                raise ApiError(409, {"reason": "Conflict"})
            self.version += 1
            self.lease = copy.deepcopy(body)
            self.lease["metadata"]["resourceVersion"] = str(self.version)
            return copy.deepcopy(self.lease)


def elector(api, identity, clock):
    e = LeaderElector(None, "kubevirt", "virt-controller", identity, lease_duration=15, renew_deadline=10,
                      retry_period=2, clock=clock)
    e.client = api
    return e


def test_one_leader_and_takeover_after_lease_expires():
    api, now = LeaseAPI(), [0.0]
    a, b = elector(api, "a", lambda: now[0]), elector(api, "b", lambda: now[0])
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    now[0] = 5
    assert a.try_acquire_or_renew()  # renew
    assert not b.try_acquire_or_renew()
    now[0] = 19  # b saw the renewal at t=5; 14s later it is still valid
    assert not b.try_acquire_or_renew()
    now[0] = 21  # a stopped renewing at t=5: expired for b
    assert b.try_acquire_or_renew()
    assert api.lease["spec"]["holderIdentity"] == "b"
    assert api.lease["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew()  # a sees b's fresh record


def test_release_frees_the_lease():
    api, now = LeaseAPI(), [0.0]
    a, b = elector(api, "a", lambda: now[0]), elector(api, "b", lambda: now[0])
    assert a.try_acquire_or_renew()
    a._release()
    assert b.try_acquire_or_renew()


def test_conflicting_write_loses():
    api, now = LeaseAPI(), [100.0]
    a = elector(api, "a", lambda: now[0])
    assert a.try_acquire_or_renew()
    stale = api.get("virt-controller", "kubevirt")
    assert a.try_acquire_or_renew()
    stale["spec"]["holderIdentity"] = "b"
    try:
        api.update(stale, "kubevirt")
        raise AssertionError("a stale write must conflict")
    except ApiError as exc:
        assert exc.conflict
