"""Pod networking and the unprivileged launcher on the local cluster, as upstream KubeVirt behaves:
- masquerade with no declared port forwards every port (a VM from an upstream manifest answers on 80 and 22);
- masquerade with declared ports forwards only those (the demo VM declares 80: its SSH port stays closed);
- bridge binding: the guest takes the pod's address over DHCP, and that is the VMI's reported address;
- the launcher pod is not privileged and holds only the named capabilities, in its spec and in fact;
- the node advertises virt-handler's device plugin resources for the device nodes it has, and a virt-handler
  restart leaves them serving (they run in a container of their own).

Two TCG guests boot here (masquerade without ports, bridge), at once; the demo VM is reused.
"""
import json
import os
import signal

import pytest
import yaml

from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

NS = "default"
DEMO_IMAGE = "docker.io/kubevirt-ops/demo-disk:devel"
TOOLBOX = "docker.io/kubevirt-ops/toolbox:v1.36.3"
CLIENT = "kvo-e2e-net-client"
HTTP_TEXT = "kubevirt-ops demo"
BOOT_TIMEOUT = c.BOOT_TIMEOUT
LAUNCHER_CAPABILITIES = {"NET_BIND_SERVICE", "SETUID", "SETGID", "SETPCAP", "DAC_OVERRIDE"}
CAPABILITY_BITS = {"DAC_OVERRIDE": 1, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10}
wait_for, get = c.wait_for, c.get


def vm(name, interface):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": NS},
            "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": {"kubevirt.io/domain": name}},
                                                           "spec": {
                "terminationGracePeriodSeconds": 0,
                "domain": {"memory": {"guest": "128Mi"},
                           "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}],
                                       "interfaces": [interface]}},
                "networks": [{"name": "default", "pod": {}}],
                "volumes": [{"name": "root", "containerDisk": {"image": DEMO_IMAGE}}]}}}}


