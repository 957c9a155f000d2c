"""kvo-supervise and its module glue, with real processes."""
import os
import sys
import time
from pathlib import Path

from ansible_collections.kubevirt.ops.plugins.module_utils import supervisor as sv
from tests.conftest import REPO

SCRIPT = str(REPO / "roles" / "process_supervisor" / "files" / "kvo-supervise.py")


def _start(tmp_path, argv, **extra):
    paths = sv.ServicePaths(str(tmp_path), "sleeper")
    spec = dict(sv.desired_spec(paths, argv, {"KVO_TEST": "1"}, None, "c1"), **extra)
    assert sv.start(paths, spec, SCRIPT, sys.executable)
    return paths


def test_start_records_pids_and_stop_removes_them(tmp_path):
    paths = _start(tmp_path, ["sleep", "300"])
    supervisor, child = sv.supervisor_pid(paths), sv.read_pid(paths.child_pidfile)
    assert supervisor and sv.pid_alive(child)
    assert Path(f"/proc/{child}/environ").read_bytes().count(b"KVO_TEST=1") == 1
    assert sv.stop(paths)
    assert not sv.pid_alive(supervisor) and not sv.pid_alive(child)
    assert not os.path.exists(paths.pidfile) and not os.path.exists(paths.child_pidfile)


def test_daemon_that_dies_is_restarted(tmp_path):
    paths = _start(tmp_path, ["sleep", "300"])
    try:
        first = sv.read_pid(paths.child_pidfile)
        os.kill(first, 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid = sv.read_pid(paths.child_pidfile)
            if pid and pid != first and sv.pid_alive(pid):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the daemon was not restarted")
        assert "exited with -9" in Path(paths.log).read_text()
    finally:
        sv.stop(paths)


def test_daemon_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    paths = _start(tmp_path, ["sh", "-c", "trap '' TERM; sleep 300 & wait; sleep 300"], stop_grace=2)
    child = sv.read_pid(paths.child_pidfile)
    # the shell has set its trap once it started the sleep (on a loaded host a SIGTERM could come first)
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{child}/task/{child}/children").read_text().split() and time.monotonic() < deadline:
        time.sleep(0.05)
    start = time.monotonic()
    sv.stop(paths, timeout=20)
    assert not sv.pid_alive(child)
    assert 1.5 < time.monotonic() - start < 15


def test_a_recycled_pid_is_never_signalled(tmp_path):
    paths = sv.ServicePaths(str(tmp_path), "ghost")
    os.makedirs(os.path.dirname(paths.pidfile))
    Path(paths.pidfile).write_text(f"{os.getpid()}\n")  # this test process is not our supervisor
    assert sv.supervisor_pid(paths) is None
    assert sv.stop(paths) is False
