"""Several nodes on this host: node02.. are network namespaces with their own kubelet, containerd and kube-proxy,
reached over SSH (hack/cli.sh); pods reach pods on other nodes and Services by name through CoreDNS; the API
endpoint is HAProxy's fixed address."""
import ipaddress
import json

import pytest

from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

NS = "kvo-multinode"
TOOLBOX = "docker.io/kubevirt-ops/toolbox:v1.36.3"


@pytest.fixture(scope="module")
def two_nodes(cluster):
    nodes = c.nodes()
    if len(nodes) < 2:
        pytest.skip(f"the cluster has {len(nodes)} node (make cluster-up NODES=2; the e2e session makes two)")
    return nodes


def test_each_extra_node_is_its_own_namespace_with_its_own_daemons(two_nodes):
    node = two_nodes[1]
    name, address = node["metadata"]["name"], c.node_ip(node)
    links = json.loads(c.cli(name, "ip", "-j", "-4", "addr"))
    assert address in [a["local"] for link in links for a in link.get("addr_info", [])]
    assert c.cli(name, "ip", "route", "show", "default").strip() == ""  # nothing leaves through a default route
    daemons = c.cli(name, "sh", "-c", "for p in /proc/[0-9]*; do readlink $p/ns/net >/dev/null 2>&1 && "
                                      "[ \"$(readlink $p/ns/net)\" = \"$(readlink /proc/self/ns/net)\" ] && "
                                      "cat $p/comm; done; true")
    for daemon in ("kubelet", "containerd", "kube-proxy", "sshd"):
        assert daemon in daemons.split(), f"{daemon} does not run in {name}'s network namespace"
    assert c.cli(name, "hostname").strip()  # hack/cli.sh reaches it over SSH
    # its own pod network (the roles give each node a /24 of the pod range: the node objects carry no podCIDR, as
    # the controller-manager allocates none), and a route to the other node's pod network through its address
    first = two_nodes[0]
    assert pod_network(name) != pod_network(first["metadata"]["name"])
    routes = c.cli(name, "ip", "route")
    assert f"{pod_network(first['metadata']['name'])} via {c.node_ip(first)}" in routes


def pod_network(node_name):
    """The network of a node's pod bridge (kvo-br0), as the node itself shows it."""
    addresses = json.loads(c.cli(node_name, "ip", "-j", "-4", "addr", "show", "kvo-br0"))[0]["addr_info"]
    return ipaddress.ip_network(f"{addresses[0]['local']}/{addresses[0]['prefixlen']}", strict=False)


def test_every_kubeconfig_points_at_the_load_balancer(two_nodes):
    server = c.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
    assert server == "https://10.222.0.254:6443"
    node = two_nodes[1]["metadata"]["name"]
    kubelet = c.cli(node, "sh", "-c", "grep server: ~/.local/state/kubevirt-ops/*/node/kubelet.kubeconfig")
    assert "https://10.222.0.254:6443" in kubelet


@pytest.fixture(scope="module")
def namespace(two_nodes):
    c.kubectl("create", "namespace", NS, check=False)
    yield NS
    c.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def _pod(name, node, command):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": TOOLBOX, "imagePullPolicy": "Never",
                                     "command": ["/bin/sh", "-c", command]}]}}


def test_a_pod_reaches_a_pod_on_another_node_and_a_service_by_name(two_nodes, namespace):
    first, second = (n["metadata"]["name"] for n in two_nodes[:2])
    server = _pod("server", first, "while true; do echo hello-from-$(hostname) | nc -l -p 8080; done")
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "server", "namespace": NS},
               "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    client = _pod("client", second, "sleep 3600")
    c.apply(server, service, client)
    c.kubectl("wait", "-n", NS, "--for=condition=Ready", "pod/server", "pod/client", "--timeout=180s", timeout=200)
    server_ip = c.kubectl_json("get", "pod", "-n", NS, "server")["status"]["podIP"]

    def run(command):
        return c.kubectl("exec", "-n", NS, "client", "--", "sh", "-c", command, check=False, timeout=60)

    assert "hello-from-server" in c.wait_for("the server pod's answer across nodes",
                                             lambda: run(f"nc -w 3 {server_ip} 8080 </dev/null"), 60)
    resolv = run("cat /etc/resolv.conf")
    assert "nameserver 10.96.0.10" in resolv and f"search {NS}.svc.cluster.local" in resolv
    api = run("nslookup kubernetes.default.svc.cluster.local")
    assert "10.96.0.1" in api, api
    answer = c.wait_for("the Service by its DNS name",
                        lambda: run("nc -w 3 server.kvo-multinode.svc.cluster.local 80 </dev/null"), 60)
    assert "hello-from-server" in answer
    assert "hello-from-server" in run("nc -w 3 server 80 </dev/null")  # the search path: the short name


def test_cluster_dns_is_coredns_built_from_its_module(two_nodes):
    pods = c.kubectl_json("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
    assert pods and all(p["status"]["phase"] == "Running" for p in pods)
    assert pods[0]["spec"]["containers"][0]["image"].startswith("docker.io/kubevirt-ops/coredns:v")
    service = c.kubectl_json("get", "service", "-n", "kube-system", "kube-dns")
    assert service["spec"]["clusterIP"] == "10.96.0.10"
