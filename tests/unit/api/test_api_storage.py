"""DataVolumes, snapshots, restores and hotpluggable volumes: what the webhook accepts and refuses, by field."""
import pytest
from api_samples import vm, vmi

from kubevirt_runtime.api import cdi, default_vmi, validate_vm, validate_vmi
from kubevirt_runtime.api import snapshot as snap
from kubevirt_runtime.api.validation import validate_datavolume, validate_restore, validate_snapshot


def fields(errors):
    return [e.field for e in errors]


def dv(source=None, storage="1Gi", **spec):
    body = {"source": source if source is not None else {"http": {"url": "http://server/disk.img"}}}
    if storage is not None:
        body["storage"] = {"resources": {"requests": {"storage": storage}}}
    body.update(spec)
    return {"apiVersion": cdi.API_VERSION, "kind": cdi.KIND, "metadata": {"name": "disk", "namespace": "ns"},
            "spec": body}


@pytest.mark.parametrize("source", [
    {"http": {"url": "https://example.com/disk.qcow2"}},
    {"registry": {"url": "docker://docker.io/kubevirt-ops/demo-disk:devel"}},
    {"registry": {"url": "docker://demo", "pullMethod": "node"}},
    {"pvc": {"namespace": "ns", "name": "golden"}},
    {"blank": {}},
    {"upload": {}},
])
def test_each_source_we_implement_is_accepted(source):
    assert validate_datavolume(dv(source)) == []


@pytest.mark.parametrize("source, field, words", [
    ({"http": {"url": "ftp://host/disk"}}, "spec.source.http.url", "http:// or https://"),
    ({"registry": {"url": "quay.io/x"}}, "spec.source.registry.url", "docker://"),
    ({"registry": {"url": "docker://x", "pullMethod": "pod"}}, "spec.source.registry.pullMethod", "containerd"),
    ({"s3": {"url": "s3://bucket/disk"}}, "spec.source.s3", "not implemented"),
    ({"snapshot": {"namespace": "ns", "name": "s"}}, "spec.source.snapshot", "CSI snapshotter"),
    ({}, "spec.source", "a source is required"),
    ({"blank": {}, "upload": {}}, "spec.source", "only one source"),
])
def test_bad_or_unimplemented_sources_are_refused_by_name(source, field, words):
    errors = validate_datavolume(dv(source))
    assert fields(errors) == [field], errors
    assert words in errors[0].message


def test_size_is_required_except_for_a_clone_into_storage():
    assert fields(validate_datavolume(dv(storage=None))) == ["spec"]  # neither pvc nor storage
    blank = dv({"blank": {}})
    blank["spec"]["storage"] = {}
    errors = validate_datavolume(blank)
    assert fields(errors) == ["spec.storage.resources.requests.storage"]
    clone = dv({"pvc": {"namespace": "ns", "name": "golden"}})
    clone["spec"]["storage"] = {}
    assert validate_datavolume(clone) == []


def test_block_volumes_and_warm_imports_are_refused():
    body = dv()
    body["spec"]["storage"]["volumeMode"] = "Block"
    assert fields(validate_datavolume(body)) == ["spec.storage.volumeMode"]
    assert fields(validate_datavolume(dv(checkpoints=[]))) == ["spec.checkpoints"]


def test_pvc_spec_defaults_like_cdis_storage_api():
    assert cdi.pvc_spec(dv()["spec"], "local-path") == {
        "resources": {"requests": {"storage": "1Gi"}}, "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem", "storageClassName": "local-path"}
    explicit = dv(storage=None, pvc={"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "2Gi"}}})
    assert cdi.pvc_spec(explicit["spec"], "local-path") == explicit["spec"]["pvc"]
    assert cdi.image_size(1 << 30) == 967 << 20  # 5.5% kept free, whole MiB


def vm_with_template(volume_name="containerdisk", template_name="root-dv", **volume):
    obj = vm()
    obj["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": template_name}, "spec": dv()["spec"]}]
    spec = obj["spec"]["template"]["spec"]
    spec["volumes"][0] = {"name": volume_name, "dataVolume": {"name": template_name, **volume}}
    return obj


