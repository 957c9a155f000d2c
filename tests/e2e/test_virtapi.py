"""virt-api on the local cluster: webhooks reject what is invalid (naming the field), and virtctl drives the
demo VM through the aggregated API (kube-apiserver -> front-proxy -> virt-api -> virt-handler):
stop/start, pause/unpause and the serial console (non-interactive, hack/virtctl.sh)."""
import subprocess

import pytest
import yaml

from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

VM_NAME = "vm-demo"
VM_NS = "default"
NS = c.KUBEVIRT_NAMESPACE
MANIFEST = c.DEMO_MANIFEST
MARKER = c.DEMO_MARKER
BOOT_TIMEOUT = c.BOOT_TIMEOUT
wait_for, get = c.wait_for, c.get


virtctl = c.virtctl


def vmi():
    return get("vmi", VM_NAME, VM_NS)


def vmi_running():
    obj = vmi()
    return obj if obj and (obj.get("status") or {}).get("phase") == "Running" \
        and not obj["metadata"].get("deletionTimestamp") else None


def paused(obj):
    return any(x.get("type") == "Paused" and x.get("status") == "True"
               for x in ((obj or {}).get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def virt_api(cluster):
    c.ensure_kubevirt()


@pytest.fixture(scope="module")
def demo(virt_api):
    c.kubectl("apply", "-f", str(MANIFEST))
    vm = get("vm", VM_NAME, VM_NS)
    if vm["spec"].get("runStrategy") == "Halted":
        virtctl("start", VM_NAME, "-n", VM_NS)
    wait_for("vm-demo's VMI Running", vmi_running, BOOT_TIMEOUT, 5)
    yield
    # leave it as cluster-up leaves it: running
    vm = get("vm", VM_NAME, VM_NS)
    if vm and vm["spec"].get("runStrategy") == "Halted":
        virtctl("start", VM_NAME, "-n", VM_NS)
    if paused(vmi()):
        virtctl("unpause", "vmi", VM_NAME, "-n", VM_NS)


def test_invalid_vm_is_rejected_naming_the_field(virt_api):
    bad = yaml.safe_load(MANIFEST.read_text())
    bad["metadata"]["name"] = "vm-invalid"
    bad["spec"]["template"]["spec"]["domain"]["devices"]["disks"].append({"name": "nodisk", "disk": {}})
    proc = subprocess.run([str(c.KUBECTL), "--kubeconfig", str(c.KUBECONFIG), "apply", "-f", "-"],
                          input=yaml.safe_dump(bad), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "spec.template.spec.domain.devices.disks[2].name" in proc.stderr, proc.stderr
    assert "nodisk" in proc.stderr
    assert get("vm", "vm-invalid", VM_NS) is None
    assert not c.kubectl_json("get", "pods", "-A", "-l", "vm.kubevirt.io/name=vm-invalid")["items"]


def test_valid_vmi_is_defaulted_by_the_webhook(demo):
    domain = vmi()["spec"]["domain"]
    assert domain["machine"]["type"] == "q35" and domain["cpu"]["sockets"] == 1


def test_pause_unpause_round_trip(demo):
    result = virtctl("pause", "vmi", VM_NAME, "-n", VM_NS)
    assert result.returncode == 0, result.stderr
    wait_for("VMI Paused condition", lambda: paused(vmi()), 120)
    wait_for("VM printableStatus Paused",
             lambda: (get("vm", VM_NAME, VM_NS).get("status") or {}).get("printableStatus") == "Paused", 60)
    again = virtctl("pause", "vmi", VM_NAME, "-n", VM_NS)
    assert again.returncode == 1 and "already paused" in again.stderr
    result = virtctl("unpause", "vmi", VM_NAME, "-n", VM_NS)
    assert result.returncode == 0, result.stderr
    wait_for("VMI not paused", lambda: not paused(vmi()), 120)
    assert vmi()["status"]["phase"] == "Running"


def test_stop_start_and_the_console_shows_the_boot(demo):
    old_uid = vmi()["metadata"]["uid"]
    result = virtctl("stop", VM_NAME, "-n", VM_NS)
    assert result.returncode == 0, result.stderr
    assert get("vm", VM_NAME, VM_NS)["spec"]["runStrategy"] == "Halted"
    wait_for("VMI gone", lambda: vmi() is None, 300)
    wait_for("VM Stopped", lambda: get("vm", VM_NAME, VM_NS)["status"].get("printableStatus") == "Stopped", 60)
    result = virtctl("start", VM_NAME, "-n", VM_NS)
    assert result.returncode == 0, result.stderr
    wait_for("a new VMI", lambda: (vmi() or {}).get("metadata", {}).get("uid") not in (None, old_uid), 120, 1)
    # virtctl keeps retrying while the VMI is not Running yet, so it is there for the whole boot
    console = virtctl("console", VM_NAME, "-n", VM_NS, "--until", MARKER, "--timeout", str(BOOT_TIMEOUT),
                      timeout=BOOT_TIMEOUT + 60)
    assert console.returncode == 0, console.stderr[-2000:] + console.stdout[-2000:]
    assert MARKER in console.stdout
    assert vmi_running()
