"""Restarts and races never lose or resurrect a VM (the reliability suite).

- chaos: with RUNNING_VMS VMs Running, virt-handler and both virt-controllers are killed with SIGKILL
  CHAOS_ROUNDS times a few seconds apart, and kube-apiserver once in the middle; every VMI keeps its
  uid and stays Running, each has exactly one launcher pod, and none was ever Failed (phase transitions
  and events). The same again during a burst of BURST_VMS new VMs: each gets exactly one VMI and one pod
  that the kubelet admitted (a pod it rejected while virt-handler's device plugin restarted is replaced);
- a launcher pod deleted by hand fails its VMI with a reason, and runStrategy Always brings the VM back;
- back-to-back virtctl requests (restart+stop, stop+start, start+stop) three times each: the last wins.

The figures (rounds, kills, VM counts, durations) are printed for the issue note.
"""
import os
import re
import signal
import threading
import time

import pytest

from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

NS = "reliability"
KV_NS = c.KUBEVIRT_NAMESPACE
RUNNING_VMS = 8
BURST_VMS = 4
CHAOS_ROUNDS = 5
ROUND_GAP_SECONDS = 4
APISERVER_ROUND = 2
RECOVERY_TIMEOUT = 600  # kubelet's crash-loop backoff after five kills adds up
wait_for, get = c.wait_for, c.get


def vm_names(prefix, count):
    return [f"{prefix}-{i}" for i in range(count)]


def vmis_by_name():
    return {v["metadata"]["name"]: v for v in c.kubectl_json("get", "vmi", "-n", NS)["items"]}


def launcher_pods():
    return c.kubectl_json("get", "pods", "-n", NS, "-l", "kubevirt.io=virt-launcher")["items"]


def all_running(names):
    vmis = vmis_by_name()
    return all((vmis.get(n, {}).get("status") or {}).get("phase") == "Running" for n in names) and vmis


def component_pods():
    pods = c.kubectl_json("get", "pods", "-n", KV_NS)["items"]
    return [p for p in pods if p["metadata"].get("labels", {}).get("kubevirt.io") in ("virt-handler", "virt-controller")
            and not p["metadata"].get("deletionTimestamp")]


def components_ready():
    pods = component_pods()
    ready = [p for p in pods if any(cond["type"] == "Ready" and cond["status"] == "True"
                                    for cond in (p.get("status") or {}).get("conditions") or [])]
    return len(pods) >= 3 and len(ready) == len(pods)


def kill_components():
    """SIGKILL virt-handler and both virt-controllers (the ones whose container is running now)."""
    # a kube-apiserver that restarts answers 403 until its authorizer's caches are warm: wait for /readyz
    wait_for("kube-apiserver ready", c.cluster_answers, 120, 0.5)
    killed = 0
    for pod in component_pods():
        pid = c.container_pid(pod, pod["spec"]["containers"][0]["name"])
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def kill_apiserver():
    os.kill(c.supervised_pid("kube-apiserver"), signal.SIGKILL)


def chaos(stats):
    for round_no in range(CHAOS_ROUNDS):
        stats["kills"] += kill_components()
        if round_no == APISERVER_ROUND:
            kill_apiserver()
            stats["apiserver_kills"] += 1
        time.sleep(ROUND_GAP_SECONDS)
    start = time.monotonic()
    wait_for("kube-apiserver back", c.cluster_answers, 120, 1)
    wait_for("virt-handler and virt-controllers Ready again", components_ready, RECOVERY_TIMEOUT, 3)
    stats["recovery_seconds"] = time.monotonic() - start


def never_failed(vmi):
    return all(t["phase"] != "Failed" for t in (vmi.get("status") or {}).get("phaseTransitionTimestamps") or [])


def failed_events():
    events = c.kubectl_json("get", "events", "-n", NS, "--field-selector",
                            "involvedObject.kind=VirtualMachineInstance,type=Warning")["items"]
    return [f"{e['involvedObject']['name']}: {e['reason']} {e['message']}" for e in events
            if e["reason"] in ("Failed", "PodFailed", "PodNotExists", "PodSucceeded", "LauncherGone")]


