"""Bad input stops cluster-up in its preflight, before anything is changed, naming what to fix."""
import socket

import pytest

from tests.e2e.cluster import recap_changed, run_playbook


@pytest.mark.parametrize("variable,value", [
    ("kube_service_cidr", "10.96.0.0/33"),
    ("kube_pod_cidr", "10.96.0.0/16"),  # overlaps the service range
    ("kube_version", "1.2.3"),
    ("kube_binaries_source", "magic"),
])
def test_bad_variable_is_named_and_nothing_changes(variable, value):
    rc, output, _ = run_playbook("cluster-up", "-e", f"{variable}={value}", check=False, timeout=300)
    assert rc != 0
    # Named either by the preflight (variable=value) or by the roles' argument specs.
    assert f"{variable}={value}" in output or f"value of {variable} must be one of" in output
    assert recap_changed(output) == 0


def test_port_taken_by_a_stranger_is_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, output, _ = run_playbook("cluster-up", "-e", f'{{"preflight_ports": [{port}]}}', check=False, timeout=300)
    assert rc != 0
    assert f"Port {port} is already in use" in output
    assert recap_changed(output) == 0
