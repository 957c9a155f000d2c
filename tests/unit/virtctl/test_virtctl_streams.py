"""virtctl's port-forward, ssh and vnc: argument parsing as upstream's virtctl takes it, the URLs they open,
the ssh command line, and a real local forward through a fake WebSocket."""
import socket
import threading

import pytest
from test_virtctl_cli import FakeApi

from kubevirt_runtime.client.subresources import Subresources
from kubevirt_runtime.virtctl import forward, ssh
from kubevirt_runtime.virtctl import main as virtctl


@pytest.mark.parametrize("text, expected", [
    ("vmi/demo", ("virtualmachineinstances", "demo", None)),
    ("vm/demo/ns1", ("virtualmachines", "demo", "ns1")),
    ("VirtualMachineInstances/demo", ("virtualmachineinstances", "demo", None)),
])
def test_targets(text, expected):
    assert forward.parse_target(text) == expected


@pytest.mark.parametrize("text, match", [("demo", "TYPE/NAME"), ("pod/x", "unsupported resource type"),
                                         ("vmi/", "name cannot be empty"), ("vm/x/", "namespace cannot be empty"),
                                         ("vm/a/b/c", "TYPE/NAME")])
def test_bad_targets(text, match):
    with pytest.raises(forward.UsageError, match=match):
        forward.parse_target(text)


@pytest.mark.parametrize("text, expected", [("8080", ("tcp", 8080, 8080)), ("8080:80", ("tcp", 8080, 80)),
                                            ("udp/5353:53", ("udp", 5353, 53)), ("0:22", ("tcp", 0, 22))])
def test_ports(text, expected):
    assert forward.parse_port(text) == expected


@pytest.mark.parametrize("text", ["x", "80:y", "sctp/1", "70000", "1:0"])
def test_bad_ports(text):
    with pytest.raises(forward.UsageError):
        forward.parse_port(text)


def test_stream_urls_are_upstreams():
    sub = Subresources(FakeApi())
    base = "wss://10.0.0.1:6443/apis/subresources.kubevirt.io/v1/namespaces/ns"
    assert sub.stream_url("ns", "v", "vnc", query="preserveSession=false") == \
        base + "/virtualmachineinstances/v/vnc?preserveSession=false"
    assert sub.stream_url("ns", "v", "portforward/22/tcp", resource="virtualmachines") == \
        base + "/virtualmachines/v/portforward/22/tcp"


def test_ssh_command_line_uses_port_forward_as_proxy_command():
    user, resource, name, ns = ssh.parse_ssh_target("root@vmi/demo")
    assert (user, resource, name, ns) == ("root", "virtualmachineinstances", "demo", None)
    argv = ssh.ssh_argv(["/v/virtctl", "--kubeconfig", "/k"], resource, name, "default", user=user,
                        identity="/id", local_opts=["-o StrictHostKeyChecking=no"], command="cat /etc/hostname")
    assert argv == ["ssh", "-o", "ProxyCommand=/v/virtctl --kubeconfig /k port-forward --stdio=true "
                                 "vmi/demo/default 22",
                    "-o", "StrictHostKeyChecking=no", "-i", "/id", "root@vmi.demo.default", "cat /etc/hostname"]
    # the ProxyCommand parses as the port-forward it means
    args = virtctl.parse_args(["--kubeconfig", "/k", "port-forward", "--stdio=true", "vmi/demo/default", "22"])
    assert (args.command, args.stdio, args.target, args.ports) == ("port-forward", "true", "vmi/demo/default", ["22"])
    with pytest.raises(forward.UsageError):
        ssh.parse_ssh_target("@vmi/demo")
    # -c is the remote command and must not replace the verb
    args = virtctl.parse_args(["ssh", "root@vm/demo", "-c", "uname -r", "-t", "-o BatchMode=yes"])
    assert (args.command, args.remote_command, args.local_ssh_opts) == ("ssh", "uname -r", ["-o BatchMode=yes"])


def test_vnc_without_a_viewer_says_what_to_do(monkeypatch):
    monkeypatch.setattr(forward.shutil, "which", lambda name: None)
    with pytest.raises(forward.UsageError, match="--proxy-only"):
        forward.vnc(lambda: None, "127.0.0.1", 0, proxy_only=False)


class FakeWS:
    """The remote end: upper-cases what it gets."""

    def __init__(self):
        self.inbox = []
        self.cond = threading.Condition()
        self.closed = False

    def send(self, data):
        with self.cond:
            self.inbox.append(data.upper())
            self.cond.notify_all()

    def recv(self):
        from websockets.exceptions import ConnectionClosedOK
        with self.cond:
            while not self.inbox and not self.closed:
                self.cond.wait()
            if self.inbox:
                return self.inbox.pop(0)
            raise ConnectionClosedOK(None, None)

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def test_local_listener_forwards_through_a_websocket_per_connection():
    opened = []
    listener = forward.listen("127.0.0.1", 0)

    def open_ws():
        opened.append(FakeWS())
        return opened[-1]
    threading.Thread(target=forward.serve_forever, args=(listener, open_ws), daemon=True).start()
    for text in (b"first", b"second"):
        with socket.create_connection(listener.getsockname(), timeout=5) as conn:
            conn.sendall(text)
            assert conn.recv(100) == text.upper()
    assert len(opened) == 2


def test_stdio_forward_copies_stdin_to_the_guest_and_the_guest_to_stdout(monkeypatch):
    """What ssh's ProxyCommand runs: stdin -> WebSocket -> guest, guest -> stdout, until stdin ends."""
    import io
    import os
    import types
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"ssh-2.0-client\n")
    os.close(write_fd)  # ssh closed its end: the forward ends once the guest's answer is out
    out = io.BytesIO()
    monkeypatch.setattr(forward.sys, "stdin", types.SimpleNamespace(fileno=lambda: read_fd))
    monkeypatch.setattr(forward.sys, "stdout", types.SimpleNamespace(buffer=out))
    ws = FakeWS()
    opened = []
    assert forward.port_forward(lambda port, proto: opened.append((port, proto)) or ws,
                                [("tcp", 0, 22)], "127.0.0.1", stdio=True) == 0
    assert opened == [(22, "tcp")] and out.getvalue() == b"SSH-2.0-CLIENT\n"
    os.close(read_fd)
    with pytest.raises(forward.UsageError, match="exactly one port"):
        forward.port_forward(lambda *a: ws, [("tcp", 1, 1), ("tcp", 2, 2)], "127.0.0.1", stdio=True)
