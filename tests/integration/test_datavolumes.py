"""virt-controller's DataVolume controller against a real API server, with the real virt-importer playing the
importer pod's container (the test is the scheduler and the kubelet: it binds the pod, runs the pod's command
on a directory standing in for the PVC, and reports how the container ended)."""
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from apiserver import bind_pod, force_delete_pod, wait_for

from kubevirt_runtime.api import cdi
from kubevirt_runtime.controller.datavolume import DATAVOLUMES, PVCS
from kubevirt_runtime.machinery.resource import PODS, ApiError, ResourceClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
MiB = 1 << 20


@pytest.fixture
def image_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with open(root / "disk.img", "wb") as f:
        f.write(b"demo" * 1024)
        f.truncate(2 * MiB)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


class Storage:
    def __init__(self, api_client, namespace, tmp_path):
        self.api, self.ns, self.tmp = api_client, namespace, tmp_path
        self.dvs = ResourceClient(api_client, DATAVOLUMES)
        self.pvcs = ResourceClient(api_client, PVCS)
        self.pods = ResourceClient(api_client, PODS)

    def create(self, name, url, size="16Mi"):
        return self.dvs.create({"apiVersion": cdi.API_VERSION, "kind": cdi.KIND, "metadata": {"name": name},
                                "spec": {"source": {"http": {"url": url}},
                                         "storage": {"resources": {"requests": {"storage": size}}}}}, self.ns)

    def dv(self, name):
        return self.dvs.get(name, self.ns)

    def phase(self, name):
        return (self.dv(name).get("status") or {}).get("phase")

    def run_importer(self, pod):
        """Plays the kubelet: runs the container's command with /data on a local directory; returns the
        container's exit code and termination message."""
        data = self.tmp / pod["metadata"]["name"]
        data.mkdir(exist_ok=True)
        command = [str(data) if arg == "/data" else arg for arg in pod["spec"]["containers"][0]["command"][1:]]
        log = self.tmp / f"{pod['metadata']['name']}.termination"
        proc = subprocess.run([sys.executable, "-m", "kubevirt_runtime.importer.main", *command, "--port", "0"],
                              env=dict(os.environ, TERMINATION_LOG=str(log)), capture_output=True, text=True)
        return proc.returncode, log.read_text(), data

    def report(self, pod, code, message, restarts=0):
        terminated = {"terminated": {"exitCode": code, "message": message, "reason": "Completed" if code == 0
                                     else "Error"}}
        container = {"name": "importer", "ready": False, "restartCount": restarts, "image": "x", "imageID": "",
                     "state": terminated if code == 0 else {"running": {}}}
        if code != 0:
            container["lastState"] = terminated
        phase = "Succeeded" if code == 0 else "Running"
        self.pods.patch_status(pod["metadata"]["name"], {"status": {"phase": phase,
                                                                     "containerStatuses": [container]}}, self.ns)


@pytest.fixture
def storage(api_client, namespace, tmp_path):
    return Storage(api_client, namespace, tmp_path)


def importer_pod(storage, name):
    return wait_for(lambda: storage.pods.get(f"importer-{name}", storage.ns), message=f"importer pod of {name}")


def test_http_import_to_succeeded(storage, image_server, virt_controller):
    url, root = image_server
    virt_controller()
    storage.create("imported", f"{url}/disk.img")
    pvc = wait_for(lambda: storage.pvcs.get("imported", storage.ns), message="the DataVolume's PVC")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "16Mi"
    assert pvc["metadata"]["ownerReferences"][0]["kind"] == "DataVolume"
    pod = importer_pod(storage, "imported")
    wait_for(lambda: storage.phase("imported") == "ImportScheduled", message="ImportScheduled")
    bind_pod(storage.api, storage.ns, pod["metadata"]["name"], "node01")
    code, message, data = storage.run_importer(pod)
    assert code == 0, message
    assert (data / "disk.img").read_bytes()[:2 * MiB] == (root / "disk.img").read_bytes()
    assert (data / "disk.img").stat().st_size == cdi.image_size(16 * MiB)
    storage.report(pod, code, message)
    wait_for(lambda: storage.phase("imported") == "Succeeded", message="Succeeded")
    status = storage.dv("imported")["status"]
    assert status["progress"] == "100.0%" and status["claimName"] == "imported"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    pvc = storage.pvcs.get("imported", storage.ns)
    assert pvc["metadata"]["annotations"][cdi.POPULATED_FOR] == "imported"

    def pod_gone():
        try:
            found = storage.pods.get(pod["metadata"]["name"], storage.ns)
        except ApiError as exc:
            return exc.not_found
        if found["metadata"].get("deletionTimestamp"):
            force_delete_pod(storage.api, storage.ns, pod["metadata"]["name"])
        return False
    wait_for(pod_gone, message="the importer pod deleted")


