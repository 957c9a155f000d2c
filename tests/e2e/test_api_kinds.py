"""Issue 11 on the local cluster: upstream-style manifests through the live API with kubectl's strict
validation; a VM from a cluster instancetype and preference boots and its guest sees the virtio-rng
device; a replica set scales 0 -> 3 -> 1 with kubectl scale; a pool makes <pool>-0..2. Plus issue 8's
admission fuzz through the live API. One TCG boot in all: the replica set's VMIs are kept off the nodes
by a node selector (the controller's work is what is checked), the pool's VMs are Halted."""
import collections
import os
import time
import uuid

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from kubevirt_runtime.machinery.kubeconfig import load_api_client
from kubevirt_runtime.machinery.resource import VMIS, VMS, ApiError, ResourceClient
from tests.admission_fuzz import assert_converts, vmis, vms
from tests.conformance.check import report, run
from tests.conftest import REPO
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e
wait_for, get = c.wait_for, c.get
DEMO_IMAGE = yaml.safe_load(c.DEMO_MANIFEST.read_text())["spec"]["template"]["spec"]["volumes"][0]["containerDisk"]
FUZZ_CASES = int(os.environ.get("KVO_E2E_FUZZ", "300"))


@pytest.fixture(scope="module")
def ns(cluster):
    name = f"e2e-api-{uuid.uuid4().hex[:6]}"
    c.kubectl("create", "namespace", name)
    yield name
    c.kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(obj, ns=None):
    args = ["apply", "-f", "-"] + (["-n", ns] if ns else [])
    c.kubectl(*args, input=yaml.safe_dump(obj))


def test_upstream_style_manifests_through_the_live_api(ns):
    results = run([str(c.KUBECTL), f"--kubeconfig={c.KUBECONFIG}"], ns)
    print("\n" + report(results))
    assert all(ok for _, ok, _ in results), report(results)


def test_vm_from_a_cluster_instancetype_and_preference_boots_and_sees_the_rng(ns):
    apply({"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineClusterInstancetype",
           "metadata": {"name": "e2e-tiny"}, "spec": {"cpu": {"guest": 1}, "memory": {"guest": "128Mi"}}})
    apply({"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineClusterPreference",
           "metadata": {"name": "e2e-linux"}, "spec": {"devices": {
               "preferredDiskBus": "virtio", "preferredInterfaceModel": "virtio", "preferredRng": {}}}})
    try:
        apply({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm-typed"},
               "spec": {"runStrategy": "Always", "instancetype": {"name": "e2e-tiny"},
                        "preference": {"name": "e2e-linux"},
                        "template": {"spec": {
                            "terminationGracePeriodSeconds": 0,
                            "domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]}},
                            "networks": [{"name": "default", "pod": {}}],
                            "volumes": [{"name": "containerdisk", "containerDisk": DEMO_IMAGE},
                                        {"name": "cloudinitdisk", "cloudInitNoCloud": {"userData": (
                                            "#!/bin/sh\necho \"rng check: $(cat /sys/class/misc/hw_random/"
                                            "rng_current) $(ls /dev/hwrng)\"\n")}}]}}}}, ns)
        vmi = wait_for("the VMI Running", lambda: (v := get("vmi", "vm-typed", ns)) and
                       v.get("status", {}).get("phase") == "Running" and v, c.BOOT_TIMEOUT, 5)
        domain = vmi["spec"]["domain"]
        assert domain["cpu"]["sockets"] * domain["cpu"]["cores"] * domain["cpu"]["threads"] == 1
        assert domain["memory"]["guest"] == "128Mi" and domain["devices"]["rng"] == {}
        assert all(d["disk"]["bus"] == "virtio" for d in domain["devices"]["disks"])
        vm = get("vm", "vm-typed", ns)
        assert vm["status"]["instancetypeRef"]["kind"] == "VirtualMachineClusterInstancetype"
        pod = next(p for p in c.kubectl_json("get", "pods", "-n", ns, "-l", "vm.kubevirt.io/name=vm-typed")["items"]
                   if p["status"].get("phase") == "Running")

        def serial():
            return c.kubectl("exec", "-n", ns, pod["metadata"]["name"], "-c", "compute", "--", "cat",
                             "/var/run/kubevirt-private/virt-serial0.log", check=False, timeout=30)
        log = wait_for("the guest's rng line", lambda: (s := serial()) and "rng check:" in s and s,
                       c.BOOT_TIMEOUT, 5)
        line = next(x for x in log.splitlines() if "rng check:" in x)
        assert "virtio_rng" in line and "/dev/hwrng" in line, line
    finally:
        c.kubectl("delete", "vm", "vm-typed", "-n", ns, "--wait=true", "--timeout=300s", check=False, timeout=320)
        c.kubectl("delete", "vmcf", "e2e-tiny", check=False)
        c.kubectl("delete", "vmcp", "e2e-linux", check=False)


def test_replica_set_scales_0_3_1_with_kubectl_scale(ns):
    apply({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "metadata": {"name": "web"},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": {
               "metadata": {"labels": {"app": "web"}},
               "spec": {"nodeSelector": {"kubevirt-ops/e2e": "no-such-node"}, "terminationGracePeriodSeconds": 0,
                        "domain": {"memory": {"guest": "64Mi"}, "devices": {}},
                        "volumes": [{"name": "containerdisk", "containerDisk": DEMO_IMAGE}]}}}}, ns)

    def replicas():
        return (get("vmirs", "web", ns).get("status") or {}).get("replicas")

    def live_vmis():
        return [v for v in c.kubectl_json("get", "vmi", "-n", ns, "-l", "app=web")["items"]
                if not v["metadata"].get("deletionTimestamp")]

    wait_for("status.replicas 0", lambda: replicas() == 0, 60)
    c.kubectl("scale", "vmirs", "web", "--replicas=3", "-n", ns)
    wait_for("3 VMIs", lambda: len(live_vmis()) == 3 and replicas() == 3, 120)
    table = c.kubectl("get", "vmirs", "web", "-n", ns)
    assert table.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert table.split("\n")[1].split()[1:3] == ["3", "3"]
    c.kubectl("scale", "vmirs", "web", "--replicas=1", "-n", ns)
    wait_for("1 VMI", lambda: len(live_vmis()) == 1 and replicas() == 1, 180)
    c.kubectl("delete", "vmirs", "web", "-n", ns, "--wait=true", "--timeout=120s", timeout=150)


