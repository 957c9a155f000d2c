"""VM start density on the local cluster: N demo VMs created at once, timed from create to Running.

Prints, for N in $BENCH_DENSITY (default "1,10,30,50"):
- create -> Running P50/P95/max (client's create time to the VMI's recorded Running stage; from the VMI's
  phaseTransitionTimestamps, whole seconds, when a VMI has no startup timeline) and create -> first console
  output;
- the per-stage breakdown (median seconds each stage took, from status.startupTimeline);
- launcher-side memory per VM (RSS and PSS of virt-launcher, with libvirt's QEMU driver embedded, of a
  libvirtd when there is one (a migration target), and of QEMU without the guest's RAM; the pod's other
  processes apart);
- API writes per VMI (the kube-apiserver's apiserver_request_total, all clients, by verb and resource);
then the floor measured in the same run (bench/floor.py: the same guest on a bare libvirtd, no Kubernetes)
and the ratios to it, and writes bench/results/density.json, summary.md and the PNG plots (bench/plots.py).

Needs the cluster (make cluster-up) to itself: `flock /tmp/kvo-cluster.lock make bench` (or
`python -m bench density`). The VMs live in namespace kvo-bench and are deleted after each round; the
KubeVirt CR's developerConfiguration.cpuAllocationRatio is set to $BENCH_CPU_ALLOCATION_RATIO (default 50,
so 50 one-vCPU VMs request 1 CPU) for the run and restored afterwards.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAMESPACE = "kvo-bench"
RESULTS = ROOT / "bench" / "results"
RUNNING_TIMEOUT = 900
CONSOLE_TIMEOUT = 180
STUCK_AFTER = 120  # seconds with no new Running VMI while the rest cannot be scheduled


def kubectl(*args, input=None, check=True):
    from tests.e2e import cluster as c
    proc = subprocess.run([str(c.KUBECTL), "--kubeconfig", str(c.KUBECONFIG), *args], input=input,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def percentile(values, q):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# ---------------------------------------------------------------- the cluster


def api():
    from kubevirt_runtime.machinery.kubeconfig import load_api_client
    from tests.e2e import cluster as c
    return load_api_client(str(c.KUBECONFIG), qps_pool_size=32)


def vm_body(name: str) -> dict:
    import yaml
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "vm-demo.yaml").read_text()) if d]
    vm = json.loads(json.dumps(next(d for d in docs if d["kind"] == "VirtualMachine")))
    vm["metadata"] = {"name": name, "namespace": NAMESPACE, "labels": {"app": "kvo-bench"}}
    template = vm["spec"]["template"]
    template["metadata"] = {"labels": {"app": "kvo-bench", "kubevirt.io/domain": name}}
    template["spec"]["terminationGracePeriodSeconds"] = 0  # the rounds end with a delete: no need to wait
    return vm


def set_allocation_ratio(ratio):
    """Sets the KubeVirt CR's cpuAllocationRatio (None removes it); returns the previous value. A deployment
    that predates the field refuses it: then nothing changes (and launchers request what they always did)."""
    kv = json.loads(kubectl("get", "kubevirt", "kubevirt", "-n", "kubevirt", "-o", "json"))
    dev = ((kv["spec"].get("configuration") or {}).get("developerConfiguration") or {})
    previous = dev.get("cpuAllocationRatio")
    patch = {"spec": {"configuration": {"developerConfiguration": {"cpuAllocationRatio": ratio}}}}
    try:
        kubectl("patch", "kubevirt", "kubevirt", "-n", "kubevirt", "--type=merge", "-p", json.dumps(patch))
    except RuntimeError as exc:
        print(f"cpuAllocationRatio not set: {exc}")
    return previous


def api_writes() -> dict:
    """apiserver_request_total of the writes to VMIs, VMs and pods: {(verb, resource): count}."""
    counts = {}
    for line in kubectl("get", "--raw", "/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(part.split("=", 1) for part in line[line.index("{") + 1:line.rindex("}")].split(",")
                      if "=" in part)
        labels = {k: v.strip('"') for k, v in labels.items()}
        if labels.get("resource") not in ("virtualmachineinstances", "virtualmachines", "pods"):
            continue
        if labels.get("verb") not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        key = (labels["verb"], labels["resource"] + (f"/{labels['subresource']}" if labels.get("subresource") else ""))
        counts[key] = counts.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def wait_gone(vmis, pods, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = len(vmis.list(NAMESPACE)["items"]) + len(pods.list(NAMESPACE, label_selector="kubevirt.io=virt-launcher")
                                                         ["items"])
        if not left:
            return
        time.sleep(1)
    raise RuntimeError(f"the bench VMs of {NAMESPACE} did not go away within {timeout}s")


# ---------------------------------------------------------------- one round


def stages_of(vmi, pod, created_at):
    """[(stage, epoch)] from the client's create on, monotone; whole-second stamps are flagged."""
    from kubevirt_runtime.api import timeline
    recorded = timeline.recorded(vmi.get("status"))
    out = [("VMCreate", created_at)]
    if recorded:
        for stage in timeline.STAGES:
            if stage in recorded:
                out.append((stage, timeline.parse_stamp(recorded[stage])))
    else:  # a VMI of a build without the timeline: what the pod and the phases say (whole seconds)
        out.append(("VMICreated", timeline.parse_stamp(vmi["metadata"].get("creationTimestamp"))))
        if pod:
            out.append(("PodCreated", timeline.parse_stamp(pod["metadata"].get("creationTimestamp"))))
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "PodScheduled" and cond.get("status") == "True":
                    out.append(("PodScheduled", timeline.parse_stamp(cond.get("lastTransitionTime"))))
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if status.get("name") == "compute" and (status.get("state") or {}).get("running"):
                    out.append(("ContainersStarted", timeline.parse_stamp(status["state"]["running"]["startedAt"])))
        for entry in (vmi.get("status") or {}).get("phaseTransitionTimestamps") or []:
            if entry.get("phase") == "Running":
                out.append(("Running", timeline.parse_stamp(entry.get("phaseTransitionTimestamp"))))
    monotone, last = [], None
    for stage, moment in out:
        if moment is None:
            continue
        last = moment if last is None else max(last, moment)
        monotone.append((stage, last))
    return monotone


