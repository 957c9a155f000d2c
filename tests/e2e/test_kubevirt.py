"""KubeVirt on the local cluster: the demo VM from examples/ end to end, the components' resilience,
and a clean uninstall. VMs boot with TCG here, so waits are minutes long.

Console paths checked here: (a) the launcher's serial log (/var/run/kubevirt-private/virt-serial0.log
in the compute container: the whole boot, for the markers) and (b) live through virt-handler's mTLS
console WebSocket with virt-api's client certificate (what virt-api proxies; virtctl console through
virt-api itself is covered by test_virtapi.py).
"""
import base64
import json
import ssl
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

CLOUD_INIT = "cloud-init ran: hello from user-data"
TOOLBOX = "docker.io/kubevirt-ops/toolbox:v1.36.3"
SERIAL_LOG = "/var/run/kubevirt-private/virt-serial0.log"
NS = c.KUBEVIRT_NAMESPACE
MANIFEST = c.DEMO_MANIFEST
MARKER = c.DEMO_MARKER
BOOT_TIMEOUT = c.BOOT_TIMEOUT
DEPLOY_EXTRA = c.DEPLOY_EXTRA
wait_for, get = c.wait_for, c.get


def launcher_pods(vm):
    return c.kubectl_json("get", "pods", "-n", vm.namespace, "-l",
                          f"kubevirt.io=virt-launcher,vm.kubevirt.io/name={vm.name}")["items"]


