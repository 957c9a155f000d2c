"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

A candidate acquires the Lease when it is free or its holder has not renewed it for leaseDuration
(measured on the candidate's own clock from when it last saw the record change, so clock skew between
hosts does not matter). The leader renews every retry_period; if it cannot renew within renew_deadline
it stops leading (and virt-controller exits, so a fresh process starts from a clean cache). Writes use
the Lease's resourceVersion, so two candidates can never both win the same term.
"""
import datetime
import logging
import threading
import time

from prometheus_client import Gauge

from .resource import LEASES, ApiError, ResourceClient

log = logging.getLogger(__name__)

IS_LEADER = Gauge("leader_election_master_status", "1 when this process holds the lease.", ["name"])


def _now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, api_client, namespace, name, identity, lease_duration=15.0, renew_deadline=10.0,
                 retry_period=2.0, on_started_leading=None, on_stopped_leading=None, on_new_leader=None,
                 release_on_cancel=True, clock=time.monotonic):
        assert lease_duration > renew_deadline > retry_period > 0
        self.client = ResourceClient(api_client, LEASES)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.release_on_cancel = release_on_cancel
        self._clock = clock
        self._observed = None  # (holder, renewTime) of the last record we saw
        self._observed_at = 0.0
        self._stop = threading.Event()
        self._leading = threading.Event()
        self.leader = None

    def is_leader(self):
        return self._leading.is_set()

    def stop(self):
        self._stop.set()

    # -- one attempt

    def _spec(self, lease_transitions, acquire_time):
        now = _now_micro()
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(round(self.lease_duration)),
                "acquireTime": acquire_time or now, "renewTime": now, "leaseTransitions": lease_transitions}

    def try_acquire_or_renew(self):
        """One round; True when we hold the lease afterwards."""
        try:
            lease = self.client.get(self.name, self.namespace)
        except ApiError as exc:
            if not exc.not_found:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(0, None)}
            try:
                self.client.create(body, self.namespace)
            except ApiError as create_exc:
                if create_exc.conflict:
                    return False
                raise
            self._observe(self.identity, body["spec"]["renewTime"])
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        self._observe(holder, spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds") or self.lease_duration
        if holder and holder != self.identity and self._clock() - self._observed_at < duration:
            return False
        if holder == self.identity:
            new_spec = self._spec(spec.get("leaseTransitions", 0), spec.get("acquireTime"))
        else:
            new_spec = self._spec(spec.get("leaseTransitions", 0) + (1 if holder else 0), None)
        lease["spec"] = new_spec
        try:
            self.client.update(lease, self.namespace)
        except ApiError as exc:
            if exc.conflict:
                return False
            raise
        self._observe(self.identity, new_spec["renewTime"])
        return True

    def _observe(self, holder, renew_time):
        if (holder, renew_time) != self._observed:
            self._observed = (holder, renew_time)
            self._observed_at = self._clock()
        if holder != self.leader:
            self.leader = holder
            if holder and self.on_new_leader:
                self.on_new_leader(holder)

    def _attempt(self):
        try:
            return self.try_acquire_or_renew()
        except Exception as exc:  # API server unreachable and the like
            log.warning("leader election %s/%s: %s", self.namespace, self.name, exc)
            return False

    # -- the loop

    def run(self):
        """Blocks: acquires, leads (calls on_started_leading in a thread), renews; returns when leadership
        is lost or stop() is called."""
        while not self._stop.is_set():
            if self._attempt():
                break
            self._stop.wait(self.retry_period)
        if self._stop.is_set():
            return
        log.info("leader election %s/%s: %s became leader", self.namespace, self.name, self.identity)
        self._leading.set()
        IS_LEADER.labels(self.name).set(1)
        if self.on_started_leading:
            threading.Thread(target=self.on_started_leading, name="leading", daemon=True).start()
        last_renew = self._clock()
        while not self._stop.is_set():
            self._stop.wait(self.retry_period)
            if self._stop.is_set():
                break
            if self._attempt():
                last_renew = self._clock()
            elif self._clock() - last_renew > self.renew_deadline:
                log.error("leader election %s/%s: failed to renew within %.0fs, stepping down", self.namespace,
                          self.name, self.renew_deadline)
                break
        self._leading.clear()
        IS_LEADER.labels(self.name).set(0)
        if self._stop.is_set() and self.release_on_cancel:
            self._release()
        if self.on_stopped_leading:
            self.on_stopped_leading()

    def _release(self):
        try:
            lease = self.client.get(self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"]["holderIdentity"] = None
            lease["spec"]["leaseDurationSeconds"] = 1
            lease["spec"]["renewTime"] = _now_micro()
            self.client.update(lease, self.namespace)
        except Exception as exc:
            log.warning("leader election: could not release the lease: %s", exc)