def one_pod_per_vmi(vmis):
    pods = launcher_pods()
    by_vmi = {}
    for pod in pods:
        by_vmi.setdefault(pod["metadata"]["labels"]["kubevirt.io/created-by"], []).append(pod["metadata"]["name"])
    uids = {v["metadata"]["uid"] for v in vmis.values()}
    assert set(by_vmi) == uids, f"launcher pods for {sorted(set(by_vmi) - uids)}, none for {sorted(uids - set(by_vmi))}"
    doubles = {uid: names for uid, names in by_vmi.items() if len(names) != 1}
    assert not doubles, f"VMIs with more than one launcher pod: {doubles}"


class Observer:
    """Lists VMIs and launcher pods every second (tolerating a restarting API server) and records every
    VMI uid seen per VM and every pod seen per VMI uid, so a replaced or doubled object cannot hide."""

    def __init__(self):
        self.vmi_uids, self.pods, self.phases, self.reasons = {}, {}, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(1):
            try:
                vmis, pods = vmis_by_name(), launcher_pods()
            except AssertionError:
                continue
            for name, vmi in vmis.items():
                self.vmi_uids.setdefault(name, set()).add(vmi["metadata"]["uid"])
                status = vmi.get("status") or {}
                self.phases.setdefault(vmi["metadata"]["uid"], set()).add(status.get("phase"))
                if status.get("reason"):
                    self.reasons[vmi["metadata"]["uid"]] = status["reason"]
            for pod in pods:
                uid = pod["metadata"]["labels"]["kubevirt.io/created-by"]
                self.pods.setdefault(uid, set()).add(pod["metadata"]["name"])


def rejected_pods():
    """Launcher pods the kubelet rejected at admission, which virt-controller replaced (its PodRejected events)."""
    events = c.kubectl_json("get", "events", "-n", NS, "--field-selector", "reason=PodRejected")["items"]
    return {m.group(1) for e in events if (m := re.search(r"virtual machine pod (\S+) ", e["message"]))}


def why_replaced(seen, names):
    """What the observer saw of each instance of the VMs that got more than one, and the VMs' warnings."""
    lines = [f"{name} {uid}: phases {sorted(map(str, seen.phases.get(uid, ())))}, reason {seen.reasons.get(uid)}"
             for name in names for uid in seen.vmi_uids[name]]
    events = c.kubectl_json("get", "events", "-n", NS, "--field-selector", "type=Warning")["items"]
    lines += [f"event {e['involvedObject']['kind']}/{e['involvedObject']['name']} {e['reason']}: {e['message']}"
              for e in events if e["involvedObject"]["name"] in names]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def stats():
    figures = {"kills": 0, "apiserver_kills": 0}
    yield figures
    print("\nreliability figures: " + ", ".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}"
                                                for k, v in figures.items()))


@pytest.fixture(scope="module")
def fleet(cluster, stats):
    c.ensure_kubevirt()
    c.kubectl("create", "namespace", NS, check=False)
    names = vm_names("rel", RUNNING_VMS)
    start = time.monotonic()
    c.apply(*(c.demo_vm(name, NS, memory="96Mi") for name in names))
    wait_for(f"{RUNNING_VMS} VMIs Running", lambda: all_running(names), c.BOOT_TIMEOUT, 3)
    stats["fleet_running_seconds"] = time.monotonic() - start
    yield names
    c.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=600s", timeout=620, check=False)


def test_restarts_lose_nothing(fleet, stats):
    before = all_running(fleet)
    uids = {name: v["metadata"]["uid"] for name, v in before.items()}
    start = time.monotonic()
    chaos(stats)
    after = wait_for("every VMI Running after the chaos", lambda: all_running(fleet), 300, 3)
    stats["chaos_seconds"] = time.monotonic() - start
    assert {name: v["metadata"]["uid"] for name, v in after.items()} == uids
    assert [n for n, v in after.items() if not never_failed(v)] == []
    assert failed_events() == []
    one_pod_per_vmi(after)
    statuses = {vm["metadata"]["name"]: vm["status"].get("printableStatus")
                for vm in c.kubectl_json("get", "vm", "-n", NS)["items"]}
    assert set(statuses.values()) == {"Running"}, statuses


