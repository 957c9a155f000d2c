"""DataVolume imports besides the shared VM's (tests/e2e/storage.py): BIG_MIB of noise over http from the web
server pod (the import throughput is printed), the demo disk from the node's containerd (registry source), a
qcow2 image from this host with `virtctl image-upload` (upload source), and a URL the server does not have,
which fails the DataVolume with the importer's message."""
import subprocess
import time

import pytest

from tests.e2e import cluster as c
from tests.e2e import storage as s

pytestmark = pytest.mark.e2e

NS = "kvo-import"


def datavolume(name, source, size):
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"source": source, "storage": {"resources": {"requests": {"storage": size}}}}}


def status(name):
    return (c.get("dv", name, NS) or {}).get("status") or {}


def finished(name):
    return status(name).get("phase") in ("Succeeded", "Failed")


@pytest.fixture(scope="module")
def server(cluster, request):
    c.ensure_kubevirt()
    c.kubectl("create", "namespace", NS, check=False)
    yield s.disk_server()
    c.kubectl("delete", "namespace", NS, "--wait=true", timeout=300)
    if s.last_user(request) and c.get("vm", s.VM, s.NS) is None:
        s.delete_disk_server()


def test_a_large_image_imports_over_http(server):
    c.apply(datavolume("big", {"http": {"url": f"{server}/big.img"}}, f"{2 * s.BIG_MIB}Mi"))
    created = time.monotonic()
    c.wait_for("the big import in progress", lambda: status("big").get("phase") in
               ("ImportInProgress", "Succeeded", "Failed"), 300, 0.2)
    importing = time.monotonic()
    c.wait_for("the big import finished", lambda: finished("big"), 600, 0.5)
    done = time.monotonic()
    assert status("big")["phase"] == "Succeeded", status("big")
    assert status("big")["progress"] == "100.0%"
    megabytes = s.BIG_MIB * 1.048576
    print(f"\nhttp import of {s.BIG_MIB} MiB: {megabytes / (done - importing):.1f} MB/s while importing "
          f"({done - importing:.1f}s), {done - created:.1f}s from create to Succeeded")


def test_the_demo_disk_imports_from_the_nodes_containerd(server):
    c.apply(datavolume("registry", {"registry": {"url": f"docker://{s.demo_image()}"}}, "64Mi"))
    c.wait_for("the registry import finished", lambda: finished("registry"), 300, 1)
    assert status("registry")["phase"] == "Succeeded", status("registry")
    assert c.get("pvc", "registry", NS)["status"]["phase"] == "Bound"


def test_virtctl_image_upload_fills_a_datavolume_from_a_local_file(server, tmp_path):
    image = tmp_path / "upload.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "32M"], check=True)
    started = time.monotonic()
    uploaded = c.virtctl("image-upload", "dv", "uploaded", "-n", NS, f"--image-path={image}", "--size=48Mi",
                         "--wait-secs=240", timeout=300)
    assert uploaded.returncode == 0, uploaded.stdout[-1000:] + uploaded.stderr[-1000:]
    assert status("uploaded")["phase"] == "Succeeded", status("uploaded")
    assert c.get("pvc", "uploaded", NS)["status"]["phase"] == "Bound"
    print(f"\nvirtctl image-upload of a qcow2 into a new DataVolume: {time.monotonic() - started:.1f}s")


def test_a_bad_url_fails_with_the_importers_message(server):
    c.apply(datavolume("missing", {"http": {"url": f"{server}/no-such-disk.img"}}, "16Mi"))
    c.wait_for("the bad import failed", lambda: finished("missing"), 300, 1)
    found = status("missing")
    assert found["phase"] == "Failed", found
    ready = next(x for x in found["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "False" and "got 404" in ready["message"], ready