def test_pool_creates_pool_0_to_2(ns):
    apply({"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool", "metadata": {"name": "pool"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "pooled"}}, "virtualMachineTemplate": {
               "metadata": {"labels": {"app": "pooled"}},
               "spec": {"runStrategy": "Halted", "template": {"spec": {
                   "domain": {"memory": {"guest": "64Mi"}, "devices": {}},
                   "volumes": [{"name": "containerdisk", "containerDisk": DEMO_IMAGE}]}}}}}}, ns)
    names = wait_for("pool-0..2", lambda: (n := sorted(v["metadata"]["name"] for v in c.kubectl_json(
        "get", "vm", "-n", ns, "-l", "kubevirt.io/vmpool=pool")["items"])) == ["pool-0", "pool-1", "pool-2"] and n,
        120)
    assert names == ["pool-0", "pool-1", "pool-2"]
    wait_for("status.replicas 3", lambda: (get("vmpool", "pool", ns).get("status") or {}).get("replicas") == 3, 60)
    c.kubectl("delete", "vmpool", "pool", "-n", ns, "--wait=true", "--timeout=120s", timeout=150)
    wait_for("the pool's VMs gone with it", lambda: not c.kubectl_json(
        "get", "vm", "-n", ns, "-l", "kubevirt.io/vmpool=pool")["items"], 120)


def test_admission_fuzz_through_the_live_api(ns):
    """Issue 8: generated VMs and VMIs, created with dryRun and strict field validation. Never a 500;
    every rejection names a field; every accepted VMI converts to domain XML."""
    api = load_api_client(str(c.KUBECONFIG))
    clients = {"VirtualMachine": ResourceClient(api, VMS), "VirtualMachineInstance": ResourceClient(api, VMIS)}
    counts = collections.Counter()
    started = time.monotonic()

    def check(obj):
        obj["metadata"]["namespace"] = ns
        obj["metadata"].pop("uid", None)
        counts["cases"] += 1
        try:
            stored = clients[obj["kind"]].request(
                "POST", clients[obj["kind"]].resource.path(ns), {"dryRun": "All", "fieldValidation": "Strict"},
                body=obj)
        except ApiError as exc:
            assert exc.status in (400, 422), f"{exc.status}: {exc.body}"
            causes = (exc.body.get("details") or {}).get("causes") or []
            if exc.status == 422:  # ours (the webhooks) or the CRD schema's: each cause names its field
                assert causes and all(x.get("field") for x in causes), exc.body
            # 400: the API server's own decoding (strict field validation names the unknown field; a number
            # too large for JSON's int64 is refused before any schema or webhook sees the object)
            counts[f"rejected {exc.status}"] += 1
            return
        counts["accepted"] += 1
        if stored["kind"] == "VirtualMachineInstance":
            stored["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000001")
            assert_converts(stored)

    fuzz = settings(max_examples=FUZZ_CASES // 2, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
    fuzz(given(vmis())(check))()
    fuzz(given(vms())(check))()
    print(f"\nlive-API admission fuzz: {dict(counts)} in {time.monotonic() - started:.0f}s")
    assert counts["cases"] >= FUZZ_CASES


def _demo_builder():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "build_demo_disk", REPO / "roles" / "kubevirt_images" / "files" / "build_demo_disk.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kernel_boot_from_a_container_boots_to_the_marker(ns):
    """firmware.kernelBoot.container: the launcher pod's init container copies the kernel and initrd out of
    the demo-kernel image (FROM scratch) and the guest boots them, with no disk at all."""
    builder = _demo_builder()
    image = DEMO_IMAGE["image"].replace("/demo-disk:", "/demo-kernel:")
    apply({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": "vmi-kernel"},
           "spec": {"terminationGracePeriodSeconds": 0,
                    "domain": {"memory": {"guest": "128Mi"}, "firmware": {"kernelBoot": {
                        "kernelArgs": builder.KERNEL_ARGS,
                        "container": {"image": image, "imagePullPolicy": "IfNotPresent",
                                      "kernelPath": "/boot/vmlinuz", "initrdPath": "/boot/initrd.gz"}}},
                        "devices": {"autoattachGraphicsDevice": False}}}}, ns)
    try:
        wait_for("the VMI Running", lambda: (get("vmi", "vmi-kernel", ns) or {}).get("status", {}).get("phase")
                 == "Running", c.BOOT_TIMEOUT, 5)
        pod = next(p for p in c.kubectl_json("get", "pods", "-n", ns, "-l", "vm.kubevirt.io/name=vmi-kernel")["items"]
                   if p["status"].get("phase") == "Running")
        wait_for("the demo marker", lambda: builder.READY_MARKER in c.kubectl(
            "exec", "-n", ns, pod["metadata"]["name"], "-c", "compute", "--", "cat",
            "/var/run/kubevirt-private/virt-serial0.log", check=False, timeout=30), c.BOOT_TIMEOUT, 5)
    finally:
        c.kubectl("delete", "vmi", "vmi-kernel", "-n", ns, "--wait=true", "--timeout=300s", check=False, timeout=320)
