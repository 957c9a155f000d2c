import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubevirt.ops.plugins.filter import network, roles


def test_subnet_and_hosts():
    assert network.subnet("10.244.0.0/16", 24, 0) == "10.244.0.0/24"
    assert network.subnet("10.244.0.0/16", 24, 7) == "10.244.7.0/24"
    assert network.nth_host("10.96.0.0/16", 1) == "10.96.0.1"
    with pytest.raises(AnsibleFilterError):
        network.subnet("10.244.0.0/16", 24, 256)
    with pytest.raises(AnsibleFilterError, match="kube_service_cidr=10.96.0.0/33"):
        network.nth_host("10.96.0.0/33", 1, "kube_service_cidr")


def test_nth_host_counts_from_the_end_without_the_broadcast_address():
    assert network.nth_host("10.222.0.0/24", -2) == "10.222.0.254"
    for beyond in (-1, -256, 256, 0):
        with pytest.raises(AnsibleFilterError):
            network.nth_host("10.222.0.0/24", beyond)


@pytest.mark.parametrize("value,ok", [("10.96.0.0/16", True), ("10.96.0.1/16", False), ("10.96.0.0/33", False),
                                      ("banana", False), ("10.96.0.0", False)])
def test_is_cidr(value, ok):
    assert network.is_cidr(value) is ok


def test_overlap():
    assert network.networks_overlap("10.96.0.0/12", "10.100.0.0/16")
    assert not network.networks_overlap("10.96.0.0/16", "10.244.0.0/16")


def test_flags_and_file_items(tmp_path):
    assert roles.flag({"key": "v", "value": 2}) == "--v=2"
    (tmp_path / "ca.crt").write_text("PEM\n")
    assert roles.pki_files({"ca.crt": "ca.pem"}, str(tmp_path), "/d") == [
        {"dest": "/d/ca.pem", "content": "PEM\n", "mode": "0600"}]
    assert roles.copy_items(["etcd"], "/c", "/b") == [{"src": "/c/etcd", "dest": "/b/etcd", "mode": "0755"}]
