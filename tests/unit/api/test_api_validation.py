"""Validation: every error names its field; upstream fields we lack are refused with a reason, never "unknown"."""
import pytest
from api_samples import vm, vmi

from kubevirt_runtime.api import FieldError, ValidationContext, default_vm, default_vmi, validate_vm, validate_vmi
from kubevirt_runtime.api.validation import type_errors

GATES = ValidationContext(feature_gates=frozenset({"HostDisk"}))


def fields(errors):
    return [e.field for e in errors]


def with_spec(mutate, ctx=None):
    obj = vmi()
    mutate(obj["spec"])
    return validate_vmi(obj, ctx)


def test_sample_vmi_is_valid():
    assert validate_vmi(vmi()) == []
    assert validate_vmi(default_vmi(vmi())) == []


def test_sample_vm_is_valid():
    assert validate_vm(vm()) == []
    assert validate_vm(default_vm(vm())) == []


def test_field_unknown_to_upstream_is_an_error_with_its_path():
    obj = vmi()
    obj["spec"]["hostnam"] = "x"
    errors = validate_vmi(obj)
    assert fields(errors) == ["spec.hostnam"]
    assert "upstream KubeVirt's API has no such field" in errors[0].message


@pytest.mark.parametrize("path, value, reason", [
    (("domain", "devices", "gpus"), [{"name": "g", "deviceName": "nvidia.com/A100"}],
     "GPU passthrough needs a device plugin for the GPU; none is available on this cluster"),
    (("domain", "devices", "hostDevices"), [{"name": "h", "deviceName": "x/y"}], "host device passthrough"),
    (("resourceClaims",), [{"name": "c"}], "Dynamic Resource Allocation"),
    (("domain", "cpu", "dedicatedCpuPlacement"), True, "static CPU manager policy"),
    (("domain", "memory", "hugepages"), {"pageSize": "2Mi"}, "hugepages"),
    (("domain", "launchSecurity"), {"sev": {}}, "confidential computing"),
    (("accessCredentials",), [{"sshPublicKey": {}}], "accessCredentials"),
    (("domain", "devices", "video"), {"type": "virtio"}, "choosing the video device"),
    (("domain", "devices", "filesystems"), [{"name": "f", "virtiofs": {}}], "virtiofs"),
    (("domain", "devices", "watchdog"), {"name": "w"}, "not implemented by this KubeVirt"),
])
def test_upstream_features_we_lack_are_refused_with_a_reason(path, value, reason):
    obj = vmi()
    node = obj["spec"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    errors = validate_vmi(obj)
    assert fields(errors) == ["spec." + ".".join(path)]
    assert errors[0].reason == "FieldValueNotSupported"
    assert reason in errors[0].message
    assert "unknown field" not in errors[0].message


@pytest.mark.parametrize("iface, network, field, reason", [
    ({"name": "default", "sriov": {}}, {"name": "default", "pod": {}}, "spec.domain.devices.interfaces[0].sriov",
     "SR-IOV"),
    ({"name": "default", "masquerade": {}}, {"name": "default", "multus": {"networkName": "n"}},
     "spec.networks[0].multus", "multus CNI"),
])
def test_hardware_bound_networking_is_refused_by_name(iface, network, field, reason):
    obj = vmi()
    obj["spec"]["domain"]["devices"]["interfaces"] = [iface]
    obj["spec"]["networks"] = [network]
    errors = validate_vmi(obj)
    assert fields(errors) == [field] and reason in errors[0].message


def test_vm_data_volume_template_must_be_used_by_a_volume():
    obj = vm()
    obj["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": "dv"}, "spec": {
        "source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}]
    errors = validate_vm(obj)
    assert fields(errors) == ["spec.dataVolumeTemplates[0]"] and "must be referenced" in errors[0].message


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s["domain"]["devices"]["disks"][0]["disk"].update(bus="ide"), "spec.domain.devices.disks[0].disk.bus"),
    (lambda s: s["domain"]["devices"]["disks"][1]["cdrom"].update(bus="virtio"),
     "spec.domain.devices.disks[1].cdrom.bus"),
    (lambda s: s["domain"]["cpu"].update(cores=0), "spec.domain.cpu.cores"),
    (lambda s: s["domain"]["cpu"].update(sockets="2"), "spec.domain.cpu.sockets"),
    (lambda s: s["domain"]["cpu"].update(sockets=2**40), "spec.domain.cpu"),
    (lambda s: s["domain"]["memory"].update(guest="lots"), "spec.domain.memory.guest"),
    (lambda s: s["domain"]["memory"].update(guest="1k"), "spec.domain.memory.guest"),
    (lambda s: s["domain"].pop("memory"), "spec.domain.memory.guest"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(name="nope"), "spec.domain.devices.disks[0].name"),
    (lambda s: s["domain"]["devices"]["disks"][1].update(bootOrder=1), "spec.domain.devices.disks[1].bootOrder"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(cdrom={}), "spec.domain.devices.disks[0]"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(cache="unsafe"), "spec.domain.devices.disks[0].cache"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(io="native"), "spec.domain.devices.disks[0].io"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(disk={"bus": "sata", "readonly": True}),
     "spec.domain.devices.disks[0].disk.readonly"),
    (lambda s: s["domain"]["devices"]["interfaces"][0].update(macAddress="zz"),
     "spec.domain.devices.interfaces[0].macAddress"),
    (lambda s: s["domain"]["devices"]["interfaces"][0]["ports"][0].update(port=70000),
     "spec.domain.devices.interfaces[0].ports[0].port"),
    (lambda s: s["domain"]["devices"]["interfaces"][0].update(name="other"), "spec.domain.devices.interfaces[0].name"),
    (lambda s: s["domain"]["devices"]["interfaces"][0].update(bridge={}), "spec.domain.devices.interfaces[0]"),
    (lambda s: s["domain"]["devices"]["interfaces"][0].pop("masquerade"), "spec.domain.devices.interfaces[0]"),
    (lambda s: s["domain"]["devices"]["interfaces"][0].update(masquerade=None, bridge={}),
     "spec.domain.devices.interfaces[0].ports"),
    (lambda s: s["domain"]["firmware"].update(uuid="not-a-uuid") if "firmware" in s["domain"]
     else s["domain"].update(firmware={"uuid": "not-a-uuid"}), "spec.domain.firmware.uuid"),
    (lambda s: s["domain"].update(firmware={"serial": "a\x00b"}), "spec.domain.firmware.serial"),
    (lambda s: s["domain"].update(machine={"type": "pc-i440fx-7.2"}), "spec.domain.machine.type"),
    (lambda s: s["volumes"][0].update(emptyDisk={"capacity": "1Gi"}), "spec.volumes[0]"),
    (lambda s: s["volumes"][1]["cloudInitNoCloud"].update(userDataBase64="!!"), "spec.volumes[1].cloudInitNoCloud"),
    (lambda s: s["volumes"][1]["cloudInitNoCloud"].update(userData=None, userDataBase64="!!"),
     "spec.volumes[1].cloudInitNoCloud.userDataBase64"),
    (lambda s: s["volumes"].append({"name": "containerdisk", "emptyDisk": {"capacity": "1Gi"}}),
     "spec.volumes[2].name"),
    (lambda s: s["volumes"].append({"name": "x"}), "spec.volumes[2]"),
    (lambda s: s["volumes"].append({"name": "Bad_Name", "emptyDisk": {"capacity": "1Gi"}}), "spec.volumes[2].name"),
    (lambda s: s["volumes"].append({"name": "ci2", "cloudInitConfigDrive": {"userData": "x"}}), "spec.volumes"),
    (lambda s: s["volumes"].append({"name": "cm", "configMap": {}}), "spec.volumes[2].configMap.name"),
    (lambda s: s["volumes"].append({"name": "s", "secret": {"secretName": "x", "volumeLabel": "a b"}}),
     "spec.volumes[2].secret.volumeLabel"),
    (lambda s: s["volumes"].append({"name": "d", "downwardAPI": {"fields": [{"path": "../x", "fieldRef": {
        "fieldPath": "metadata.name"}}]}}), "spec.volumes[2].downwardAPI.fields[0].path"),
    (lambda s: s.update(terminationGracePeriodSeconds=-1), "spec.terminationGracePeriodSeconds"),
    (lambda s: s.update(tolerations=[{"key": "a", "operator": "Exists", "value": "b"}]), "spec.tolerations[0].value"),
    (lambda s: s.update(affinity={"nodeAffinity": {}, "bogus": 1}), "spec.affinity.bogus"),
    (lambda s: s.update(nodeSelector={"a": 1}), "spec.nodeSelector[a]"),
    (lambda s: s.update(dnsPolicy="None"), "spec.dnsConfig.nameservers"),
    (lambda s: s.update(dnsPolicy="Sometimes"), "spec.dnsPolicy"),
    (lambda s: s.update(hostname="Not A Host"), "spec.hostname"),
    (lambda s: s.update(evictionStrategy="Sometimes"), "spec.evictionStrategy"),
    (lambda s: s.update(architecture="arm64"), "spec.architecture"),
    (lambda s: s.update(readinessProbe={"tcpSocket": {"port": 22}, "httpGet": {"port": 80}}), "spec.readinessProbe"),
    (lambda s: s.update(readinessProbe={"tcpSocket": {"port": "ssh"}}), "spec.readinessProbe.tcpSocket.port"),
    (lambda s: s.update(livenessProbe={"exec": {"command": ["true"]}}), "spec.livenessProbe.exec"),
    (lambda s: s["domain"].update(resources={"requests": {"nvidia.com/gpu": 1}}),
     "spec.domain.resources.requests[nvidia.com/gpu]"),
    (lambda s: s["domain"].update(resources={"limits": {"memory": "64Mi"}}), "spec.domain.memory.guest"),
    (lambda s: s["domain"].update(firmware={"bootloader": {"bios": {}, "efi": {}}}), "spec.domain.firmware.bootloader"),
    (lambda s: s["domain"].update(firmware={"bootloader": {"efi": {}}}, features={"smm": {"enabled": False}}),
     "spec.domain.features.smm.enabled"),
    (lambda s: s["domain"].update(firmware={"kernelBoot": {"container": {"image": "k"}}}),
     "spec.domain.firmware.kernelBoot.container"),
    (lambda s: s["domain"].update(firmware={"kernelBoot": {"container": {"image": "k", "kernelPath": "boot/x"}}}),
     "spec.domain.firmware.kernelBoot.container.kernelPath"),
    (lambda s: s["domain"].update(features={"hyperv": {"spinlocks": {"spinlocks": 10}}}),
     "spec.domain.features.hyperv.spinlocks.spinlocks"),
    (lambda s: s["domain"].update(features={"hyperv": {"vendorid": {"vendorid": "much-too-long-vendor"}}}),
     "spec.domain.features.hyperv.vendorid.vendorid"),
    (lambda s: s["domain"].update(features={"hyperv": {"synic": {}, "vpindex": {"enabled": False}}}),
     "spec.domain.features.hyperv.vpindex.enabled"),
    (lambda s: s["domain"].update(features={"hyperv": {"evmcs": {}}}), "spec.domain.features.hyperv.evmcs"),
    (lambda s: s["domain"].update(clock={"utc": {}, "timezone": "Europe/Paris"}), "spec.domain.clock"),
    (lambda s: s["domain"].update(clock={"timezone": "Mars/Olympus"}), "spec.domain.clock.timezone"),
    (lambda s: s["domain"].update(clock={"timer": {"rtc": {"tickPolicy": "fast"}}}),
     "spec.domain.clock.timer.rtc.tickPolicy"),
    (lambda s: s["domain"]["devices"].update(tpm={"persistent": True}), "spec.domain.devices.tpm.persistent"),
    (lambda s: s["networks"].append({"name": "unused", "pod": {}}), "spec.networks"),
    (lambda s: s["networks"][0]["pod"].update(vmNetworkCIDR="10.0.0.0/31"), "spec.networks[0].pod.vmNetworkCIDR"),
    (lambda s: s["domain"].pop("devices"), "spec.domain.devices"),
])
def test_invalid_vmi_names_the_field(mutate, field):
    errors = with_spec(mutate)
    assert field in fields(errors), [str(e) for e in errors]


