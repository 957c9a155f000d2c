"""The committed CRDs: generated from upstream's schema, complete, structural, named as upstream."""
import functools

import pytest

from kubevirt_runtime.api import crdgen, upstream


@functools.lru_cache(maxsize=1)
def _loaded():
    return crdgen.load_crds()


def crds():
    return {c["spec"]["names"]["kind"]: c for c in _loaded()}


def root(kind, version=0):
    return crds()[kind]["spec"]["versions"][version]["schema"]["openAPIV3Schema"]


def test_committed_crds_are_up_to_date():
    stale = crdgen.stale_files()
    assert not stale, f"run `python -m kubevirt_runtime.api.crdgen`: {stale} differ from the generated CRDs"


def test_upstream_schema_provenance_is_recorded():
    prov = upstream.provenance()
    assert prov["repository"] == "https://github.com/kubevirt/kubevirt"
    assert prov["tag"].startswith("v1.") and len(prov["commit"]) == 40 and len(prov["sha256"]) == 64
    assert prov["path"] == "api/openapi-spec/swagger.json"


@pytest.mark.parametrize("kind, definition", [
    ("VirtualMachine", "v1.VirtualMachine"),
    ("VirtualMachineInstance", "v1.VirtualMachineInstance"),
])
def test_every_upstream_field_path_is_in_the_crd(kind, definition):
    """Nothing upstream knows is pruned: the CRD has exactly upstream's field paths (metadata aside)."""
    ours = root(kind)
    theirs = upstream.schema(definition)
    for section in ("spec", "status"):
        wanted = upstream.field_paths(theirs["properties"][section])
        have = upstream.field_paths(ours["properties"][section])
        assert wanted, section
        assert wanted - have == set(), f"{kind}.{section}: missing upstream fields"
        assert have - wanted == set(), f"{kind}.{section}: fields upstream does not have"


def test_upstream_field_paths_include_the_features_users_write():
    paths = upstream.field_paths(root("VirtualMachine")["properties"]["spec"])
    for path in ("template.spec.domain.devices.gpus[].deviceName", "template.spec.domain.devices.rng",
                 "template.spec.domain.features.hyperv.spinlocks.spinlocks", "template.spec.domain.clock.timer.rtc",
                 "template.spec.volumes[].dataVolume.name", "dataVolumeTemplates[].spec",
                 "template.spec.networks[].multus.networkName", "instancetype.name", "preference.kind"):
        assert path in paths, path


def test_crd_names_and_columns_match_upstream():
    vm, vmi = crds()["VirtualMachine"], crds()["VirtualMachineInstance"]
    assert vm["spec"]["names"]["shortNames"] == ["vm", "vms"]
    assert vmi["spec"]["names"]["shortNames"] == ["vmi", "vmis"]
    assert vm["spec"]["names"]["categories"] == vmi["spec"]["names"]["categories"] == ["all"]
    assert [c["name"] for c in vm["spec"]["versions"][0]["additionalPrinterColumns"]] == ["Age", "Status", "Ready"]
    assert [c["name"] for c in vmi["spec"]["versions"][0]["additionalPrinterColumns"]] == [
        "Age", "Phase", "IP", "NodeName", "Ready", "Live-Migratable", "Paused"]
    for crd in (vm, vmi):
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
    """What the API server demands of a CRD schema (it refuses the CRD otherwise)."""
    allowed_formats = {None, "int32", "int64", "float", "double", "byte", "date", "date-time", "password", "uuid"}
    for crd in _loaded():
        for version in crd["spec"]["versions"]:
            for path, node in _walk(version["schema"]["openAPIV3Schema"]):
                assert "type" in node or node.get("x-kubernetes-int-or-string"), path
                assert "$ref" not in node and "default" not in node, path
                assert node.get("format") in allowed_formats, path
                if node.get("type") == "array":
                    assert "items" in node, path
                if node.get("x-kubernetes-list-type") == "map":
                    assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"].get("required", [])), path
                if node.get("x-kubernetes-int-or-string"):
                    assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path


def test_embedded_metadata_keeps_its_fields():
    template = root("VirtualMachine")["properties"]["spec"]["properties"]["template"]
    assert template["properties"]["metadata"]["x-kubernetes-preserve-unknown-fields"] is True


