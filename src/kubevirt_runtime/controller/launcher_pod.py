"""The virt-launcher pod of a VMI: a pure function of the VMI and the controller's config.

Contract with virt-handler and virt-launcher (keep in sync with them):
- name ``virt-launcher-<vmi name>-<5 chars>``; the 5 chars are derived from the VMI's uid, so the name is
  the same for every controller replica and restart, and the API server itself refuses a second pod
  for one VMI (AlreadyExists);
- labels ``kubevirt.io: virt-launcher``, ``kubevirt.io/created-by: <vmi uid>``, ``vm.kubevirt.io/name``;
  annotation ``kubevirt.io/domain: <vmi name>``; owner reference to the VMI (controller);
- container ``compute`` runs ``virt-launcher --name --namespace --uid --socket-dir --grace-period``;
- emptyDirs ``sockets`` (/var/run/kubevirt/sockets, the handler finds launcher.sock there),
  ``private`` (/var/run/kubevirt-private), ``container-disks`` (/var/run/kubevirt/container-disks);
- containerDisk images may be FROM scratch (no shell, as upstream's are): the first init container,
  ``container-disk-binary``, runs the launcher image to copy its static /bin/busybox into the emptyDir
  ``container-disk-binary`` (/var/run/kubevirt/bin); then one init container per containerDisk volume,
  from that volume's image, runs that busybox to copy /disk/* to container-disks/<volume name>/;
- persistentVolumeClaim volumes are mounted at /var/run/kubevirt-private/vmi-disks/<volume name>;
- the compute container is privileged for now: libvirt and QEMU need /dev/kvm, /dev/net/tun and
  CAP_NET_ADMIN (masquerade NAT inside the pod). Tightening to named devices and capabilities is open.
"""
import hashlib

from ..api.constants import (
    API_VERSION,
    APP_LABEL,
    CREATED_BY_LABEL,
    DEFAULT_GRACE_PERIOD_SECONDS,
    DOMAIN_ANNOTATION,
    LAUNCHER_APP_VALUE,
    NODE_NAME_LABEL,
    VM_NAME_LABEL,
    VMI_KIND,
)
from ..api.quantity import cpu_millis, format_cpu, format_memory, memory_bytes
from .config import (
    CONTAINER_DISK_DIR,
    LAUNCHER_CPU_OVERHEAD,
    LAUNCHER_EXTRA_GRACE_SECONDS,
    LAUNCHER_MEMORY_OVERHEAD,
    PRIVATE_DIR,
    PVC_DISK_DIR,
    SOCKET_DIR,
    ControllerConfig,
)

# Where the first init container leaves a static busybox for the containerDisk copy containers.
BIN_DIR = "/var/run/kubevirt/bin"
BUSYBOX = f"{BIN_DIR}/busybox"
LAUNCHER_BUSYBOX = "/bin/busybox"  # static (Debian's busybox-static) in the launcher image
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of the API server's generateName


def launcher_pod_name(vmi):
    meta = vmi["metadata"]
    digest = hashlib.sha256(meta["uid"].encode()).digest()
    suffix = "".join(_NAME_CHARS[b % len(_NAME_CHARS)] for b in digest[:5])
    return f"virt-launcher-{meta['name']}-{suffix}"