@pytest.mark.parametrize("mutate", [
    lambda s: s["domain"].update(firmware={"bootloader": {"bios": {"useSerial": True}}}),
    lambda s: s["domain"].update(firmware={"bootloader": {"efi": {"secureBoot": False}}}),
    lambda s: s["domain"].update(firmware={"kernelBoot": {"kernelArgs": "console=ttyS0", "container": {
        "image": "k", "kernelPath": "/boot/vmlinuz", "imagePullSecret": "pull"}}}),
    lambda s: s["domain"].update(firmware={"uuid": "5d307ca9-b3ef-428c-8861-06e72d69f223", "serial": "s-1"}),
    lambda s: s["domain"]["devices"].update(rng={}),
    lambda s: s["domain"]["devices"].update(tpm={}),
    lambda s: s["domain"]["devices"].update(autoattachMemBalloon=False),
    lambda s: s["domain"].update(features={"acpi": {}, "apic": {"endOfInterrupt": True}, "smm": {"enabled": True},
                                           "hyperv": {"relaxed": {}, "vapic": {}, "spinlocks": {"spinlocks": 8191},
                                                      "vpindex": {}, "synic": {}, "synictimer": {"direct": {}},
                                                      "reset": {}, "vendorid": {"vendorid": "kubevirt"},
                                                      "frequencies": {}, "tlbflush": {}, "ipi": {}, "runtime": {}}}),
    lambda s: s["domain"].update(clock={"utc": {"offsetSeconds": 3600}, "timer": {
        "hpet": {"present": False}, "pit": {"tickPolicy": "delay"}, "rtc": {"tickPolicy": "catchup", "track": "guest"},
        "kvm": {}, "hyperv": {}}}),
    lambda s: s["domain"].update(clock={"timezone": "Europe/Paris"}),
    lambda s: s["domain"]["devices"]["disks"][0].update(cache="writethrough", io="threads", serial="d1"),
    lambda s: s["domain"]["devices"]["disks"][0].update(cache="none", io="native"),
    lambda s: s["volumes"][0]["containerDisk"].update(imagePullSecret="pull", imagePullPolicy="Always"),
    lambda s: s["volumes"].__setitem__(1, {"name": "cloudinitdisk", "cloudInitConfigDrive": {
        "userData": "#cloud-config\n", "networkData": "{}"}}),
    lambda s: s["volumes"][1]["cloudInitNoCloud"].update(userData=None, secretRef={"name": "ud"},
                                                          networkDataSecretRef={"name": "nd"}),
    lambda s: s["volumes"].extend([
        {"name": "cm", "configMap": {"name": "app-config", "optional": True, "volumeLabel": "cfg"}},
        {"name": "sec", "secret": {"secretName": "app-secret"}},
        {"name": "sa", "serviceAccount": {"serviceAccountName": "default"}},
        {"name": "info", "downwardAPI": {"fields": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}},
        {"name": "scratch", "emptyDisk": {"capacity": "1Gi"}}]),
    lambda s: s.update(priorityClassName="high-priority", schedulerName="my-scheduler", hostname="web",
                       subdomain="svc", dnsPolicy="None", dnsConfig={"nameservers": ["10.0.0.10"], "searches": ["a"]},
                       evictionStrategy="LiveMigrate", architecture="amd64",
                       topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone",
                                                   "whenUnsatisfiable": "ScheduleAnyway"}]),
    lambda s: s.update(readinessProbe={"tcpSocket": {"port": 22}, "initialDelaySeconds": 5, "periodSeconds": 3},
                       livenessProbe={"httpGet": {"port": 80, "path": "/"}, "failureThreshold": 10}),
    lambda s: s.update(nodeSelector={"kubernetes.io/hostname": "node01"},
                       tolerations=[{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}],
                       affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                           "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}}}),
    lambda s: s["domain"]["devices"]["interfaces"].__setitem__(0, {"name": "default", "bridge": {}}),
])
def test_implemented_features_are_accepted(mutate):
    errors = with_spec(mutate)
    assert errors == [], [str(e) for e in errors]
    obj = vmi()
    mutate(obj["spec"])
    assert validate_vmi(default_vmi(obj)) == []