def test_explain_shows_our_behaviour_and_what_is_refused():
    spec = root("VirtualMachine")["properties"]["spec"]["properties"]
    assert "Halted" in spec["running"]["description"] or "Deprecated" in spec["running"]["description"]
    devices = spec["template"]["properties"]["spec"]["properties"]["domain"]["properties"]["devices"]["properties"]
    assert "Not available here: GPU passthrough needs a device plugin" in devices["gpus"]["description"]
    bus = devices["disks"]["items"]["properties"]["disk"]["properties"]["bus"]["description"]
    assert "Defaults to sata" in bus


def test_type_unions_are_mapped_to_what_they_mean():
    """Upstream writes some types as lists: timestamps ["string", "null"], ports ["string", "number"]."""
    status = root("VirtualMachineInstance")["properties"]["status"]["properties"]
    condition = status["conditions"]["items"]["properties"]
    assert condition["lastTransitionTime"]["type"] == "string" and condition["lastTransitionTime"]["nullable"]
    assert "pattern" not in condition["lastTransitionTime"]
    probe = root("VirtualMachineInstance")["properties"]["spec"]["properties"]["readinessProbe"]["properties"]
    port = probe["tcpSocket"]["properties"]["port"]
    assert port["x-kubernetes-int-or-string"] and "pattern" not in port


@pytest.mark.parametrize("kind, group, short_names, categories, scope", [
    ("VirtualMachineInstanceReplicaSet", "kubevirt.io", ["vmirs", "vmirss"], ["all"], "Namespaced"),
    ("VirtualMachinePool", "pool.kubevirt.io", ["vmpool", "vmpools"], ["all"], "Namespaced"),
    ("VirtualMachineInstancetype", "instancetype.kubevirt.io", ["vminstancetype", "vminstancetypes", "vmf", "vmfs"],
     ["all"], "Namespaced"),
    ("VirtualMachineClusterInstancetype", "instancetype.kubevirt.io",
     ["vmclusterinstancetype", "vmclusterinstancetypes", "vmcf", "vmcfs"], None, "Cluster"),
    ("VirtualMachinePreference", "instancetype.kubevirt.io", ["vmpref", "vmprefs", "vmp", "vmps"], ["all"],
     "Namespaced"),
    ("VirtualMachineClusterPreference", "instancetype.kubevirt.io", ["vmcp", "vmcps"], None, "Cluster"),
])
def test_new_kinds_are_named_as_upstream(kind, group, short_names, categories, scope):
    crd = crds()[kind]
    assert crd["spec"]["group"] == group and crd["spec"]["scope"] == scope
    assert crd["spec"]["names"]["shortNames"] == short_names
    assert crd["spec"]["names"].get("categories") == categories


@pytest.mark.parametrize("kind", ["VirtualMachineInstanceReplicaSet", "VirtualMachinePool"])
def test_replicated_kinds_scale_like_upstream(kind):
    crd = crds()[kind]
    served = [(v["name"], v["storage"]) for v in crd["spec"]["versions"]]
    assert served == ([("v1", True)] if kind.endswith("ReplicaSet") else [("v1alpha1", False), ("v1beta1", True)])
    for version in crd["spec"]["versions"]:
        assert version["subresources"]["scale"] == {"specReplicasPath": ".spec.replicas",
                                                    "statusReplicasPath": ".status.replicas",
                                                    "labelSelectorPath": ".status.labelSelector"}
        assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Desired", "Current", "Ready", "Age"]


def test_new_kinds_carry_every_upstream_field():
    for kind, definition in (("VirtualMachineInstanceReplicaSet", "v1.VirtualMachineInstanceReplicaSet"),
                             ("VirtualMachinePool", "v1beta1.VirtualMachinePool"),
                             ("VirtualMachineClusterInstancetype", "v1beta1.VirtualMachineClusterInstancetype"),
                             ("VirtualMachinePreference", "v1beta1.VirtualMachinePreference")):
        ours = root(kind)["properties"]["spec"]
        assert upstream.field_paths(ours) == upstream.field_paths(upstream.schema(definition)["properties"]["spec"])
