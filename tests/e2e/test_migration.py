"""Live migration on the local cluster's two nodes, with one VM (the demo disk, booted once): it moves while a
counter runs in the guest (same boot, the counter goes on), a migration to a node that cannot take it fails and
the guest stays, a cancelled one goes away, and kubectl drain moves it back. Prints the figures."""
import json
import re
import subprocess
import time

import pytest

from tests.conftest import REPO
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

VM, NS = "vm-migrate", "kvo-migration"
VIRTCTL = str(REPO / "hack" / "virtctl.sh")
PHASES = ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]
wait_for, get = c.wait_for, c.get
FIGURES = {}


def virtctl(*args, timeout=120):
    return subprocess.run([VIRTCTL, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def console_line(command: str, timeout=120) -> str:
    return c.console_line(VM, NS, command, timeout)


def vmi():
    return get("vmi", VM, NS)


def launcher_pods():
    return c.kubectl_json("get", "pods", "-n", NS, "-l", f"kubevirt.io=virt-launcher,vm.kubevirt.io/name={VM}")["items"]


def migrations():
    return c.kubectl_json("get", "virtualmachineinstancemigrations", "-n", NS)["items"]


def finished_phase(migration):
    return (migration.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def finished(name):
    found = get("vmim", name, NS)
    return found if found and finished_phase(found) else None


def counter() -> int:
    return int(console_line("cat /tmp/kvo-counter"))


@pytest.fixture(scope="module")
def vm(cluster):
    if len(c.nodes()) < 2:
        pytest.skip("live migration needs two nodes (make cluster-up NODES=2; the e2e session makes two)")
    c.kubectl("create", "namespace", NS, check=False)
    spec = c.demo_vm(VM, NS)
    spec["spec"]["template"]["spec"]["evictionStrategy"] = "LiveMigrate"
    c.apply(spec)
    wait_for("vm-migrate Running", lambda: (vmi() or {}).get("status", {}).get("phase") == "Running",
             c.BOOT_TIMEOUT, 5)
    console = virtctl("console", VM, "-n", NS, "--until", c.DEMO_MARKER, "--timeout", str(c.BOOT_TIMEOUT),
                      timeout=c.BOOT_TIMEOUT + 30)
    assert c.DEMO_MARKER in console.stdout, console.stdout[-2000:]
    # a counter in the guest, once a second, that outlives this console session
    console_line("(i=0; while true; do i=$((i+1)); echo $i > /tmp/kvo-counter; sleep 1; done) "
                 ">/dev/null 2>&1 & echo started")
    wait_for("the guest's counter", lambda: counter() > 1, 60, 2)
    yield
    c.kubectl("delete", "namespace", NS, "--wait=false", check=False)
    for name, value in FIGURES.items():
        print(f"\n{name}: {value}")


def test_vm_migrates_to_the_other_node_and_keeps_running(vm):
    before = vmi()
    source = before["status"]["nodeName"]
    target = next(n["metadata"]["name"] for n in c.nodes() if n["metadata"]["name"] != source)
    source_pod = next(p["metadata"]["name"] for p in launcher_pods() if p["spec"]["nodeName"] == source)
    boot_id = console_line("cat /proc/sys/kernel/random/boot_id")
    count = counter()
    assert next(x for x in before["status"]["conditions"] if x["type"] == "LiveMigratable")["status"] == "True"

    started = time.monotonic()
    result = virtctl("migrate", VM, "-n", NS)
    assert result.returncode == 0, result.stderr
    assert f"VM {VM} was scheduled to migrate" in result.stdout
    name = wait_for("the migration object", lambda: next(iter(m["metadata"]["name"] for m in migrations()), None), 30)
    done = wait_for("the migration to finish", lambda: finished(name), 300, 1)
    FIGURES["migration (virtctl migrate -> Succeeded)"] = f"{time.monotonic() - started:.1f}s"
    assert done["status"]["phase"] == "Succeeded", done["status"]
    seen = [t["phase"] for t in done["status"]["phaseTransitionTimestamps"]]
    assert seen == PHASES, seen  # every one of upstream's phases, in order
    assert done["metadata"]["labels"]["kubevirt.io/vmi-name"] == VM

    after = vmi()
    state = after["status"]["migrationState"]
    assert after["status"]["nodeName"] == target
    assert after["metadata"]["labels"]["kubevirt.io/nodeName"] == target
    assert "kubevirt.io/migrationTargetNodeName" not in after["metadata"]["labels"]
    assert (state["sourceNode"], state["targetNode"], state["migrationUid"]) == \
        (source, target, done["metadata"]["uid"])
    assert state["completed"] and not state.get("failed")
    assert state["startTimestamp"] <= state["endTimestamp"] and state["targetNodeDomainDetected"]
    assert state["sourcePod"] == source_pod and state["targetPod"] != source_pod
    wait_for("the source pod to go", lambda: source_pod not in [p["metadata"]["name"] for p in launcher_pods()], 120)
    # the same guest, still counting
    assert console_line("cat /proc/sys/kernel/random/boot_id") == boot_id
    later = counter()
    assert later > count
    assert wait_for("the counter to go on", lambda: counter() > later, 30, 2)
    note = [e["message"] for e in c.kubectl_json("get", "events", "-n", NS, "--field-selector",
                                                 f"involvedObject.name={VM},reason=Migrated")["items"]]
    downtime = [re.search(r"paused for (\d+) ms", m) for m in note]
    downtime = [int(m.group(1)) for m in downtime if m]
    assert downtime, note
    FIGURES["guest downtime (QEMU's measure)"] = f"{downtime[-1]} ms"
    FIGURES["migration start -> end (migrationState)"] = f"{state['startTimestamp']} -> {state['endTimestamp']}"


def test_a_migration_to_a_node_that_cannot_take_the_vm_fails_and_the_vm_stays(vm):
    before = vmi()
    node, boot_id = before["status"]["nodeName"], console_line("cat /proc/sys/kernel/random/boot_id")
    impossible = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                  "metadata": {"name": "to-nowhere", "namespace": NS,
                               "annotations": {"kubevirt.io/migrationUnschedulablePodTimeoutSeconds": "10"}},
                  "spec": {"vmiName": VM, "addedNodeSelector": {"kubevirt-ops.io/no-such-node": "true"}}}
    c.apply(impossible)
    done = wait_for("the impossible migration to fail", lambda: finished("to-nowhere"), 120, 2)
    assert done["status"]["phase"] == "Failed"
    events = c.kubectl_json("get", "events", "-n", NS, "--field-selector", "involvedObject.name=to-nowhere")["items"]
    assert any("unschedulable" in e["message"] for e in events), [e["message"] for e in events]
    wait_for("the target pod to go", lambda: not [p for p in launcher_pods() if p["metadata"].get("labels", {})
                                                   .get("kubevirt.io/migrationJobUID") == done["metadata"]["uid"]],
             60)
    after = vmi()
    assert after["status"]["phase"] == "Running" and after["status"]["nodeName"] == node
    assert console_line("cat /proc/sys/kernel/random/boot_id") == boot_id

    # a cancelled migration, asked for as upstream's virtctl asks (a PUT of MigrateOptions on the VM's migrate
    # subresource): virtctl migrate-cancel deletes it, and its target pod goes
    options = json.dumps({"kind": "MigrateOptions", "apiVersion": "subresources.kubevirt.io/v1",
                          "addedNodeSelector": {"kubevirt-ops.io/no-such-node": "true"}})
    c.kubectl("replace", "--raw", f"/apis/subresources.kubevirt.io/v1/namespaces/{NS}/virtualmachines/{VM}/migrate",
              "-f", "-", input=options)
    pending = wait_for("the asked-for migration",
                       lambda: [m for m in migrations() if m["metadata"]["name"].startswith("kubevirt-migrate-vm-")
                                and not finished_phase(m)], 30)
    assert pending[0]["spec"]["addedNodeSelector"] == {"kubevirt-ops.io/no-such-node": "true"}
    wait_for("the target pod of the asked-for migration", lambda: len(launcher_pods()) == 2, 60)
    result = virtctl("migrate-cancel", VM, "-n", NS)
    assert result.returncode == 0, result.stderr
    wait_for("the cancelled migration to go", lambda: get("vmim", pending[0]["metadata"]["name"], NS) is None, 60)
    wait_for("its target pod to go", lambda: len(launcher_pods()) == 1, 60)
    assert virtctl("migrate-cancel", VM, "-n", NS).stderr.strip().endswith(f"Found no migration to cancel for {VM}")
    assert vmi()["status"]["nodeName"] == node


def test_drain_migrates_the_vm_away(vm):
    node = vmi()["status"]["nodeName"]
    boot_id = console_line("cat /proc/sys/kernel/random/boot_id")
    started = time.monotonic()
    try:
        # only the launcher pods: the eviction of the VM's pod becomes a migration (refused with 429, which
        # kubectl drain retries until the pod is gone)
        drain = c.kubectl("drain", node, "--pod-selector=kubevirt.io=virt-launcher", "--delete-emptydir-data",
                          "--timeout=600s", timeout=660)
        FIGURES["kubectl drain of the VM's node"] = f"{time.monotonic() - started:.1f}s"
        assert "drained" in drain
        after = vmi()
        assert after["status"]["nodeName"] != node and after["status"]["phase"] == "Running"
        evacuations = [m for m in migrations() if "kubevirt.io/evacuationMigration" in
                       (m["metadata"].get("annotations") or {})]
        assert evacuations and evacuations[-1]["status"]["phase"] == "Succeeded"
        assert "evacuationNodeName" not in after["status"]
        assert console_line("cat /proc/sys/kernel/random/boot_id") == boot_id
    finally:
        c.kubectl("uncordon", node, check=False)
