"""Connections from the launcher (the pod's network namespace) to a TCP port of the guest: what the
`portforward` subresource streams to.

With the masquerade binding the guest sits behind the pod's bridge at the second address of its
vmNetworkCIDR (10.0.2.2 by default) and the pod routes to it, so the launcher connects to that address:
any guest port works, declared in `ports` or not. With the bridge binding the guest holds the pod's own
address, which the pod's namespace also keeps (for the CNI plugin), so no route leads from the launcher to
the guest: that is refused with a clear error.
"""
from __future__ import annotations

import socket

from kubevirt_runtime.api.network import NetworkSpecError, binding, masquerade_addresses, pod_interface

CONNECT_TIMEOUT = 10.0


class PortForwardError(RuntimeError):
    pass


def plan(vmi: dict, port: int) -> tuple[str, int]:
    """Pure: the (address, port) the launcher connects to for `port` of the guest."""
    if not 0 < int(port) < 65536:
        raise PortForwardError(f"port {port} is out of range 1-65535")
    found = pod_interface(vmi)
    if found is None:
        raise PortForwardError("the VMI has no interface on the pod network")
    index, iface, network = found
    try:
        if binding(iface, f"spec.domain.devices.interfaces[{index}]") != "masquerade":
            raise PortForwardError("port forwarding needs the masquerade binding: with the bridge binding the "
                                   "guest holds the pod's own address, which the launcher cannot route to")
        _cidr, _gateway, guest, _prefix = masquerade_addresses(network)
    except NetworkSpecError as exc:
        raise PortForwardError(str(exc)) from None
    return guest, int(port)


def connect(vmi: dict, port: int, protocol: str = "tcp") -> socket.socket:
    """A connected TCP socket to `port` of the guest."""
    if (protocol or "tcp").lower() != "tcp":
        raise PortForwardError(f"protocol {protocol!r} is not supported: only tcp")
    address, port = plan(vmi, port)
    try:
        return socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise PortForwardError(f"cannot connect to {address}:{port}: {exc}") from None
