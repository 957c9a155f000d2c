"""virt-handler's status computation: domain state -> VMI status."""
import pytest

from kubevirt_runtime.api.status import get_condition
from kubevirt_runtime.handler.status import desired_status, status_patch

NOW = "2026-01-01T00:00:00Z"


def vmi(phase="Scheduled", conditions=None, **status):
    st = {"phase": phase, "nodeName": "node1", **status}
    if conditions is not None:
        st["conditions"] = conditions
    return {"metadata": {"name": "v", "namespace": "ns", "uid": "u1", "resourceVersion": "7"}, "spec": {},
            "status": st}


def domain(status="Running", reason="", final=False, outcome=None, **extra):
    return {"status": status, "reason": reason, "final": final, "outcome": outcome, "interfaces": [],
            "guestOSInfo": {}, "agentConnected": False, **extra}


def cond(status, cond_type):
    c = get_condition(status, cond_type)
    return c and (c["status"], c.get("reason"))


@pytest.mark.parametrize("phase,dom,gone,expected_phase", [
    ("Scheduled", None, False, "Scheduled"),
    ("Scheduled", domain("Missing"), False, "Scheduled"),
    ("Scheduled", domain("Running"), False, "Running"),
    ("Running", domain("Paused", "PausedByUser"), False, "Running"),
    ("Running", domain("Shutdown"), False, "Running"),
    ("Running", domain("Shutoff", "Shutdown", True, "Succeeded"), False, "Succeeded"),
    ("Running", domain("Shutoff", "Destroyed", True, "Succeeded"), False, "Succeeded"),
    ("Running", domain("Shutoff", "Failed", True, "Failed"), False, "Failed"),
    ("Running", domain("Running"), True, "Failed"),
    ("Running", domain("Shutoff", "Shutdown", True, "Succeeded"), True, "Succeeded"),
    ("Scheduled", None, True, "Scheduled"),
    ("Pending", domain("Running"), False, "Pending"),  # not ours
    ("Succeeded", domain("Running"), False, "Succeeded"),  # final stays final
])
def test_phase(phase, dom, gone, expected_phase):
    assert desired_status(vmi(phase), dom, launcher_gone=gone, now=NOW)["phase"] == expected_phase


def test_running_sets_ready_and_records_transition():
    st = desired_status(vmi("Scheduled"), domain("Running"), now=NOW)
    assert cond(st, "Ready") == ("True", "")
    assert st["phaseTransitionTimestamps"][-1] == {"phase": "Running", "phaseTransitionTimestamp": NOW}


def test_paused_condition_comes_and_goes():
    paused = desired_status(vmi("Running"), domain("Paused", "PausedByUser"), now=NOW)
    assert cond(paused, "Paused") == ("True", "PausedByUser")
    resumed = desired_status({**vmi("Running"), "status": paused}, domain("Running"), now=NOW)
    assert get_condition(resumed, "Paused") is None


def test_failed_reason_and_ready_false():
    running = desired_status(vmi("Scheduled"), domain("Running"), now=NOW)
    failed = desired_status({**vmi(), "status": running}, domain("Shutoff", "Failed", True, "Failed"), now=NOW)
    assert failed["phase"] == "Failed" and failed["reason"] == "DomainFailed"
    assert cond(failed, "Ready") == ("False", "GuestNotRunning")


def test_a_deleted_pod_is_reported_as_such():
    final = domain("Shutoff", "PodTerminated", True, "Failed")
    st = desired_status(vmi("Running"), final, now=NOW)
    assert st["phase"] == "Failed" and st["reason"] == "PodTerminated"


def test_launcher_gone_while_running():
    st = desired_status(vmi("Running"), domain("Running"), launcher_gone=True, now=NOW)
    assert st["phase"] == "Failed" and st["reason"] == "LauncherGone"


