"""Pod networking, phase 2 (in the launcher): what virt-handler wired becomes the guest's interface.

virt-handler sends, with sync, the config it planned for the launcher's network namespace (option
"network"; its layout is documented in handler/network/__init__.py). The launcher, with no network
privileges of its own:
- hands the tap device, the guest's MAC and the MTU to the converter (libvirt opens the tap);
- serves the guest's DHCP on the bridge: the planned address, prefix, gateway and routes, plus the pod's
  DNS servers and search domains from its resolv.conf and the VMI's hostname.

`attachments` and `leases` are pure; `start_dhcp` opens the socket.
"""
from __future__ import annotations

from kubevirt_runtime.api.network import interface_mac, pod_interface

from .converter import TapInterface
from .dhcp import DHCPServer, Lease

RESOLV_CONF = "/etc/resolv.conf"


class NetworkConfigError(ValueError):
    pass


def _entries(vmi: dict, config: dict | None) -> list[tuple[dict, dict]]:
    """(VMI interface, its config entry) of the pod-network interface."""
    found = pod_interface(vmi)
    if found is None:
        return []
    index, iface, _network = found
    entries = {e.get("name"): e for e in (config or {}).get("interfaces") or [] if isinstance(e, dict)}
    entry = entries.get(iface["name"])
    if entry is None:
        raise NetworkConfigError(f"spec.domain.devices.interfaces[{index}]: virt-handler sent no network setup for "
                                 f"{iface['name']!r}; the pod network is not wired")
    for key in ("tap", "bridge", "dhcp"):
        if not entry.get(key):
            raise NetworkConfigError(f"network setup of {iface['name']!r}: {key} is missing")
    return [(iface, entry)]


def guest_mac(vmi: dict, iface: dict, entry: dict) -> str:
    return (entry.get("mac") or interface_mac(vmi, iface)).lower()


def attachments(vmi: dict, config: dict | None) -> dict:
    """Interface name -> TapInterface for the converter."""
    return {iface["name"]: TapInterface(tap=entry["tap"], mac=guest_mac(vmi, iface, entry), mtu=entry.get("mtu"))
            for iface, entry in _entries(vmi, config)}


def parse_resolv_conf(text: str) -> tuple[tuple, tuple]:
    """(nameservers, search domains) of a resolv.conf."""
    servers, search = [], []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
        elif fields and fields[0] in ("search", "domain"):
            search = fields[1:]
    return tuple(servers), tuple(search)


def hostname(vmi: dict) -> str:
    spec, meta = vmi.get("spec") or {}, vmi.get("metadata") or {}
    return (spec.get("hostname") or meta.get("name") or "")[:63]


def leases(vmi: dict, config: dict | None, resolv_conf: str) -> dict:
    """Bridge name -> the guest's Lease."""
    servers, search = parse_resolv_conf(resolv_conf)
    out = {}
    for iface, entry in _entries(vmi, config):
        dhcp = entry["dhcp"]
        out[entry["bridge"]] = Lease(
            mac=guest_mac(vmi, iface, entry), address=dhcp["address"], prefix=int(dhcp["prefix"]),
            server=dhcp["server"], gateway=dhcp.get("gateway"),
            routes=tuple(tuple(r) for r in dhcp.get("routes") or ()), dns=servers, search=search,
            hostname=hostname(vmi), mtu=entry.get("mtu"))
    return out


def start_dhcp(vmi: dict, config: dict | None, resolv_conf_path: str = RESOLV_CONF) -> DHCPServer | None:
    try:
        with open(resolv_conf_path) as fh:
            resolv_conf = fh.read()
    except OSError:
        resolv_conf = ""
    served = leases(vmi, config, resolv_conf)
    return DHCPServer(served).start() if served else None
