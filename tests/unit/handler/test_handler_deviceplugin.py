"""virt-handler's device plugin: what it advertises and allocates (pure), and the real gRPC exchange with a
stand-in kubelet on unix sockets: registration, ListAndWatch, Allocate, health changes, kubelet restarts."""
import os
import tempfile
from concurrent import futures

import grpc
import pytest

from kubevirt_runtime.handler.deviceplugin.devices import (
    DEVICES,
    HEALTHY,
    UNHEALTHY,
    HostDevice,
    allocation,
    device_list,
    should_serve,
)
from kubevirt_runtime.handler.deviceplugin.server import DevicePluginManager
from kubevirt_runtime.handler.deviceplugin.v1beta1 import api_pb2 as pb
from kubevirt_runtime.handler.deviceplugin.v1beta1 import api_pb2_grpc as pb_grpc

TUN = HostDevice("tun", "/dev/net/tun")


def test_upstream_resource_names_and_sockets():
    assert [(d.resource, d.path, d.endpoint) for d in DEVICES] == [
        ("devices.kubevirt.io/kvm", "/dev/kvm", "kubevirt-kvm.sock"),
        ("devices.kubevirt.io/tun", "/dev/net/tun", "kubevirt-tun.sock"),
        ("devices.kubevirt.io/vhost-net", "/dev/vhost-net", "kubevirt-vhost-net.sock")]


@pytest.mark.parametrize("present,registered,serve", [
    (False, False, False),  # a device the node lacks is not advertised at all
    (True, False, True),
    (True, True, True),
    (False, True, True),    # it vanished after registration: stays, unhealthy
])
def test_should_serve(present, registered, serve):
    assert should_serve(present, registered) is serve


@pytest.mark.parametrize("present,health", [(True, HEALTHY), (False, UNHEALTHY)])
def test_device_list(present, health):
    devices = device_list(TUN, present, count=3)
    assert devices == [("tun0", health), ("tun1", health), ("tun2", health)]


def test_allocation_gives_each_container_the_device_node():
    assert allocation(TUN, [["tun7"], ["tun8", "tun9"]], True) == [
        [{"container_path": "/dev/net/tun", "host_path": "/dev/net/tun", "permissions": "rw"}]] * 2


@pytest.mark.parametrize("ids,present,error", [
    (["kvm0"], True, ValueError),
    (["tunx"], True, ValueError),
    (["tun0"], False, FileNotFoundError),
])
def test_allocation_refusals(ids, present, error):
    with pytest.raises(error):
        allocation(TUN, [ids], present)


class Kubelet(pb_grpc.RegistrationServicer):
    """Stands in for the kubelet's registration service on <dir>/kubelet.sock."""

    def __init__(self, directory):
        self.directory, self.requests = directory, []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb_grpc.add_RegistrationServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"unix://{directory}/kubelet.sock")
        self.server.start()

    def Register(self, request, context):
        self.requests.append((request.version, request.endpoint, request.resource_name))
        return pb.Empty()

    def plugin(self, endpoint):
        return grpc.insecure_channel(f"unix://{self.directory}/{endpoint}")

    def stop(self):
        self.server.stop(0)


@pytest.fixture
def node():
    directory = tempfile.mkdtemp(prefix="kvo-dp-")
    root = os.path.join(directory, "root")
    os.makedirs(os.path.join(root, "dev", "net"))
    open(os.path.join(root, "dev", "net", "tun"), "w").close()  # this node has tun only
    kubelet = Kubelet(directory)
    manager = DevicePluginManager(directory, root, interval=3600).start()
    yield kubelet, manager, root
    manager.stop()
    kubelet.stop()


def test_only_existing_devices_register_and_allocate(node):
    kubelet, manager, _ = node
    assert kubelet.requests == [("v1beta1", "kubevirt-tun.sock", "devices.kubevirt.io/tun")]
    with kubelet.plugin("kubevirt-tun.sock") as channel:
        stub = pb_grpc.DevicePluginStub(channel)
        assert not stub.GetDevicePluginOptions(pb.Empty(), timeout=5).pre_start_required
        first = next(stub.ListAndWatch(pb.Empty(), timeout=5))
        assert len(first.devices) == 1000 and {d.health for d in first.devices} == {"Healthy"}
        answer = stub.Allocate(pb.AllocateRequest(container_requests=[
            pb.ContainerAllocateRequest(devices_ids=["tun3"])]), timeout=5)
        [spec] = answer.container_responses[0].devices
        assert (spec.container_path, spec.host_path, spec.permissions) == ("/dev/net/tun", "/dev/net/tun", "rw")
        with pytest.raises(grpc.RpcError) as refused:
            stub.Allocate(pb.AllocateRequest(container_requests=[
                pb.ContainerAllocateRequest(devices_ids=["kvm0"])]), timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_vanished_device_turns_unhealthy(node):
    kubelet, manager, root = node
    with kubelet.plugin("kubevirt-tun.sock") as channel:
        stream = pb_grpc.DevicePluginStub(channel).ListAndWatch(pb.Empty(), timeout=10)
        assert next(stream).devices[0].health == "Healthy"
        os.unlink(os.path.join(root, "dev", "net", "tun"))
        manager.check()
        assert {d.health for d in next(stream).devices} == {"Unhealthy"}
        stream.cancel()


def test_a_restarted_kubelet_gets_the_plugin_registered_again(node):
    kubelet, manager, _ = node
    os.unlink(os.path.join(kubelet.directory, "kubevirt-tun.sock"))  # what a starting kubelet does
    manager.check()
    assert kubelet.requests[-1] == ("v1beta1", "kubevirt-tun.sock", "devices.kubevirt.io/tun")
    assert len(kubelet.requests) == 2
    assert os.path.exists(os.path.join(kubelet.directory, "kubevirt-tun.sock"))
    manager.check()  # nothing changed: no third registration
    assert len(kubelet.requests) == 2


def test_virt_handler_device_plugins_only_serves_them_without_an_api_server():
    """The DaemonSet's device-plugins container: `virt-handler --device-plugins-only` registers with the kubelet,
    needs no kubeconfig, and leaves with 0 on SIGTERM."""
    import signal
    import subprocess
    import sys
    import time
    directory = tempfile.mkdtemp(prefix="kvo-dp-")
    root = os.path.join(directory, "root")
    os.makedirs(os.path.join(root, "dev", "net"))
    open(os.path.join(root, "dev", "net", "tun"), "w").close()
    kubelet = Kubelet(directory)
    env = dict(os.environ, KUBECONFIG=os.path.join(directory, "no-such-kubeconfig"))
    proc = subprocess.Popen([sys.executable, "-m", "kubevirt_runtime.handler.main", "--device-plugins-only",
                             "--device-plugin-dir", directory, "--device-root", root], env=env)
    try:
        deadline = time.monotonic() + 30
        while not kubelet.requests and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert kubelet.requests == [("v1beta1", "kubevirt-tun.sock", "devices.kubevirt.io/tun")]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        kubelet.stop()