def test_controller_conditions_are_kept():
    ready = {"type": "Ready", "status": "True", "reason": "", "message": "", "lastProbeTime": None,
             "lastTransitionTime": "2025-01-01T00:00:00Z"}
    st = desired_status(vmi("Running", conditions=[ready]), domain("Running"), now=NOW)
    assert st["conditions"][0] == ready  # same value: untouched, transition time kept


def test_a_running_vmi_says_whether_it_can_live_migrate():
    st = desired_status(vmi("Running"), domain("Running"), now=NOW)
    assert cond(st, "LiveMigratable") == ("True", "")
    with_pvc = vmi("Running")
    with_pvc["spec"] = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]}
    assert cond(desired_status(with_pvc, domain("Running"), now=NOW), "LiveMigratable") == \
        ("False", "DisksNotLiveMigratable")


def test_interfaces_and_guest_info():
    ifaces = [{"name": "default", "mac": "02:00:00:00:00:01", "ipAddress": "10.244.0.5"}]
    info = {"name": "Debian GNU/Linux", "id": "debian"}
    st = desired_status(vmi("Running"), domain("Running", interfaces=ifaces, guestOSInfo=info,
                                               agentConnected=True), now=NOW)
    assert st["interfaces"] == ifaces and st["guestOSInfo"] == info
    assert cond(st, "AgentConnected") == ("True", "")


def test_status_patch():
    v = vmi("Scheduled")
    assert status_patch(v, v["status"]) is None
    new = desired_status(v, domain("Running"), now=NOW)
    patch = status_patch(v, new)
    assert patch["metadata"] == {"resourceVersion": "7"}
    assert patch["status"]["phase"] == "Running" and "nodeName" not in patch["status"]
    gone = dict(v["status"])
    del gone["nodeName"]
    assert status_patch(v, gone)["status"] == {"nodeName": None}


def test_running_clears_a_sync_failure():
    failed_sync = {"type": "Synchronized", "status": "False", "reason": "SyncFailed", "message": "x"}
    st = desired_status(vmi("Scheduled", conditions=[failed_sync]), domain("Running"), now=NOW)
    assert get_condition(st, "Synchronized") is None


@pytest.mark.parametrize("pod_outcome,phase", [("Succeeded", "Succeeded"), ("Failed", "Failed"), (None, "Failed")])
def test_launcher_gone_uses_the_pods_end(pod_outcome, phase):
    st = desired_status(vmi("Running"), domain("Running"), launcher_gone=True, gone_outcome=pod_outcome, now=NOW)
    assert st["phase"] == phase


def test_running_records_the_launcher_stages_and_its_own():
    launcher = {"ContainersStarted": "2026-01-01T00:00:01.000Z", "DomainStarted": "2026-01-01T00:00:02.500Z"}
    st = desired_status(vmi("Scheduled"), domain("Missing", timeline=launcher), now=NOW)
    assert "startupTimeline" not in st  # nothing is written before the domain runs
    st = desired_status(vmi("Scheduled"), domain("Running", timeline=launcher), now=NOW,
                        stamp="2026-01-01T00:00:02.600Z")
    assert [(e["stage"], e["time"]) for e in st["startupTimeline"]] == [
        ("ContainersStarted", "2026-01-01T00:00:01.000Z"), ("DomainStarted", "2026-01-01T00:00:02.500Z"),
        ("Running", "2026-01-01T00:00:02.600Z")]
    # the first console output comes later: one more write, and Running keeps its first time
    later = dict(launcher, FirstConsoleOutput="2026-01-01T00:00:03.000Z")
    running = vmi("Running", conditions=st["conditions"], startupTimeline=st["startupTimeline"])
    again = desired_status(running, domain("Running", timeline=later), now=NOW, stamp="2026-01-01T00:00:09.000Z")
    assert [e["stage"] for e in again["startupTimeline"]][-2:] == ["Running", "FirstConsoleOutput"]
    assert dict((e["stage"], e["time"]) for e in again["startupTimeline"])["Running"] == "2026-01-01T00:00:02.600Z"
    assert status_patch(running, again)["status"] == {
        "startupTimeline": again["startupTimeline"]}
