"""How the launcher reaches a guest port: through a QEMU host forward while the pod network is user-mode
(slirp), directly once the guest sits behind a tap device."""
import pytest

from kubevirt_runtime.launcher import guest_ports
from kubevirt_runtime.launcher.converter import QEMU_NS


def vmi(cidr=None, interfaces=("default",)):
    pod = {"vmNetworkCIDR": cidr} if cidr else {}
    return {"spec": {"domain": {"devices": {"interfaces": [{"name": n, "masquerade": {}} for n in interfaces]}},
                     "networks": [{"name": n, "pod": pod} for n in interfaces]}}


def domain_xml(*args):
    arg_xml = "".join(f'<qemu:arg value="{a}"/>' for a in args)
    return f'<domain xmlns:qemu="{QEMU_NS}"><name>d</name><qemu:commandline>{arg_xml}</qemu:commandline></domain>'


SLIRP = domain_xml("-netdev", "user,id=ua-default,net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.2",
                   "-device", "virtio-net-pci,netdev=ua-default")


def test_slirp_guest_is_reached_through_a_host_forward():
    assert guest_ports.plan(vmi(), SLIRP, 22) == {"via": "hostfwd", "netdev": "ua-default", "guest": "10.0.2.2",
                                                  "port": 22}


def test_tap_guest_is_dialled_directly_on_its_cidr():
    tap = "<domain><name>d</name><devices><interface type='ethernet'/></devices></domain>"
    assert guest_ports.plan(vmi("10.10.0.0/24"), tap, 80) == {"via": "direct", "address": "10.10.0.2", "port": 80}


@pytest.mark.parametrize("obj, port, match", [
    (vmi(interfaces=()), 80, "no interface on the pod network"),
    (vmi(), 0, "out of range"),
    (vmi(), 70000, "out of range"),
])
def test_errors(obj, port, match):
    with pytest.raises(guest_ports.PortForwardError, match=match):
        guest_ports.plan(obj, SLIRP, port)


def test_only_tcp():
    with pytest.raises(guest_ports.PortForwardError, match="only tcp"):
        guest_ports.connect(None, vmi(), 53, "udp")
