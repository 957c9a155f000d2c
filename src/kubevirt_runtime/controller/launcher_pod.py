"""The virt-launcher pod of a VMI: a pure function of the VMI and the controller's config.

Contract with virt-handler and virt-launcher (keep in sync with them; paths in api/podpaths.py):
- name ``virt-launcher-<vmi name>-<5 chars>``; the 5 chars are derived from the VMI's uid, so the name is
  the same for every controller replica and restart, and the API server itself refuses a second pod
  for one VMI (AlreadyExists);
- labels: the VMI's, plus ``kubevirt.io: virt-launcher``, ``kubevirt.io/created-by: <vmi uid>``,
  ``vm.kubevirt.io/name``; annotations: the VMI's (as upstream, without kubectl's), plus
  ``kubevirt.io/domain: <vmi name>``; owner reference to the VMI (controller);
- container ``compute`` runs ``virt-launcher --name --namespace --uid --socket-dir --grace-period --in-pod``
  (and ``--stop-container-disks`` when the pod has containerDisk containers);
- emptyDirs ``sockets`` (/var/run/kubevirt/sockets, the handler finds launcher.sock there) and ``private``
  (/var/run/kubevirt-private);
- containerDisks are not copied. Each containerDisk volume (and a kernelBoot image) is a container of the pod,
  ``container-disk-<i>``, from that image, idling in a busybox shell. The images may be FROM scratch (as
  upstream's), so ``compute`` comes first and its postStart hook copies the launcher image's static
  /bin/busybox into the emptyDir ``container-disk-binary`` (/var/run/kubevirt/bin): the kubelet starts a pod's
  containers in order and waits for each postStart hook, so the shell is there before the containerDisk
  containers start, without an init container to create, start and reap first (upstream has one). The
  launcher starts meanwhile and waits for them (launcher/container_disks.py). The shell's script names the volume
  (``: kubevirt-container-disk=<volume | kernel-boot>``, api/podpaths.py); the pod shares one PID namespace, so
  the launcher finds that process and opens the image's files through /proc/<pid>/root (a qcow2 overlay on
  top for disks), and stops these containers (exit 0) when it exits, so the pod completes. They run as root
  without any capability: the compute container (root, a few capabilities) may then read their root, which
  needs the same uid and a superset of the target's capabilities;
- persistentVolumeClaim, dataVolume (its PVC has the DataVolume's name), hostDisk, configMap, secret,
  downwardAPI and serviceAccount volumes, and the Secrets of cloud-init secretRefs, are pod volumes mounted
  under /var/run/kubevirt-private (podpaths); hotpluggable volumes are not: virt-handler bind-mounts them into
  the emptyDir ``hotplug-disks`` (/var/run/kubevirt/hotplug-disks, HostToContainer) once the guest runs;
- pod-level fields of the VMI (placement, scheduler, priority, DNS, hostname, probes) go to the pod;
- the compute container is not privileged (see compute_security_context for the capabilities it keeps
  and why); its devices come from virt-handler's device plugin as extended resources (device_resources):
  /dev/net/tun for the pod network's tap, /dev/kvm unless the KubeVirt CR asks for emulation (useEmulation);
  virt-handler wires the pod's network namespace before the domain starts (handler/network).
"""
import hashlib
import posixpath

from ..api.cluster_config import ClusterConfig
from ..api.constants import (
    API_VERSION,
    APP_LABEL,
    CREATED_BY_LABEL,
    DEFAULT_GRACE_PERIOD_SECONDS,
    DOMAIN_ANNOTATION,
    LAUNCHER_APP_VALUE,
    LAUNCHER_ATTEMPT_ANNOTATION,
    NODE_NAME_LABEL,
    VM_NAME_LABEL,
    VMI_KIND,
)
from ..api.defaults import pull_policy
from ..api.network import pod_interface
from ..api.podpaths import (
    CLOUD_INIT,
    CONFIG_MAPS,
    CONTAINER_DISK_MARKER,
    DOWNWARD_API,
    HOST_DISKS,
    HOTPLUG_DISK_DIR,
    KERNEL_BOOT_DIR,
    LIBVIRT_RUNTIME_DIR,
    LIBVIRT_RUNTIME_SUBPATH,
    PRIVATE_DIR,
    PVC_DISKS,
    SECRETS,
    SERVICE_ACCOUNT,
    SOCKET_DIR,
    private,
)
from ..api.quantity import cpu_millis, format_cpu, format_memory, memory_bytes
from ..api.volumes import is_hotpluggable
from .config import LAUNCHER_CPU_OVERHEAD, LAUNCHER_EXTRA_GRACE_SECONDS, LAUNCHER_MEMORY_OVERHEAD, ControllerConfig