def memory_of(pods) -> list[dict]:
    from bench.procmem import comm, pids_in_cgroup, pss_kib, qemu_breakdown, rss_kib
    from kubevirt_runtime.api.quantity import memory_bytes
    guest = memory_bytes(vm_body("x")["spec"]["template"]["spec"]["domain"]["memory"]["guest"])
    out = []
    for pod in pods:
        uid = pod["metadata"]["uid"]
        rss = {"launcher": 0, "libvirtd": 0, "qemu": 0, "other": 0}
        pss = dict(rss)
        for pid in set(pids_in_cgroup(uid)) | set(pids_in_cgroup(uid.replace("-", "_"))):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                r, p = rss_kib(pid), pss_kib(pid)
                if argv[0].endswith(b"qemu-system-x86_64") or comm(pid).startswith("qemu"):
                    part = "qemu"
                    guest_kib, _ = qemu_breakdown(pid, guest)
                    r, p = r - guest_kib, p - guest_kib
                elif comm(pid) == "libvirtd":
                    part = "libvirtd"
                elif any(b"virt-launcher" in a for a in argv[:2]):
                    part = "launcher"
                else:
                    part = "other"
            except OSError:
                continue
            rss[part] += r
            pss[part] += p
        out.append({"pod": pod["metadata"]["name"], "rss_kib": rss, "pss_kib": pss})
    return out