def test_bad_url_fails_with_the_importers_message(storage, image_server, virt_controller):
    url, _root = image_server
    virt_controller()
    storage.create("missing", f"{url}/no-such-disk.img")
    pod = importer_pod(storage, "missing")
    bind_pod(storage.api, storage.ns, pod["metadata"]["name"], "node01")
    code, message, _data = storage.run_importer(pod)
    assert code == 2 and json.loads(message)["permanent"]
    storage.report(pod, code, message, restarts=1)
    wait_for(lambda: storage.phase("missing") == "Failed", message="Failed")
    ready = [c for c in storage.dv("missing")["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["reason"] == "Error" and "got 404" in ready["message"]


def test_webhook_free_api_server_still_refuses_nothing_we_check_here(storage):
    """Without virt-api the CRD schema alone keeps upstream's field types (the webhook names the rest)."""
    with pytest.raises(ApiError) as refused:
        storage.dvs.create({"apiVersion": cdi.API_VERSION, "kind": cdi.KIND, "metadata": {"name": "typed"},
                            "spec": {"source": {"http": {"url": 7}}, "storage": {}}}, storage.ns)
    assert refused.value.status == 422


def test_vm_with_a_datavolume_template_starts_once_it_is_imported(storage, image_server, virt_controller):
    from kubevirt_runtime.machinery.resource import VMIS, VMS
    url, _root = image_server
    virt_controller()
    vms, vmis = ResourceClient(storage.api, VMS), ResourceClient(storage.api, VMIS)
    vms.create({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"},
                "spec": {"runStrategy": "Always",
                         "dataVolumeTemplates": [{"metadata": {"name": "vm-root"}, "spec": {
                             "source": {"http": {"url": f"{url}/disk.img"}},
                             "storage": {"resources": {"requests": {"storage": "16Mi"}}}}}],
                         "template": {"spec": {"domain": {"memory": {"guest": "64Mi"},
                                                          "devices": {"disks": [{"name": "root", "disk": {}}]}},
                                               "volumes": [{"name": "root", "dataVolume": {"name": "vm-root"}}]}}}},
               storage.ns)
    dv = wait_for(lambda: storage.dv("vm-root"), message="the template's DataVolume")
    assert dv["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"
    wait_for(lambda: (vms.get("vm", storage.ns).get("status") or {}).get("printableStatus") == "Provisioning",
             message="printableStatus Provisioning")
    with pytest.raises(ApiError):
        vmis.get("vm", storage.ns)  # no VMI while its disk is being imported
    pod = importer_pod(storage, "vm-root")
    bind_pod(storage.api, storage.ns, pod["metadata"]["name"], "node01")
    code, message, _data = storage.run_importer(pod)
    storage.report(pod, code, message)
    vmi = wait_for(lambda: vmis.get("vm", storage.ns), message="the VMI once the DataVolume Succeeded")
    launcher = wait_for(lambda: storage.pods.list(storage.ns, label_selector="kubevirt.io/created-by="
                                                  + vmi["metadata"]["uid"])["items"], message="launcher pod")[0]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in launcher["spec"]["volumes"]
              if v.get("persistentVolumeClaim")]
    assert claims == ["vm-root"]
