"""The pod addresses the launcher reports for masquerade interfaces, from /proc contents."""
import socket

from kubevirt_runtime.launcher import podnet

ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101F40A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
IF_INET6 = """fd000000000000000000000000000a0c 02 40 00 80 eth0
fe80000000000000a8bbccfffedd0011 02 40 20 80 eth0
00000000000000000000000000000001 01 80 10 80 lo
fd000000000000000000000000000099 03 40 00 80 net1
"""
ROUTE6_DEFAULT = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                  "fd000000000000000000000000000001 00000400 00000001 00000000 00000003 eth1\n")


def test_default_route_interface():
    assert podnet.default_route_interface(ROUTE) == "eth0"
    assert podnet.default_route_interface("Iface\tDestination\n", ROUTE6_DEFAULT) == "eth1"
    assert podnet.default_route_interface("Iface\tDestination\n") is None


def test_only_global_ipv6_of_the_interface():
    assert podnet.global_ipv6(IF_INET6, "eth0") == ["fd00::a0c"]


def test_pod_addresses_from_a_proc_tree(tmp_path, monkeypatch):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "route").write_text(ROUTE)
    (tmp_path / "net" / "if_inet6").write_text(IF_INET6)
    monkeypatch.setattr(podnet, "ipv4_address", lambda name: "10.244.1.7" if name == "eth0" else None)
    assert podnet.pod_addresses(str(tmp_path)) == ["10.244.1.7", "fd00::a0c"]


def test_ipv4_of_loopback_and_of_nothing():
    assert podnet.ipv4_address("lo") == "127.0.0.1"
    assert podnet.ipv4_address("no-such-if0") is None
    for address in podnet.pod_addresses():  # whatever this host has, well-formed
        assert ":" in address or socket.inet_aton(address)