# Where the compute container's postStart hook leaves a static busybox for the containerDisk containers.
BIN_DIR = "/var/run/kubevirt/bin"
BUSYBOX = f"{BIN_DIR}/busybox"
LAUNCHER_BUSYBOX = "/bin/busybox"  # static (Debian's busybox-static) in the launcher image
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of the API server's generateName
# VMI annotations not copied to the pod (as upstream: kubectl's bookkeeping, API version markers).
_NOT_COPIED_ANNOTATION_PREFIXES = ("kubectl.kubernetes.io", "kubevirt.io/storage-observed-api-version",
                                   "kubevirt.io/latest-observed-api-version")
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
_POD_FIELDS = ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints", "priorityClassName",
               "schedulerName", "dnsPolicy", "dnsConfig", "subdomain")
_PROBE_TIMINGS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")


def launcher_pod_name(vmi, attempt=0):
    """Derived from the VMI uid (and the attempt, for a pod that replaces one the kubelet rejected), so two
    controllers racing each other create the same name and the API server refuses the second."""
    meta = vmi["metadata"]
    seed = meta["uid"] if not attempt else f"{meta['uid']}/{attempt}"
    digest = hashlib.sha256(seed.encode()).digest()
    suffix = "".join(_NAME_CHARS[b % len(_NAME_CHARS)] for b in digest[:5])
    return f"virt-launcher-{meta['name']}-{suffix}"


