"""The VM the storage e2e modules share (one per session, reused): the demo disk imported into a DataVolume
from the node's containerd (registry source), a blank DataVolume as a data disk, and cloud-init; and a serial
console shell to read and write the data disk from inside the guest."""
import re
import uuid

import yaml

from tests.e2e import cluster as c

VM, NS = "vm-storage", "default"
ROOT_DV, DATA_DV = f"{VM}-root", f"{VM}-data"
DATA_DEVICE = "/dev/vdb"  # disks get virtio targets in spec order: root vda, data vdb, cloud-init vdc
TOKEN_BYTES = 16


def demo_image():
    vm = next(d for d in yaml.safe_load_all(c.DEMO_MANIFEST.read_text()) if d and d["kind"] == "VirtualMachine")
    return next(v["containerDisk"]["image"] for v in vm["spec"]["template"]["spec"]["volumes"] if "containerDisk" in v)


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
         "spec": {"source": {"registry": {"url": f"docker://{demo_image()}"}},
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
        c.apply(manifest())
    elif vm["spec"].get("runStrategy") == "Halted":
        assert c.virtctl("start", VM, "-n", NS).returncode == 0
    return wait_for_shell()


def delete_vm():
    c.kubectl("delete", "vm", VM, "-n", NS, "--ignore-not-found", "--wait=true", timeout=300)
    c.kubectl("delete", "dv", ROOT_DV, DATA_DV, "-n", NS, "--ignore-not-found", timeout=300)


def last_user(request) -> bool:
    """Whether no later module of this session uses the shared VM: then the caller removes it, so a partial
    run leaves nothing behind and a full one boots it once."""
    modules = [item.module.__name__.rsplit(".", 1)[-1] for item in request.session.items]
    mine = request.module.__name__.rsplit(".", 1)[-1]
    later = modules[max(i for i, m in enumerate(modules) if m == mine) + 1:]
    return not any(m.startswith("test_storage") for m in later)