def grace_period(vmi):
    value = (vmi.get("spec") or {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_PERIOD_SECONDS if value is None else int(value)


def launcher_resources(vmi):
    """Pod requests/limits: the VMI's plus the launcher overhead."""
    domain = vmi["spec"].get("domain") or {}
    resources = domain.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    mem_overhead, cpu_overhead = memory_bytes(LAUNCHER_MEMORY_OVERHEAD), cpu_millis(LAUNCHER_CPU_OVERHEAD)
    guest = (domain.get("memory") or {}).get("guest")
    base_memory = requests.get("memory", guest)
    out = {"requests": {"cpu": format_cpu(cpu_millis(requests.get("cpu", 0)) + cpu_overhead)}}
    if base_memory is not None:
        out["requests"]["memory"] = format_memory(memory_bytes(base_memory) + mem_overhead)
    if limits:
        out["limits"] = {}
        if "memory" in limits:
            out["limits"]["memory"] = format_memory(memory_bytes(limits["memory"]) + mem_overhead)
        if "cpu" in limits:
            out["limits"]["cpu"] = format_cpu(cpu_millis(limits["cpu"]) + cpu_overhead)
    return out


def _binary_init(config):
    """Copies the launcher image's static busybox into the shared bin emptyDir."""
    return {
        "name": "container-disk-binary",
        "image": config.launcher_image,
        "imagePullPolicy": config.launcher_pull_policy,
        "command": [LAUNCHER_BUSYBOX, "cp", LAUNCHER_BUSYBOX, BUSYBOX],
        "volumeMounts": [{"name": "container-disk-binary", "mountPath": BIN_DIR}],
        "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}},
    }


def _container_disk_init(index, volume, config):
    """Copies /disk/* of a containerDisk image with the shared busybox (the image needs no shell).
    busybox sh expands the glob itself; every tool is called through busybox, not looked up in PATH."""
    name, disk = volume["name"], volume["containerDisk"]
    target = f"{CONTAINER_DISK_DIR}/{name}"
    return {
        "name": f"container-disk-{index}",
        "image": disk["image"],
        "imagePullPolicy": disk.get("imagePullPolicy", "IfNotPresent"),
        "command": [BUSYBOX, "sh", "-c", f"{BUSYBOX} mkdir -p {target} && {BUSYBOX} cp /disk/* {target}/"],
        "volumeMounts": [{"name": "container-disks", "mountPath": CONTAINER_DISK_DIR},
                         {"name": "container-disk-binary", "mountPath": BIN_DIR, "readOnly": True}],
        "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}},
    }


def render_launcher_pod(vmi, config=None):
    config = config or ControllerConfig()
    meta, spec = vmi["metadata"], vmi["spec"]
    name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
    grace = grace_period(vmi)
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != NODE_NAME_LABEL}
    labels.update({APP_LABEL: LAUNCHER_APP_VALUE, CREATED_BY_LABEL: uid, VM_NAME_LABEL: name})
    volumes = [{"name": "sockets", "emptyDir": {}}, {"name": "private", "emptyDir": {}},
               {"name": "container-disks", "emptyDir": {}}]
    mounts = [{"name": "sockets", "mountPath": SOCKET_DIR}, {"name": "private", "mountPath": PRIVATE_DIR},
              {"name": "container-disks", "mountPath": CONTAINER_DISK_DIR}]
    init_containers = []
    for volume in spec.get("volumes") or []:
        if volume.get("containerDisk"):
            init_containers.append(_container_disk_init(len(init_containers), volume, config))
        elif volume.get("persistentVolumeClaim"):
            pvc = volume["persistentVolumeClaim"]
            pod_volume = f"pvc-{len(volumes)}"
            volumes.append({"name": pod_volume, "persistentVolumeClaim": {
                "claimName": pvc["claimName"], "readOnly": bool(pvc.get("readOnly", False))}})
            mounts.append({"name": pod_volume, "mountPath": f"{PVC_DISK_DIR}/{volume['name']}"})
    compute = {
        "name": "compute",
        "image": config.launcher_image,
        "imagePullPolicy": config.launcher_pull_policy,
        "command": ["virt-launcher", "--name", name, "--namespace", namespace, "--uid", uid,
                    "--socket-dir", SOCKET_DIR, "--grace-period", str(grace)],
        "resources": launcher_resources(vmi),
        "securityContext": {"privileged": True},
        "volumeMounts": mounts,
    }
    pod_spec = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace + LAUNCHER_EXTRA_GRACE_SECONDS,
        "automountServiceAccountToken": False,
        "hostname": name[:63],
        "containers": [compute],
        "volumes": volumes,
    }
    if init_containers:
        pod_spec["initContainers"] = [_binary_init(config)] + init_containers
        volumes.append({"name": "container-disk-binary", "emptyDir": {}})
    for key in ("nodeSelector", "tolerations", "affinity"):
        if spec.get(key):
            pod_spec[key] = spec[key]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": launcher_pod_name(vmi),
            "namespace": namespace,
            "labels": labels,
            "annotations": {DOMAIN_ANNOTATION: name},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": VMI_KIND, "name": name, "uid": uid,
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": pod_spec,
    }