class DemoVM:
    def __init__(self):
        docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
        self.vm = next(d for d in docs if d["kind"] == "VirtualMachine")
        self.name = self.vm["metadata"]["name"]
        self.namespace = self.vm["metadata"].get("namespace", "default")
        self.timings = {}

    def status(self):
        return (get("vm", self.name, self.namespace) or {}).get("status") or {}

    def vmi(self):
        return get("vmi", self.name, self.namespace)

    def running_pod(self):
        pods = [p for p in launcher_pods(self) if p["status"].get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")]
        return pods[0] if pods else None

    def serial_log(self):
        pod = self.running_pod()
        if not pod:
            return ""
        return c.kubectl("exec", "-n", self.namespace, pod["metadata"]["name"], "-c", "compute", "--",
                         "cat", SERIAL_LOG, check=False, timeout=30)

    def set_run_strategy(self, strategy):
        spec = get("vm", self.name, self.namespace)["spec"]
        patch = {"spec": {"runStrategy": strategy}}
        if "running" in spec:  # the two fields are exclusive
            patch = {"spec": {"running": strategy == "Always"}}
        c.kubectl("patch", "vm", self.name, "-n", self.namespace, "--type=merge", "-p", json.dumps(patch))

    def wait_running(self, timeout=BOOT_TIMEOUT):
        wait_for(f"VM {self.name} printableStatus Running",
                 lambda: self.status().get("printableStatus") == "Running", timeout)
        wait_for(f"VMI {self.name} phase Running",
                 lambda: ((self.vmi() or {}).get("status") or {}).get("phase") == "Running", 60)


@pytest.fixture(scope="module")
def kubevirt(cluster):
    """KubeVirt deployed (cluster-up does it; on a cluster that predates it, deploy.yml does)."""
    if not get("deployment", "virt-controller", NS):
        c.run_playbook("deploy", *DEPLOY_EXTRA)
    return cluster


@pytest.fixture(scope="module")
def demo(kubevirt):
    assert MANIFEST.exists(), f"{MANIFEST} is missing"
    vm = DemoVM()
    yield vm
    # Leave the demo VM as cluster-up leaves it (running), unless KubeVirt was uninstalled meanwhile.
    if get("deployment", "virt-controller", NS):
        c.kubectl("apply", "-f", str(MANIFEST), check=False)
    for name, seconds in vm.timings.items():
        print(f"\n{name}: {seconds:.1f}s")


def test_components_are_available(kubevirt):
    controller = get("deployment", "virt-controller", NS)
    assert controller["status"].get("availableReplicas") == 2
    handler = get("daemonset", "virt-handler", NS)
    assert handler["status"]["numberReady"] == handler["status"]["desiredNumberScheduled"] >= 1
    lease = wait_for("the virt-controller Lease to have a holder",
                     lambda: ((get("lease", "virt-controller", NS) or {}).get("spec") or {}).get("holderIdentity"), 60)
    pods = {p["metadata"]["name"] for p in
            c.kubectl_json("get", "pods", "-n", NS, "-l", "kubevirt.io=virt-controller")["items"]}
    assert any(lease.startswith(p) for p in pods), (lease, pods)
    kv = get("kubevirt", "kubevirt", NS)
    assert kv["spec"]["configuration"]["developerConfiguration"]["useEmulation"] is True
    # Least privilege: no component is bound to cluster-admin.
    bindings = c.kubectl_json("get", "clusterrolebindings")["items"]
    for b in bindings:
        for s in b.get("subjects") or []:
            if s.get("namespace") == NS:
                assert b["roleRef"]["name"] != "cluster-admin", b["metadata"]["name"]


def test_demo_vm_runs_and_its_console_shows_the_markers(demo):
    if get("vm", demo.name, demo.namespace):  # cluster-up made it: start over to time it from apply
        c.kubectl("delete", "-f", str(MANIFEST), "--wait=true", "--timeout=300s")
        wait_for("the old launcher pod to go", lambda: not launcher_pods(demo), 300)
    start = time.monotonic()
    c.kubectl("apply", "-f", str(MANIFEST))
    demo.wait_running()
    demo.timings["apply -> VM Running"] = time.monotonic() - start
    wait_for("the console marker", lambda: MARKER in demo.serial_log(), BOOT_TIMEOUT, interval=3)
    demo.timings["apply -> console marker"] = time.monotonic() - start
    log = demo.serial_log()
    assert CLOUD_INIT in log, log[-2000:]
    print(f"\napply -> Running {demo.timings['apply -> VM Running']:.1f}s, "
          f"apply -> console marker {demo.timings['apply -> console marker']:.1f}s")


def test_console_through_virt_handler(demo):
    """virt-handler's console WebSocket (what virt-api proxies), with virt-api's client certificate."""
    from websockets.sync.client import connect

    pod = demo.running_pod()
    assert pod, "no running launcher pod"
    handler_pod = next(p for p in c.kubectl_json("get", "pods", "-n", NS, "-l", "kubevirt.io=virt-handler")["items"]
                       if p["spec"]["nodeName"] == pod["spec"]["nodeName"])
    secret = get("secret", "virt-api-handler-client-certs", NS)["data"]
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for key in ("tls.crt", "tls.key", "ca.crt"):
            files[key] = Path(tmp) / key
            files[key].write_bytes(base64.b64decode(secret[key]))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_cert_chain(files["tls.crt"], files["tls.key"])
        ctx.load_verify_locations(files["ca.crt"])
        ctx.check_hostname = False  # the handler's address is its pod IP; trust comes from the private CA
        url = (f"wss://{handler_pod['status']['podIP']}:8186/v1/namespaces/{demo.namespace}"
               f"/virtualmachineinstances/{demo.name}/console")
        with connect(url, ssl=ctx, subprotocols=["plain.kubevirt.io"], open_timeout=20) as ws:
            ws.send(b"\r")
            received = b""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not received.strip():
                try:
                    received += ws.recv(timeout=5) or b""
                except TimeoutError:
                    ws.send(b"\r")
            assert received.strip(), "the guest did not answer on its serial console"


def test_port_80_answers_inside_the_cluster(demo):
    pod_ip = demo.running_pod()["status"]["podIP"]
    name = "kvo-e2e-wget"
    c.kubectl("delete", "pod", name, "-n", demo.namespace, "--ignore-not-found", "--wait=true")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": demo.namespace},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "wget", "image": TOOLBOX, "imagePullPolicy": "Never",
               # The toolbox's busybox wget segfaults (exit 139) on this image build; then the same GET
               # goes through busybox nc, and the output says which client answered.
               "command": ["/bin/sh", "-c", f"for i in $(seq 60); do wget -T 5 -qO- http://{pod_ip}; rc=$?; "
                           "[ $rc = 0 ] && exit 0; "
                           f"if [ $rc = 139 ]; then echo 'wget crashed; using nc'; "
                           f"out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {pod_ip} 80); "
                           "[ -n \"$out\" ] && echo \"$out\" && exit 0; fi; "
                           "sleep 2; done; exit 1"]}]}}
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        phase = wait_for("the wget pod to finish", lambda: (get("pod", name, demo.namespace)["status"].get("phase")
                                                           in ("Succeeded", "Failed")) and
                         get("pod", name, demo.namespace)["status"]["phase"], 240)
        body = c.kubectl("logs", "-n", demo.namespace, name, check=False)
        assert phase == "Succeeded", body
        assert body.strip(), "empty HTTP answer"
    finally:
        c.kubectl("delete", "pod", name, "-n", demo.namespace, "--ignore-not-found", "--wait=false")


