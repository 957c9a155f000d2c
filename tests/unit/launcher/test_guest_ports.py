"""How the launcher reaches a guest port: directly at the masquerade guest's address behind the pod's bridge."""
import pytest

from kubevirt_runtime.launcher import guest_ports


def vmi(cidr=None, interfaces=("default",), kind="masquerade"):
    pod = {"vmNetworkCIDR": cidr} if cidr else {}
    return {"spec": {"domain": {"devices": {"interfaces": [{"name": n, kind: {}} for n in interfaces]}},
                     "networks": [{"name": n, "pod": pod} for n in interfaces]}}


@pytest.mark.parametrize("obj, port, expected", [
    (vmi(), 22, ("10.0.2.2", 22)),
    (vmi("10.10.0.0/24"), 80, ("10.10.0.2", 80)),
])
def test_masquerade_guest_is_dialled_on_its_cidr(obj, port, expected):
    assert guest_ports.plan(obj, port) == expected


@pytest.mark.parametrize("obj, port, match", [
    (vmi(interfaces=()), 80, "no interface on the pod network"),
    (vmi(), 0, "out of range"),
    (vmi(), 70000, "out of range"),
    (vmi(kind="bridge"), 80, "needs the masquerade binding"),
    (vmi("10.0.2.0/31"), 80, "too small"),
])
def test_errors(obj, port, match):
    with pytest.raises(guest_ports.PortForwardError, match=match):
        guest_ports.plan(obj, port)


def test_only_tcp():
    with pytest.raises(guest_ports.PortForwardError, match="only tcp"):
        guest_ports.connect(vmi(), 53, "udp")
