"""The committed CRDs must be what the generator makes from the schema."""
from kubevirt_runtime.api import crdgen


def test_committed_crds_are_up_to_date():
    stale = crdgen.stale_files()
    assert not stale, f"run `python -m kubevirt_runtime.api.crdgen`: {stale} differ from the generated CRDs"


def test_crd_names_and_columns_match_upstream():
    crds = {c["spec"]["names"]["kind"]: c for c in crdgen.load_crds()}
    vm, vmi = crds["VirtualMachine"], crds["VirtualMachineInstance"]
    assert vm["spec"]["names"]["shortNames"] == ["vm", "vms"]
    assert vmi["spec"]["names"]["shortNames"] == ["vmi", "vmis"]
    assert [c["name"] for c in vm["spec"]["versions"][0]["additionalPrinterColumns"]] == ["Age", "Status", "Ready"]
    assert [c["name"] for c in vmi["spec"]["versions"][0]["additionalPrinterColumns"]] == [
        "Age", "Phase", "IP", "NodeName", "Ready", "Live-Migratable", "Paused"]
    for crd in crds.values():
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
        assert crd["spec"]["group"] == "kubevirt.io"


def _walk(node, path="root"):
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_schemas_are_structural():
    for crd in crdgen.load_crds():
        root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(root):
            assert "type" in node or node.get("x-kubernetes-int-or-string"), path
            if node.get("type") == "array":
                assert "items" in node, path


def test_run_strategy_is_explained():
    crd = next(c for c in crdgen.load_crds() if c["spec"]["names"]["kind"] == "VirtualMachine")
    node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["runStrategy"]
    assert node["enum"] == ["Always", "Halted", "Manual", "RerunOnFailure", "Once"]
    assert "RerunOnFailure" in node["description"]
