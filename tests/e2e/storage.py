"""The VM the storage e2e modules share (one per session, reused): the demo disk imported over http into a
DataVolume from a web server in a pod (reached by its Service name through cluster DNS), a blank DataVolume as
a data disk, and cloud-init; and a serial console shell to read and write the data disk from inside the guest."""
import re
import uuid

import yaml

from tests.e2e import cluster as c

VM, NS = "vm-storage", "default"
ROOT_DV, DATA_DV = f"{VM}-root", f"{VM}-data"
DATA_DEVICE = "/dev/vdb"  # disks get virtio targets in spec order: root vda, data vdb, cloud-init vdc
TOKEN_BYTES = 16
SERVER = "kvo-disk-server"  # a pod and its Service: busybox httpd serving the demo disk and BIG_MIB of noise
SERVER_URL = f"http://{SERVER}.{NS}.svc.cluster.local"
BIG_MIB = 128


def demo_image():
    vm = next(d for d in yaml.safe_load_all(c.DEMO_MANIFEST.read_text()) if d and d["kind"] == "VirtualMachine")
    return next(v["containerDisk"]["image"] for v in vm["spec"]["template"]["spec"]["volumes"] if "containerDisk" in v)


def launcher_image():
    controller = c.kubectl_json("get", "deployment", "virt-controller", "-n", c.KUBEVIRT_NAMESPACE)
    command = controller["spec"]["template"]["spec"]["containers"][0]["command"]
    return next(a.split("=", 1)[1] for a in command if a.startswith("--launcher-image="))


