"""Pure: what virt-handler builds in a launcher pod's network namespace, from the VMI and the pod's facts.

`plan(vmi, facts)` returns the `ip -batch` lines, the sysctls and the nftables script that wire the guest's
pod-network interface (see __init__.py for the layout), and the config the launcher needs (DHCP, tap,
MAC, MTU). It recognises a namespace it has already wired (a virt-handler restart between setup and the
domain's start): then there is nothing to run and the config is read back from what is there. A namespace
that holds only part of the layout was interrupted mid-way; like upstream, that is not resumed.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from kubevirt_runtime.api.network import (
    NetworkSpecError,
    binding,
    declared_ports,
    interface_mac,
    masquerade_addresses,
    pod_interface,
)

from .nft import masquerade_ruleset
from .podfacts import Link, PodFacts

POD_IFACE = "eth0"
BRIDGE = "k6t-eth0"
TAP = "tap0"
BRIDGED_POD_IFACE = "eth0-nic"
MASQUERADE_BRIDGE_MAC = "02:00:00:00:00:00"
BRIDGE_DHCP_SERVER = "169.254.75.10"  # upstream's "fake" bridge address, from which DHCP answers
TAP_OWNER = 0  # the launcher and its QEMU run as root in the pod: the owner opens the tap without CAP_NET_ADMIN

FRESH, DONE = "fresh", "done"


class NetworkPlanError(RuntimeError):
    """The pod's network cannot be wired for this VMI; the message says why (naming the field if any)."""


@dataclass(frozen=True)
class NetworkPlan:
    state: str                                        # FRESH: the commands wire it; DONE: already wired
    ip_batch: tuple = ()                              # lines for `ip -batch -`
    sysctls: tuple = ()                               # (path under /proc/sys, value)
    nft: str | None = None                            # script for `nft -f -`
    config: dict = field(default_factory=lambda: {"interfaces": []})  # the launcher's sync option "network"

    @property
    def empty(self) -> bool:
        return not (self.ip_batch or self.sysctls or self.nft)


def needs_setup(vmi: dict) -> bool:
    """Whether the VMI has an interface on the pod network (then its launcher waits for this setup)."""
    return pod_interface(vmi) is not None


def plan(vmi: dict, facts: PodFacts) -> NetworkPlan:
    found = pod_interface(vmi)
    if found is None:
        return NetworkPlan(DONE)
    index, iface, network = found
    path = f"spec.domain.devices.interfaces[{index}]"
    try:
        kind = binding(iface, path)
        if kind == "masquerade":
            return _masquerade(vmi, iface, network, path, facts)
        return _bridge(vmi, iface, facts)
    except NetworkSpecError as exc:
        raise NetworkPlanError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- masquerade

def _masquerade(vmi, iface, network, path, facts):
    _cidr, gateway, guest, prefix = masquerade_addresses(network, f"spec.networks[{network.get('name')}].pod")
    ports = declared_ports(iface, path)
    state = _state(facts, "masquerade")
    pod = _pod_link(facts, POD_IFACE)
    config = {"interfaces": [{
        "name": iface["name"], "binding": "masquerade", "tap": TAP, "bridge": BRIDGE,
        "mac": interface_mac(vmi, iface), "mtu": pod.mtu,
        "dhcp": {"address": guest, "prefix": prefix, "gateway": gateway, "server": gateway, "routes": []},
        "podIPs": _addresses(pod)}]}
    if state == DONE:
        return NetworkPlan(DONE, config=config)
    mtu = pod.mtu
    batch = (
        f"link add {BRIDGE} type bridge",
        f"link set {BRIDGE} address {MASQUERADE_BRIDGE_MAC} mtu {mtu}",
        f"addr add {gateway}/{prefix} dev {BRIDGE}",
        f"tuntap add dev {TAP} mode tap user {TAP_OWNER} group {TAP_OWNER}",
        f"link set {TAP} mtu {mtu} master {BRIDGE} up",
        f"link set {BRIDGE} up",
    )
    sysctls = (("net/ipv4/ip_forward", "1"),
               (f"net/ipv4/conf/{BRIDGE}/route_localnet", "1"))  # lets 127.0.0.1 connections be forwarded
    return NetworkPlan(FRESH, batch, sysctls, masquerade_ruleset(POD_IFACE, BRIDGE, guest, gateway, ports), config)


# ---------------------------------------------------------------------------------------------- bridge

