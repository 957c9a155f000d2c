"""The launcher's one-client DHCP server: who gets an answer, and what the answer tells the guest."""
import socket
import struct

import pytest

from kubevirt_runtime.launcher import dhcp
from kubevirt_runtime.launcher.network import attachments, leases, parse_resolv_conf

GUEST_MAC = "02:11:22:33:44:55"
LEASE = dhcp.Lease(mac=GUEST_MAC, address="10.0.2.2", prefix=24, server="10.0.2.1", gateway="10.0.2.1",
                   dns=("10.96.0.10", "fd00::a"), search=("ns.svc.cluster.local", "svc.cluster.local"),
                   hostname="vm-demo", mtu=1450)


def request(message_type, mac=GUEST_MAC, xid=0x1234, extra=b""):
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                         b"\0" * 4, b"\0" * 4, chaddr, b"", b"")
    return header + dhcp.MAGIC + bytes([53, 1, message_type]) + extra + bytes([255])


def options_of(reply):
    parsed = dhcp._parse_options(reply[240:])
    return parsed


@pytest.mark.parametrize("message_type,expected", [
    (dhcp.DISCOVER, dhcp.OFFER),
    (dhcp.REQUEST, dhcp.ACK),
    (dhcp.RELEASE, None),
    (dhcp.INFORM, None),
])
def test_discover_is_offered_and_request_acked(message_type, expected):
    reply = dhcp.answer(dhcp.parse_request(request(message_type)), LEASE)
    if expected is None:
        assert reply is None
        return
    assert reply[0] == dhcp.BOOTREPLY and struct.unpack("!I", reply[4:8])[0] == 0x1234
    assert socket.inet_ntoa(reply[16:20]) == "10.0.2.2"   # yiaddr
    assert reply[28:34] == bytes.fromhex(GUEST_MAC.replace(":", ""))
    assert options_of(reply)[53] == bytes([expected])


def test_another_clients_request_is_not_answered():
    assert dhcp.answer(dhcp.parse_request(request(dhcp.DISCOVER, mac="02:99:99:99:99:99")), LEASE) is None


def test_the_answer_carries_the_pods_settings():
    opts = options_of(dhcp.answer(dhcp.parse_request(request(dhcp.DISCOVER)), LEASE))
    assert opts[dhcp.OPT_SUBNET_MASK] == socket.inet_aton("255.255.255.0")
    assert opts[dhcp.OPT_ROUTER] == socket.inet_aton("10.0.2.1")
    assert opts[dhcp.OPT_SERVER_ID] == socket.inet_aton("10.0.2.1")
    assert opts[dhcp.OPT_DNS] == socket.inet_aton("10.96.0.10")  # IPv6 servers are not for DHCPv4
    assert opts[dhcp.OPT_MTU] == struct.pack("!H", 1450)
    assert opts[dhcp.OPT_HOSTNAME] == b"vm-demo"
    assert opts[dhcp.OPT_DOMAIN_NAME] == b"ns.svc.cluster.local"
    assert opts[dhcp.OPT_LEASE_TIME] == b"\xff\xff\xff\xff"
    assert opts[dhcp.OPT_BROADCAST] == socket.inet_aton("10.0.2.255")
    assert dhcp.OPT_CLASSLESS_ROUTES not in opts


@pytest.mark.parametrize("domains,encoded", [
    (["example.com"], b"\x07example\x03com\x00"),
    (["a.b", "c"], b"\x01a\x01b\x00\x01c\x00"),
])
def test_search_domains_rfc3397(domains, encoded):
    assert dhcp.encode_search_domains(domains) == encoded


@pytest.mark.parametrize("domains,match", [
    (["bad_domain_-.com"], "not a valid domain"),
    (["a" * 60 + f".d{i}" for i in range(5)], "255"),
])
def test_bad_search_domains(domains, match):
    with pytest.raises(dhcp.DHCPError, match=match):
        dhcp.encode_search_domains(domains)


def test_classless_routes_rfc3442():
    # RFC 3442's own example shape: width, significant octets, gateway; the default route last
    assert dhcp.encode_classless_routes([["10.0.0.0/8", "10.1.2.3"], ["192.168.1.0/24", "192.168.2.3"],
                                         ["0.0.0.0/0", "10.244.0.1"]]) == \
        bytes([8, 10, 10, 1, 2, 3, 24, 192, 168, 1, 192, 168, 2, 3, 0, 10, 244, 0, 1])


@pytest.mark.parametrize("packet,match", [
    (b"\x01" * 10, "too short"),
    (request(dhcp.DISCOVER)[:236] + b"\0\0\0\0" + bytes([53, 1, 1, 255]), "magic"),
    (b"\x02" + request(dhcp.DISCOVER)[1:], "BOOTREQUEST"),
    (request(dhcp.DISCOVER, extra=bytes([12, 40, 65])), "runs past"),
])
def test_malformed_packets_are_refused(packet, match):
    with pytest.raises(dhcp.DHCPError, match=match):
        dhcp.parse_request(packet)


# ------------------------------------------------------------------ the launcher's side of the wire config

CONFIG = {"interfaces": [{"name": "default", "binding": "bridge", "tap": "tap0", "bridge": "k6t-eth0",
                          "mac": "0a:58:0a:f4:00:07", "mtu": 1450,
                          "dhcp": {"address": "10.244.0.7", "prefix": 24, "gateway": "10.244.0.1",
                                   "server": "169.254.75.10",
                                   "routes": [["10.96.0.0/12", "10.244.0.1"], ["0.0.0.0/0", "10.244.0.1"]]},
                          "podIPs": ["10.244.0.7"]}]}
VMI = {"metadata": {"name": "vm-demo", "namespace": "ns", "uid": "u"},
       "spec": {"domain": {"devices": {"interfaces": [{"name": "default", "bridge": {}}]}},
                "networks": [{"name": "default", "pod": {}}]}}
RESOLV = "nameserver 10.96.0.10\nsearch ns.svc.cluster.local svc.cluster.local # kubelet\noptions ndots:5\n"


def test_resolv_conf():
    assert parse_resolv_conf(RESOLV) == (("10.96.0.10",), ("ns.svc.cluster.local", "svc.cluster.local"))


def test_the_config_becomes_the_tap_and_the_lease():
    tap = attachments(VMI, CONFIG)["default"]
    assert (tap.tap, tap.mac, tap.mtu) == ("tap0", "0a:58:0a:f4:00:07", 1450)
    lease = leases(VMI, CONFIG, RESOLV)["k6t-eth0"]
    assert lease == dhcp.Lease(mac="0a:58:0a:f4:00:07", address="10.244.0.7", prefix=24, server="169.254.75.10",
                               gateway="10.244.0.1",
                               routes=(("10.96.0.0/12", "10.244.0.1"), ("0.0.0.0/0", "10.244.0.1")),
                               dns=("10.96.0.10",), search=("ns.svc.cluster.local", "svc.cluster.local"),
                               hostname="vm-demo", mtu=1450)


def test_a_pod_network_without_setup_is_refused():
    from kubevirt_runtime.launcher.network import NetworkConfigError
    with pytest.raises(NetworkConfigError, match=r"interfaces\[0\]: virt-handler sent no network setup"):
        attachments(VMI, None)