def test_vm_with_a_datavolume_template_is_valid():
    assert validate_vm(vm_with_template()) == []


def test_vm_datavolume_template_errors_carry_their_path():
    obj = vm_with_template()
    obj["spec"]["dataVolumeTemplates"][0]["spec"]["source"] = {"http": {"url": "nope"}}
    assert fields(validate_vm(obj)) == ["spec.dataVolumeTemplates[0].spec.source.http.url"]
    obj = vm_with_template()
    obj["spec"]["dataVolumeTemplates"].append(obj["spec"]["dataVolumeTemplates"][0])
    assert fields(validate_vm(obj)) == ["spec.dataVolumeTemplates[1].metadata.name"]


def hotplug_vmi(bus=None, kind="persistentVolumeClaim", boot_order=None):
    obj = vmi()
    disk = {"name": "extra", "disk": {"bus": bus} if bus else {}}
    if boot_order:
        disk["bootOrder"] = boot_order
    obj["spec"]["domain"]["devices"]["disks"].append(disk)
    source = {"claimName": "extra", "hotpluggable": True} if kind == "persistentVolumeClaim" else \
        {"name": "extra", "hotpluggable": True}
    obj["spec"]["volumes"].append({"name": "extra", kind: source})
    return obj


def test_a_hotplugged_disk_defaults_to_scsi_and_is_valid():
    defaulted = default_vmi(hotplug_vmi())
    disk = defaulted["spec"]["domain"]["devices"]["disks"][-1]
    assert disk["disk"]["bus"] == "scsi"
    assert validate_vmi(defaulted) == []
    assert validate_vmi(default_vmi(hotplug_vmi("scsi", kind="dataVolume"))) == []


@pytest.mark.parametrize("obj, words", [
    (hotplug_vmi("sata"), "use scsi"),
    (hotplug_vmi("virtio"), "spare PCIe ports"),
    (hotplug_vmi("scsi", boot_order=3), "boot disk"),
])
def test_a_hotplugged_disk_must_be_attachable_to_a_running_guest(obj, words):
    errors = validate_vmi(obj)
    assert fields(errors) == [f"spec.volumes[{len(obj['spec']['volumes']) - 1}]"]
    assert words in errors[0].message


def snapshot_body(**spec):
    body = {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "vm"}}
    body.update(spec)
    return {"apiVersion": snap.API_VERSION, "kind": snap.SNAPSHOT_KIND, "metadata": {"name": "s"}, "spec": body}


def test_snapshot_validation():
    assert validate_snapshot(snapshot_body(failureDeadline="1m30s")) == []
    assert fields(validate_snapshot(snapshot_body(failureDeadline="soon"))) == ["spec.failureDeadline"]
    wrong = snapshot_body(source={"apiGroup": "", "kind": "PersistentVolumeClaim", "name": "x"})
    assert fields(validate_snapshot(wrong)) == ["spec.source"]
    assert fields(validate_snapshot(snapshot_body(), old=snapshot_body(deletionPolicy="Retain"))) == ["spec"]


def test_restore_validation():
    body = {"apiVersion": snap.API_VERSION, "kind": snap.RESTORE_KIND, "metadata": {"name": "r"},
            "spec": {"target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "vm"},
                     "virtualMachineSnapshotName": "s"}}
    assert validate_restore(body) == []
    body["spec"]["patches"] = ['{"op": "replace", "path": "/metadata/name", "value": "x"}']
    errors = validate_restore(body)
    assert fields(errors) == ["spec.patches"] and "not implemented" in errors[0].message


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400),
                                           ("250ms", 0.25)])
def test_go_durations(text, seconds):
    assert snap.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "1h5"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        snap.parse_duration(text)
