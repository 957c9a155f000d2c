"""Guest <-> pod TCP throughput on the local cluster (needs the cluster up; hold the cluster lock).

One VM from the demo containerDisk (masquerade binding on the pod network, ports 80 and 5002 declared, so the
same VM works with any binding implementation) and two pods from the components image (python3):
- guest -> pod: the guest's user-data pipes BENCH_NET_MIB MiB from /dev/zero through busybox nc to a sink
  pod, ROUNDS times; the sink times each connection from its first byte to the last;
- pod -> guest: a client pod sends the same amount to busybox `nc -l` in the guest through the VMI's
  address (the launcher pod's IP), ROUNDS times, timed from connect until the guest closes.
Prints MiB/s per round and the median per direction. Under TCG the guest's CPU bounds every figure.
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAMESPACE = "default"
VM_NAME = "kvo-bench-net"
SINK, SOURCE = "kvo-bench-net-sink", "kvo-bench-net-source"
IMAGE = "docker.io/kubevirt-ops/virt-components:devel"
SINK_PORT, GUEST_PORT = 5001, 5002
ROUNDS = int(os.environ.get("BENCH_NET_ROUNDS", "3"))
MIB = int(os.environ.get("BENCH_NET_MIB", "64"))

SINK_CODE = """
import socket, sys, time
total, rounds = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[3]))); srv.listen(1)
for _ in range(rounds):
    conn, _ = srv.accept(); got = 0; first = None
    while got < total:
        data = conn.recv(1 << 20)
        if not data: break
        first = first or time.monotonic(); got += len(data)
    took = time.monotonic() - first if first else 0.0
    conn.close(); print(f"RX {got} {took:.3f}", flush=True)
"""

SOURCE_CODE = """
import socket, sys, time
host, port, total, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
chunk = b"\\0" * (1 << 16)
for _ in range(rounds):
    for _ in range(300):
        try:
            conn = socket.create_connection((host, port), timeout=5); break
        except OSError:
            time.sleep(2)
    conn.settimeout(300); start = time.monotonic(); sent = 0
    while sent < total:
        conn.sendall(chunk); sent += len(chunk)
    conn.shutdown(socket.SHUT_WR)
    while conn.recv(4096): pass
    print(f"TX {sent} {time.monotonic() - start:.3f}", flush=True); conn.close(); time.sleep(1)
"""


def _pod(name, code, *args):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "containers": [{
                "name": "main", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-c", code, *map(str, args)],
                "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}}}]}}


def _vm(sink_ip):
    user_data = f"""#!/bin/sh
(while true; do nc -l -p {GUEST_PORT} >/dev/null; done) &
(for i in $(seq {ROUNDS}); do
   until dd if=/dev/zero bs=65536 count={MIB * 16} 2>/dev/null | nc {sink_ip} {SINK_PORT}; do sleep 2; done
   sleep 1
 done; echo BENCH-TX-DONE) &
"""
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": VM_NAME, "namespace": NAMESPACE},
            "spec": {"runStrategy": "Always", "template": {"spec": {
                "terminationGracePeriodSeconds": 0,
                "domain": {"memory": {"guest": "128Mi"},
                           "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}},
                                                 {"name": "cloudinit", "disk": {"bus": "virtio"}}],
                                       "interfaces": [{"name": "default", "masquerade": {}, "ports": [
                                           {"port": 80}, {"port": GUEST_PORT}]}]}},
                "networks": [{"name": "default", "pod": {}}],
                "volumes": [{"name": "root", "containerDisk": {"image": "docker.io/kubevirt-ops/demo-disk:devel"}},
                            {"name": "cloudinit", "cloudInitNoCloud": {"userData": user_data}}]}}}}


def _rates(log, tag):
    out = []
    for line in log.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == tag and float(parts[2]) > 0:
            out.append(int(parts[1]) / float(parts[2]) / (1 << 20))
    return out


def main():
    from tests.e2e import cluster as c
    if not c.cluster_answers():
        print("skipped: the local cluster is not up (make cluster-up)")
        return
    cleanup = [("vm", VM_NAME), ("pod", SINK), ("pod", SOURCE)]
    for kind, name in cleanup:
        c.kubectl("delete", kind, name, "-n", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=300)
    try:
        c.kubectl("apply", "-f", "-", input=json.dumps(_pod(SINK, SINK_CODE, MIB << 20, ROUNDS, SINK_PORT)))
        sink_ip = c.wait_for("the sink pod's IP", lambda: (c.get("pod", SINK, NAMESPACE).get("status") or {})
                             .get("podIP"), 120)
        started = time.monotonic()
        c.kubectl("apply", "-f", "-", input=json.dumps(_vm(sink_ip)))
        vmi = c.wait_for("the VMI Running with an address", lambda: _running_address(c), 900)
        print(f"VMI running at {vmi} after {time.monotonic() - started:.0f}s")
        rx_log = c.wait_for("the guest's transfers", lambda: _log_with(c, SINK, "RX", ROUNDS), 1800, interval=5)
        c.kubectl("apply", "-f", "-", input=json.dumps(_pod(SOURCE, SOURCE_CODE, vmi, GUEST_PORT, MIB << 20,
                                                               ROUNDS)))
        tx_log = c.wait_for("the pod's transfers", lambda: _log_with(c, SOURCE, "TX", ROUNDS), 1800, interval=5)
        launcher = c.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"vm.kubevirt.io/name={VM_NAME}")["items"]
        binding = "tap+nat" if launcher and "tap0" in c.kubectl(
            "exec", "-n", NAMESPACE, launcher[0]["metadata"]["name"], "-c", "compute", "--", "cat",
            "/var/run/kubevirt-private/domain.xml", check=False) else "slirp"
        for tag, what, log in (("RX", "guest -> pod", rx_log), ("TX", "pod -> guest", tx_log)):
            rates = _rates(log, tag)
            print(f"{what:>13} ({binding}, {MIB} MiB x {len(rates)}): "
                  + ", ".join(f"{r:.1f}" for r in rates) + f" MiB/s; median {statistics.median(rates):.1f} MiB/s")
    finally:
        for kind, name in cleanup:
            c.kubectl("delete", kind, name, "-n", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)


def _running_address(c):
    vmi = c.get("vmi", VM_NAME, NAMESPACE) or {}
    status = vmi.get("status") or {}
    if status.get("phase") != "Running":
        return None
    pods = c.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"vm.kubevirt.io/name={VM_NAME}")["items"]
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    return running[0]["status"].get("podIP") if running else None


def _log_with(c, pod, tag, count):
    log = c.kubectl("logs", "-n", NAMESPACE, pod, check=False)
    return log if sum(1 for line in log.splitlines() if line.startswith(tag + " ")) >= count else None


if __name__ == "__main__":
    main()