def grace_period(vmi):
    value = (vmi.get("spec") or {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_PERIOD_SECONDS if value is None else int(value)


def guest_vcpus(vmi) -> int:
    cpu = (vmi["spec"].get("domain") or {}).get("cpu") or {}
    return int(cpu.get("sockets") or 1) * int(cpu.get("cores") or 1) * int(cpu.get("threads") or 1)


def launcher_resources(vmi, cluster=None):
    """Pod requests/limits. CPU as upstream: the VMI's request if it makes one, else its vCPUs divided by the
    KubeVirt CR's cpuAllocationRatio (100m per vCPU by default); a CPU limit gets the launcher's overhead on
    top. Memory: the VMI's plus the launcher's overhead."""
    cluster = cluster or ClusterConfig()
    domain = vmi["spec"].get("domain") or {}
    resources = domain.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    mem_overhead, cpu_overhead = memory_bytes(LAUNCHER_MEMORY_OVERHEAD), cpu_millis(LAUNCHER_CPU_OVERHEAD)
    guest = (domain.get("memory") or {}).get("guest")
    base_memory = requests.get("memory", guest)
    if "cpu" in requests:
        cpu = cpu_millis(requests["cpu"])
    else:
        cpu = max(1, -(-guest_vcpus(vmi) * 1000 // cluster.cpu_allocation_ratio))
    out = {"requests": {"cpu": format_cpu(cpu)}}
    if base_memory is not None:
        out["requests"]["memory"] = format_memory(memory_bytes(base_memory) + mem_overhead)
    if limits:
        out["limits"] = {}
        if "memory" in limits:
            out["limits"]["memory"] = format_memory(memory_bytes(limits["memory"]) + mem_overhead)
        if "cpu" in limits:
            out["limits"]["cpu"] = format_cpu(cpu_millis(limits["cpu"]) + cpu_overhead)
    return out


def pod_annotations(vmi):
    annotations = {k: v for k, v in (vmi["metadata"].get("annotations") or {}).items()
                   if not k.startswith(_NOT_COPIED_ANNOTATION_PREFIXES)}
    annotations[DOMAIN_ANNOTATION] = vmi["metadata"]["name"]
    annotations[DEFAULT_CONTAINER_ANNOTATION] = "compute"
    return annotations


def _share_busybox(compute):
    """The compute container's postStart hook copies the launcher image's static busybox into the shared bin
    emptyDir, before the kubelet starts the containerDisk containers that run it."""
    compute["volumeMounts"].append({"name": "container-disk-binary", "mountPath": BIN_DIR})
    compute["lifecycle"] = {"postStart": {"exec": {"command": [LAUNCHER_BUSYBOX, "cp", LAUNCHER_BUSYBOX, BUSYBOX]}}}


def _container_disk(index, volume_name, image, policy):
    """An idle container from a containerDisk's image; the launcher reads the image through its /proc root.
    It leaves with status 0 on SIGTERM (the launcher's, or the kubelet's), whatever it was waiting on."""
    script = (f": {CONTAINER_DISK_MARKER}={volume_name}; trap 'kill $! 2>/dev/null; exit 0' TERM; "
              f"while :; do {BUSYBOX} sleep 3600 & wait $!; done")
    return {
        "name": f"container-disk-{index}",
        "image": image,
        "imagePullPolicy": policy or pull_policy(image),
        "command": [BUSYBOX, "sh", "-c", script],
        "volumeMounts": [{"name": "container-disk-binary", "mountPath": BIN_DIR, "readOnly": True}],
        "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}},
        "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True},
    }


def _disk_images(spec):
    """[(volume name, image, pull policy)] of the images the launcher reads: containerDisks and kernelBoot."""
    out = [(v["name"], v["containerDisk"]["image"], v["containerDisk"].get("imagePullPolicy"))
           for v in spec.get("volumes") or [] if v.get("containerDisk")]
    kernel = ((spec["domain"].get("firmware") or {}).get("kernelBoot") or {}).get("container")
    if kernel and kernel.get("image"):
        out.append((KERNEL_BOOT_DIR, kernel["image"], kernel.get("imagePullPolicy")))
    return out


class _PodVolumes:
    """Collects the pod volumes and the compute container's mounts for the VMI's volumes."""

    def __init__(self):
        self.volumes = [{"name": "sockets", "emptyDir": {}}, {"name": "private", "emptyDir": {}},
                        {"name": "hotplug-disks", "emptyDir": {}}]
        self.mounts = [{"name": "sockets", "mountPath": SOCKET_DIR}, {"name": "private", "mountPath": PRIVATE_DIR},
                       {"name": "private", "mountPath": LIBVIRT_RUNTIME_DIR, "subPath": LIBVIRT_RUNTIME_SUBPATH},
                       {"name": "hotplug-disks", "mountPath": HOTPLUG_DISK_DIR, "mountPropagation": "HostToContainer"}]
        self.service_account = None

    def add(self, source: dict, mount_path: str, read_only=False):
        name = f"vol-{len(self.volumes)}"
        self.volumes.append({"name": name, **source})
        mount = {"name": name, "mountPath": mount_path}
        if read_only:
            mount["readOnly"] = True
        self.mounts.append(mount)

    def add_vmi_volume(self, volume):
        name = volume["name"]
        if is_hotpluggable(volume):
            return  # attached to the running guest by virt-handler
        if volume.get("persistentVolumeClaim"):
            pvc = volume["persistentVolumeClaim"]
            self.add({"persistentVolumeClaim": {"claimName": pvc["claimName"],
                                                "readOnly": bool(pvc.get("readOnly", False))}},
                     private(PVC_DISKS, name))
        elif volume.get("dataVolume"):
            self.add({"persistentVolumeClaim": {"claimName": volume["dataVolume"]["name"], "readOnly": False}},
                     private(PVC_DISKS, name))
        elif volume.get("hostDisk"):
            disk = volume["hostDisk"]
            kind = "DirectoryOrCreate" if disk.get("type") == "DiskOrCreate" else "Directory"
            self.add({"hostPath": {"path": posixpath.dirname(disk["path"]), "type": kind}}, private(HOST_DISKS, name))
        elif volume.get("configMap"):
            source = {"name": volume["configMap"]["name"]}
            if volume["configMap"].get("optional") is not None:
                source["optional"] = volume["configMap"]["optional"]
            self.add({"configMap": source}, private(CONFIG_MAPS, name), read_only=True)
        elif volume.get("secret"):
            source = {"secretName": volume["secret"]["secretName"]}
            if volume["secret"].get("optional") is not None:
                source["optional"] = volume["secret"]["optional"]
            self.add({"secret": source}, private(SECRETS, name), read_only=True)
        elif volume.get("downwardAPI"):
            self.add({"downwardAPI": {"items": [dict(f) for f in volume["downwardAPI"].get("fields") or []]}},
                     private(DOWNWARD_API, name), read_only=True)
        elif volume.get("serviceAccount"):
            self.service_account = volume["serviceAccount"]["serviceAccountName"]
            # the token is mounted here only, for the guest; the launcher itself gets none
            self.add({"projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            ]}}, private(SERVICE_ACCOUNT), read_only=True)
        for kind in ("cloudInitNoCloud", "cloudInitConfigDrive"):
            source = volume.get(kind) or {}
            for key, sub in (("secretRef", "user"), ("networkDataSecretRef", "network")):
                if (source.get(key) or {}).get("name"):
                    self.add({"secret": {"secretName": source[key]["name"]}}, private(CLOUD_INIT, name, sub),
                             read_only=True)


def _image_pull_secrets(spec):
    names = [v["containerDisk"]["imagePullSecret"] for v in spec.get("volumes") or []
             if (v.get("containerDisk") or {}).get("imagePullSecret")]
    kernel = ((spec["domain"].get("firmware") or {}).get("kernelBoot") or {}).get("container") or {}
    if kernel.get("imagePullSecret"):
        names.append(kernel["imagePullSecret"])
    return [{"name": n} for n in dict.fromkeys(names)]


def _probe(vmi, probe):
    """A VMI probe as the compute container's: the kubelet probes the pod's address, which the launcher
    forwards to the guest (named ports are the interfaces' declared ports)."""
    ports = {p["name"]: p["port"] for iface in (vmi["spec"]["domain"].get("devices") or {}).get("interfaces") or []
             for p in iface.get("ports") or [] if p.get("name")}
    out = {k: probe[k] for k in _PROBE_TIMINGS if probe.get(k) is not None}
    for handler in ("httpGet", "tcpSocket"):
        if probe.get(handler) is not None:
            action = dict(probe[handler])
            action["port"] = ports.get(action["port"], action["port"])
            out[handler] = action
    return out


# Extended resources of virt-handler's device plugin (handler/deviceplugin), upstream's names.
KVM_RESOURCE = "devices.kubevirt.io/kvm"
TUN_RESOURCE = "devices.kubevirt.io/tun"
VHOST_NET_RESOURCE = "devices.kubevirt.io/vhost-net"

# What the compute container keeps of root's capabilities (everything else is dropped):
# - NET_BIND_SERVICE: the guest's DHCP server listens on port 67 (launcher/dhcp.py);
# - SETUID, SETGID, SETPCAP: libvirt runs as root and changes QEMU's (unchanged) uid, groups and
#   capability bounding set when it starts it; libvirt refuses to start QEMU when it cannot;
# - DAC_OVERRIDE: libvirt grants it to the QEMU it runs to probe QEMU's capabilities (on a cold cache).
# Not needed any more: NET_ADMIN and NET_RAW (virt-handler wires the network; DHCP uses a UDP socket),
# SYS_ADMIN (the launcher does not unshare a mount namespace in a pod: --in-pod), and the rest of the
# runtime's default set (CHOWN, FOWNER, FSETID, KILL, MKNOD, SETFCAP, SYS_CHROOT, AUDIT_WRITE, NET_RAW).
LAUNCHER_CAPABILITIES = ("NET_BIND_SERVICE", "SETUID", "SETGID", "SETPCAP", "DAC_OVERRIDE")


def device_resources(vmi, use_emulation: bool) -> dict:
    """The device plugin's resources the compute container needs: the tap of a pod-network interface needs
    /dev/net/tun; a guest needs /dev/kvm unless emulation is the cluster's choice (a TCG guest must be able
    to run on a node without it), and then also /dev/vhost-net for virtio NICs, as upstream asks."""
    out = {}
    found = pod_interface(vmi)
    if found is not None:
        out[TUN_RESOURCE] = "1"
    if not use_emulation:
        out[KVM_RESOURCE] = "1"
        if found is not None and (found[1].get("model") or "virtio") == "virtio":
            out[VHOST_NET_RESOURCE] = "1"
    return out


def compute_security_context() -> dict:
    return {"privileged": False, "allowPrivilegeEscalation": False, "runAsUser": 0, "runAsNonRoot": False,
            "capabilities": {"drop": ["ALL"], "add": list(LAUNCHER_CAPABILITIES)}}


def compute_resources(vmi, cluster=None) -> dict:
    cluster = cluster or ClusterConfig()
    resources = launcher_resources(vmi, cluster)
    devices = device_resources(vmi, cluster.use_emulation)
    if devices:  # extended resources: requests must equal limits
        resources["requests"].update(devices)
        resources.setdefault("limits", {}).update(devices)
    return resources


def render_launcher_pod(vmi, config=None, cluster=None, attempt=0):
    """`config`: the controller's settings; `cluster`: the KubeVirt CR's configuration (api/cluster_config.py);
    `attempt`: how many earlier pods of this VMI the kubelet rejected before they started."""
    config = config or ControllerConfig()
    meta, spec = vmi["metadata"], vmi["spec"]
    name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
    grace = grace_period(vmi)
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != NODE_NAME_LABEL}
    labels.update({APP_LABEL: LAUNCHER_APP_VALUE, CREATED_BY_LABEL: uid, VM_NAME_LABEL: name})
    pod_volumes = _PodVolumes()
    for volume in spec.get("volumes") or []:
        pod_volumes.add_vmi_volume(volume)
    disk_containers = [_container_disk(i, *image) for i, image in enumerate(_disk_images(spec))]
    compute = {
        "name": "compute",
        "image": config.launcher_image,
        "imagePullPolicy": config.launcher_pull_policy,
        "command": ["virt-launcher", "--name", name, "--namespace", namespace, "--uid", uid,
                    "--socket-dir", SOCKET_DIR, "--grace-period", str(grace), "--in-pod"],
        "resources": compute_resources(vmi, cluster),
        "securityContext": compute_security_context(),
        "volumeMounts": pod_volumes.mounts,
    }
    for key in ("readinessProbe", "livenessProbe"):
        if spec.get(key):
            compute[key] = _probe(vmi, spec[key])
    if disk_containers:
        compute["command"].append("--stop-container-disks")
    pod_spec = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace + LAUNCHER_EXTRA_GRACE_SECONDS,
        "automountServiceAccountToken": False,
        "hostname": (spec.get("hostname") or name)[:63],
        "containers": [compute] + disk_containers,
        "volumes": pod_volumes.volumes,
    }
    if pod_volumes.service_account:
        pod_spec["serviceAccountName"] = pod_volumes.service_account
    if disk_containers:
        _share_busybox(compute)
        pod_spec["shareProcessNamespace"] = True
        pod_volumes.volumes.append({"name": "container-disk-binary", "emptyDir": {}})
    pull_secrets = _image_pull_secrets(spec)
    if pull_secrets:
        pod_spec["imagePullSecrets"] = pull_secrets
    for key in _POD_FIELDS:
        if spec.get(key):
            pod_spec[key] = spec[key]
    annotations = pod_annotations(vmi)
    if attempt:
        annotations[LAUNCHER_ATTEMPT_ANNOTATION] = str(attempt)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": launcher_pod_name(vmi, attempt),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": VMI_KIND, "name": name, "uid": uid,
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": pod_spec,
    }