def test_a_burst_of_new_vms_during_restarts_gets_one_vmi_and_one_pod_each(fleet, stats):
    burst = vm_names("burst", BURST_VMS)
    everyone = fleet + burst
    start = time.monotonic()
    with Observer() as seen:
        c.apply(*(c.demo_vm(name, NS, memory="96Mi") for name in burst))
        chaos(stats)
        vmis = wait_for("every VMI Running after the burst", lambda: all_running(everyone), c.BOOT_TIMEOUT, 3)
    stats["burst_seconds"] = time.monotonic() - start
    assert sorted(vmis) == sorted(everyone)
    replaced = {name: len(uids) for name, uids in seen.vmi_uids.items() if len(uids) != 1}
    assert replaced == {}, why_replaced(seen, replaced)
    # a pod the kubelet rejected before it started (its device plugin restarts with virt-handler) is replaced
    rejected = rejected_pods()
    stats["pods_rejected_and_replaced"] = len(rejected)
    assert {uid: names for uid, names in seen.pods.items() if len(names - rejected) != 1} == {}
    assert [uid for uid, phases in seen.phases.items() if "Failed" in phases] == []
    assert [n for n, v in vmis.items() if not never_failed(v)] == []
    assert failed_events() == []
    one_pod_per_vmi(vmis)


def test_deleting_a_launcher_pod_fails_the_vmi_and_always_restarts_it(fleet):
    name = fleet[0]
    old = get("vmi", name, NS)
    uid = old["metadata"]["uid"]
    pod = next(p for p in launcher_pods() if p["metadata"]["labels"]["kubevirt.io/created-by"] == uid)

    def failed_with_reason():
        events = c.kubectl_json("get", "events", "-n", NS, "--field-selector",
                                f"involvedObject.uid={uid},type=Warning,reason=Failed")["items"]
        return [e["message"] for e in events if "PodTerminated" in e["message"]]

    c.kubectl("delete", "pod", "-n", NS, pod["metadata"]["name"], "--wait=false")
    wait_for("the VMI to fail with reason PodTerminated", failed_with_reason, 300, 2)

    def restarted():
        vmi = get("vmi", name, NS)
        return vmi if vmi and vmi["metadata"]["uid"] != uid and (vmi.get("status") or {}).get("phase") == "Running" \
            else None

    new = wait_for("a new VMI Running", restarted, c.BOOT_TIMEOUT, 3)
    assert never_failed(new)


def virtctl_ok(*args):
    result = c.virtctl(*args, "-n", NS)
    assert result.returncode == 0, f"virtctl {' '.join(args)}: {result.stderr}"


def settled(name, want_running):
    """The VM has come to rest: Running with a VMI, or Stopped without one."""
    vm = get("vm", name, NS)
    status = (vm or {}).get("status") or {}
    if status.get("stateChangeRequests"):
        return False
    if want_running:
        return status.get("printableStatus") == "Running" and (get("vmi", name, NS) or {}).get(
            "status", {}).get("phase") == "Running"
    return status.get("printableStatus") == "Stopped" and get("vmi", name, NS) is None


@pytest.mark.parametrize("first,second,want_running", [
    ("restart", "stop", False),
    ("stop", "start", True),
    ("start", "stop", False),
])
def test_the_last_request_wins(fleet, first, second, want_running):
    name = fleet[1]
    for _ in range(3):
        vm = get("vm", name, NS)
        running_now = vm["spec"].get("runStrategy") != "Halted"
        if (first == "start") == running_now:  # put the VM where the first request makes sense
            virtctl_ok("stop" if running_now else "start", name)
            want = not running_now
            wait_for(f"{name} settled", lambda want=want: settled(name, want), c.BOOT_TIMEOUT, 2)
        virtctl_ok(first, name)
        virtctl_ok(second, name)
        wait_for(f"{name} {'Running' if want_running else 'Stopped'} after {first}+{second}",
                 lambda: settled(name, want_running), c.BOOT_TIMEOUT, 2)
        time.sleep(5)  # nothing may flip it afterwards
        assert settled(name, want_running), get("vm", name, NS).get("status")
    if not want_running:
        virtctl_ok("start", name)
        wait_for(f"{name} running again", lambda: settled(name, True), c.BOOT_TIMEOUT, 2)
