"""virt-controller density benchmark: N VMs (default 500, $BENCH_VMIS) against a real etcd + kube-apiserver.

Prints: reconcile throughput (VMs -> VMIs with a launcher pod -> Scheduled), the controller's API writes per
VMI by verb and resource (upstream's density test allows at most 2 PATCH and 10 UPDATE per created pod), and
controller memory per cached VMI (RSS growth / VMIs; upstream: about 173 KB).
"""
import os
import resource as _resource
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT))


def rss_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss


def vm_body(i):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": f"vm{i}"},
            "spec": {"runStrategy": "Always", "template": {"spec": {
                "domain": {"memory": {"guest": "64Mi"}, "devices": {"disks": [{"name": "root", "disk": {}}]}},
                "volumes": [{"name": "root", "containerDisk": {"image": "example/cirros:latest"}}]}}}}


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def main():
    from apiserver import ControlPlane, bind_pod, set_pod_phase

    from kubevirt_runtime.api.crdgen import load_crds
    from kubevirt_runtime.controller.config import ControllerConfig
    from kubevirt_runtime.controller.main import VirtController
    from kubevirt_runtime.machinery.resource import NAMESPACES, PODS, VMS, RequestCounter, ResourceClient
    from tests.conftest import BIN_DIR

    count = int(os.environ.get("BENCH_VMIS", "500"))
    plane = ControlPlane(BIN_DIR, Path(tempfile.mkdtemp(prefix="bench-controller-"))).start()
    try:
        plane.install_crds(load_crds())
        ns = "bench"
        ResourceClient(plane.api_client, NAMESPACES).create({"apiVersion": "v1", "kind": "Namespace",
                                                              "metadata": {"name": ns}})
        counter = RequestCounter()
        rss_before = rss_kib()
        controller = VirtController(plane.api_client, ControllerConfig(vm_workers=4, vmi_workers=4), ns, [counter])
        controller.run(sync_timeout=60)
        vms = ResourceClient(plane.api_client, VMS)
        pods = ResourceClient(plane.api_client, PODS)
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: vms.create(vm_body(i), ns), range(count)))
        created = time.monotonic()
        vmi_store, pod_store = controller.vmi_informer.store, controller.pod_informer.store

        def phase_count(phase):
            return sum(1 for v in vmi_store.list() if (v.get("status") or {}).get("phase") == phase)

        all_pods = wait(lambda: len(pod_store) >= count and phase_count("Scheduling") >= count, 600,
                        "launcher pods")
        # play scheduler + kubelet for every pod
        with ThreadPoolExecutor(8) as pool:
            def run(pod):
                bind_pod(plane.api_client, ns, pod["metadata"]["name"], "node01")
                set_pod_phase(plane.api_client, ns, pod["metadata"]["name"], "Running", ready=True)
            list(pool.map(run, pods.list(ns, label_selector="kubevirt.io=virt-launcher")["items"]))
        kubelet_done = time.monotonic()
        scheduled = wait(lambda: phase_count("Scheduled") >= count, 600, "Scheduled VMIs")
        wait(lambda: all((v.get("status") or {}).get("printableStatus") == "Starting"
                         for v in controller.vm_informer.store.list()), 120, "VM status")
        time.sleep(2)  # let trailing status writes land
        rss_after = rss_kib()
        writes = Counter({k: v for k, v in counter.snapshot().items() if k[0] in ("create", "update", "patch",
                                                                                   "delete")})
        print(f"VMs: {count}")
        print(f"VM create -> all VMIs have a launcher pod (Scheduling): {all_pods - started:.1f}s "
              f"({count / (all_pods - started):.1f} VMIs/s; creating the VMs took {created - started:.1f}s)")
        print(f"pods Running -> all VMIs Scheduled: {scheduled - kubelet_done:.1f}s "
              f"({count / max(scheduled - kubelet_done, 1e-9):.1f} VMIs/s)")
        print("controller API writes per VMI:")
        for (verb, res), n in sorted(writes.items()):
            print(f"  {verb:7s} {res:32s} {n / count:5.2f}")
        per_pod_patch = sum(n for (v, r), n in writes.items() if v == "patch" and r != "events") / count
        per_pod_update = sum(n for (v, r), n in writes.items() if v == "update") / count
        print(f"PATCH per created pod: {per_pod_patch:.2f} (upstream budget 2); "
              f"UPDATE per created pod: {per_pod_update:.2f} (upstream budget 10)")
        cached = len(vmi_store)
        print(f"controller RSS growth with {cached} VMIs (+{len(pod_store)} pods, "
              f"+{len(controller.vm_informer.store)} VMs) cached: {(rss_after - rss_before) / 1024:.1f} MiB = "
              f"{(rss_after - rss_before) / max(cached, 1):.0f} KiB per cached VMI (upstream ~173 KB)")
        controller.stop()
    finally:
        plane.stop()


if __name__ == "__main__":
    main()