def test_host_disk_needs_its_feature_gate():
    def add(s):
        s["volumes"].append({"name": "host", "hostDisk": {"path": "/var/data/disk.img", "type": "DiskOrCreate",
                                                          "capacity": "1Gi"}})
    assert with_spec(add, GATES) == []
    assert with_spec(add) == []  # no context: virt-controller does not re-check gates
    errors = with_spec(add, ValidationContext())
    assert fields(errors) == ["spec.volumes[2].hostDisk"] and "HostDisk feature gate" in errors[0].message


@pytest.mark.parametrize("disk, field", [
    ({"path": "relative.img", "type": "Disk"}, "spec.volumes[2].hostDisk.path"),
    ({"path": "/var/../etc/x.img", "type": "Disk"}, "spec.volumes[2].hostDisk.path"),
    ({"path": "/var/data/d.img"}, "spec.volumes[2].hostDisk.type"),
    ({"path": "/var/data/d.img", "type": "DiskOrCreate"}, "spec.volumes[2].hostDisk.capacity"),
    ({"path": "/var/data/d.img", "type": "Disk", "shared": True}, "spec.volumes[2].hostDisk.shared"),
])
def test_host_disk_fields(disk, field):
    errors = with_spec(lambda s: s["volumes"].append({"name": "host", "hostDisk": disk}), GATES)
    assert field in fields(errors), [str(e) for e in errors]


