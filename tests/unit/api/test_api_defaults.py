from api_samples import vm, vmi

from kubevirt_runtime.api import default_vm, default_vmi, effective_run_strategy


def test_default_vmi_is_pure():
    original = vmi()
    defaulted = default_vmi(original)
    assert original == vmi()
    assert defaulted is not original


def test_default_vmi_fills_upstream_defaults():
    spec = default_vmi(vmi())["spec"]
    assert spec["domain"]["cpu"] == {"cores": 2, "sockets": 1, "threads": 1}
    assert spec["domain"]["machine"] == {"type": "q35"}
    assert spec["domain"]["resources"]["requests"]["memory"] == "128Mi"
    assert spec["domain"]["devices"]["autoattachSerialConsole"] is True
    disks = spec["domain"]["devices"]["disks"]
    assert disks[1]["cdrom"] == {"bus": "sata", "readonly": True}
    iface = spec["domain"]["devices"]["interfaces"][0]
    assert iface["model"] == "virtio" and iface["ports"][0]["protocol"] == "TCP"
    assert spec["terminationGracePeriodSeconds"] == 0  # user's value kept


def test_default_vmi_adds_pod_network_and_disks_for_volumes():
    obj = vmi()
    del obj["spec"]["networks"], obj["spec"]["domain"]["devices"]["interfaces"]
    del obj["spec"]["domain"]["devices"]["disks"], obj["spec"]["terminationGracePeriodSeconds"]
    spec = default_vmi(obj)["spec"]
    assert spec["networks"] == [{"name": "default", "pod": {}}]
    assert spec["domain"]["devices"]["interfaces"] == [{"name": "default", "masquerade": {}, "model": "virtio"}]
    assert [d["name"] for d in spec["domain"]["devices"]["disks"]] == ["containerdisk", "cloudinitdisk"]
    assert spec["domain"]["devices"]["disks"][0]["disk"] == {"bus": "virtio"}
    assert spec["terminationGracePeriodSeconds"] == 30


def test_guest_memory_from_requests():
    obj = vmi()
    obj["spec"]["domain"]["memory"] = None
    obj["spec"]["domain"]["resources"] = {"requests": {"memory": "1Gi"}}
    assert default_vmi(obj)["spec"]["domain"]["memory"] == {"guest": "1Gi"}


def test_efi_secure_boot_defaults_true():
    obj = vmi()
    obj["spec"]["domain"]["firmware"] = {"bootloader": {"efi": {}}}
    assert default_vmi(obj)["spec"]["domain"]["firmware"]["bootloader"]["efi"] == {"secureBoot": True}


def test_vm_without_run_strategy_defaults_to_halted():
    obj = vm()
    del obj["spec"]["runStrategy"]
    assert default_vm(obj)["spec"]["runStrategy"] == "Halted"
    obj["spec"]["running"] = True
    assert "runStrategy" not in default_vm(obj)["spec"]


def test_effective_run_strategy():
    assert effective_run_strategy({"spec": {"runStrategy": "Manual"}}) == "Manual"
    assert effective_run_strategy({"spec": {"running": True}}) == "Always"
    assert effective_run_strategy({"spec": {"running": False}}) == "Halted"
    assert effective_run_strategy({"spec": {}}) == "Halted"
