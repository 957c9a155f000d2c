"""A real Kubernetes cluster made by playbooks/cluster-up.yml (node01 on this host, more nodes in network
namespaces; test_multinode.py checks those)."""
import ipaddress
import json
import subprocess
import time

import pytest

from tests.e2e import cluster as c

SMOKE_NS = "kvo-smoke"


def test_nodes_are_ready(cluster):
    nodes = c.kubectl_json("get", "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes][:1] == ["node01"]
    if cluster.created_here:
        assert len(nodes) == int(c.E2E_NODES)
    for node in nodes:
        ready = {cond["type"]: cond["status"] for cond in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.36")


def test_control_plane_components_are_healthy(cluster):
    for check in ("/readyz", "/livez"):
        assert c.kubectl("get", "--raw", check).strip() == "ok"
    # The aggregation layer is configured (needed for subresources.kubevirt.io).
    config = c.kubectl_json("get", "configmap", "-n", "kube-system", "extension-apiserver-authentication")
    assert "requestheader-client-ca-file" in config["data"]


@pytest.fixture
def smoke_namespace(cluster):
    c.kubectl("create", "namespace", SMOKE_NS, check=False)
    c.kubectl("create", "clusterrolebinding", "kvo-smoke-view", "--clusterrole=view",
              f"--serviceaccount={SMOKE_NS}:default", check=False)
    yield SMOKE_NS
    c.kubectl("delete", "namespace", SMOKE_NS, "--wait=true", "--timeout=120s", check=False)
    c.kubectl("delete", "clusterrolebinding", "kvo-smoke-view", check=False)


def test_pod_lists_namespaces_through_the_service_ip(smoke_namespace):
    service_ip = c.kubectl_json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "list-namespaces", "namespace": smoke_namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "toolbox", "image": "docker.io/kubevirt-ops/toolbox:v1.36.3", "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", "echo host=$KUBERNETES_SERVICE_HOST; kubectl get namespaces -o name"],
            }],
        },
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    deadline = time.monotonic() + 180
    phase = None
    while time.monotonic() < deadline:
        phase = c.kubectl_json("get", "pod", "-n", smoke_namespace, "list-namespaces")["status"].get("phase")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    logs = c.kubectl("logs", "-n", smoke_namespace, "list-namespaces", check=False)
    assert phase == "Succeeded", logs
    assert f"host={service_ip}" in logs
    assert "namespace/default" in logs and "namespace/kube-system" in logs


def _route_device(address):
    out = subprocess.run(["ip", "-j", "route", "get", address], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0].get("dev")


def test_cluster_addresses_never_take_the_default_route(cluster):
    default_dev = json.loads(subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True,
                                            text=True, check=True).stdout)[0]["dev"]
    node = c.kubectl_json("get", "nodes")["items"][0]
    node_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    service_ip = c.kubectl_json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    pod_probe = str(ipaddress.ip_network("10.244.0.0/24")[200])
    for address in (node_ip, service_ip, pod_probe, "10.96.200.200"):
        assert _route_device(address) != default_dev, address
    # And the isolation chain drops whatever would still try.
    rules = subprocess.run(["iptables", "-S", "KUBEVIRT-OPS-ISOLATE"],
                           capture_output=True, text=True, check=True).stdout
    assert "-d 10.244.0.0/16 -j DROP" in rules and "-s 10.96.0.0/16 -j DROP" in rules


def test_second_cluster_up_changes_nothing(cluster):
    _, output, seconds = c.run_playbook("cluster-up")
    print(f"\nsecond cluster-up took {seconds:.0f}s")
    assert c.recap_changed(output) == 0, output[-4000:]
