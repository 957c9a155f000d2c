"""What a VMI says about its pod-network interface, for every component that wires or reports it
(virt-handler's network setup, the launcher's converter, DHCP server and port forwarding).

Upstream's rules: at most one interface on the pod network; its binding is masquerade or bridge; a
masquerade guest sits at the second address of vmNetworkCIDR (default 10.0.2.0/24) behind the first one.
Errors name the VMI field they come from.
"""
from __future__ import annotations

import hashlib
import ipaddress

DEFAULT_VM_CIDR = "10.0.2.0/24"  # upstream's default vmNetworkCIDR
BINDINGS = ("masquerade", "bridge", "sriov", "slirp", "passt", "passtBinding", "macvtap", "binding")
POD_BINDINGS = ("masquerade", "bridge")


class NetworkSpecError(ValueError):
    """The VMI's interfaces cannot be wired; the message names the field."""


def pod_interface(vmi: dict) -> tuple[int, dict, dict] | None:
    """(index, interface, network) of the interface on the pod network, or None when there is none."""
    spec = vmi.get("spec") or {}
    networks = {n.get("name"): n for n in spec.get("networks") or []}
    for i, iface in enumerate(((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []):
        network = networks.get(iface.get("name"))
        if network is not None and network.get("pod") is not None:
            return i, iface, network
    return None


def binding(iface: dict, path: str) -> str:
    """The interface's binding method; only the pod-network ones are accepted."""
    found = [b for b in BINDINGS if iface.get(b) is not None]
    if len(found) != 1 or found[0] not in POD_BINDINGS:
        raise NetworkSpecError(f"{path}: exactly one of the masquerade and bridge bindings is supported "
                               f"(got {found or 'none'})")
    return found[0]


def masquerade_addresses(network: dict | None, path: str = "spec.networks.pod") -> tuple[str, str, str, int]:
    """(network CIDR, gateway, guest address, prefix length) of a masquerade pod network."""
    cidr = ((network or {}).get("pod") or {}).get("vmNetworkCIDR") or DEFAULT_VM_CIDR
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        raise NetworkSpecError(f"{path}.vmNetworkCIDR: {exc}") from None
    if net.num_addresses < 4:
        raise NetworkSpecError(f"{path}.vmNetworkCIDR: {cidr} is too small")
    return str(net), str(net.network_address + 1), str(net.network_address + 2), net.prefixlen


def interface_mac(vmi: dict, iface: dict) -> str:
    """The interface's macAddress, else a stable locally administered one derived from the VMI uid."""
    if iface.get("macAddress"):
        return iface["macAddress"].replace("-", ":").lower()
    seed = f"{(vmi.get('metadata') or {}).get('uid', '')}/{iface.get('name')}".encode()
    digest = hashlib.sha256(seed).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def declared_ports(iface: dict, path: str) -> list[dict]:
    """[{"protocol": "tcp"|"udp", "port": N}] of the interface's `ports`."""
    out = []
    for j, port in enumerate(iface.get("ports") or []):
        protocol = str(port.get("protocol") or "TCP").lower()
        if protocol not in ("tcp", "udp"):
            raise NetworkSpecError(f"{path}.ports[{j}].protocol: {port.get('protocol')!r} is not TCP or UDP")
        number = port.get("port")
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536:
            raise NetworkSpecError(f"{path}.ports[{j}].port: {number!r} is not a port number (1-65535)")
        entry = {"protocol": protocol, "port": number}
        if entry not in out:
            out.append(entry)
    return out
