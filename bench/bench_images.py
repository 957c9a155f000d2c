"""KubeVirt image build benchmark (roles/kubevirt_images via playbooks/images.yml).

Prints: the warm no-op time (nothing changed: nothing rebuilt nor imported), the code-change time
(a Python-only change: wheel layer rebuilt, images rewritten and re-imported into containerd; measured
on a copy of the checkout with one comment added, then once more back to the checkout's own code),
the image and layer sizes, and the demo disk's boot time to its login marker under TCG.
With BENCH_IMAGES_COLD=1 also the cold build of each image into an empty cache (debootstrap, pip,
kernel download; nothing imported): several minutes.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("KUBEVIRT_OPS_CACHE", Path.home() / ".cache" / "kubevirt-ops"))
IMAGE_CACHE = CACHE / "images"
PLAYBOOK = ROOT / "playbooks" / "images.yml"
MARKER = "kubevirt-ops demo: login ready"


def playbook(extra: dict | None = None, env: dict | None = None) -> tuple[float, str]:
    cmd = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "local"), str(PLAYBOOK)]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"images.yml failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    recap = [line for line in proc.stdout.splitlines() if "changed=" in line and ":" in line]
    return elapsed, recap[-1].split(":", 1)[1].strip() if recap else ""


def archive_layers(archive: Path) -> list[int]:
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{digest}"))
    return [layer["size"] for layer in manifest["layers"]]


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def sizes(cache: Path = IMAGE_CACHE):
    manifest = json.loads((cache / "kubevirt-images.json").read_text())
    for image in manifest.values():
        archive = cache / f"{image['archive']}.tar"
        layers = archive_layers(archive)
        print(f"size {image['name']}: {mib(sum(layers))} in {len(layers)} layers "
              f"({', '.join(mib(s) for s in layers)}), digest {image['digest'][:19]}")


def frozen_copy(tmp: Path) -> Path:
    """A copy of the checkout's package sources: others may be editing the checkout meanwhile."""
    for name in ("pyproject.toml", "requirements.txt"):
        shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def rebuilds():
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        src = frozen_copy(Path(tmp))
        extra = {"kubevirt_images_source_dir": str(src), "kubevirt_images_venv": str(ROOT / ".venv")}
        elapsed, recap = playbook(extra)
        print(f"first run on a copy of the checkout: {elapsed:.1f}s  [{recap}]")
        elapsed, recap = playbook(extra)
        print(f"warm no-op (build + import, nothing changed): {elapsed:.1f}s  [{recap}]")
        init = src / "src" / "kubevirt_runtime" / "__init__.py"
        init.write_text(init.read_text() + f"\n# bench_images {time.time()}\n")
        elapsed, recap = playbook(extra)
        print(f"code change (one .py edited) -> rebuild + import: {elapsed:.1f}s  [{recap}]")
    elapsed, recap = playbook()
    print(f"back to the checkout's code -> rebuild + import: {elapsed:.1f}s  [{recap}]")


def demo_boot(cache: Path = IMAGE_CACHE, timeout: float = 300):
    disks = sorted((cache / "demo-disk").glob("*/demo.img"))
    if not disks or not shutil.which("qemu-system-x86_64"):
        print("demo disk boot: skipped (no disk built or no qemu-system-x86_64)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        serial = Path(tmp) / "serial.log"
        started = time.monotonic()
        proc = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "192",
                                 "-display", "none", "-nodefaults", "-no-reboot", "-snapshot",
                                 "-serial", f"file:{serial}", "-drive", f"file={disks[0]},format=raw,if=virtio",
                                 "-netdev", "user,id=n0,net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.2",
                                 "-device", "virtio-net-pci,netdev=n0"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while time.monotonic() - started < timeout:
                if serial.exists() and MARKER in serial.read_text(errors="replace"):
                    print(f"demo disk boot (TCG, 192 MiB, q35) to '{MARKER}': {time.monotonic() - started:.1f}s")
                    return
                time.sleep(0.2)
            print(f"demo disk boot: no marker after {timeout}s")
        finally:
            proc.kill()
            proc.wait()


def cold():
    with tempfile.TemporaryDirectory(prefix="bench-images-cold-", dir=str(CACHE.parent)) as tmp:
        env = {"KUBEVIRT_OPS_CACHE": tmp}
        for image in ("components", "launcher", "demo_disk"):
            elapsed, recap = playbook({"kubevirt_images_build": [image], "kubevirt_images_import": False}, env)
            print(f"cold build {image} (empty cache, previous images' layers kept): {elapsed:.1f}s")
        elapsed, _ = playbook({"kubevirt_images_import": False}, env)
        print(f"warm no-op of all three (build only): {elapsed:.1f}s")
        sizes(Path(tmp) / "images")


def main():
    rebuilds()
    sizes()
    demo_boot()
    if os.environ.get("BENCH_IMAGES_COLD") == "1":
        cold()


if __name__ == "__main__":
    sys.exit(main())
