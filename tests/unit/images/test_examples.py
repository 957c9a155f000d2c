"""examples/vm-demo.yaml is what the demo image and the cluster-up report promise."""
import yaml

from kubevirt_runtime.api import default_vm, validate_vm
from tests.conftest import REPO

DEMO = REPO / "examples" / "vm-demo.yaml"


def test_vm_demo_is_valid_after_defaulting():
    vm = yaml.safe_load(DEMO.read_text())
    assert validate_vm(default_vm(vm)) == []


def test_vm_demo_uses_the_demo_disk_cloud_init_and_port_80():
    vm = yaml.safe_load(DEMO.read_text())
    assert vm["metadata"]["name"] == "vm-demo" and vm["spec"]["runStrategy"] == "Always"
    spec = vm["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    disk = next(v["containerDisk"] for v in volumes.values() if "containerDisk" in v)
    assert disk == {"image": "docker.io/kubevirt-ops/demo-disk:devel", "imagePullPolicy": "IfNotPresent"}
    user_data = next(v["cloudInitNoCloud"]["userData"] for v in volumes.values() if "cloudInitNoCloud" in v)
    assert user_data.startswith("#!/bin/sh\n") and "cloud-init ran: hello from user-data" in user_data
    (iface,) = spec["domain"]["devices"]["interfaces"]
    assert "masquerade" in iface and [p["port"] for p in iface["ports"]] == [80]
    assert spec["networks"] == [{"name": iface["name"], "pod": {}}]
