"""The pod's own network addresses, as the launcher reports them for its pod-network interface.

With masquerade the guest sits behind the pod (10.0.2.2 on the pod's bridge), so the address others reach it
at is the pod's, as upstream reports it in status.interfaces[].ipAddress(es); with bridge the guest holds the
pod's address itself, which virt-handler leaves on the placeholder eth0 with the pod's routes. Either way the
launcher reads them from its network namespace on every report (what CNI configured for the pod):

    pod_addresses() -> ["10.244.0.12", "fd00::c"]   # IPv4 first, then global IPv6; [] when there is none

The parsers take the /proc file contents, so they are tested without a pod.
"""
from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

SIOCGIFADDR = 0x8915
IPV6_GLOBAL_SCOPE = 0x00


def default_route_interface(route_text: str, route6_text: str = "") -> str | None:
    """The interface of the IPv4 default route in /proc/net/route (else of ::/0 in /proc/net/ipv6_route)."""
    for line in route_text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and fields[0] != "lo":
            return fields[0]
    for line in route6_text.splitlines():
        fields = line.split()
        if len(fields) == 10 and fields[0] == "0" * 32 and fields[1] == "00" and fields[9] != "lo":
            return fields[9]
    return None


def global_ipv6(if_inet6_text: str, ifname: str) -> list[str]:
    """Global-scope addresses of ifname from /proc/net/if_inet6."""
    out = []
    for line in if_inet6_text.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[5] == ifname and int(fields[3], 16) == IPV6_GLOBAL_SCOPE:
            out.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return out


def ipv4_address(ifname: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", ifname[:15].encode()))
        except OSError:  # no such interface, or no IPv4 address on it
            return None
    return socket.inet_ntoa(answer[20:24])


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def pod_addresses(proc: str = "/proc") -> list[str]:
    ifname = default_route_interface(_read(f"{proc}/net/route"), _read(f"{proc}/net/ipv6_route")) or "eth0"
    addresses = [a for a in [ipv4_address(ifname)] if a]
    return addresses + global_ipv6(_read(f"{proc}/net/if_inet6"), ifname)