def launcher_pod(name):
    pods = [p for p in c.kubectl_json("get", "pods", "-n", NS, "-l", f"vm.kubevirt.io/name={name}")["items"]
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    return pods[0] if pods else None


def running_with_address(name):
    vmi = get("vmi", name, NS) or {}
    interfaces = (vmi.get("status") or {}).get("interfaces") or []
    if (vmi.get("status") or {}).get("phase") == "Running" and interfaces and interfaces[0].get("ipAddress"):
        return vmi
    return None


def serial_log(pod):
    return c.kubectl("exec", "-n", NS, pod["metadata"]["name"], "-c", "compute", "--", "cat",
                     "/var/run/kubevirt-private/virt-serial0.log", check=False, timeout=30)


def from_client(*command, timeout=60):
    return c.kubectl("exec", "-n", NS, CLIENT, "--", *command, check=False, timeout=timeout)


def http_get(address):
    """The demo guest's page through busybox nc (the toolbox's wget crashes on this build)."""
    return from_client("sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {address} 80")


def ssh_banner(address):
    """The first line port 22 sends (dropbear's version), or nc's complaint."""
    return from_client("sh", "-c", f"nc -w 5 {address} 22 </dev/null 2>&1 | head -n 1")


@pytest.fixture(scope="module")
def guests(cluster):
    """The demo VM (masquerade, port 80 declared) plus two new ones: masquerade without ports, bridge."""
    c.kubectl("apply", "-f", str(c.DEMO_MANIFEST))
    demo = launcher_pod("vm-demo")
    if demo and any((x.get("securityContext") or {}).get("privileged") for x in demo["spec"]["containers"]):
        # started by an older virt-controller (before cluster-sync): let runStrategy Always start a new one
        c.kubectl("delete", "vmi", "vm-demo", "-n", NS, "--wait=true", timeout=300)
    new = {"kvo-e2e-masq": vm("kvo-e2e-masq", {"name": "default", "masquerade": {}}),
           "kvo-e2e-bridge": vm("kvo-e2e-bridge", {"name": "default", "bridge": {}})}
    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": CLIENT, "namespace": NS},
              "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                  "name": "client", "image": TOOLBOX, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}}
    docs = [*new.values(), client]
    c.kubectl("apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(d) for d in docs))
    try:
        wait_for("the client pod", lambda: (get("pod", CLIENT, NS).get("status") or {}).get("phase") == "Running",
                 120)
        vmis = {name: wait_for(f"VMI {name} Running with an address", lambda n=name: running_with_address(n),
                               BOOT_TIMEOUT, interval=3) for name in ("vm-demo", *new)}
        for name in vmis:  # the guests have booted (DHCP done, HTTP up)
            wait_for(f"{name}'s console marker", lambda n=name: c.DEMO_MARKER in serial_log(launcher_pod(n)),
                     BOOT_TIMEOUT, interval=3)
        yield vmis
    finally:
        for name in new:
            c.kubectl("delete", "vm", name, "-n", NS, "--ignore-not-found", "--wait=false", check=False)
        c.kubectl("delete", "pod", CLIENT, "-n", NS, "--ignore-not-found", "--wait=false", check=False)


def test_masquerade_without_ports_forwards_every_port(guests):
    address = guests["kvo-e2e-masq"]["status"]["interfaces"][0]["ipAddress"]
    assert address == launcher_pod("kvo-e2e-masq")["status"]["podIP"]
    assert HTTP_TEXT in wait_for("HTTP on port 80", lambda: HTTP_TEXT in http_get(address) and http_get(address),
                                 120, interval=3)
    assert "SSH-2.0-dropbear" in ssh_banner(address)


def test_masquerade_with_declared_ports_forwards_only_those(guests):
    address = guests["vm-demo"]["status"]["interfaces"][0]["ipAddress"]
    assert wait_for("HTTP on the declared port 80", lambda: HTTP_TEXT in http_get(address), 120, interval=3)
    refused = ssh_banner(address)  # the guest listens on 22, but the pod does not forward it
    assert "Connection refused" in refused, refused


def test_bridge_binding_gives_the_guest_the_pods_address(guests):
    pod = launcher_pod("kvo-e2e-bridge")
    vmi = guests["kvo-e2e-bridge"]
    assert vmi["status"]["interfaces"][0]["ipAddress"] == pod["status"]["podIP"]
    # the guest configured the pod's address on eth0 from the launcher's DHCP answer
    assert f"eth0 configured by DHCP: {pod['status']['podIP']}/" in serial_log(pod)
    assert HTTP_TEXT in wait_for("HTTP from the guest at the pod's address",
                                 lambda: HTTP_TEXT in http_get(pod["status"]["podIP"]) and
                                 http_get(pod["status"]["podIP"]), 120, interval=3)
    # kubectl's IP column is the same address
    assert c.kubectl("get", "vmi", "kvo-e2e-bridge", "-n", NS, "-o", "custom-columns=IP:.status.interfaces[0]"
                     ".ipAddress", "--no-headers").strip() == pod["status"]["podIP"]


def test_the_launcher_is_unprivileged_with_named_capabilities(guests):
    pod = launcher_pod("vm-demo")
    compute = next(x for x in pod["spec"]["containers"] if x["name"] == "compute")
    context = compute.get("securityContext") or {}
    assert not context.get("privileged")
    assert context["capabilities"]["drop"] == ["ALL"]
    assert set(context["capabilities"]["add"]) == LAUNCHER_CAPABILITIES
    # and in fact: the launcher process holds exactly those (the pod shares one PID namespace, so it is found
    # by name: PID 1 is the pod's pause process)
    status = c.kubectl("exec", "-n", NS, pod["metadata"]["name"], "-c", "compute", "--", "sh", "-c",
                       'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = virt-launcher ] && '
                       'cat $p/status; done; true')
    caps = {line.split(":")[0]: int(line.split(":")[1], 16) for line in status.splitlines()
            if line.startswith(("CapEff", "CapBnd", "CapPrm"))}
    expected = sum(1 << CAPABILITY_BITS[name] for name in LAUNCHER_CAPABILITIES)
    assert caps == {"CapPrm": expected, "CapEff": expected, "CapBnd": expected}
    # its devices come from the device plugin: the tap's /dev/net/tun; no /dev/kvm under emulation
    limits = compute["resources"]["limits"]
    assert limits.get("devices.kubevirt.io/tun") == "1" and "devices.kubevirt.io/kvm" not in limits
    devices = c.kubectl("exec", "-n", NS, pod["metadata"]["name"], "-c", "compute", "--", "ls", "/dev", "/dev/net")
    assert "tun" in devices.split() and "kvm" not in devices.split()


def test_the_node_advertises_the_device_plugin_resources(cluster):
    node = c.kubectl_json("get", "nodes")["items"][0]
    allocatable = node["status"]["allocatable"]
    assert allocatable.get("devices.kubevirt.io/tun") == "1k"
    # what the node lacks is not advertised: kvm only where /dev/kvm exists, vhost-net only with /dev/vhost-net
    for name, path in (("kvm", "/dev/kvm"), ("vhost-net", "/dev/vhost-net")):
        assert (allocatable.get(f"devices.kubevirt.io/{name}") == "1k") == os.path.exists(path), \
            json.dumps(allocatable)


def test_a_virt_handler_restart_leaves_the_device_plugins_serving(cluster):
    """The kubelet marks a device plugin's devices unhealthy the moment the plugin disconnects, and rejects a pod
    it admits then (UnexpectedAdmissionError). The plugins run in a container of the DaemonSet of their own: with
    virt-handler just killed, a pod that asks for /dev/net/tun on that node is still admitted."""
    node = c.nodes()[0]["metadata"]["name"]  # this host's node: container_pid reads its containerd
    handler = next(p for p in c.kubectl_json("get", "pods", "-n", c.KUBEVIRT_NAMESPACE, "-l",
                                             "kubevirt.io=virt-handler")["items"] if p["spec"]["nodeName"] == node)
    assert [ct["name"] for ct in handler["spec"]["containers"]] == ["virt-handler", "device-plugins"]
    name = "kvo-e2e-tun-consumer"
    consumer = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
                "spec": {"nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "tun", "image": TOOLBOX, "imagePullPolicy": "Never",
                                         "command": ["sleep", "3600"],
                                         "resources": {"limits": {"devices.kubevirt.io/tun": "1"}}}]}}
    os.kill(c.container_pid(handler, "virt-handler"), signal.SIGKILL)
    try:
        c.kubectl("apply", "-f", "-", input=yaml.safe_dump(consumer))
        status = wait_for("the pod admitted or rejected", lambda: (
            (get("pod", name, NS) or {}).get("status") or {}).get("phase") in ("Running", "Failed") and
            get("pod", name, NS)["status"], 120, interval=1)
        assert status["phase"] == "Running", (status.get("reason"), status.get("message"))
    finally:
        c.kubectl("delete", "pod", name, "-n", NS, "--ignore-not-found", "--wait=false", check=False)
        c.kubectl("rollout", "status", "-n", c.KUBEVIRT_NAMESPACE, "daemonset/virt-handler", "--timeout=180s",
                  timeout=200)
        wait_for("virt-handler Ready again", lambda: all(
            cond["status"] == "True" for p in c.kubectl_json("get", "pods", "-n", c.KUBEVIRT_NAMESPACE, "-l",
                                                            "kubevirt.io=virt-handler")["items"]
            for cond in p["status"].get("conditions") or [] if cond["type"] == "Ready"), 180, interval=2)
