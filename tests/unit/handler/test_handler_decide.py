"""virt-handler's decision table: what it does for a VMI, given what it knows of the launcher.

The rows that matter most are the ones that must NOT fail a healthy VM: an unsynced or lagging pod
cache and a launcher that is briefly unreachable only ever retry.
"""
import pytest

from kubevirt_runtime.handler.decide import (
    MAX_MISSES,
    CountMiss,
    Kill,
    LauncherView,
    Lookup,
    MarkGone,
    Retry,
    Shutdown,
    Sync,
    Watch,
    Where,
    WriteStatus,
    decide,
)

NODE = "node01"


def vmi(phase, node=NODE, deleting=False, grace=None):
    meta = {"name": "v", "namespace": "ns", "uid": "u1", "labels": {"kubevirt.io/nodeName": node}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec = {} if grace is None else {"terminationGracePeriodSeconds": grace}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "nodeName": node}}


RUNNING_DOMAIN = {"status": "Running"}
MISSING_DOMAIN = {"status": "Missing"}
FINAL_DOMAIN = {"status": "Shutoff", "final": True, "outcome": "Succeeded"}
WATCHING = LauncherView(watching=True, domain=RUNNING_DOMAIN)
READY = Lookup(Where.READY, "/sock")


@pytest.mark.parametrize("phase,view,lookup,expected", [
    # never conclude from an empty or lagging cache
    ("Running", LauncherView(), Lookup(Where.UNSYNCED), [Retry(0.5)]),
    ("Running", LauncherView(), None, [Retry(0.5)]),
    ("Scheduled", LauncherView(), Lookup(Where.ABSENT), [Retry(0.5)]),
    ("Running", LauncherView(), Lookup(Where.STARTING), [Retry(0.5)]),
    ("Scheduled", LauncherView(), Lookup(Where.NO_SOCKET), [Retry(0.5)]),
    # find the launcher
    ("Scheduled", LauncherView(), READY, [Watch("/sock")]),
    ("Running", LauncherView(), READY, [Watch("/sock")]),
    ("Running", LauncherView(misses=MAX_MISSES - 1), READY, [Watch("/sock")]),
    # positive evidence that the launcher is gone
    ("Running", LauncherView(), Lookup(Where.ENDED, outcome="Failed"), [MarkGone("Failed"), WriteStatus()]),
    ("Scheduled", LauncherView(), Lookup(Where.ENDED, outcome="Succeeded"), [MarkGone("Succeeded"), WriteStatus()]),
    ("Running", LauncherView(), Lookup(Where.ABSENT), [MarkGone(None), WriteStatus()]),
    ("Running", LauncherView(), Lookup(Where.NO_SOCKET), [CountMiss(), Retry(1.0)]),
    ("Running", LauncherView(misses=MAX_MISSES), Lookup(Where.NO_SOCKET), [MarkGone(None), WriteStatus()]),
    ("Running", LauncherView(misses=MAX_MISSES), READY, [MarkGone(None), WriteStatus()]),
    # once gone or final, only status is written
    ("Running", LauncherView(gone=True), READY, [WriteStatus()]),
    ("Running", LauncherView(watching=True, domain=FINAL_DOMAIN), None, [WriteStatus()]),
    ("Running", LauncherView(domain=FINAL_DOMAIN), None, [WriteStatus()]),
    # watching
    ("Scheduled", LauncherView(watching=True), None, []),
    ("Scheduled", LauncherView(watching=True, domain=MISSING_DOMAIN), None, [Sync(), WriteStatus()]),
    ("Running", LauncherView(watching=True, domain=MISSING_DOMAIN), None, [WriteStatus()]),
    ("Running", WATCHING, None, [WriteStatus()]),
    # final VMIs: a live guest is killed once, nothing else
    ("Failed", WATCHING, None, [Kill()]),
    ("Failed", LauncherView(watching=True, domain=RUNNING_DOMAIN, stopping=True), None, []),
    ("Succeeded", LauncherView(watching=True, domain=FINAL_DOMAIN), None, []),
    ("Failed", LauncherView(), READY, []),
    # phases before Scheduled belong to virt-controller
    ("Pending", LauncherView(), READY, []),
    ("Scheduling", WATCHING, None, []),
])
def test_decide(phase, view, lookup, expected):
    assert decide(vmi(phase), NODE, view, lookup) == expected


def test_deleting_vmi_is_shut_down_once_with_its_grace_period():
    deleting = vmi("Running", deleting=True, grace=7)
    assert decide(deleting, NODE, WATCHING, None) == [Shutdown(7), WriteStatus()]
    stopping = LauncherView(watching=True, domain=RUNNING_DOMAIN, stopping=True)
    assert decide(deleting, NODE, stopping, None) == [WriteStatus()]
    deleting["metadata"]["deletionGracePeriodSeconds"] = 0
    assert decide(deleting, NODE, WATCHING, None) == [Shutdown(0), WriteStatus()]


def test_a_deleting_scheduled_vmi_is_not_synced():
    assert decide(vmi("Scheduled", deleting=True), NODE,
                  LauncherView(watching=True, domain=MISSING_DOMAIN, stopping=True), None) == [WriteStatus()]


def test_vmis_of_other_nodes_are_left_alone():
    assert decide(vmi("Running", node="node02"), NODE, LauncherView(), READY) == []
