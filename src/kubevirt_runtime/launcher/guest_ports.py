"""Connections from the launcher (the pod's network namespace) to a TCP port of the guest: what the
`portforward` subresource streams to.

How the guest is reached depends on how its pod-network interface is built, read from the running domain:
- QEMU user-mode networking (slirp: a `-netdev user,id=ua-<name>` argument): the pod's namespace has no
  route to the guest, so the launcher adds a host forward on a free loopback port for this one connection
  through QEMU's monitor (HMP hostfwd_add), connects, and removes the forward again (the established
  connection stays). Any guest port works, declared in `ports` or not.
- anything else (a tap device behind NAT in the pod, as upstream's masquerade binding): the pod routes to
  the guest, so the launcher connects to the guest's address on the interface's vmNetworkCIDR directly.
"""
from __future__ import annotations

import logging
import re
import socket
import threading
import xml.etree.ElementTree as ET

from .converter import QEMU_NS, masquerade_addresses

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
_USER_NETDEV = re.compile(r"^user,(?:.*,)?id=(?P<id>[^,]+)")
_lock = threading.Lock()  # one hostfwd_add/connect/remove at a time


class PortForwardError(RuntimeError):
    pass


def pod_interface(vmi: dict) -> tuple[str, dict]:
    """(interface name, its network) of the first interface on the pod network."""
    spec = vmi.get("spec") or {}
    networks = {n.get("name"): n for n in spec.get("networks") or []}
    for iface in (spec.get("domain") or {}).get("devices", {}).get("interfaces") or []:
        network = networks.get(iface.get("name")) or {}
        if network.get("pod") is not None:
            return iface["name"], network
    raise PortForwardError("the VMI has no interface on the pod network")


def user_netdevs(domain_xml: str) -> set[str]:
    """Ids of the user-mode (slirp) netdevs in a domain's XML."""
    root = ET.fromstring(domain_xml)
    args = [a.get("value") or "" for a in root.iter(f"{{{QEMU_NS}}}arg")]
    return {m["id"] for m in (_USER_NETDEV.match(a) for a in args) if m}


def plan(vmi: dict, domain_xml: str, port: int) -> dict:
    """Pure: how to reach `port` of the guest. {"via": "hostfwd", "netdev", "guest"} or {"via": "direct",
    "address"}."""
    if not 0 < int(port) < 65536:
        raise PortForwardError(f"port {port} is out of range 1-65535")
    name, network = pod_interface(vmi)
    _cidr, _gateway, guest = masquerade_addresses(network)
    netdev = f"ua-{name}"
    if netdev in user_netdevs(domain_xml):
        return {"via": "hostfwd", "netdev": netdev, "guest": guest, "port": int(port)}
    return {"via": "direct", "address": guest, "port": int(port)}


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hmp(dom, command: str) -> str:
    import libvirt_qemu
    return libvirt_qemu.qemuMonitorCommand(dom, command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) or ""


def connect(dom, vmi: dict, port: int, protocol: str = "tcp") -> socket.socket:
    """A connected TCP socket to `port` of the guest."""
    if (protocol or "tcp").lower() != "tcp":
        raise PortForwardError(f"protocol {protocol!r} is not supported: only tcp")
    how = plan(vmi, dom.XMLDesc(0), port)
    if how["via"] == "direct":
        try:
            return socket.create_connection((how["address"], how["port"]), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise PortForwardError(f"cannot connect to {how['address']}:{how['port']}: {exc}") from None
    with _lock:
        for _attempt in range(3):  # the free port can be taken between the probe and QEMU's bind
            local = _free_loopback_port()
            rule = f"tcp:127.0.0.1:{local}"
            answer = _hmp(dom, f"hostfwd_add {how['netdev']} {rule}-{how['guest']}:{how['port']}").strip()
            if not answer:
                break
            log.info("hostfwd_add %s: %s", rule, answer)
        else:
            raise PortForwardError(f"QEMU refused a forward to guest port {how['port']}: {answer}")
        try:
            return socket.create_connection(("127.0.0.1", local), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise PortForwardError(f"cannot connect to guest port {how['port']}: {exc}") from None
        finally:
            _hmp(dom, f"hostfwd_remove {how['netdev']} {rule}")