def run_round(count: int, vms, vmis, pods) -> dict:
    names = [f"bench-{count}-{i:02d}" for i in range(count)]
    writes_before = api_writes()
    created_at = {}

    def create(name):
        created_at[name] = time.time()
        vms.create(vm_body(name), NAMESPACE)

    with ThreadPoolExecutor(min(count, 16)) as pool:
        list(pool.map(create, names))
    first_create = min(created_at.values())
    last_progress, done = time.monotonic(), {}
    deadline = time.monotonic() + RUNNING_TIMEOUT
    unschedulable = []
    while time.monotonic() < deadline:
        items = {v["metadata"]["name"]: v for v in vmis.list(NAMESPACE)["items"]}
        running = {n: v for n, v in items.items() if (v.get("status") or {}).get("phase") == "Running"}
        if len(running) > len(done):
            last_progress = time.monotonic()
        done = running
        unschedulable = [n for n, v in items.items() if any(
            c.get("type") == "PodScheduled" and c.get("status") == "False"
            for c in (v.get("status") or {}).get("conditions") or [])]
        failed = [n for n, v in items.items() if (v.get("status") or {}).get("phase") == "Failed"]
        if len(done) + len(failed) >= count:
            break
        if unschedulable and len(done) + len(unschedulable) + len(failed) >= count and \
                time.monotonic() - last_progress > STUCK_AFTER:
            break
        time.sleep(0.5)
    all_running = time.time()
    # the first console output is written after Running
    console_deadline = time.monotonic() + CONSOLE_TIMEOUT
    while time.monotonic() < console_deadline:
        items = {v["metadata"]["name"]: v for v in vmis.list(NAMESPACE)["items"] if v["metadata"]["name"] in done}
        if all("FirstConsoleOutput" in json.dumps((v.get("status") or {}).get("startupTimeline") or [])
               for v in items.values()):
            break
        if not any((v.get("status") or {}).get("startupTimeline") for v in items.values()):
            break  # a build without the timeline
        time.sleep(1)
    time.sleep(3)  # let trailing status writes land before counting
    writes_after = api_writes()
    pod_items = {p["metadata"]["labels"].get("vm.kubevirt.io/name"): p
                 for p in pods.list(NAMESPACE, label_selector="kubevirt.io=virt-launcher")["items"]}
    vmi_items = {v["metadata"]["name"]: v for v in vmis.list(NAMESPACE)["items"]}
    memory = memory_of([pod_items[n] for n in done if n in pod_items])
    per_vm = {}
    for name in names:
        vmi = vmi_items.get(name)
        if vmi is None or name not in done:
            continue
        stages = stages_of(vmi, pod_items.get(name), created_at[name])
        moments = dict(stages)
        per_vm[name] = {"stages": stages,
                        "running": moments["Running"] - created_at[name] if "Running" in moments else None,
                        "first_output": (moments["FirstConsoleOutput"] - created_at[name]
                                         if "FirstConsoleOutput" in moments else None),
                        "resolution": "ms" if (vmi.get("status") or {}).get("startupTimeline") else "s"}
    writes = {f"{verb} {res}": round((writes_after.get((verb, res), 0) - writes_before.get((verb, res), 0)) / count, 2)
              for verb, res in sorted(set(writes_after) | set(writes_before))
              if writes_after.get((verb, res), 0) - writes_before.get((verb, res), 0) > 0}
    kubectl("delete", "vm", "-n", NAMESPACE, "--all", "--wait=false")
    wait_gone(vmis, pods)
    return {"count": count, "running": len(done), "unschedulable": len(unschedulable),
            "wall": all_running - first_create, "vms": per_vm, "memory": memory, "writes_per_vmi": writes}


# ---------------------------------------------------------------- summary


def summarize(result: dict) -> dict:
    runs = [v["running"] for v in result["vms"].values() if v["running"] is not None]
    outputs = [v["first_output"] for v in result["vms"].values() if v["first_output"] is not None]
    segments = {}
    for vm in result["vms"].values():
        previous = None
        for stage, moment in vm["stages"]:
            if previous is not None:
                segments.setdefault(stage, []).append(moment - previous)
            previous = moment
    def mem(kind, part):
        values = [m[kind][part] / 1024 for m in result["memory"]]
        return statistics.median(values) if values else None
    memory = {kind: {part: mem(kind, part) for part in ("launcher", "libvirtd", "qemu", "other")}
              for kind in ("rss_kib", "pss_kib")}
    return {"count": result["count"], "running": result["running"], "unschedulable": result["unschedulable"],
            "p50": percentile(runs, 0.5), "p95": percentile(runs, 0.95), "max": max(runs) if runs else None,
            "first_output_p50": percentile(outputs, 0.5), "first_output_p95": percentile(outputs, 0.95),
            "stage_median": {stage: statistics.median(v) for stage, v in segments.items()},
            "memory_mib": memory, "writes_per_vmi": result["writes_per_vmi"],
            "resolution": sorted({v["resolution"] for v in result["vms"].values()})}


def fmt(value, unit="s"):
    return "-" if value is None else f"{value:.2f}{unit}"


