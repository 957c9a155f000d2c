"""The shape of the local cluster: which nodes, which groups, how each is reached."""
import pytest

from ansible_collections.kubevirt.ops.plugins.module_utils import local_cluster as lc

ROOT = "/var/lib/kubevirt-ops-nodes/c1"


def test_one_node_is_this_host_in_every_group():
    shape = lc.layout(None, None, "10.222.0.0/24", ROOT)
    assert list(shape["hosts"]) == ["node01"]
    assert shape["hosts"]["node01"]["ansible_connection"] == "local"
    assert shape["hosts"]["node01"]["node_ip"] == "10.222.0.1"
    assert lc.layout(None, None, "10.222.0.0/24", ROOT, controller_python="/venv/bin/python")["hosts"]["node01"][
        "ansible_python_interpreter"] == "/venv/bin/python"
    assert shape["groups"] == {"kube_control_plane": ["node01"], "etcd": ["node01"], "kube_node": ["node01"],
                               "netns_nodes": []}


def test_more_nodes_are_netns_nodes_reached_over_ssh():
    shape = lc.layout(3, None, "10.222.0.0/24", ROOT, cluster_name="c1")
    node03 = shape["hosts"]["node03"]
    assert node03["ansible_host"] == node03["node_ip"] == "10.222.0.3"
    assert node03["ansible_user"] == "root"
    assert node03["ansible_ssh_private_key_file"] == f"{ROOT}/ssh/id_ed25519"
    assert node03["kube_cgroup_root"] == "/kvo-c1-node03"
    assert "ansible_connection" not in node03
    assert shape["groups"]["netns_nodes"] == ["node02", "node03"]
    assert shape["groups"]["kube_control_plane"] == ["node01"]
    assert shape["groups"]["kube_node"] == ["node01", "node02", "node03"]


def test_control_plane_nodes_are_the_first_ones_and_run_etcd():
    shape = lc.layout(3, 3, "10.222.0.0/24", ROOT)
    assert shape["groups"]["kube_control_plane"] == shape["groups"]["etcd"] == ["node01", "node02", "node03"]


def test_recorded_nodes_stay_in_the_inventory():
    record = {"nodes": ["node02", "node03"], "control_plane_nodes": 3}
    shape = lc.layout(None, None, "10.222.0.0/24", ROOT, record)
    assert list(shape["hosts"]) == ["node01", "node02", "node03"]
    assert shape["groups"]["etcd"] == ["node01", "node02", "node03"]
    # a smaller NODES never drops a node that exists
    assert len(lc.layout(1, None, "10.222.0.0/24", ROOT, record)["hosts"]) == 3


@pytest.mark.parametrize("nodes,cp,cidr,message", [
    (2, 3, "10.222.0.0/24", "control_plane_nodes must be between 1 and the number of nodes (2)"),
    (5, 1, "10.222.0.0/30", "has no room for 5 nodes"),
    (2, 1, "10.222.0.1/24", "is not a network in CIDR notation"),
])
def test_bad_shapes_are_refused_naming_the_setting(nodes, cp, cidr, message):
    with pytest.raises(lc.LayoutError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lc.layout(nodes, cp, cidr, ROOT)


def test_a_record_with_foreign_names_is_refused():
    with pytest.raises(lc.LayoutError, match="not nodeNN"):
        lc.layout(None, None, "10.222.0.0/24", ROOT, {"nodes": ["worker1"]})
