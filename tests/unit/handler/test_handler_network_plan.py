"""Phase 1 of the pod network, planned from the VMI and the pod's namespace (as iproute2 reports it): what
virt-handler builds, what the launcher is told, and which namespaces it refuses to touch."""
import json

import pytest

from kubevirt_runtime.handler.network.nft import masquerade_ruleset
from kubevirt_runtime.handler.network.plan import DONE, FRESH, NetworkPlanError, needs_setup, plan
from kubevirt_runtime.handler.network.podfacts import parse

POD_MAC = "0a:58:0a:f4:00:07"


def link(name, index, kind="", mac="", ipv4=(), master=None, mtu=1500, ipv6=()):
    entry = {"ifindex": index, "ifname": name, "flags": ["BROADCAST", "UP"], "mtu": mtu, "address": mac,
             "addr_info": [{"family": "inet", "local": a.split("/")[0], "prefixlen": int(a.split("/")[1]),
                            "scope": "global"} for a in ipv4]
             + [{"family": "inet6", "local": a.split("/")[0], "prefixlen": int(a.split("/")[1]),
                 "scope": "global"} for a in ipv6]
             + [{"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]}
    if kind == "tap":
        entry["linkinfo"] = {"info_kind": "tun", "info_data": {"type": "tap"}}
    elif kind:
        entry["linkinfo"] = {"info_kind": kind}
    if master:
        entry["master"] = master
    return entry


LO = {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536, "address": "00:00:00:00:00:00",
      "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]}
POD_ROUTES = [{"dst": "default", "gateway": "10.244.0.1", "dev": "eth0", "flags": []},
              {"dst": "10.96.0.0/12", "gateway": "10.244.0.1", "dev": "eth0", "flags": []},
              {"dst": "10.244.0.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "flags": []}]


def facts(*links, routes=POD_ROUTES):
    return parse(json.dumps([LO, *links]), json.dumps(routes))


FRESH_POD = facts(link("eth0", 2, "veth", POD_MAC, ["10.244.0.7/24"], mtu=1450))
MASQUERADE_DONE = facts(link("eth0", 2, "veth", POD_MAC, ["10.244.0.7/24"], mtu=1450),
                        link("k6t-eth0", 3, "bridge", "02:00:00:00:00:00", ["10.0.2.1/24"]),
                        link("tap0", 4, "tap", "52:54:00:00:00:01", master="k6t-eth0"))
BRIDGE_DONE = facts(link("eth0-nic", 2, "veth", "02:aa:bb:cc:dd:ee", master="k6t-eth0", mtu=1450),
                    link("k6t-eth0", 3, "bridge", "02:aa:bb:cc:dd:ee", ["169.254.75.10/32"]),
                    link("tap0", 4, "tap", "52:54:00:00:00:01", master="k6t-eth0"),
                    link("eth0", 5, "bridge", POD_MAC, ["10.244.0.7/24"], mtu=1450))


def vmi(binding="masquerade", ports=None, cidr=None, mac=None, interfaces=True):
    iface = {"name": "default", binding: {}}
    if ports is not None:
        iface["ports"] = ports
    if mac:
        iface["macAddress"] = mac
    pod = {"vmNetworkCIDR": cidr} if cidr else {}
    spec = {"domain": {"devices": {"interfaces": [iface] if interfaces else []}},
            "networks": [{"name": "default", "pod": pod}] if interfaces else []}
    return {"metadata": {"name": "v", "namespace": "ns", "uid": "u-1"}, "spec": spec}


def test_parse_reads_kinds_addresses_masters_and_routes():
    assert BRIDGE_DONE.link("tap0").kind == "tap" and BRIDGE_DONE.link("tap0").master == "k6t-eth0"
    assert BRIDGE_DONE.link("eth0").ipv4 == ("10.244.0.7/24",) and BRIDGE_DONE.link("eth0").ipv6 == ()
    assert BRIDGE_DONE.link("eth0").mtu == 1450 and BRIDGE_DONE.link("eth0").mac == POD_MAC
    assert [(r.dst, r.gateway) for r in FRESH_POD.routes_via("eth0")] == [
        ("default", "10.244.0.1"), ("10.96.0.0/12", "10.244.0.1"), ("10.244.0.0/24", None)]


def test_masquerade_on_a_fresh_pod():
    wiring = plan(vmi(), FRESH_POD)
    assert wiring.state == FRESH
    assert wiring.ip_batch == (
        "link add k6t-eth0 type bridge",
        "link set k6t-eth0 address 02:00:00:00:00:00 mtu 1450",
        "addr add 10.0.2.1/24 dev k6t-eth0",
        "tuntap add dev tap0 mode tap user 0 group 0",
        "link set tap0 mtu 1450 master k6t-eth0 up",
        "link set k6t-eth0 up",
    )
    assert wiring.sysctls == (("net/ipv4/ip_forward", "1"), ("net/ipv4/conf/k6t-eth0/route_localnet", "1"))
    assert 'iifname "eth0" counter jump KUBEVIRT_PREINBOUND' in wiring.nft
    [iface] = wiring.config["interfaces"]
    assert iface["tap"] == "tap0" and iface["bridge"] == "k6t-eth0" and iface["mtu"] == 1450
    assert iface["dhcp"] == {"address": "10.0.2.2", "prefix": 24, "gateway": "10.0.2.1", "server": "10.0.2.1",
                             "routes": []}
    assert iface["podIPs"] == ["10.244.0.7"] and iface["mac"].startswith("02:")


@pytest.mark.parametrize("cidr,gateway,guest,prefix", [
    (None, "10.0.2.1", "10.0.2.2", 24),
    ("192.168.50.0/28", "192.168.50.1", "192.168.50.2", 28),
])
def test_masquerade_addresses_follow_vm_network_cidr(cidr, gateway, guest, prefix):
    wiring = plan(vmi(cidr=cidr), FRESH_POD)
    assert f"addr add {gateway}/{prefix} dev k6t-eth0" in wiring.ip_batch
    dhcp = wiring.config["interfaces"][0]["dhcp"]
    assert (dhcp["address"], dhcp["gateway"], dhcp["prefix"]) == (guest, gateway, prefix)
    assert f"dnat to {guest}" in wiring.nft


def test_masquerade_already_wired_only_reads_the_config_back():
    again = plan(vmi(), MASQUERADE_DONE)
    assert again.state == DONE and again.empty
    assert again.config == plan(vmi(), FRESH_POD).config


def test_bridge_on_a_fresh_pod_moves_the_pod_address_to_the_guest():
    wiring = plan(vmi("bridge"), FRESH_POD)
    assert wiring.state == FRESH and wiring.nft is None
    batch = list(wiring.ip_batch)
    assert batch[:3] == ["link set eth0 down", "link set eth0 name eth0-nic", "addr flush dev eth0-nic"]
    assert "link set eth0-nic master k6t-eth0" in batch and "link set tap0 mtu 1450 master k6t-eth0 up" in batch
    assert "addr add 169.254.75.10/32 dev k6t-eth0" in batch
    # the placeholder keeps what the CNI plugin and a restarted handler need
    placeholder = batch[batch.index("link add eth0 type bridge"):]
    assert placeholder == ["link add eth0 type bridge", f"link set eth0 address {POD_MAC} mtu 1450",
                           "addr add 10.244.0.7/24 dev eth0", "link set eth0 up",
                           "route add 10.96.0.0/12 via 10.244.0.1 dev eth0",
                           "route add default via 10.244.0.1 dev eth0"]
    assert wiring.sysctls == (("net/ipv4/conf/all/arp_ignore", "1"),)
    [iface] = wiring.config["interfaces"]
    assert iface["mac"] == POD_MAC and iface["mtu"] == 1450
    assert iface["dhcp"] == {"address": "10.244.0.7", "prefix": 24, "gateway": "10.244.0.1",
                             "server": "169.254.75.10",
                             "routes": [["10.96.0.0/12", "10.244.0.1"], ["0.0.0.0/0", "10.244.0.1"]]}


def test_bridge_keeps_a_mac_the_vmi_sets():
    assert plan(vmi("bridge", mac="DE:AD:BE:EF:00:01"), FRESH_POD).config["interfaces"][0]["mac"] == \
        "de:ad:be:ef:00:01"


def test_bridge_already_wired_reads_the_same_config_back():
    again = plan(vmi("bridge"), BRIDGE_DONE)
    assert again.state == DONE and again.empty
    assert again.config == plan(vmi("bridge"), FRESH_POD).config


@pytest.mark.parametrize("obj,pod,match", [
    (vmi(), facts(link("eth0", 2, "veth", POD_MAC, ["10.244.0.7/24"]),
                  link("k6t-eth0", 3, "bridge", "02:00:00:00:00:00")), "interrupted"),
    (vmi(), BRIDGE_DONE, "not the complete masquerade binding"),
    (vmi("bridge"), MASQUERADE_DONE, "not the complete bridge binding"),
    (vmi(), facts(link("net1", 2, "veth", POD_MAC, ["10.244.0.7/24"])), "no eth0"),
    (vmi(), facts(link("eth0", 2, "veth", POD_MAC, ipv6=["fd00::7/64"])), "IPv6-only"),
    (vmi("sriov"), FRESH_POD, r"interfaces\[0\]: exactly one of the masquerade and bridge"),
    (vmi(ports=[{"port": 0}]), FRESH_POD, r"interfaces\[0\].ports\[0\].port"),
    (vmi(ports=[{"port": 53, "protocol": "SCTP"}]), FRESH_POD, r"ports\[0\].protocol"),
    (vmi(cidr="10.0.2.0/31"), FRESH_POD, "vmNetworkCIDR: 10.0.2.0/31 is too small"),
])
def test_what_cannot_be_wired_is_refused_with_the_reason(obj, pod, match):
    with pytest.raises(NetworkPlanError, match=match):
        plan(obj, pod)


def test_a_vmi_without_pod_network_needs_nothing():
    assert not needs_setup(vmi(interfaces=False))
    assert plan(vmi(interfaces=False), FRESH_POD).empty
    assert needs_setup(vmi()) and needs_setup(vmi("bridge"))


# ---------------------------------------------------------------------------------------------- nftables

def rules(text, chain):
    block = text.split(f"chain {chain} {{", 1)[1].split("}", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_no_declared_port_forwards_every_port():
    text = masquerade_ruleset("eth0", "k6t-eth0", "10.0.2.2", "10.0.2.1", [])
    assert rules(text, "KUBEVIRT_PREINBOUND") == ["counter dnat to 10.0.2.2"]
    assert rules(text, "KUBEVIRT_POSTINBOUND") == ["ip saddr 127.0.0.1 counter snat to 10.0.2.1"]
    assert rules(text, "output")[1:] == ["ip daddr 127.0.0.1 counter dnat to 10.0.2.2"]
    assert rules(text, "postrouting")[1:] == ["ip saddr 10.0.2.2 counter masquerade",
                                              'oifname "k6t-eth0" counter jump KUBEVIRT_POSTINBOUND']


def test_declared_ports_are_the_only_ones_forwarded():
    text = masquerade_ruleset("eth0", "k6t-eth0", "10.0.2.2", "10.0.2.1",
                              [{"protocol": "tcp", "port": 80}, {"protocol": "udp", "port": 53}])
    assert rules(text, "KUBEVIRT_PREINBOUND") == ["tcp dport 80 counter dnat to 10.0.2.2",
                                                  "udp dport 53 counter dnat to 10.0.2.2"]
    assert rules(text, "output")[1:] == ["ip daddr 127.0.0.1 tcp dport 80 counter dnat to 10.0.2.2",
                                         "ip daddr 127.0.0.1 udp dport 53 counter dnat to 10.0.2.2"]
    assert rules(text, "KUBEVIRT_POSTINBOUND") == ["tcp dport 80 ip saddr 127.0.0.1 counter snat to 10.0.2.1",
                                                   "udp dport 53 ip saddr 127.0.0.1 counter snat to 10.0.2.1"]


def test_the_script_replaces_the_table_atomically():
    text = masquerade_ruleset("eth0", "k6t-eth0", "10.0.2.2", "10.0.2.1", [])
    assert text.splitlines()[:3] == ["table ip nat", "delete table ip nat", "table ip nat {"]
