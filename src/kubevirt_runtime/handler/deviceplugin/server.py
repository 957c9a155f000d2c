"""The device plugins' gRPC servers and their life with the kubelet.

One `DevicePlugin` (gRPC service DevicePlugin on its own unix socket) per device; `DevicePluginManager`
checks every few seconds, in one thread:
- whether each device node exists on the node (under --device-root, where the DaemonSet mounts the node's
  /dev: a container's own /dev is a copy made when it started), registering a plugin once its device
  exists and turning its devices unhealthy when it goes away;
- whether the kubelet restarted (its kubelet.sock was re-created, or our socket was removed, as a
  starting kubelet does): then the plugin serves again and registers again.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent import futures

import grpc

from .devices import API_VERSION, DEVICES, KUBELET_SOCKET, HostDevice, allocation, device_list, should_serve
from .v1beta1 import api_pb2 as pb
from .v1beta1 import api_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
REGISTER_TIMEOUT = 10.0


class DevicePlugin(pb_grpc.DevicePluginServicer):
    def __init__(self, device: HostDevice, plugin_dir: str):
        self.device = device
        self.plugin_dir = plugin_dir
        self.socket_path = os.path.join(plugin_dir, device.endpoint)
        self.present = False
        self.generation = 0
        self.stopped = False
        self.cond = threading.Condition()
        self.server: grpc.Server | None = None
        self.kubelet_inode: int | None = None

    # ------------------------------------------------------------------ gRPC service

    def GetDevicePluginOptions(self, request, context):
        return pb.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=False)

    def ListAndWatch(self, request, context):
        seen = -1
        while True:
            with self.cond:
                while self.generation == seen and not self.stopped and context.is_active():
                    self.cond.wait(1.0)
                if not context.is_active():
                    return
                if self.stopped:  # an empty list makes the kubelet drop the devices at once
                    yield pb.ListAndWatchResponse(devices=[])
                    return
                seen, present = self.generation, self.present
            log.info("%s: advertising %s", self.device.resource, "healthy devices" if present else "unhealthy devices")
            yield pb.ListAndWatchResponse(devices=[pb.Device(ID=i, health=h)
                                                   for i, h in device_list(self.device, present)])

    def Allocate(self, request, context):
        try:
            specs = allocation(self.device, [list(c.devices_ids) for c in request.container_requests], self.present)
        except FileNotFoundError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        log.info("%s: allocated to %d container(s)", self.device.resource, len(specs))
        return pb.AllocateResponse(container_responses=[
            pb.ContainerAllocateResponse(devices=[pb.DeviceSpec(**spec) for spec in container])
            for container in specs])

    def GetPreferredAllocation(self, request, context):
        return pb.PreferredAllocationResponse()

    def PreStartContainer(self, request, context):
        return pb.PreStartContainerResponse()

    # ------------------------------------------------------------------ life with the kubelet

    def set_present(self, present: bool) -> None:
        with self.cond:
            if present != self.present:
                self.present = present
                self.generation += 1
                self.cond.notify_all()

    def serve(self) -> None:
        self.stop()
        with self.cond:
            self.stopped = False
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"dp-{self.device.name}"))
        pb_grpc.add_DevicePluginServicer_to_server(self, server)
        server.add_insecure_port(f"unix://{self.socket_path}")
        server.start()
        self.server = server

    def register(self) -> None:
        kubelet = os.path.join(self.plugin_dir, KUBELET_SOCKET)
        with grpc.insecure_channel(f"unix://{kubelet}") as channel:
            pb_grpc.RegistrationStub(channel).Register(pb.RegisterRequest(
                version=API_VERSION, endpoint=self.device.endpoint, resource_name=self.device.resource,
                options=pb.DevicePluginOptions(pre_start_required=False)), timeout=REGISTER_TIMEOUT)
        self.kubelet_inode = _inode(kubelet)
        log.info("%s: registered with the kubelet (%s)", self.device.resource, self.socket_path)

    def needs_reregistration(self) -> bool:
        """The kubelet restarted: it removed our socket, or made a new kubelet.sock."""
        return not os.path.exists(self.socket_path) or \
            _inode(os.path.join(self.plugin_dir, KUBELET_SOCKET)) != self.kubelet_inode

    @property
    def registered(self) -> bool:
        return self.server is not None

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if self.server is not None:
            self.server.stop(grace=1).wait(2)
            self.server = None


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class DevicePluginManager:
    def __init__(self, plugin_dir: str, device_root: str = "", devices=DEVICES,
                 interval: float = CHECK_SECONDS):
        self.plugins = [DevicePlugin(device, plugin_dir) for device in devices]
        self.device_root = device_root.rstrip("/")
        self.interval = interval
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="device-plugins", daemon=True)

    def start(self) -> DevicePluginManager:
        self.check()
        self.thread.start()
        return self

    def present(self, device: HostDevice) -> bool:
        return os.path.exists(self.device_root + device.path)

    def check(self) -> None:
        for plugin in self.plugins:
            present = self.present(plugin.device)
            if not should_serve(present, plugin.registered):
                continue
            plugin.set_present(present)
            if plugin.registered and not plugin.needs_reregistration():
                continue
            try:
                plugin.serve()
                plugin.register()
            except (grpc.RpcError, OSError) as exc:
                log.warning("%s: not registered yet: %s", plugin.device.resource, exc)
                plugin.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # keep watching: the next round retries
                log.exception("device plugin check failed")

    def stop(self) -> None:
        self._stop.set()
        for plugin in self.plugins:
            plugin.stop()
