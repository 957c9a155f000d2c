"""Pure decisions of the device plugin: what it advertises for a device, and what a container gets.

A device node that does not exist is not advertised (its plugin is not registered, so the node has no such
resource); one that disappears after registration is reported unhealthy (allocatable drops to 0) until it
is back. Every device is shared: the plugin advertises MAX_DEVICES interchangeable ids of it (as upstream:
1000), so that many containers of the node can hold it at once.
"""
from __future__ import annotations

from dataclasses import dataclass

RESOURCE_NAMESPACE = "devices.kubevirt.io"
MAX_DEVICES = 1000
HEALTHY, UNHEALTHY = "Healthy", "Unhealthy"
API_VERSION = "v1beta1"
KUBELET_SOCKET = "kubelet.sock"


@dataclass(frozen=True)
class HostDevice:
    name: str          # kvm, tun, vhost-net
    path: str          # the node's device node, the same path in the container
    permissions: str = "rw"

    @property
    def resource(self) -> str:
        return f"{RESOURCE_NAMESPACE}/{self.name}"

    @property
    def endpoint(self) -> str:
        """The plugin's socket, relative to the kubelet's device-plugins directory."""
        return f"kubevirt-{self.name}.sock"


DEVICES = (HostDevice("kvm", "/dev/kvm"), HostDevice("tun", "/dev/net/tun"),
           HostDevice("vhost-net", "/dev/vhost-net"))


def should_serve(present: bool, registered: bool) -> bool:
    """A plugin is registered once its device exists, and stays registered (unhealthy) if it goes away."""
    return present or registered


def device_list(device: HostDevice, present: bool, count: int = MAX_DEVICES) -> list[tuple[str, str]]:
    """(id, health) of every advertised instance."""
    health = HEALTHY if present else UNHEALTHY
    return [(f"{device.name}{i}", health) for i in range(count)]


def allocation(device: HostDevice, container_requests: list[list[str]], present: bool) -> list[list[dict]]:
    """Per container of the request: the device specs it gets (the one node, whatever ids it was given)."""
    if not present:
        raise FileNotFoundError(f"{device.path} does not exist on this node")
    for ids in container_requests:
        unknown = [i for i in ids if not (i.startswith(device.name) and i[len(device.name):].isdigit())]
        if unknown:
            raise ValueError(f"unknown {device.resource} device ids: {', '.join(unknown)}")
    return [[{"container_path": device.path, "host_path": device.path, "permissions": device.permissions}]
            for _request in container_requests]