def disk_server():
    """The web server pod and Service, made if absent; returns its base URL once it serves. The launcher
    image's static busybox serves /www: demo.img copied out of the demo containerDisk, and big.img."""
    if not c.get("pod", SERVER, NS):
        busybox, www, image = "/var/run/kvo/busybox", "/www", launcher_image()
        mounts = [{"name": "bin", "mountPath": "/var/run/kvo"}, {"name": "www", "mountPath": www}]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": SERVER, "namespace": NS,
                                                               "labels": {"app": SERVER}},
               "spec": {"terminationGracePeriodSeconds": 1,  # httpd as PID 1 ignores SIGTERM
                        "volumes": [{"name": "bin", "emptyDir": {}}, {"name": "www", "emptyDir": {}}],
                        "initContainers": [
                            {"name": "busybox", "image": image, "imagePullPolicy": "IfNotPresent",
                             "command": ["/bin/busybox", "cp", "/bin/busybox", busybox], "volumeMounts": mounts},
                            {"name": "disks", "image": demo_image(), "imagePullPolicy": "IfNotPresent",
                             "command": [busybox, "sh", "-c", f"{busybox} cp /disk/demo.img {www}/demo.img && "
                                         f"{busybox} dd if=/dev/urandom of={www}/big.img bs=1M count={BIG_MIB}"],
                             "volumeMounts": mounts}],
                        "containers": [{"name": "httpd", "image": image,
                                        "imagePullPolicy": "IfNotPresent",
                                        "command": ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", www],
                                        "ports": [{"containerPort": 8080}], "volumeMounts": mounts,
                                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVER, "namespace": NS},
                   "spec": {"selector": {"app": SERVER}, "ports": [{"port": 80, "targetPort": 8080}]}}
        c.apply(pod, service)
    c.kubectl("wait", "-n", NS, f"pod/{SERVER}", "--for=condition=Ready", "--timeout=300s", timeout=320)
    return SERVER_URL


def delete_disk_server():
    c.kubectl("delete", "pod,service", SERVER, "-n", NS, "--ignore-not-found", "--wait=true", timeout=120)


def manifest():
    vm = c.demo_vm(VM, NS)
    spec = vm["spec"]["template"]["spec"]
    cloud_init = next(v for v in spec["volumes"] if v["name"] == "cloudinitdisk")
    spec["domain"]["devices"]["disks"] = [{"name": "rootdisk", "disk": {"bus": "virtio"}},
                                          {"name": "datadisk", "disk": {"bus": "virtio"}},
                                          {"name": "cloudinitdisk", "disk": {"bus": "virtio"}}]
    spec["volumes"] = [{"name": "rootdisk", "dataVolume": {"name": ROOT_DV}},
                       {"name": "datadisk", "dataVolume": {"name": DATA_DV}}, cloud_init]
    vm["spec"]["dataVolumeTemplates"] = [
        {"metadata": {"name": ROOT_DV},
         "spec": {"source": {"http": {"url": f"{SERVER_URL}/demo.img"}},
                  "storage": {"resources": {"requests": {"storage": "64Mi"}}}}},
        {"metadata": {"name": DATA_DV},
         "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "16Mi"}}}}}]
    return vm


def running_vmi():
    vmi = c.get("vmi", VM, NS)
    return vmi if vmi and (vmi.get("status") or {}).get("phase") == "Running" \
        and not vmi["metadata"].get("deletionTimestamp") else None


def console_line(command: str, timeout=90) -> str:
    """Runs a shell command on the guest's serial console and returns its output (marked with a nonce the
    echoed command line does not contain)."""
    n = uuid.uuid4().hex[:8]
    proc = c.virtctl("console", VM, "-n", NS, "--send", f"\\recho OUT\"\"{n}=$({command}) END\"\"{n}\\r",
                     "--until", f"END{n}", "--timeout", str(timeout), timeout=timeout + 30)
    found = re.findall(rf"OUT{n}=(.*?) END{n}", proc.stdout)
    assert found, f"no output for {command!r}: {proc.stdout[-1500:]} {proc.stderr[-500:]}"
    return found[-1].strip()


def wait_for_shell():
    """The guest's shell answers on the console (TCG boots take minutes)."""
    c.wait_for(f"{VM} Running", running_vmi, c.BOOT_TIMEOUT, 3)

    def answers():
        try:
            return console_line("echo up", timeout=30) == "up"
        except AssertionError:
            return False
    c.wait_for(f"{VM}'s shell on the serial console", answers, c.BOOT_TIMEOUT, 3)
    return running_vmi()


def write_token(device=DATA_DEVICE) -> str:
    token = uuid.uuid4().hex[:TOKEN_BYTES]
    assert console_line(f"printf {token} | dd of={device} bs={TOKEN_BYTES} count=1 conv=fsync 2>/dev/null "
                        f"&& sync && echo written") == "written"
    return token


def read_token(device=DATA_DEVICE) -> str:
    return console_line(f"dd if={device} bs=512 count=1 2>/dev/null | head -c {TOKEN_BYTES} "
                        "| tr -cd 0-9a-f")


def ensure_vm():
    """The shared VM, created if absent and started if stopped; returns its running VMI once the shell
    answers."""
    vm = c.get("vm", VM, NS)
    if vm is None:
        disk_server()
        c.apply(manifest())
    elif vm["spec"].get("runStrategy") == "Halted":
        assert c.virtctl("start", VM, "-n", NS).returncode == 0
    return wait_for_shell()


def delete_vm():
    c.kubectl("delete", "vm", VM, "-n", NS, "--ignore-not-found", "--wait=true", timeout=300)
    c.kubectl("delete", "dv", ROOT_DV, DATA_DV, "-n", NS, "--ignore-not-found", timeout=300)
    delete_disk_server()


def last_user(request) -> bool:
    """Whether no later module of this session uses the shared VM: then the caller removes it, so a partial
    run leaves nothing behind and a full one boots it once."""
    modules = [item.module.__name__.rsplit(".", 1)[-1] for item in request.session.items]
    mine = request.module.__name__.rsplit(".", 1)[-1]
    later = modules[max(i for i, m in enumerate(modules) if m == mine) + 1:]
    return not any(m.startswith("test_storage") for m in later)