def _bridge(vmi, iface, facts):
    state = _state(facts, "bridge")
    # before the setup the CNI's eth0 holds the pod's address; after it, the port-less placeholder does
    pod = _pod_link(facts, POD_IFACE)
    routes = facts.routes_via(POD_IFACE)
    gateway = next((r.gateway for r in routes if r.dst == "default" and r.gateway), None)
    address = ipaddress.IPv4Interface(pod.ipv4[0])
    guest_mac = iface["macAddress"].replace("-", ":").lower() if iface.get("macAddress") else pod.mac
    config = {"interfaces": [{
        "name": iface["name"], "binding": "bridge", "tap": TAP, "bridge": BRIDGE, "mac": guest_mac,
        "mtu": pod.mtu,
        "dhcp": {"address": str(address.ip), "prefix": address.network.prefixlen, "gateway": gateway,
                 "server": BRIDGE_DHCP_SERVER, "routes": _classless_routes(routes)},
        "podIPs": _addresses(pod)}]}
    if state == DONE:
        return NetworkPlan(DONE, config=config)
    mtu, nic_mac = pod.mtu, _derived_mac(vmi, "bridge")
    batch = [
        f"link set {POD_IFACE} down",
        f"link set {POD_IFACE} name {BRIDGED_POD_IFACE}",
        f"addr flush dev {BRIDGED_POD_IFACE}",
        f"link add {BRIDGE} type bridge",
        f"link set {BRIDGE} address {nic_mac} mtu {mtu}",
        # the guest takes the pod's MAC, so the pod's end of the veth gives it up (to the bridge's, as upstream)
        f"link set {BRIDGED_POD_IFACE} address {nic_mac}",
        f"link set {BRIDGED_POD_IFACE} master {BRIDGE}",
        f"link set {BRIDGED_POD_IFACE} type bridge_slave learning off",
        f"link set {BRIDGED_POD_IFACE} up",
        f"tuntap add dev {TAP} mode tap user {TAP_OWNER} group {TAP_OWNER}",
        f"link set {TAP} mtu {mtu} master {BRIDGE} up",
        f"addr add {BRIDGE_DHCP_SERVER}/32 dev {BRIDGE}",
        f"link set {BRIDGE} up",
        # The placeholder keeps the pod's addresses, MAC and routes: the CNI plugin finds its eth0 on
        # teardown, and a restarted virt-handler reads the guest's config back from it. A port-less bridge,
        # not upstream's dummy link, because a bridge exists wherever this binding can work.
        f"link add {POD_IFACE} type bridge",
        f"link set {POD_IFACE} address {pod.mac} mtu {mtu}",
        *(f"addr add {a} dev {POD_IFACE}" for a in pod.ipv4 + pod.ipv6),
        f"link set {POD_IFACE} up",
        *(f"route add {r.dst} via {r.gateway} dev {POD_IFACE}" for r in _gateway_routes(routes)),
    ]
    # the guest answers ARP for the pod's address; the namespace, which still holds it, must not
    sysctls = (("net/ipv4/conf/all/arp_ignore", "1"),)
    return NetworkPlan(FRESH, tuple(batch), sysctls, None, config)


def _gateway_routes(routes):
    """Routes through a gateway, the default one last (a client may need the others to reach it)."""
    with_gw = [r for r in routes if r.gateway]
    return [r for r in with_gw if r.dst != "default"] + [r for r in with_gw if r.dst == "default"]


def _classless_routes(routes) -> list:
    out = []
    for route in _gateway_routes(routes):
        dst = "0.0.0.0/0" if route.dst == "default" else str(ipaddress.IPv4Network(route.dst, strict=False))
        out.append([dst, route.gateway])
    return out


# ---------------------------------------------------------------------------------------------- state

def _state(facts: PodFacts, kind: str) -> str:
    bridge, tap, nic = facts.link(BRIDGE), facts.link(TAP), facts.link(BRIDGED_POD_IFACE)
    ours = [link.name for link in (bridge, tap, nic) if link is not None]
    if not ours:
        return FRESH
    wired = bridge is not None and tap is not None and tap.master == BRIDGE
    if kind == "masquerade" and wired and nic is None:
        return DONE
    placeholder = facts.link(POD_IFACE)
    if (kind == "bridge" and wired and nic is not None and nic.master == BRIDGE and placeholder is not None
            and placeholder.kind == "bridge"):
        return DONE
    raise NetworkPlanError(f"the pod's network namespace holds {', '.join(ours)} but not the complete {kind} "
                           "binding: an earlier setup was interrupted or made for another binding; it is not "
                           "resumed (delete the launcher pod to start over)")


def _pod_link(facts: PodFacts, name: str) -> Link:
    link = facts.link(name)
    if link is None:
        raise NetworkPlanError(f"the pod has no {name} interface (links: {', '.join(sorted(facts.links))})")
    if not link.ipv4:
        raise NetworkPlanError(f"the pod's {name} has no IPv4 address; IPv6-only pod networks are not supported")
    return link


def _addresses(link: Link) -> list:
    return [a.split("/")[0] for a in link.ipv4 + link.ipv6]


def _derived_mac(vmi: dict, what: str) -> str:
    seed = f"{(vmi.get('metadata') or {}).get('uid', '')}/{what}".encode()
    return "02:" + ":".join(f"{b:02x}" for b in hashlib.sha256(seed).digest()[:5])
