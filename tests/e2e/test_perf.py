"""Startup path, timeline and metrics on the local cluster, with one demo-like VM.

- the launcher pod reads its containerDisk in place (nothing copies it) and libvirt starts from the pre-warmed
  capability cache;
- the KubeVirt CR's cpuAllocationRatio sets the launcher's CPU request;
- the VMI records its startup stages where kubectl shows them, and `virtctl timeline` prints them;
- Prometheus (playbooks/monitoring.yml) scrapes virt-handler and sees the VM's kubevirt_vmi_vcpu_seconds_total grow.
"""
import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest
import yaml

from kubevirt_runtime.api import timeline
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

NS = "kvo-perf-e2e"
NAME = "perf-e2e"
RATIO = 40  # 1 vCPU -> 25m


def vm_manifest():
    docs = [d for d in yaml.safe_load_all(c.DEMO_MANIFEST.read_text()) if d]
    vm = json.loads(json.dumps(next(d for d in docs if d["kind"] == "VirtualMachine")))
    vm["metadata"] = {"name": NAME, "namespace": NS}
    vm["spec"]["template"]["metadata"] = {"labels": {"kubevirt.io/domain": NAME}}
    vm["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 0
    return vm


def set_ratio(ratio):
    patch = {"spec": {"configuration": {"developerConfiguration": {"cpuAllocationRatio": ratio}}}}
    c.kubectl("patch", "kubevirt", "kubevirt", "-n", c.KUBEVIRT_NAMESPACE, "--type=merge", "-p", json.dumps(patch))


@pytest.fixture(scope="module")
def vm(cluster):
    if not c.get("deployment", "virt-controller", c.KUBEVIRT_NAMESPACE):
        c.run_playbook("deploy", *c.DEPLOY_EXTRA)
    kv = c.get("kubevirt", "kubevirt", c.KUBEVIRT_NAMESPACE)
    before = ((kv["spec"].get("configuration") or {}).get("developerConfiguration") or {}).get("cpuAllocationRatio")
    c.kubectl("create", "namespace", NS, check=False)
    set_ratio(RATIO)
    time.sleep(2)  # the controller's informer sees the new ratio
    c.kubectl("apply", "-f", "-", input=json.dumps(vm_manifest()))
    try:
        yield c.wait_for(f"VMI {NAME} Running",
                         lambda: ((c.get("vmi", NAME, NS) or {}).get("status") or {}).get("phase") == "Running"
                         and c.get("vmi", NAME, NS), 600)
    finally:
        set_ratio(before or 10)
        c.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=300s", check=False, timeout=320)


def launcher_pod():
    return c.kubectl_json("get", "pods", "-n", NS, "-l", f"kubevirt.io=virt-launcher,vm.kubevirt.io/name={NAME}")[
        "items"][0]


def test_the_container_disk_is_read_in_place_and_the_cpu_request_follows_the_ratio(vm):
    pod = launcher_pod()
    spec = pod["spec"]
    assert "initContainers" not in spec  # compute's postStart hook shares the busybox
    assert [ct["name"] for ct in spec["containers"]] == ["compute", "container-disk-0"]
    assert spec["containers"][0]["resources"]["requests"]["cpu"] == "25m"
    started = {s["name"]: s["state"]["running"]["startedAt"] for s in pod["status"]["containerStatuses"]}
    assert started["compute"] <= started["container-disk-0"], started
    info = json.loads(c.kubectl("exec", "-n", NS, pod["metadata"]["name"], "-c", "compute", "--", "qemu-img",
                                "info", "-U", "--output=json", "/var/run/kubevirt-private/disks/containerdisk.qcow2"))
    assert info["backing-filename"].startswith("/proc/") and info["backing-filename"].endswith("/root/disk/demo.img")
    log = c.kubectl("logs", "-n", NS, pod["metadata"]["name"], "-c", "compute")
    assert "QEMU capabilities: pre-warmed cache (tcg)" in log, log[-3000:]


def test_the_launcher_embeds_libvirt_and_runs_no_daemon(vm):
    pod = launcher_pod()
    log = c.kubectl("logs", "-n", NS, pod["metadata"]["name"], "-c", "compute")
    assert "libvirt QEMU driver (embedded) ready" in log, log[-3000:]
    # the pod shares one PID namespace: every process of the pod is listed here
    names = c.kubectl("exec", "-n", NS, pod["metadata"]["name"], "-c", "compute", "--", "/bin/busybox", "sh", "-c",
                      "cat /proc/[0-9]*/comm").split()
    assert "libvirtd" not in names and "virt-launcher" in names, names
    assert any(name.startswith("qemu") for name in names), names


def test_the_startup_timeline_is_recorded_and_printed(vm):
    vmi = c.wait_for("the first console output in the timeline",
                     lambda: "FirstConsoleOutput" in timeline.recorded(c.get("vmi", NAME, NS)["status"])
                     and c.get("vmi", NAME, NS), 180)
    stages = [row["stage"] for row in timeline.rows(vmi["status"])]
    assert stages == list(timeline.STAGES), stages
    env = dict(os.environ, KUBECONFIG=str(c.KUBECONFIG))
    out = subprocess.run([sys.executable, "-m", "kubevirt_runtime.virtctl.main", "-n", NS, "timeline", NAME],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:2] == ["STAGE", "TIME"] and [line.split()[0] for line in lines[1:]] == stages
    print("\n" + out.stdout)


def prometheus_query(query):
    path = ("/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?"
            + urllib.parse.urlencode({"query": query}))
    answer = json.loads(c.kubectl("get", "--raw", path))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_sees_the_vcpu_seconds_of_the_vm_grow(vm):
    if not c.get("deployment", "prometheus", "monitoring"):
        c.run_playbook("monitoring")
    query = f'sum(kubevirt_vmi_vcpu_seconds_total{{namespace="{NS}",name="{NAME}"}})'
    first = c.wait_for("Prometheus to have the VM's vCPU seconds", lambda: prometheus_query(query), 180, interval=3)
    start = float(first[0]["value"][1])
    grown = c.wait_for("the vCPU seconds to grow",
                       lambda: float((prometheus_query(query) or [{"value": [0, "0"]}])[0]["value"][1]) > start
                       and prometheus_query(query), 120, interval=3)
    assert float(grown[0]["value"][1]) > start
    # and the other components' metrics, with upstream's names
    for other in (f'kubevirt_vmi_info{{namespace="{NS}",name="{NAME}",phase="running"}}',
                  "kubevirt_virt_controller_leading_status == 1", "kubevirt_workqueue_adds_total",
                  'kubevirt_vmi_phase_transition_time_from_creation_seconds_count{phase="Running"}'):
        assert prometheus_query(other), other
