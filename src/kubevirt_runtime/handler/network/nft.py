"""The masquerade binding's NAT, as one nftables script (applied atomically with `nft -f -`).

Chains as upstream's masquerade binding lays them out (IPv4 table `nat` of the pod's namespace):
- postrouting: the guest's own connections leave masqueraded as the pod; connections that reach the guest
  from the pod's loopback are given the gateway as their source (KUBEVIRT_POSTINBOUND);
- prerouting: what arrives on the pod's interface goes to the guest (KUBEVIRT_PREINBOUND): everything, or
  only the declared ports;
- output: connections the pod makes to 127.0.0.1 reach the same ports of the guest.
The script first creates and deletes the table, so applying it again replaces the rules instead of adding
a second copy.
"""
from __future__ import annotations

TABLE = "nat"
LOOPBACK = "127.0.0.1"


def _port_match(port: dict) -> str:
    return f"{port['protocol']} dport {port['port']}"


def masquerade_ruleset(pod_iface: str, bridge: str, guest: str, gateway: str, ports: list[dict]) -> str:
    """`ports`: [{"protocol": "tcp"|"udp", "port": N}]; empty means every port."""
    pre, post, out = [], [], []
    if ports:
        for port in ports:
            match = _port_match(port)
            pre.append(f"{match} counter dnat to {guest}")
            post.append(f"{match} ip saddr {LOOPBACK} counter snat to {gateway}")
            out.append(f"ip daddr {LOOPBACK} {match} counter dnat to {guest}")
    else:
        pre.append(f"counter dnat to {guest}")
        post.append(f"ip saddr {LOOPBACK} counter snat to {gateway}")
        out.append(f"ip daddr {LOOPBACK} counter dnat to {guest}")
    chains = {
        "prerouting": ["type nat hook prerouting priority -100;",
                       f'iifname "{pod_iface}" counter jump KUBEVIRT_PREINBOUND'],
        "input": ["type nat hook input priority 100;"],
        "output": ["type nat hook output priority -100;", *out],
        "postrouting": ["type nat hook postrouting priority 100;", f"ip saddr {guest} counter masquerade",
                        f'oifname "{bridge}" counter jump KUBEVIRT_POSTINBOUND'],
        "KUBEVIRT_PREINBOUND": pre,
        "KUBEVIRT_POSTINBOUND": post,
    }
    lines = [f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
    for name, rules in chains.items():
        lines.append(f"  chain {name} {{")
        lines.extend(f"    {rule}" for rule in rules)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