def test_deleting_virt_handler_keeps_the_vm_running(demo):
    launcher = demo.running_pod()
    handler = c.kubectl_json("get", "pods", "-n", NS, "-l", "kubevirt.io=virt-handler")["items"][0]
    c.kubectl("delete", "pod", "-n", NS, handler["metadata"]["name"], "--wait=true")
    c.kubectl("rollout", "status", "-n", NS, "daemonset/virt-handler", "--timeout=180s", timeout=200)
    new = c.kubectl_json("get", "pods", "-n", NS, "-l", "kubevirt.io=virt-handler")["items"]
    assert handler["metadata"]["uid"] not in {p["metadata"]["uid"] for p in new}
    # Same launcher pod, same guest; the new handler finds it again and the status stays right.
    still = demo.running_pod()
    assert still and still["metadata"]["uid"] == launcher["metadata"]["uid"]
    assert demo.vmi()["status"]["phase"] == "Running"
    assert demo.status()["printableStatus"] == "Running"
    # The new handler drives the VMI: a stop goes through it (checked by the next test), and the guest
    # keeps answering on its serial log meanwhile.
    assert MARKER in demo.serial_log()


def test_stop_then_start(demo):
    demo.set_run_strategy("Halted")
    wait_for("printableStatus Stopped", lambda: demo.status().get("printableStatus") == "Stopped", 300)
    wait_for("the launcher pod to go", lambda: not launcher_pods(demo), 300)
    assert demo.vmi() is None
    demo.set_run_strategy("Always")
    demo.wait_running()


def test_deleting_the_vm_removes_vmi_and_pod(demo):
    c.kubectl("delete", "vm", demo.name, "-n", demo.namespace, "--wait=true", "--timeout=300s", timeout=320)
    wait_for("the VMI to go", lambda: demo.vmi() is None, 120)
    wait_for("the launcher pod to go", lambda: not launcher_pods(demo), 300)


def test_uninstall_is_clean(kubevirt):
    # A VM that is starting (VMI + launcher pod with finalizers) while KubeVirt is removed.
    c.kubectl("apply", "-f", str(MANIFEST))
    demo = DemoVM()
    wait_for("the demo VMI to exist", demo.vmi, 120)
    c.run_playbook("deploy", *DEPLOY_EXTRA, "-e", "kubevirt_state=absent")
    crds = [x["metadata"]["name"] for x in c.kubectl_json("get", "crd")["items"] if x["spec"]["group"] == "kubevirt.io"]
    assert crds == []
    assert not c.kubectl("get", "namespace", NS, "--ignore-not-found").strip()
    leftovers = [x["metadata"]["name"] for kind in ("clusterroles", "clusterrolebindings")
                 for x in c.kubectl_json("get", kind)["items"] if x["metadata"]["name"].startswith("kubevirt")]
    assert leftovers == []
    assert not c.kubectl_json("get", "pods", "-A", "-l", "kubevirt.io=virt-launcher")["items"]
    # Removing again changes nothing.
    _, output, _ = c.run_playbook("deploy", *DEPLOY_EXTRA, "-e", "kubevirt_state=absent")
    assert c.recap_changed(output) == 0
    # Put KubeVirt back: the modules after this one (migration, network, storage, ...) run VMs on it.
    c.run_playbook("deploy", *DEPLOY_EXTRA)
