"""The launcher reaps daemonized orphans (QEMU) but never steals its own subprocesses' exit status."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    from kubevirt_runtime.launcher.main import become_subreaper, reap_orphans, _children

    become_subreaper()
    # a daemon like QEMU: fork, setsid, fork, the middle one exits -> the grandchild is re-parented to us
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            os._exit(0)          # the "QEMU" ends at once and becomes our zombie
        os._exit(0)
    daemon = int(os.read(r, 32))
    own = subprocess.Popen(["sh", "-c", "exit 3"])   # our own child, in our session
    time.sleep(0.5)
    # (the intermediate child called setsid too: it is an orphan-like daemon parent and gets reaped as well)
    reap_orphans()
    reap_orphans()
    assert daemon not in _children(), "the orphan was not reaped"
    assert own.wait() == 3, "our own child's exit status was stolen"
    print("ok")
""")


def test_reaper():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
