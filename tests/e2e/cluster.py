"""Drive the real playbooks and inspect what a cluster leaves on this host."""
import datetime
import json
import os
import re
import subprocess
import time
from pathlib import Path

import yaml

from tests.conftest import REPO

CLUSTER_NAME = os.environ.get("CLUSTER_NAME", "kubevirt-ops")
STATE_DIR = Path.home() / ".local" / "state" / "kubevirt-ops" / CLUSTER_NAME
KUBECONFIG = STATE_DIR / "admin.kubeconfig"
KUBECTL = STATE_DIR / "bin" / "kubectl"
OWN_CHAIN_PREFIXES = ("KUBE-", "CNI-", "KUBEVIRT-OPS-")
OWN_INTERFACE_PREFIXES = ("kvo-", "veth")
NETNS_ROOT = "/var/lib/kubevirt-ops-nodes"
# The e2e session's cluster (when it makes one): two nodes, so that VMs can migrate between them.
E2E_NODES = os.environ.get("E2E_NODES", "2")

# The demo VM of examples/ and what its console prints.
KUBEVIRT_NAMESPACE = "kubevirt"
DEMO_MANIFEST = REPO / "examples" / "vm-demo.yaml"
DEMO_MARKER = "kubevirt-ops demo: login ready"
BOOT_TIMEOUT = 900  # TCG
DEPLOY_EXTRA = ("-e", f"kubeconfig={KUBECONFIG}", "-e", f"kubectl={KUBECTL}")


def run_playbook(name, *extra, check=True, timeout=3600, env=None):
    """Run playbooks/NAME.yml on the local inventory; returns (returncode, output, seconds). `env` adds to the
    environment (NODES=2 for a cluster-up of two nodes)."""
    venv_bin = REPO / ".venv" / "bin"
    cmd = [str(venv_bin / "ansible-playbook"), "-i", str(REPO / "inventories" / "local"),
           str(REPO / "playbooks" / f"{name}.yml"), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", PATH=f"{venv_bin}:{os.environ['PATH']}", **(env or {}))
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - start
    output = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} failed ({proc.returncode}):\n{output[-6000:]}")
    return proc.returncode, output, took


def recap_changed(output):
    """Sum of changed= over the PLAY RECAP lines."""
    recap = output.split("PLAY RECAP", 1)[1]
    return sum(int(n) for n in re.findall(r"changed=(\d+)", recap))


def kubectl(*args, input=None, check=True, timeout=120):
    proc = subprocess.run([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args], input=input,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def kubectl_json(*args):
    return json.loads(kubectl(*args, "-o", "json"))


def cluster_answers():
    if not KUBECONFIG.exists() or not KUBECTL.exists():
        return False
    proc = subprocess.run([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "--request-timeout=5s",
                           "get", "--raw", "/readyz"], capture_output=True, text=True)
    return proc.returncode == 0


def failure_diagnostics(events=40, log_lines=60, launchers=4):
    """What a failed test's report shows: the cluster's latest events and the last log lines of virt-controller,
    virt-handler and a few launchers (the CI report is often all there is to go on)."""
    def tail(*args, keep=None):
        try:
            lines = kubectl(*args, check=False, timeout=30).splitlines()
        except subprocess.TimeoutExpired:
            lines = ["(kubectl timed out)"]
        return "\n".join(lines[-keep:] if keep else lines)

    parts = [("events", tail("get", "events", "-A", "--sort-by=.lastTimestamp", keep=events))]
    for app in ("virt-controller", "virt-handler"):
        parts.append((app, tail("logs", "-n", "kubevirt", "-l", f"kubevirt.io={app}", "-c", app, "--prefix",
                                f"--tail={log_lines}")))
    pods = tail("get", "pods", "-A", "-l", "kubevirt.io=virt-launcher", "--no-headers",
                "-o", "custom-columns=NS:.metadata.namespace,NAME:.metadata.name").split("\n")
    for line in [p for p in pods if p.strip()][-launchers:]:
        namespace, name = line.split()[:2]
        parts.append((f"{namespace}/{name}", tail("logs", "-n", namespace, name, "-c", "compute",
                                                   f"--tail={log_lines // 2}")))
    return "\n".join(f"--- {title}\n{text}" for title, text in parts)


def host_traces():
    """What a cluster could leave behind: its interfaces, iptables chains, mounts, processes, the network
    namespaces and cgroups of its netns nodes."""
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    interfaces = {link["ifname"] for link in links if link["ifname"].startswith(OWN_INTERFACE_PREFIXES)}
    chains = set()
    for table in ("filter", "nat", "mangle"):
        save = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        chains |= {f"{table}/{m}" for m in re.findall(r"^:(\S+)", save, re.M) if m.startswith(OWN_CHAIN_PREFIXES)}
    with open("/proc/mounts") as f:
        mounts = {line.split()[1] for line in f
                  if line.split()[1].startswith(("/var/lib/kubelet", "/var/lib/kubevirt-ops", "/run/kubevirt-ops",
                                                 "/run/netns/kvo-"))}
    netns = {line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                        text=True).stdout.splitlines() if line.startswith("kvo-")}
    cgroups = {str(p) for p in Path("/sys/fs/cgroup").glob("*/kvo-*")}
    dirs = {str(p) for p in (Path(NETNS_ROOT), Path("/run/kubevirt-ops-nodes")) if p.exists()}
    processes = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if exe.startswith(str(STATE_DIR)) or exe.endswith(("containerd-shim-runc-v2",)):
            processes.add(f"{pid}:{exe}")
    return {"interfaces": interfaces, "chains": chains, "mounts": mounts, "processes": processes, "netns": netns,
            "cgroups": cgroups, "directories": dirs}


