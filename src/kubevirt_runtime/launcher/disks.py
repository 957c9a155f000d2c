"""Turns a VMI's volumes into files the domain can use (the launcher's side effects before `convert`).

- containerDisk: the init container copied the image's /disk/* into <container-disks>/<volume>/; the
  launcher creates a qcow2 overlay on it in the private dir, so the guest's writes land in the
  overlay and the image's disk is never written (QEMU opens a backing file read-only).
- cloudInitNoCloud: a NoCloud ISO (volume label "cidata": user-data, meta-data, network-config).
- emptyDisk: a sparse qcow2 of the requested capacity.
- persistentVolumeClaim (filesystem mode): <private>/vmi-disks/<volume>/disk.img, as upstream.
- kernelBoot: the init container copied kernelPath/initrdPath into <container-disks>/kernel-boot/.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

from kubevirt_runtime.api.quantity import memory_bytes

from .converter import ConversionError, DiskSource

QEMU_IMG = "qemu-img"
KERNEL_BOOT_DIR = "kernel-boot"


def _iso_tool() -> list[str]:
    for tool in ("genisoimage", "mkisofs"):
        if shutil.which(tool):
            return [tool]
    if shutil.which("xorriso"):
        return ["xorriso", "-as", "mkisofs"]
    raise ConversionError("cloudInitNoCloud: no ISO writer (genisoimage or xorriso) in the launcher image")


def image_format(path: Path) -> str:
    out = subprocess.run([QEMU_IMG, "info", "--output=json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out).get("format", "raw")


def _container_disk_file(directory: Path, volume: dict) -> Path:
    wanted = (volume["containerDisk"].get("path") or "").strip("/")
    if wanted:
        for candidate in (directory / wanted, directory / Path(wanted).name):
            if candidate.is_file():
                return candidate
        raise ConversionError(f"spec.volumes[{volume['name']}].containerDisk.path: {wanted} not found in {directory}")
    files = sorted(p for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []
    if len(files) != 1:
        raise ConversionError(f"spec.volumes[{volume['name']}].containerDisk: expected one disk file in "
                              f"{directory}, found {len(files)}")
    return files[0]


def _cloud_init_iso(volume: dict, vmi: dict, out_dir: Path, private_dir: Path) -> Path:
    source = volume["cloudInitNoCloud"]
    name = volume["name"]
    stage = out_dir / f"{name}.d"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)

    def pick(text_key, b64_key, secret_key, secret_file):
        if source.get(text_key) is not None:
            return source[text_key].encode()
        if source.get(b64_key) is not None:
            return base64.b64decode(source[b64_key])
        if source.get(secret_key):
            path = private_dir / "secret" / name / secret_file  # mounted by virt-controller's pod
            if not path.exists():
                raise ConversionError(f"spec.volumes[{name}].cloudInitNoCloud.{secret_key}: secret not mounted")
            return path.read_bytes()
        return None

    user = pick("userData", "userDataBase64", "secretRef", "userdata")
    network = pick("networkData", "networkDataBase64", "networkDataSecretRef", "networkdata")
    meta = vmi.get("metadata", {})
    (stage / "user-data").write_bytes(user or b"")
    (stage / "meta-data").write_text(f"instance-id: {meta.get('uid') or meta.get('name')}\n"
                                     f"local-hostname: {meta.get('name')}\n")
    files = ["user-data", "meta-data"]
    if network is not None:
        (stage / "network-config").write_bytes(network)
        files.append("network-config")
    iso = out_dir / f"{name}.iso"
    subprocess.run(_iso_tool() + ["-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock"] + files,
                   check=True, cwd=stage, capture_output=True)
    shutil.rmtree(stage, ignore_errors=True)
    return iso


def prepare_volumes(vmi: dict, private_dir: Path, container_disk_dir: Path) -> dict:
    """Creates what each volume needs; returns {volume name: DiskSource} for the converter."""
    out: dict[str, DiskSource] = {}
    work = private_dir / "disks"
    work.mkdir(parents=True, exist_ok=True)
    for volume in vmi.get("spec", {}).get("volumes") or []:
        name = volume.get("name")
        if volume.get("containerDisk") is not None:
            base = _container_disk_file(container_disk_dir / name, volume)
            fmt = image_format(base)
            overlay = work / f"{name}.qcow2"
            if not overlay.exists():
                subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(base.resolve()),
                                str(overlay)], check=True, capture_output=True)
            out[name] = DiskSource(str(overlay), "qcow2")
        elif volume.get("cloudInitNoCloud") is not None:
            out[name] = DiskSource(str(_cloud_init_iso(volume, vmi, work, private_dir)), "raw", readonly=True)
        elif volume.get("emptyDisk") is not None:
            path = work / f"{name}.qcow2"
            if not path.exists():
                size = memory_bytes(volume["emptyDisk"]["capacity"])
                subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", str(path), str(size)],
                               check=True, capture_output=True)
            out[name] = DiskSource(str(path), "qcow2")
        elif volume.get("persistentVolumeClaim") is not None:
            path = private_dir / "vmi-disks" / name / "disk.img"
            block = Path("/dev") / name
            if path.exists():
                out[name] = DiskSource(str(path), image_format(path),
                                       readonly=bool(volume["persistentVolumeClaim"].get("readOnly")))
            elif block.exists() and block.is_block_device():
                out[name] = DiskSource(str(block), "raw", block=True,
                                       readonly=bool(volume["persistentVolumeClaim"].get("readOnly")))
            else:
                raise ConversionError(f"spec.volumes[{name}].persistentVolumeClaim: {path} is not mounted")
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise ConversionError(f"spec.volumes[{name}]: unsupported volume source {kinds}")
    return out


def kernel_boot_paths(vmi: dict, container_disk_dir: Path) -> tuple[str | None, str | None]:
    kernel_boot = vmi.get("spec", {}).get("domain", {}).get("firmware", {}).get("kernelBoot") or {}
    container = kernel_boot.get("container") or {}
    found = []
    for key in ("kernelPath", "initrdPath"):
        wanted = container.get(key)
        if not wanted:
            found.append(None)
            continue
        path = container_disk_dir / KERNEL_BOOT_DIR / Path(wanted).name
        if not path.is_file():
            raise ConversionError(f"spec.domain.firmware.kernelBoot.container.{key}: {path} not found")
        found.append(str(path))
    return found[0], found[1]


def nvram_path(private_dir: Path) -> str:
    d = private_dir / "nvram"
    d.mkdir(parents=True, exist_ok=True)
    return str(d / "VARS.fd")


def cleanup(private_dir: Path) -> None:
    shutil.rmtree(private_dir / "disks", ignore_errors=True)
    if os.path.isdir(private_dir / "nvram"):
        shutil.rmtree(private_dir / "nvram", ignore_errors=True)
