"""Keep one daemon running where no init system does it.

Usage: kvo-supervise.py SPEC_JSON

SPEC_JSON holds {"name", "argv", "env", "log", "pidfile", "child_pidfile", "cwd", "stop_grace"}.
The supervisor detaches, records its own pid in pidfile and the daemon's in
child_pidfile, restarts the daemon with exponential backoff (1 s .. 30 s) when it
exits, and on SIGTERM stops it (SIGTERM, then SIGKILL after the grace period) and
removes both pid files. Only the standard library: it runs on any node's python3.
"""
import json
import os
import signal
import subprocess
import sys
import time

STOP_GRACE_SECONDS = 20
MAX_BACKOFF_SECONDS = 30
STABLE_SECONDS = 60


def daemonize():
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def write_pid(path, pid):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def log_line(log, message):
    log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} kvo-supervise: {message}\n".encode())
    log.flush()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    daemonize()
    write_pid(spec["pidfile"], os.getpid())
    stopping = False
    child = None

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.terminate()
            signal.alarm(int(spec.get("stop_grace") or STOP_GRACE_SECONDS))

    def on_grace_expired(signum, frame):
        if child and child.poll() is None:
            child.kill()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGALRM, on_grace_expired)
    env = dict(os.environ, **spec.get("env", {}))
    backoff = 1
    with open(spec["log"], "ab", buffering=0) as log:
        while not stopping:
            started = time.monotonic()
            log_line(log, f"starting {spec['name']}: {' '.join(spec['argv'])}")
            child = subprocess.Popen(spec["argv"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     env=env, cwd=spec.get("cwd") or "/", start_new_session=True)
            write_pid(spec["child_pidfile"], child.pid)
            code = child.wait()
            remove(spec["child_pidfile"])
            log_line(log, f"{spec['name']} exited with {code}")
            if stopping:
                break
            if time.monotonic() - started > STABLE_SECONDS:
                backoff = 1
            deadline = time.monotonic() + backoff
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
    remove(spec["pidfile"])


if __name__ == "__main__":
    main()