def print_summary(s: dict) -> None:
    print(f"N={s['count']}: {s['running']} Running"
          + (f", {s['unschedulable']} unschedulable" if s["unschedulable"] else "")
          + f"; create->Running P50 {fmt(s['p50'])} P95 {fmt(s['p95'])} max {fmt(s['max'])}"
          + f"; create->first console output P50 {fmt(s['first_output_p50'])} P95 {fmt(s['first_output_p95'])}"
          + f" (resolution {'/'.join(s['resolution'])})", flush=True)
    print("  stage medians: " + ", ".join(f"{k} {v:.2f}s" for k, v in s["stage_median"].items()))
    rss, pss = s["memory_mib"]["rss_kib"], s["memory_mib"]["pss_kib"]
    if rss["qemu"] is not None:
        total_rss = rss["launcher"] + rss["libvirtd"] + rss["qemu"]
        total_pss = pss["launcher"] + pss["libvirtd"] + pss["qemu"]
        print(f"  memory per VM beyond the guest (median MiB): launcher {rss['launcher']:.1f}, libvirtd "
              f"{rss['libvirtd']:.1f}, QEMU {rss['qemu']:.1f} = RSS {total_rss:.1f} / PSS {total_pss:.1f}"
              f" (other pod processes: RSS {rss['other']:.1f})")
    print("  API writes per VMI: " + ", ".join(f"{k} {v}" for k, v in s["writes_per_vmi"].items()), flush=True)


def main():
    from tests.e2e import cluster as c
    if not c.cluster_answers():
        print("skipped: no cluster answers (make cluster-up)")
        return
    from bench import floor, plots
    from kubevirt_runtime.machinery.resource import PODS, VMIS, VMS, ResourceClient
    counts = [int(x) for x in os.environ.get("BENCH_DENSITY", "1,10,30,50").split(",") if x]
    ratio = int(os.environ.get("BENCH_CPU_ALLOCATION_RATIO", "50"))
    client = api()
    vms, vmis, pods = (ResourceClient(client, r) for r in (VMS, VMIS, PODS))
    kubectl("create", "namespace", NAMESPACE, check=False)
    kubectl("delete", "vm", "-n", NAMESPACE, "--all", "--wait=false", check=False)
    wait_gone(vmis, pods)
    previous = set_allocation_ratio(ratio)
    print(f"KubeVirt cpuAllocationRatio {ratio} for the run (was {previous or 'unset'})")
    rounds = []
    try:
        for count in counts:
            result = run_round(count, vms, vmis, pods)
            rounds.append(result)
            print_summary(summarize(result))
    finally:
        kubectl("delete", "vm", "-n", NAMESPACE, "--all", "--wait=false", check=False)
        wait_gone(vmis, pods)
        set_allocation_ratio(previous)
    try:
        floors = floor.measure(3)
    except RuntimeError as exc:  # the rounds' figures still count
        print(f"floor not measured: {exc}")
        floors = []
    if not floors:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "density.json").write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                          "cpu_allocation_ratio": ratio, "rounds": rounds}, indent=1))
        raise RuntimeError("the floor could not be measured; the rounds are in density.json")
    base = {key: statistics.median(f[key] for f in floors) for key in ("running", "first_output", "marker")}
    base_mem = {kind: {part: statistics.median(f[kind][part] for f in floors) / 1024 for part in ("libvirtd", "qemu")}
                for kind in ("rss_kib", "pss_kib")}
    print(f"floor (bare libvirtd, same guest, median of {len(floors)}): domain running {base['running']:.2f}s, "
          f"first console output {base['first_output']:.2f}s, login marker {base['marker']:.1f}s; memory "
          f"libvirtd + QEMU beyond the guest RSS {sum(base_mem['rss_kib'].values()):.1f} MiB "
          f"/ PSS {sum(base_mem['pss_kib'].values()):.1f} MiB")
    summaries = [summarize(r) for r in rounds]
    for s in summaries:
        if s["p50"] is not None:
            first = s["first_output_p50"]
            print(f"  N={s['count']}: P50 {s['p50'] / base['running']:.1f}x, P95 {s['p95'] / base['running']:.1f}x "
                  f"the floor's domain start; first output P50 "
                  + (f"{first / base['first_output']:.1f}x the floor's" if first is not None else "not recorded"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu_allocation_ratio": ratio, "rounds": rounds,
            "summaries": summaries, "floor": {"runs": floors, "median": base, "memory_mib": base_mem}}
    (RESULTS / "density.json").write_text(json.dumps(data, indent=1))
    plots.write_all(data, RESULTS)
    print(f"wrote {RESULTS}/density.json, summary.md and the plots")


if __name__ == "__main__":
    main()
