"""Jinja filters for addresses (ansible-core has none; ansible.utils would need netaddr)."""
import ipaddress

from ansible.errors import AnsibleFilterError

DOCUMENTATION = ""


def _network(value, name=None):
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as e:
        shown = f"{name}={value}" if name else repr(value)
        raise AnsibleFilterError(f"{shown} is not a network in CIDR notation: {e}") from None


def is_cidr(value):
    """True when value is a network in CIDR notation with no host bits set."""
    try:
        ipaddress.ip_network(str(value), strict=True)
        return "/" in str(value)
    except ValueError:
        return False


def subnet(value, prefix, index, name=None):
    """The index-th subnet of the given prefix length: '10.244.0.0/16' | subnet(24, 3) -> '10.244.3.0/24'.

    name is the variable the network came from, so an error names what to fix."""
    network = _network(value, name)
    size = 2 ** (int(prefix) - network.prefixlen) if int(prefix) >= network.prefixlen else 0
    if not 0 <= int(index) < size:
        raise AnsibleFilterError(f"{value} has no /{prefix} subnet number {index}")
    step = 2 ** (network.max_prefixlen - int(prefix))
    return str(ipaddress.ip_network((int(network.network_address) + int(index) * step, int(prefix))))


def nth_host(value, n, name=None):
    """The n-th address of a network: '10.96.0.0/16' | nth_host(1) -> '10.96.0.1'; a negative n counts from
    the end: '10.222.0.0/24' | nth_host(-2) -> '10.222.0.254' (-1 would be the broadcast address)."""
    network = _network(value, name)
    index = int(n) + network.num_addresses if int(n) < 0 else int(n)
    if not 0 < index < network.num_addresses - (1 if int(n) < 0 else 0):
        raise AnsibleFilterError(f"{value} has no address number {n}")
    return str(network.network_address + index)


def networks_overlap(value, other):
    return _network(value).overlaps(_network(other))


class FilterModule:
    def filters(self):
        return {"is_cidr": is_cidr, "subnet": subnet, "nth_host": nth_host, "networks_overlap": networks_overlap}