def test_vm_running_and_run_strategy_are_mutually_exclusive():
    obj = vm()
    obj["spec"]["running"] = True
    assert fields(validate_vm(obj)) == ["spec.running"]


def test_vm_unknown_run_strategy():
    obj = vm()
    obj["spec"]["runStrategy"] = "Sometimes"
    assert fields(validate_vm(obj)) == ["spec.runStrategy"]


def test_vm_template_errors_carry_the_template_path():
    obj = vm()
    obj["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] = 0
    assert set(fields(validate_vm(obj))) == {"spec.template.spec.domain.cpu.cores"}


def test_vm_template_metadata_tolerates_creation_timestamp_null():
    obj = vm()
    obj["spec"]["template"]["metadata"]["creationTimestamp"] = None
    assert validate_vm(obj) == []


def test_vm_template_labels_must_be_strings():
    obj = vm()
    obj["spec"]["template"]["metadata"]["labels"] = {"a": 1}
    assert fields(validate_vm(obj)) == ["spec.template.metadata.labels"]


def test_invalid_name():
    obj = vmi()
    obj["metadata"]["name"] = "Not_Valid"
    assert fields(validate_vmi(obj)) == ["metadata.name"]


@pytest.mark.parametrize("obj, field", [
    ({"spec": {"domain": {"cpu": "2", "devices": {}}}}, "spec.domain.cpu"),
    ({"spec": {"domain": {"devices": {"disks": ["c"]}}}}, "spec.domain.devices.disks[0]"),
    ({"spec": {"domain": {"devices": {"disks": [{"name": 1}]}}}}, "spec.domain.devices.disks[0].name"),
    ({"spec": {"domain": {"memory": {"guest": True}, "devices": {}}}}, "spec.domain.memory.guest"),
    ({"spec": {"domain": {"devices": {}}, "volumes": {"name": "x"}}}, "spec.volumes"),
    ({"metadata": "x", "spec": {}}, "metadata"),
])
def test_bad_types_are_type_errors_naming_the_field(obj, field):
    errors = type_errors("VirtualMachineInstance", obj)
    assert field in fields(errors), [str(e) for e in errors]
    assert field in fields(validate_vmi(obj))
    assert all(e.reason == "FieldValueTypeInvalid" for e in errors)


def test_field_error_formats():
    err = FieldError("spec.x", "required value", "FieldValueRequired")
    assert str(err) == "spec.x: required value"
    assert err.as_cause() == {"type": "FieldValueRequired", "field": "spec.x", "message": "spec.x: required value"}
