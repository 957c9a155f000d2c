import pytest

from kubevirt_runtime.api import default_vmi
from kubevirt_runtime.controller.config import ControllerConfig
from kubevirt_runtime.controller.launcher_pod import (
    device_resources,
    launcher_pod_name,
    launcher_resources,
    render_launcher_pod,
)

VMI = {
    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
    "metadata": {"name": "testvmi", "namespace": "ns1", "uid": "1234-abcd", "labels": {"app": "web",
                                                                                       "kubevirt.io/nodeName": "x"}},
    "spec": {
        "domain": {"memory": {"guest": "1Gi"}, "resources": {"requests": {"cpu": "500m"}},
                   "devices": {"disks": [{"name": "root", "disk": {}}]}},
        "volumes": [{"name": "root", "containerDisk": {"image": "example/cirros:latest"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "pvc1"}}],
        "nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {}}, "terminationGracePeriodSeconds": 20,
    },
}


def test_pod_matches_the_handler_contract():
    pod = render_launcher_pod(default_vmi(VMI), ControllerConfig(launcher_image="img:1"))
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"].startswith("virt-launcher-testvmi-") and len(meta["name"]) == len("virt-launcher-testvmi-") + 5
    assert meta["labels"] == {"app": "web", "kubevirt.io": "virt-launcher", "kubevirt.io/created-by": "1234-abcd",
                              "vm.kubevirt.io/name": "testvmi"}
    assert meta["annotations"] == {"kubevirt.io/domain": "testvmi",
                                   "kubectl.kubernetes.io/default-container": "compute"}
    assert meta["ownerReferences"][0]["uid"] == "1234-abcd" and meta["ownerReferences"][0]["controller"]
    assert spec["restartPolicy"] == "Never" and spec["terminationGracePeriodSeconds"] == 35
    compute = spec["containers"][0]
    assert compute["name"] == "compute" and compute["image"] == "img:1" and compute["imagePullPolicy"] == "IfNotPresent"
    assert compute["command"] == ["virt-launcher", "--name", "testvmi", "--namespace", "ns1", "--uid", "1234-abcd",
                                  "--socket-dir", "/var/run/kubevirt/sockets", "--grace-period", "20", "--in-pod",
                                  "--stop-container-disks"]
    assert compute["securityContext"] == {
        "privileged": False, "allowPrivilegeEscalation": False, "runAsUser": 0, "runAsNonRoot": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SETUID", "SETGID", "SETPCAP", "DAC_OVERRIDE"]}}
    mounts = {m["name"]: m["mountPath"] for m in compute["volumeMounts"] if "subPath" not in m}
    assert mounts["sockets"] == "/var/run/kubevirt/sockets"
    assert mounts["private"] == "/var/run/kubevirt-private"
    assert "/var/run/kubevirt-private/vmi-disks/data" in mounts.values()
    assert {"name": "sockets", "emptyDir": {}} in spec["volumes"]
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["compute", "container-disk-0"]
    assert spec["containers"][1]["image"] == "example/cirros:latest"
    assert spec["nodeSelector"] == {"disk": "ssd"} and spec["tolerations"] and spec["affinity"]


def test_name_is_stable_per_uid():
    other = dict(VMI, metadata=dict(VMI["metadata"], uid="other"))
    assert launcher_pod_name(VMI) == launcher_pod_name(VMI)
    assert launcher_pod_name(VMI) != launcher_pod_name(other)


def test_resources_add_overhead():
    assert launcher_resources(default_vmi(VMI)) == {"requests": {"cpu": "500m", "memory": "1174Mi"}}
    vmi = default_vmi(VMI)
    vmi["spec"]["domain"]["resources"]["limits"] = {"memory": "2Gi", "cpu": "2"}
    assert launcher_resources(vmi)["limits"] == {"memory": "2198Mi", "cpu": "2100m"}


def test_cpu_request_follows_the_cpu_allocation_ratio():
    from kubevirt_runtime.api.cluster_config import ClusterConfig
    vmi = default_vmi(VMI)
    del vmi["spec"]["domain"]["resources"]["requests"]["cpu"]
    assert launcher_resources(vmi)["requests"]["cpu"] == "100m"  # upstream's default ratio 10
    assert launcher_resources(vmi, ClusterConfig(cpu_allocation_ratio=50))["requests"]["cpu"] == "20m"
    vmi["spec"]["domain"]["cpu"] = {"sockets": 1, "cores": 2, "threads": 2}
    assert launcher_resources(vmi, ClusterConfig(cpu_allocation_ratio=3))["requests"]["cpu"] == "1334m"
    pod = render_launcher_pod(vmi, cluster=ClusterConfig(cpu_allocation_ratio=100))
    assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "40m"


def test_cluster_config_from_the_kubevirt_cr():
    from kubevirt_runtime.api.cluster_config import ClusterConfig
    assert ClusterConfig.from_kubevirt(None) == ClusterConfig(use_emulation=False, cpu_allocation_ratio=10)
    kv = {"spec": {"configuration": {"developerConfiguration": {"useEmulation": True, "cpuAllocationRatio": 50}}}}
    assert ClusterConfig.from_kubevirt(kv) == ClusterConfig(use_emulation=True, cpu_allocation_ratio=50)
    for bad in (0, -1, "10", True, 2.5):
        kv["spec"]["configuration"]["developerConfiguration"]["cpuAllocationRatio"] = bad
        assert ClusterConfig.from_kubevirt(kv).cpu_allocation_ratio == 10


def test_container_disks_idle_in_the_pod_and_are_never_copied():
    """Upstream containerDisks are FROM scratch: their container idles in the launcher image's static busybox,
    and the launcher reads the image through that process's /proc root. No init container copies the busybox:
    compute comes first and its postStart hook does, and the kubelet starts the next container only after it."""
    vmi = default_vmi(VMI)
    vmi["spec"]["domain"]["firmware"] = {"kernelBoot": {"container": {
        "image": "example/kernel:1", "kernelPath": "/boot/vmlinuz", "imagePullPolicy": "Never"}}}
    spec = render_launcher_pod(vmi, ControllerConfig(launcher_image="img:1", launcher_pull_policy="Never"))["spec"]
    assert spec["shareProcessNamespace"] is True
    assert "initContainers" not in spec
    compute, disk, kernel = spec["containers"]
    assert compute["lifecycle"] == {"postStart": {"exec": {
        "command": ["/bin/busybox", "cp", "/bin/busybox", "/var/run/kubevirt/bin/busybox"]}}}
    assert {"name": "container-disk-binary", "mountPath": "/var/run/kubevirt/bin"} in compute["volumeMounts"]
    assert {"name": "container-disk-binary", "emptyDir": {}} in spec["volumes"]
    assert disk["image"] == "example/cirros:latest" and disk["imagePullPolicy"] == "Always"  # :latest
    assert disk["command"][:3] == ["/var/run/kubevirt/bin/busybox", "sh", "-c"]
    script = disk["command"][3]
    assert script.startswith(": kubevirt-container-disk=root;") and "trap 'kill $! 2>/dev/null; exit 0' TERM" in script
    assert kernel["image"] == "example/kernel:1" and kernel["imagePullPolicy"] == "Never"
    assert kernel["command"][3].startswith(": kubevirt-container-disk=kernel-boot;")
    assert disk["volumeMounts"] == [{"name": "container-disk-binary", "mountPath": "/var/run/kubevirt/bin",
                                     "readOnly": True}]
    # root without a capability: the compute container (root, some capabilities) may read their root
    assert disk["securityContext"]["runAsUser"] == 0 and disk["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "--stop-container-disks" in compute["command"]
    assert all(v["name"] != "container-disks" for v in spec["volumes"])


def test_no_init_containers_without_container_disks():
    vmi = default_vmi(dict(VMI, spec=dict(VMI["spec"], volumes=[
        {"name": "data", "persistentVolumeClaim": {"claimName": "pvc1"}}])))
    spec = render_launcher_pod(vmi)["spec"]
    assert "initContainers" not in spec and "shareProcessNamespace" not in spec
    assert [c["name"] for c in spec["containers"]] == ["compute"]
    assert "--stop-container-disks" not in spec["containers"][0]["command"] and "lifecycle" not in spec["containers"][0]
    assert all(v["name"] != "container-disk-binary" for v in spec["volumes"])


def pod_of(**spec):
    vmi = default_vmi(dict(VMI, spec=dict(VMI["spec"], **spec)))
    return render_launcher_pod(vmi)


def mounts_of(pod):
    return {m["mountPath"]: m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]}


def pod_volume(pod, mount_path):
    name = mounts_of(pod)[mount_path]
    return next(v for v in pod["spec"]["volumes"] if v["name"] == name)


def test_vmi_annotations_are_copied_to_the_pod_as_upstream_copies_them():
    vmi = default_vmi(dict(VMI, metadata=dict(VMI["metadata"], annotations={
        "team": "a", "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "kubevirt.io/latest-observed-api-version": "v1", "kubevirt.io/vm-generation": "3"})))
    annotations = render_launcher_pod(vmi)["metadata"]["annotations"]
    assert annotations["team"] == "a" and annotations["kubevirt.io/vm-generation"] == "3"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    assert "kubevirt.io/latest-observed-api-version" not in annotations
    assert annotations["kubevirt.io/domain"] == "testvmi"


def test_pod_level_fields_go_to_the_pod():
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]
    pod = pod_of(priorityClassName="high", schedulerName="custom", topologySpreadConstraints=spread,
                 dnsPolicy="None", dnsConfig={"nameservers": ["10.0.0.10"]}, hostname="web", subdomain="svc")
    spec = pod["spec"]
    assert spec["priorityClassName"] == "high" and spec["schedulerName"] == "custom"
    assert spec["topologySpreadConstraints"] == spread
    assert spec["dnsPolicy"] == "None" and spec["dnsConfig"] == {"nameservers": ["10.0.0.10"]}
    assert spec["hostname"] == "web" and spec["subdomain"] == "svc"


def test_probes_go_to_the_compute_container_with_named_ports_resolved():
    vmi = default_vmi(dict(VMI, spec=dict(VMI["spec"], readinessProbe={
        "tcpSocket": {"port": "ssh"}, "periodSeconds": 3}, livenessProbe={"httpGet": {"port": 80, "path": "/"}})))
    vmi["spec"]["domain"]["devices"]["interfaces"] = [{"name": "default", "masquerade": {},
                                                       "ports": [{"name": "ssh", "port": 22}]}]
    compute = render_launcher_pod(vmi)["spec"]["containers"][0]
    assert compute["readinessProbe"] == {"periodSeconds": 3, "tcpSocket": {"port": 22}}
    assert compute["livenessProbe"] == {"httpGet": {"port": 80, "path": "/"}}


def test_image_pull_secrets_of_container_disks_and_kernel_boot():
    vmi = default_vmi(VMI)
    vmi["spec"]["volumes"][0]["containerDisk"]["imagePullSecret"] = "regcred"
    vmi["spec"]["domain"]["firmware"] = {"kernelBoot": {"container": {
        "image": "kernels:1", "kernelPath": "/boot/vmlinuz", "initrdPath": "/boot/initrd.img",
        "imagePullSecret": "kernelcred"}}}
    spec = render_launcher_pod(vmi)["spec"]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}, {"name": "kernelcred"}]
    kernel = spec["containers"][-1]
    assert kernel["image"] == "kernels:1" and kernel["imagePullPolicy"] == "IfNotPresent"
    assert kernel["command"][3].startswith(": kubevirt-container-disk=kernel-boot;")


def test_config_volumes_are_mounted_for_the_launcher():
    pod = pod_of(volumes=[
        {"name": "cm", "configMap": {"name": "app-config", "optional": True}},
        {"name": "sec", "secret": {"secretName": "app-secret"}},
        {"name": "info", "downwardAPI": {"fields": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "sa", "serviceAccount": {"serviceAccountName": "robot"}},
        {"name": "ci", "cloudInitNoCloud": {"secretRef": {"name": "ud"}, "networkDataSecretRef": {"name": "nd"}}},
        {"name": "host", "hostDisk": {"path": "/var/data/disk.img", "type": "DiskOrCreate", "capacity": "1Gi"}},
    ])
    assert pod_volume(pod, "/var/run/kubevirt-private/config-map/cm")["configMap"] == {"name": "app-config",
                                                                                       "optional": True}
    assert pod_volume(pod, "/var/run/kubevirt-private/secret/sec")["secret"] == {"secretName": "app-secret"}
    assert pod_volume(pod, "/var/run/kubevirt-private/downward-api/info")["downwardAPI"]["items"][0]["path"] == "labels"
    projected = pod_volume(pod, "/var/run/kubevirt-private/service-account")["projected"]["sources"]
    assert {"serviceAccountToken": {"path": "token"}} in projected
    assert pod["spec"]["serviceAccountName"] == "robot" and pod["spec"]["automountServiceAccountToken"] is False
    assert pod_volume(pod, "/var/run/kubevirt-private/cloud-init/ci/user")["secret"] == {"secretName": "ud"}
    assert pod_volume(pod, "/var/run/kubevirt-private/cloud-init/ci/network")["secret"] == {"secretName": "nd"}
    assert pod_volume(pod, "/var/run/kubevirt-private/host-disks/host")["hostPath"] == {
        "path": "/var/data", "type": "DirectoryOrCreate"}


MASQUERADE = {"interfaces": [{"name": "default", "masquerade": {}}]}
E1000 = {"interfaces": [{"name": "default", "bridge": {}, "model": "e1000"}]}


@pytest.mark.parametrize("devices,networks,use_emulation,expected", [
    # under emulation a guest never needs /dev/kvm; its tap always needs /dev/net/tun
    (MASQUERADE, True, True, {"devices.kubevirt.io/tun": "1"}),
    (MASQUERADE, True, False, {"devices.kubevirt.io/tun": "1", "devices.kubevirt.io/kvm": "1",
                               "devices.kubevirt.io/vhost-net": "1"}),
    (E1000, True, False, {"devices.kubevirt.io/tun": "1", "devices.kubevirt.io/kvm": "1"}),
    ({"interfaces": []}, False, True, {}),
    ({"interfaces": []}, False, False, {"devices.kubevirt.io/kvm": "1"}),
])
def test_device_resources(devices, networks, use_emulation, expected):
    vmi = {"metadata": {"name": "v", "namespace": "n", "uid": "u"},
           "spec": {"domain": {"devices": devices}, "networks": [{"name": "default", "pod": {}}] if networks else []}}
    assert device_resources(vmi, use_emulation) == expected


def test_devices_are_requested_and_limited_alike():
    from kubevirt_runtime.api.cluster_config import ClusterConfig
    vmi = default_vmi(VMI)  # the default interface: bridge on the pod network
    pod = render_launcher_pod(vmi, ControllerConfig(), ClusterConfig(use_emulation=True))
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"]["devices.kubevirt.io/tun"] == resources["limits"]["devices.kubevirt.io/tun"] == "1"
    assert "devices.kubevirt.io/kvm" not in resources["limits"]


def test_libvirts_runtime_dir_is_in_the_private_empty_dir_where_the_handler_reaches_migration_sockets():
    from kubevirt_runtime.handler.migration_proxy import LIBVIRT_SOCKET, MIGRATION_SUBDIR
    compute = render_launcher_pod(default_vmi(VMI), ControllerConfig(launcher_image="img:1"))["spec"]["containers"][0]
    mount = next(m for m in compute["volumeMounts"] if m["mountPath"] == "/run/libvirt")
    assert mount["name"] == "private"
    assert MIGRATION_SUBDIR.startswith(mount["subPath"] + "/") and LIBVIRT_SOCKET.startswith(mount["subPath"] + "/")
