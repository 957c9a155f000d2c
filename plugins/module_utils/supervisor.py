"""Start, stop and inspect daemons run by kvo-supervise.py (nodes without systemd).

Each service NAME lives in a state directory:
  run/NAME.json        what the supervisor runs (argv, env, log, pid files, config checksum)
  run/NAME.pid         the supervisor's pid
  run/NAME.child.pid   the daemon's pid
  log/NAME.log         the daemon's stdout and stderr
"""
import json
import os
import signal
import subprocess
import time


class ServicePaths:
    def __init__(self, state_dir, name):
        self.name = name
        self.spec = os.path.join(state_dir, "run", f"{name}.json")
        self.pidfile = os.path.join(state_dir, "run", f"{name}.pid")
        self.child_pidfile = os.path.join(state_dir, "run", f"{name}.child.pid")
        self.log = os.path.join(state_dir, "log", f"{name}.log")


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid):
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def supervisor_pid(paths):
    """The recorded supervisor pid if that process still runs kvo-supervise for this spec."""
    pid = read_pid(paths.pidfile)
    if not pid_alive(pid):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except FileNotFoundError:
        return None
    # A recycled pid belongs to someone else: never signal it.
    return pid if paths.spec.encode() in cmdline else None


def desired_spec(paths, argv, env, cwd, checksum):
    return {
        "name": paths.name,
        "argv": list(argv),
        "env": dict(env or {}),
        "cwd": cwd,
        "checksum": checksum or "",
        "log": paths.log,
        "pidfile": paths.pidfile,
        "child_pidfile": paths.child_pidfile,
    }


def current_spec(paths):
    try:
        with open(paths.spec) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def start(paths, spec, supervisor_script, python):
    for d in (os.path.dirname(paths.spec), os.path.dirname(paths.log)):
        os.makedirs(d, exist_ok=True)
    tmp = paths.spec + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=1)
    os.replace(tmp, paths.spec)
    # kvo-supervise double-forks; the first child returns once it detached.
    subprocess.run([python, supervisor_script, paths.spec], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if supervisor_pid(paths) and pid_alive(read_pid(paths.child_pidfile)):
            return True
        time.sleep(0.05)
    return False


def stop(paths, timeout=60):
    """SIGTERM the recorded supervisor (it stops its daemon) and wait for both to go."""
    pid = supervisor_pid(paths)
    child = read_pid(paths.child_pidfile)
    if pid:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (pid_alive(pid) or (pid and pid_alive(child))):
        time.sleep(0.05)
    stopped = not pid_alive(pid)
    for path in (paths.pidfile, paths.child_pidfile):
        if stopped and os.path.exists(path):
            os.unlink(path)
    return pid is not None