def wait_for(what, probe, timeout, interval=2.0):
    """Calls probe() until it returns something truthy; fails naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except AssertionError as exc:  # kubectl errors while objects come and go
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def get(kind, name, namespace):
    out = kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def virtctl(*args, timeout=120, input=None):
    """Our virtctl through hack/virtctl.sh (this cluster's admin kubeconfig)."""
    return subprocess.run([str(REPO / "hack" / "virtctl.sh"), *args], capture_output=True, text=True,
                          timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def ensure_kubevirt():
    """KubeVirt deployed with virt-api serving (an earlier test module may have uninstalled it)."""
    if not get("deployment", "virt-api", KUBEVIRT_NAMESPACE):
        run_playbook("deploy", *DEPLOY_EXTRA)
    kubectl("-n", KUBEVIRT_NAMESPACE, "rollout", "status", "deployment/virt-api", "--timeout=300s", timeout=320)
    wait_for("APIService v1.subresources.kubevirt.io Available",
             lambda: any(x["type"] == "Available" and x["status"] == "True"
                         for x in (get("apiservice", "v1.subresources.kubevirt.io", "") or {})
                         .get("status", {}).get("conditions", [])), 120)


def demo_vm(name, namespace="default", memory="128Mi"):
    """The demo VM's manifest under another name (same containerDisk and cloud-init)."""
    vm = next(d for d in yaml.safe_load_all(DEMO_MANIFEST.read_text()) if d and d["kind"] == "VirtualMachine")
    vm["metadata"] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    template = vm["spec"]["template"]
    template["metadata"]["labels"] = {"app": name, "kubevirt.io/domain": name}
    template["spec"]["domain"]["memory"]["guest"] = memory
    template["spec"]["domain"]["resources"] = {"requests": {"memory": memory}}
    return vm


def create_to_running(vmi) -> float:
    """Seconds from the VMI's creation to its Running transition (the API's 1 s resolution)."""
    def epoch(stamp):
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    running = next(t["phaseTransitionTimestamp"] for t in vmi["status"]["phaseTransitionTimestamps"]
                   if t["phase"] == "Running")
    return epoch(running) - epoch(vmi["metadata"]["creationTimestamp"])


def apply(*objects):
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))


def supervised_pid(name):
    """The pid of a control-plane daemon that kvo-supervise runs (it restarts it when it dies)."""
    return int((STATE_DIR / "run" / f"{name}.child.pid").read_text().strip())


CONTAINERD_SOCKET = Path("/run/kubevirt-ops") / CLUSTER_NAME / "containerd" / "containerd.sock"


def container_pid(pod, container):
    """The host pid of a running container of `pod` (from containerd), or None."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] != container or "running" not in (status.get("state") or {}):
            continue
        container_id = status.get("containerID", "").removeprefix("containerd://")
        tasks = subprocess.run(["ctr", "-a", str(CONTAINERD_SOCKET), "-n", "k8s.io", "task", "ls"],
                               capture_output=True, text=True, check=True).stdout
        for line in tasks.splitlines()[1:]:
            task, pid, state = line.split()[:3]
            if task == container_id and state == "RUNNING":
                return int(pid)
    return None


def nodes():
    return kubectl_json("get", "nodes")["items"]


def node_ip(node):
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


def cli(node, *command, timeout=60, check=True):
    """A command on a node of the cluster through hack/cli.sh (as kubevirtci's cli.sh ssh)."""
    proc = subprocess.run([str(REPO / "hack" / "cli.sh"), node, "--", *command], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"cli.sh {node} -- {' '.join(command)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def console_line(vm: str, namespace: str, command: str, timeout=120) -> str:
    """Runs a shell command on a VM's serial console (our virtctl) and returns its output line. The typed line
    is echoed back and the console replays recent output, so the output is marked with a fresh nonce the typed
    text does not contain (split by quotes)."""
    import uuid
    n = uuid.uuid4().hex[:8]
    # "$( " with a space: a command that starts with "(" must not turn it into an arithmetic "$(("
    proc = virtctl("console", vm, "-n", namespace, "--send", f"\\recho OUT\"\"{n}=$( {command} ) END\"\"{n}\\r",
                   "--until", f"END{n}", "--timeout", str(timeout), timeout=timeout + 30)
    found = re.findall(rf"OUT{n}=(.*?) END{n}", proc.stdout)
    assert found, f"no output for {command!r}: {proc.stdout[-1500:]} {proc.stderr[-500:]}"
    return found[-1].strip()
