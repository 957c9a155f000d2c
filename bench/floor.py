"""The floor of a VM start: the demo guest started by a bare libvirtd on this host, without Kubernetes.

    python -m bench.floor [--runs 3]     # prints one JSON object per run

Each run starts a private libvirtd (as the launcher does: its own mount namespace, the QEMU driver only, the
host's warm capability cache), prepares the same disks the launcher prepares (a qcow2 overlay on the demo
containerDisk's image, the cloud-init ISO), converts the same VMI with the launcher's converter and then
times what is left: createXML (QEMU starts the guest), the guest's first byte on the serial console, and
the demo's login marker. The guest has no NIC here: its pod network is what virt-handler wires into a launcher
pod, and a bare libvirtd on the host has none.
Needs root, libvirtd and QEMU (hack/install-node-packages.sh) and the demo disk (playbooks/images.yml).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("KUBEVIRT_OPS_CACHE", Path.home() / ".cache" / "kubevirt-ops"))
MARKER = b"kubevirt-ops demo: login ready"


def demo_disk() -> Path | None:
    disks = sorted((CACHE / "images" / "demo-disk").glob("*/demo.img"), key=lambda p: p.stat().st_mtime)
    return disks[-1] if disks else None


def demo_vmi(name: str) -> dict:
    import yaml

    from kubevirt_runtime.api import default_vmi
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "vm-demo.yaml").read_text()) if d]
    vm = next(d for d in docs if d["kind"] == "VirtualMachine")
    spec = json.loads(json.dumps(vm["spec"]["template"]["spec"]))
    spec["domain"]["devices"]["interfaces"] = []
    spec["domain"]["devices"]["autoattachPodInterface"] = False
    spec["networks"] = []
    return default_vmi({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                        "metadata": {"name": name, "namespace": "floor", "uid": str(uuid.uuid4())}, "spec": spec})


def _read_until(sock: socket.socket, marker: bytes, timeout: float) -> tuple[float | None, float | None]:
    """(time of the first byte, time of the marker) from a connected serial socket."""
    first = seen = None
    buffer = b""
    deadline = time.time() + timeout
    sock.settimeout(1)
    while time.time() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        first = first or time.time()
        buffer = (buffer + data)[-65536:]
        if marker in buffer:
            seen = time.time()
            break
    return first, seen


def run_once(disk: Path, base: Path) -> dict:
    import libvirt

    from bench.procmem import pss_kib, qemu_breakdown, rss_kib
    from kubevirt_runtime.api.quantity import memory_bytes
    from kubevirt_runtime.launcher import disks, libvirtd
    from kubevirt_runtime.launcher.converter import ConverterContext, convert

    daemon = libvirtd.Libvirtd()
    daemon.start()
    daemon.wait_ready()
    conn = libvirt.open(daemon.uri)
    conn.getDomainCapabilities()  # loads the capability cache before the clock starts
    vmi = demo_vmi("demo")
    container_disks = base / "container-disks"
    (container_disks / "containerdisk").mkdir(parents=True, exist_ok=True)
    link = container_disks / "containerdisk" / disk.name
    if not link.exists():
        link.symlink_to(disk)
    serial = base / "virt-serial0"
    try:
        started = time.time()
        volumes = disks.prepare_volumes(vmi, base, container_disks)
        ctx = ConverterContext(accel="tcg", disks=volumes, serial_socket=str(serial),
                               serial_log=str(base / "virt-serial0.log"), vnc_socket=str(base / "virt-vnc"),
                               nvram_path=disks.nvram_path(base))
        xml = convert(vmi, ctx)
        defined = time.time()
        dom = conn.createXML(xml, 0)
        running = time.time()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(serial))
        first, marker = _read_until(sock, MARKER, 300)
        time.sleep(2)
        qemu = int((Path("/run/libvirt/qemu") / f"{dom.name()}.pid").read_text())
        guest_kib, _ = qemu_breakdown(qemu, memory_bytes(vmi["spec"]["domain"]["memory"]["guest"]))
        result = {"define": defined - started, "start": running - defined, "running": running - started,
                  "first_output": first and first - started, "marker": marker and marker - started,
                  "rss_kib": {"libvirtd": rss_kib(daemon.pid), "qemu": rss_kib(qemu) - guest_kib},
                  "pss_kib": {"libvirtd": pss_kib(daemon.pid), "qemu": pss_kib(qemu) - guest_kib}}
        sock.close()
        dom.destroy()
        return result
    finally:
        conn.close()
        daemon.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    disk = demo_disk()
    if disk is None:
        print(json.dumps({"error": "no demo disk built (playbooks/images.yml)"}))
        return 1
    sys.path.insert(0, str(ROOT))
    from kubevirt_runtime.launcher import libvirtd
    with tempfile.TemporaryDirectory(prefix="kvo-floor-", dir="/tmp") as tmp:
        base = Path(tmp)
        libvirtd.enter_private_mount_namespace(base)  # while single-threaded
        for _ in range(args.runs):
            print(json.dumps(run_once(disk, base)), flush=True)
    return 0


def measure(runs: int = 3) -> list[dict]:
    """Runs the floor in a child process (it needs a single-threaded start for its mount namespace)."""
    import subprocess
    proc = subprocess.run([sys.executable, "-m", "bench.floor", "--runs", str(runs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not results or "error" in results[0]:
        raise RuntimeError(f"floor failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-1500:]}")
    return results


if __name__ == "__main__":
    sys.exit(main())
