"""kubevirt.ops.vm / vm_info / vmi_info against a real kube-apiserver with the aggregation layer, virt-api (its
webhooks decide what is stored, its subresources start and stop) and virt-controller (VM -> VMI -> pod).

No kubelet, scheduler or virt-handler run here: a `PlayedNode` thread does their part for the test's
namespace (binds and runs launcher pods, reports the VMI Running and Ready, removes deleted pods), so
waits end the way they do on a cluster. Real guests, the console and pause are in the e2e playbook.

Each call runs the module file as Ansible runs a module (its arguments in a JSON file, check and diff mode
as Ansible passes them), so argument parsing, exit_json and fail_json are the real ones.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from apiserver import bind_pod, force_delete_pod, set_pod_phase
from conftest import ControllerProcess, ensure_namespace
from virtapi_plane import FrontProxyControlPlane, VirtAPI

from kubevirt_runtime.api.crdgen import load_crds
from kubevirt_runtime.machinery.resource import PODS, VMIS, VMS, ApiError, Resource, ResourceClient
from tests.conftest import BIN_DIR, REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SPEC = {"domain": {"memory": {"guest": "64Mi"}, "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]}},
        "volumes": [{"name": "root", "containerDisk": {"image": "example/disk:1"}}],
        "terminationGracePeriodSeconds": 0}
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")


@pytest.fixture(scope="module")
def plane():
    plane = FrontProxyControlPlane(BIN_DIR, Path(tempfile.mkdtemp(prefix="kubevirt-ops-vm-modules-")))
    plane.start()
    try:
        plane.install_crds(load_crds())
        ensure_namespace(plane.api_client, "kubevirt")
        virt_api = VirtAPI(plane).start()
        controller = ControllerProcess(plane, plane.workdir, True, (), 1)
        try:
            virt_api.register()
            yield plane
        finally:
            controller.terminate()
            virt_api.stop()
    finally:
        plane.stop()


class PlayedNode(threading.Thread):
    """Scheduler, kubelet and virt-handler for one namespace, as far as the API can tell."""

    def __init__(self, api_client, namespace):
        super().__init__(daemon=True)
        self.api, self.ns = api_client, namespace
        self.pods, self.vmis = ResourceClient(api_client, PODS), ResourceClient(api_client, VMIS)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(0.3):
            try:
                self.step()
            except ApiError:
                pass  # objects come and go; the next round sees the new state

    def step(self):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for pod in self.pods.list(self.ns, label_selector="kubevirt.io=virt-launcher")["items"]:
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp"):
                force_delete_pod(self.api, self.ns, name)
            elif not pod["spec"].get("nodeName"):
                bind_pod(self.api, self.ns, name, "node01")
            elif (pod.get("status") or {}).get("phase") != "Running":
                set_pod_phase(self.api, self.ns, name, "Running", ready=True)
        for vmi in self.vmis.list(self.ns)["items"]:
            status = vmi.get("status") or {}
            if status.get("phase") == "Scheduled" and not vmi["metadata"].get("deletionTimestamp"):
                status["phase"] = "Running"
                status.setdefault("phaseTransitionTimestamps", []).append(
                    {"phase": "Running", "phaseTransitionTimestamp": now})
                status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != "Ready"] + [
                    {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}]
                status["interfaces"] = [{"name": "default", "ipAddress": "10.244.0.9",
                                         "ipAddresses": ["10.244.0.9"]}]
                self.vmis.update(vmi, subresource="status")


@pytest.fixture
def ns(plane):
    name = f"test-{uuid.uuid4().hex[:8]}"
    ensure_namespace(plane.api_client, name)
    node = PlayedNode(plane.api_client, name)
    node.start()
    yield name
    node.stopping.set()


def module(plane, module_name, check=False, diff=False, kubeconfig=True, **args):
    """Runs kubevirt.ops.<module_name> as Ansible would; returns its JSON result."""
    if kubeconfig:
        args.setdefault("kubeconfig", str(plane.kubeconfig))
    args.update(_ansible_check_mode=check, _ansible_diff=diff)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, fh)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "collections"), str(REPO / "src")]))
    try:
        proc = subprocess.run([sys.executable, "-m", f"ansible_collections.kubevirt.ops.plugins.modules.{module_name}",
                               fh.name], capture_output=True, text=True, timeout=300, env=env)
    finally:
        os.unlink(fh.name)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{module_name} printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}") from None


def vm_task(plane, ns, **args):
    args.setdefault("name", "vm1")
    args.setdefault("namespace", ns)
    args.setdefault("wait_sleep", 1)
    return module(plane, "vm", **args)


def stored(plane, ns, name="vm1"):
    try:
        return ResourceClient(plane.api_client, VMS).get(name, ns)
    except ApiError as exc:
        if exc.not_found:
            return None
        raise


def test_create_is_idempotent_and_updates_show_only_what_changed(plane, ns):
    predicted = vm_task(plane, ns, check=True, diff=True, run_strategy="Halted", spec=SPEC)
    assert predicted["changed"] and predicted["method"] == "create"
    assert stored(plane, ns) is None  # a server-side dry run: nothing stored ...
    # ... yet the mutating webhook ran on it
    assert predicted["result"]["spec"]["template"]["spec"]["domain"]["machine"]["type"] == "q35"
    created = vm_task(plane, ns, run_strategy="Halted", spec=SPEC, labels={"app": "vm1"})
    assert created["changed"] and created["method"] == "create"
    assert "managedFields" not in created["result"]["metadata"]
    again = vm_task(plane, ns, run_strategy="Halted", spec=SPEC, labels={"app": "vm1"}, diff=True)
    assert again["changed"] is False and again["method"] == "update" and "diff" not in again
    relabel = dict(run_strategy="Halted", spec=SPEC, labels={"app": "vm1", "team": "a"})
    predicted = vm_task(plane, ns, check=True, diff=True, **relabel)
    assert predicted["changed"] and stored(plane, ns)["metadata"]["labels"] == {"app": "vm1"}
    real = vm_task(plane, ns, diff=True, **relabel)
    assert real["changed"] and real["diff"]["after"] == predicted["diff"]["after"]
    assert real["diff"]["after"]["metadata"]["labels"] == {"team": "a"}
    assert real["diff"]["after"]["spec"]["template"]["metadata"]["labels"]["team"] == "a"
    assert set(real["diff"]["after"]) == {"metadata", "spec"}


def test_every_lifecycle_state_with_wait_and_honest_changed(plane, ns):
    vm_task(plane, ns, run_strategy="Halted", spec=SPEC)
    predicted = vm_task(plane, ns, state="started", check=True, diff=True)
    assert predicted["changed"] is True and predicted["diff"]["after"]["spec"] == {"runStrategy": "Always"}
    assert stored(plane, ns)["spec"]["runStrategy"] == "Halted"

    started = vm_task(plane, ns, state="started", wait=True, wait_timeout=120, diff=True)
    assert started["changed"] is True, started
    assert started["diff"] == dict(predicted["diff"])
    assert started["result"]["status"]["printableStatus"] == "Running"
    assert started["vmi"]["status"]["phase"] == "Running"
    steps = {s["step"]: s for s in started["timeline"]}
    assert list(steps) == ["vmi_created", "pod_scheduled", "pod_ready", "domain_started", "vmi_running"]
    assert steps["vmi_created"]["seconds"] == 0 and steps["vmi_running"]["seconds"] >= 0
    assert steps["pod_ready"]["time"] is not None
    for check in (True, False):
        again = vm_task(plane, ns, state="started", wait=True, check=check)
        assert again["changed"] is False, again

    old_uid = started["vmi"]["metadata"]["uid"]
    restarted = vm_task(plane, ns, state="restarted", wait=True, wait_timeout=120)
    assert restarted["changed"] is True and restarted["vmi"]["metadata"]["uid"] != old_uid

    predicted = vm_task(plane, ns, state="stopped", check=True, diff=True)
    assert predicted["changed"] and predicted["diff"]["after"]["status"]["printableStatus"] == "Stopped"
    stopped = vm_task(plane, ns, state="stopped", wait=True, wait_timeout=120)
    assert stopped["changed"] is True
    ready = [c for c in stopped["result"]["status"]["conditions"] if c["type"] == "Ready"][0]
    assert (ready["status"], ready["reason"]) == ("False", "VMINotExists")
    for check in (True, False):
        assert vm_task(plane, ns, state="stopped", wait=True, check=check)["changed"] is False

    refused = vm_task(plane, ns, state="restarted", check=True)
    assert refused["failed"] and "Halted does not support manual restart requests" in refused["msg"]
    refused = vm_task(plane, ns, state="paused")
    assert refused["failed"] and "VMI vm1 is not running (no instance)" in refused["msg"]
    assert vm_task(plane, ns, state="unpaused")["changed"] is False


def test_present_waits_as_running_says_and_absent_waits_until_gone(plane, ns):
    done = vm_task(plane, ns, spec=SPEC, running=True, wait=True, wait_timeout=120)
    assert done["changed"] and done["result"]["status"]["ready"] is True and "timeline" in done
    # kubevirt.core's default on an existing VM: running: true, runStrategy removed
    assert stored(plane, ns)["spec"]["running"] is True
    predicted = vm_task(plane, ns, state="absent", check=True)
    assert predicted["changed"] and stored(plane, ns) is not None
    gone = vm_task(plane, ns, state="absent", wait=True, wait_timeout=120)
    assert gone["changed"] and gone["method"] == "delete" and stored(plane, ns) is None, gone
    assert vm_task(plane, ns, state="absent")["changed"] is False


def test_rejected_spec_lists_the_webhooks_causes_one_per_line(plane, ns):
    bad = json.loads(json.dumps(SPEC))
    bad["domain"]["devices"]["disks"].append({"name": "data", "disk": {}})
    bad["domain"]["devices"]["interfaces"] = [{"name": "nic", "bridge": {}}]
    for check in (True, False):
        result = vm_task(plane, ns, spec=bad, check=check)
        assert result["failed"] and result["status"] == 422
        lines = result["msg"].splitlines()
        assert lines[0] == 'VirtualMachine "vm1" was rejected as invalid (422 Invalid):', result["msg"]
        assert lines[1].startswith("spec.template.spec.domain.devices.disks[1].name: disk 'data' has no volume"), lines
        assert lines[2].startswith("spec.template.spec.domain.devices.interfaces[0]"), lines
        assert len(lines) >= 3 and all(line.startswith("spec.") for line in lines[1:]), lines
        assert {c["field"] for c in result["causes"]} >= {"spec.template.spec.domain.devices.disks[1].name"}
    assert stored(plane, ns) is None


def test_forbidden_requests_name_verb_and_resource(plane, ns):
    vm_task(plane, ns, run_strategy="Halted", spec=SPEC)
    roles, bindings = ResourceClient(plane.api_client, ROLES), ResourceClient(plane.api_client, BINDINGS)
    roles.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "vm-editor"},
                  "rules": [{"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
                             "verbs": ["get", "list", "watch", "patch"]}]}, ns)
    for user, role in (("editor", "vm-editor"),):
        bindings.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                         "metadata": {"name": user},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                         "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]}, ns)
    # may patch the VM, may not start it
    result = vm_task(plane, ns, state="started", impersonate_user="editor")
    assert result["failed"] and result["status"] == 403
    assert result["msg"].startswith('forbidden: update on virtualmachines.subresources.kubevirt.io/start "vm1" in '
                                    f'namespace "{ns}" was refused'), result["msg"]
    # may not delete it
    result = vm_task(plane, ns, state="absent", impersonate_user="editor")
    assert result["failed"] and result["msg"].startswith('forbidden: delete on virtualmachines.kubevirt.io "vm1"')
    # a stranger may not even read it, and the environment supplies the identity as K8S_AUTH_* would
    os.environ["K8S_AUTH_IMPERSONATE_USER"] = "stranger"
    try:
        result = vm_task(plane, ns, state="stopped")
    finally:
        del os.environ["K8S_AUTH_IMPERSONATE_USER"]
    assert result["failed"] and result["msg"].startswith('forbidden: get on virtualmachines.kubevirt.io "vm1"')
    assert "stranger" in result["msg"]


def test_not_found(plane, ns):
    result = vm_task(plane, ns, state="started")
    assert result["failed"] and f"VirtualMachine {ns}/vm1 does not exist" in result["msg"]
    result = vm_task(plane, ns, api_version="kubevirt.io/v9", spec=SPEC)
    assert result["failed"] and result["status"] == 404 and result["msg"].startswith("not found: virtualmachines")
    info = module(plane, "vm_info", namespace=ns, name="nope")
    assert info == {"changed": False, "api_found": True, "resources": [], "invocation": info["invocation"]}
    info = module(plane, "vm_info", namespace=ns, api_version="kubevirt.io/v9")
    assert info["api_found"] is False and info["resources"] == []


def test_info_modules_find_and_wait(plane, ns):
    vm_task(plane, ns, name="a", run_strategy="Always", spec=SPEC, labels={"tier": "web"})
    vm_task(plane, ns, name="b", run_strategy="Halted", spec=SPEC, labels={"tier": "db"})
    running = module(plane, "vm_info", namespace=ns, name="a", wait=True, wait_sleep=1, wait_timeout=120)
    assert [r["status"]["printableStatus"] for r in running["resources"]] == ["Running"]
    halted = module(plane, "vm_info", namespace=ns, label_selectors=["tier=db"], running=False, wait=True,
                    wait_sleep=1)
    assert [r["metadata"]["name"] for r in halted["resources"]] == ["b"]
    assert "managedFields" not in halted["resources"][0]["metadata"]
    missing_wait = module(plane, "vm_info", namespace=ns, running=False)
    assert missing_wait["failed"] and "missing parameter(s) required by 'running': wait" in missing_wait["msg"]
    vmis = module(plane, "vmi_info", namespace=ns, wait=True, wait_sleep=1, field_selectors=["metadata.name=a"])
    assert [v["metadata"]["name"] for v in vmis.get("resources", [])] == ["a"], vmis
    assert vmis["resources"][0]["status"]["interfaces"][0]["ipAddress"] == "10.244.0.9"
    # kubevirt.core returns nothing for a selector the API cannot use; this says why
    unsupported = module(plane, "vmi_info", namespace=ns, field_selectors=["status.phase=Running"])
    assert unsupported["failed"] and unsupported["status"] == 400
    assert "field label not supported: status.phase" in unsupported["msg"]
    everywhere = module(plane, "vm_info", label_selectors=["tier=web"])
    assert ns in {r["metadata"]["namespace"] for r in everywhere["resources"]}
