"""Turns a VMI's volumes into files the domain can use (the launcher's side effects before `convert`).

Where virt-controller mounted each volume is api/podpaths.py; relative to the launcher's private dir:
- containerDisk: the image's disk (its one file under /disk/, or containerDisk.path), read in place through
  the root of the image's container (container_disks.py); the launcher creates a qcow2 overlay on it in the
  private dir, so the guest's writes land in the overlay and the image is never written (QEMU opens a
  backing file read-only) nor copied.
- cloudInitNoCloud: a NoCloud ISO (volume label "cidata": user-data, meta-data, network-config);
  cloudInitConfigDrive: a config drive ISO (label "config-2": openstack/latest/{meta_data.json,
  user_data, network_data.json}). Data from a secretRef comes from the Secret mounted under cloud-init/.
- emptyDisk: a sparse qcow2 of the requested capacity.
- persistentVolumeClaim and dataVolume (filesystem mode): vmi-disks/<volume>/disk.img, as upstream;
  hotpluggable ones are left out here: virt-handler attaches them to the running guest (hotplug.py).
- hostDisk: the file in the node directory mounted at host-disks/<volume>/ (created sparse for
  DiskOrCreate).
- configMap, secret, downwardAPI, serviceAccount: an ISO of the mounted files (label volumeLabel, else
  "cfgdata"), as upstream attaches them.
- kernelBoot: kernelPath/initrdPath read in place from the kernelBoot image's container, as containerDisks.

Each DiskSource says whether direct I/O works where the file lives, so the converter can pick cache "none".
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

from kubevirt_runtime.api import podpaths
from kubevirt_runtime.api.quantity import memory_bytes
from kubevirt_runtime.api.volumes import is_hotpluggable

from . import container_disks
from .converter import ConversionError, DiskSource

QEMU_IMG = "qemu-img"
CONFIG_LABEL = "cfgdata"
_CONFIG_SOURCES = {"configMap": podpaths.CONFIG_MAPS, "secret": podpaths.SECRETS,
                   "downwardAPI": podpaths.DOWNWARD_API}


def _iso_tool() -> list[str]:
    for tool in ("genisoimage", "mkisofs"):
        if shutil.which(tool):
            return [tool]
    if shutil.which("xorriso"):
        return ["xorriso", "-as", "mkisofs"]
    raise ConversionError("spec.volumes: no ISO writer (genisoimage or xorriso) in the launcher image")


def _write_iso(iso: Path, label: str, stage: Path) -> Path:
    """An ISO9660 (Joliet, Rock Ridge) image of `stage`'s files, symlinks followed (kubelet's volumes are
    symlinks into a hidden ..data directory, which is left out)."""
    entries = sorted(p.name for p in stage.iterdir() if not p.name.startswith(".."))
    staging = iso.with_suffix(".staging")
    subprocess.run(_iso_tool() + ["-quiet", "-output", str(staging), "-follow-links", "-volid", label, "-joliet",
                                  "-rock", "-graft-points"] + [f"{e}={stage / e}" for e in entries],
                   check=True, capture_output=True)
    staging.rename(iso)
    return iso


def supports_direct_io(path: Path) -> bool:
    """Whether the file system under `path` (a file, or a directory to probe in) takes O_DIRECT."""
    probe = path if path.is_file() else path / ".direct-io-probe"
    try:
        fd = os.open(probe, os.O_RDONLY | os.O_DIRECT | (0 if path.is_file() else os.O_CREAT), 0o600)
    except OSError:
        return False
    os.close(fd)
    if probe != path:
        probe.unlink(missing_ok=True)
    return True


def image_format(path: Path) -> str:
    out = subprocess.run([QEMU_IMG, "info", "--output=json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out).get("format", "raw")


def _image_root(volume_name: str, container_disk_dir: Path, field: str) -> Path:
    try:
        return container_disks.root_of(volume_name, container_disk_dir)
    except LookupError as exc:
        raise ConversionError(f"{field}: {exc}") from None


def _in_image(root: Path, wanted: str) -> Path | None:
    """`wanted` (a path in the image) under `root`; also by its file name alone (a local copy is flat)."""
    for candidate in (root / wanted.strip("/"), root / Path(wanted).name):
        if candidate.is_file():
            return candidate
    return None


def _container_disk_file(root: Path, volume: dict) -> Path:
    field = f"spec.volumes[{volume['name']}].containerDisk"
    wanted = (volume["containerDisk"].get("path") or "").strip("/")
    if wanted:
        found = _in_image(root, wanted)
        if found is None:
            raise ConversionError(f"{field}.path: /{wanted} not found in the image")
        return found
    directory = root / "disk" if (root / "disk").is_dir() else root
    files = sorted(p for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []
    if len(files) != 1:
        raise ConversionError(f"{field}: expected one disk file in the image's /disk, found {len(files)}")
    return files[0]


def _secret_value(directory: Path, keys: tuple[str, ...], what: str) -> bytes:
    for key in keys:
        if (directory / key).is_file():
            return (directory / key).read_bytes()
    raise ConversionError(f"{what}: the Secret has none of the keys {', '.join(keys)}")


def _cloud_init_data(volume: dict, kind: str, private_dir: Path) -> tuple[bytes, bytes | None]:
    source, name = volume[kind], volume["name"]
    where = private_dir / podpaths.CLOUD_INIT / name

    def pick(text_key, b64_key, secret_key, sub, secret_keys):
        if source.get(text_key) is not None:
            return source[text_key].encode()
        if source.get(b64_key) is not None:
            return base64.b64decode(source[b64_key])
        if source.get(secret_key):
            return _secret_value(where / sub, secret_keys, f"spec.volumes[{name}].{kind}.{secret_key}")
        return None

    user = pick("userData", "userDataBase64", "secretRef", "user", ("userdata", "userData"))
    network = pick("networkData", "networkDataBase64", "networkDataSecretRef", "network",
                   ("networkdata", "networkData"))
    return user or b"", network


def _cloud_init_iso(volume: dict, kind: str, vmi: dict, out_dir: Path, private_dir: Path) -> Path:
    user, network = _cloud_init_data(volume, kind, private_dir)
    meta = vmi.get("metadata", {})
    instance_id = meta.get("uid") or meta.get("name")
    stage = out_dir / f"{volume['name']}.d"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    if kind == "cloudInitNoCloud":
        label = "cidata"
        (stage / "user-data").write_bytes(user)
        (stage / "meta-data").write_text(f"instance-id: {instance_id}\nlocal-hostname: {meta.get('name')}\n")
        if network is not None:
            (stage / "network-config").write_bytes(network)
    else:
        label = "config-2"
        latest = stage / "openstack" / "latest"
        latest.mkdir(parents=True)
        (latest / "meta_data.json").write_text(json.dumps({
            "uuid": instance_id, "instance_id": instance_id, "name": meta.get("name"),
            "hostname": meta.get("name"), "launch_index": 0, "availability_zone": "", "public_keys": {}}))
        (latest / "user_data").write_bytes(user)
        if network is not None:
            (latest / "network_data.json").write_bytes(network)
    iso = _write_iso(out_dir / f"{volume['name']}.iso", label, stage)
    shutil.rmtree(stage, ignore_errors=True)
    return iso


def _host_disk(volume: dict, private_dir: Path) -> DiskSource:
    disk, name = volume["hostDisk"], volume["name"]
    path = private_dir / podpaths.HOST_DISKS / name / Path(disk["path"]).name
    if not path.exists():
        if disk.get("type") != "DiskOrCreate":
            raise ConversionError(f"spec.volumes[{name}].hostDisk.path: {disk['path']} does not exist on the node")
        with open(path, "wb") as f:
            f.truncate(memory_bytes(disk["capacity"]))
    return DiskSource(str(path), "raw", direct_io=supports_direct_io(path))


def prepare_volumes(vmi: dict, private_dir: Path, container_disk_dir: Path) -> dict:
    """Creates what each volume needs; returns {volume name: DiskSource} for the converter."""
    out: dict[str, DiskSource] = {}
    work = private_dir / "disks"
    work.mkdir(parents=True, exist_ok=True)
    work_direct = supports_direct_io(work)
    for volume in vmi.get("spec", {}).get("volumes") or []:
        name = volume.get("name")
        if is_hotpluggable(volume):
            continue
        if volume.get("containerDisk") is not None:
            root = _image_root(name, container_disk_dir, f"spec.volumes[{name}].containerDisk")
            base = _container_disk_file(root, volume)
            fmt = image_format(base)
            overlay = work / f"{name}.qcow2"
            if not overlay.exists():
                # abspath, not resolve(): /proc/<pid>/root must stay in the path for the kernel to follow
                subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", fmt, "-b", os.path.abspath(base),
                                str(overlay)], check=True, capture_output=True)
            out[name] = DiskSource(str(overlay), "qcow2", direct_io=work_direct and supports_direct_io(base))
        elif volume.get("cloudInitNoCloud") is not None or volume.get("cloudInitConfigDrive") is not None:
            kind = "cloudInitNoCloud" if volume.get("cloudInitNoCloud") is not None else "cloudInitConfigDrive"
            out[name] = DiskSource(str(_cloud_init_iso(volume, kind, vmi, work, private_dir)), "raw", readonly=True,
                                   direct_io=work_direct)
        elif volume.get("emptyDisk") is not None:
            path = work / f"{name}.qcow2"
            if not path.exists():
                size = memory_bytes(volume["emptyDisk"]["capacity"])
                subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", str(path), str(size)],
                               check=True, capture_output=True)
            out[name] = DiskSource(str(path), "qcow2", direct_io=work_direct)
        elif volume.get("persistentVolumeClaim") is not None or volume.get("dataVolume") is not None:
            readonly = bool((volume.get("persistentVolumeClaim") or {}).get("readOnly"))
            path = private_dir / podpaths.PVC_DISKS / name / "disk.img"
            block = Path("/dev") / name
            if path.exists():
                out[name] = DiskSource(str(path), image_format(path), readonly=readonly,
                                       direct_io=supports_direct_io(path))
            elif block.exists() and block.is_block_device():
                out[name] = DiskSource(str(block), "raw", block=True, readonly=readonly, direct_io=True)
            else:
                kind = "persistentVolumeClaim" if volume.get("persistentVolumeClaim") is not None else "dataVolume"
                raise ConversionError(f"spec.volumes[{name}].{kind}: {path} is not mounted")
        elif volume.get("hostDisk") is not None:
            out[name] = _host_disk(volume, private_dir)
        elif any(volume.get(kind) is not None for kind in _CONFIG_SOURCES) or volume.get("serviceAccount") is not None:
            kind = next((k for k in _CONFIG_SOURCES if volume.get(k) is not None), "serviceAccount")
            source_dir = private_dir / (podpaths.SERVICE_ACCOUNT if kind == "serviceAccount"
                                        else f"{_CONFIG_SOURCES[kind]}/{name}")
            if not source_dir.is_dir():
                raise ConversionError(f"spec.volumes[{name}].{kind}: {source_dir} is not mounted")
            label = (volume[kind] or {}).get("volumeLabel") or CONFIG_LABEL
            iso = _write_iso(work / f"{name}.iso", label, source_dir)
            out[name] = DiskSource(str(iso), "raw", readonly=True, direct_io=work_direct)
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise ConversionError(f"spec.volumes[{name}]: unsupported volume source {kinds}")
    return out


def kernel_boot_paths(vmi: dict, container_disk_dir: Path) -> tuple[str | None, str | None]:
    kernel_boot = vmi.get("spec", {}).get("domain", {}).get("firmware", {}).get("kernelBoot") or {}
    container = kernel_boot.get("container") or {}
    if not container.get("kernelPath") and not container.get("initrdPath"):
        return None, None
    field = "spec.domain.firmware.kernelBoot.container"
    root = _image_root(podpaths.KERNEL_BOOT_DIR, container_disk_dir, field)
    found = []
    for key in ("kernelPath", "initrdPath"):
        wanted = container.get(key)
        if not wanted:
            found.append(None)
            continue
        path = _in_image(root, wanted)
        if path is None:
            raise ConversionError(f"{field}.{key}: {wanted} not found in the image")
        found.append(os.path.abspath(path))
    return found[0], found[1]


def nvram_path(private_dir: Path) -> str:
    d = private_dir / "nvram"
    d.mkdir(parents=True, exist_ok=True)
    return str(d / "VARS.fd")


def cleanup(private_dir: Path) -> None:
    shutil.rmtree(private_dir / "disks", ignore_errors=True)
    if os.path.isdir(private_dir / "nvram"):
        shutil.rmtree(private_dir / "nvram", ignore_errors=True)
