"""Upstream's VNC session rule: a new connection replaces the current one, unless it asks to preserve it."""
import socket

from kubevirt_runtime.handler.server import VNCSessions


def test_a_new_session_closes_the_old_one():
    sessions = VNCSessions()
    old, old_peer = socket.socketpair()
    new, _ = socket.socketpair()
    assert sessions.claim(("ns", "v"), old, preserve=False)
    assert sessions.claim(("ns", "v"), new, preserve=False)
    old_peer.settimeout(2)
    assert old_peer.recv(10) == b""  # the old viewer's stream was shut down
    sessions.release(("ns", "v"), old)  # the old session ending later does not drop the new one
    assert sessions.active[("ns", "v")] is new


def test_preserve_session_is_refused_while_one_is_active():
    sessions = VNCSessions()
    first, _ = socket.socketpair()
    second, _ = socket.socketpair()
    assert sessions.claim(("ns", "v"), first, preserve=False)
    assert not sessions.claim(("ns", "v"), second, preserve=True)
    assert sessions.claim(("ns", "other"), second, preserve=True)
    sessions.release(("ns", "v"), first)
    assert sessions.claim(("ns", "v"), second, preserve=True)
