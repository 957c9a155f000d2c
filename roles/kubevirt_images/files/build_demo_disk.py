"""Builds the demo containerDisk: a small bootable raw disk, cirros-like, from Debian packages.

Layout: an MBR (syslinux's mbr.bin) with one bootable FAT partition at 1 MiB holding syslinux
(installed with `syslinux --install` on the partition image: no loop devices, no mounts),
Debian's kernel (linux-image-amd64, unpacked from its .deb, never installed) and an initramfs
whose whole userland is busybox-static plus the virtio / storage / isofs modules it loads.

At boot the guest: loads the modules, configures eth0 (DHCP with udhcpc, else the static
masquerade address 10.0.2.2/24 via 10.0.2.1), looks for a NoCloud disk (ISO9660 labelled
`cidata`), sets the hostname from meta-data and runs user-data when it starts with `#!` (its
output on the serial console), serves HTTP on port 80 (busybox httpd: `kubevirt-ops demo`),
prints READY_MARKER and runs a root shell on the console. Debian's qemu-guest-agent runs on the
virtio-serial port org.qemu.guest_agent.0 (the binary and only the shared libraries it needs, found by
reading DT_NEEDED from the ELF files of its package and its dependencies), so KubeVirt's guestosinfo,
userlist and filesystemlist return real data and soft reboot goes through the agent.

Cached under --cache/<key>/demo.img, the key made of this file's content and the versions of the
kernel, busybox-static, syslinux and guest agent packages; prints JSON {disk, key, changed, ...}.
"""
from __future__ import annotations

import argparse
import fcntl
import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

READY_MARKER = "kubevirt-ops demo: login ready"
HTTP_TEXT = "kubevirt-ops demo"
DISK_NAME = "demo.img"
# What the guest needs; their dependencies are resolved from the kernel's modules.dep.
WANTED_MODULES = [
    "virtio_pci", "virtio_blk", "virtio_net", "virtio_scsi", "virtio_rng", "virtio_console",
    "ahci", "ata_piix", "sd_mod", "sr_mod", "isofs", "e1000", "e1000e", "af_packet",
]
KERNEL_ARGS = "console=tty0 console=ttyS0,115200n8 quiet loglevel=3 panic=-1 mitigations=off tsc=unstable"
MIN_PARTITION_MIB = 24
SYSLINUX_MBR = "/usr/lib/syslinux/mbr/mbr.bin"
# FAT timestamps (mtools and syslinux honour SOURCE_DATE_EPOCH; copied files keep their mtime): fixed, so
# the same inputs give a byte-identical disk and an unchanged image digest.
EPOCH = 946684800  # 2000-01-01, FAT cannot go before 1980

INIT = r"""#!/bin/sh
# kubevirt-ops demo guest: the whole userland is busybox.
export PATH=/sbin:/bin HOME=/root
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp /mnt/cidata /root
: >/run/utmp
mount -t devpts devpts /dev/pts
log() { echo "kubevirt-ops demo: $*"; }
while read -r m; do insmod "/lib/modules/$m.ko" 2>/dev/null; done </lib/modules/load-order
hostname demo
ip link set lo up

# network: DHCP from the launcher (masquerade hands out 10.0.2.2, bridge the pod's address), else static
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  if udhcpc -i eth0 -n -q -t 4 -T 1 -s /etc/udhcpc.script >/tmp/udhcpc.log 2>&1; then
    log "eth0 configured by DHCP: $(ip -o -4 addr show eth0 | awk '{print $4}')"
  else
    ip addr add 10.0.2.2/24 dev eth0
    ip route add default via 10.0.2.1
    echo "nameserver 10.0.2.3" >/etc/resolv.conf
    log "eth0 configured statically: 10.0.2.2/24 via 10.0.2.1"
  fi
fi

# the items of a top-level `ssh_authorized_keys:` block list in a cloud-config file, unquoted
authorized_keys() {
  awk '/^[^ \t#-]/ { keys = ($0 ~ /^ssh_authorized_keys:[ \t]*$/); next }
       keys && /^[ \t]*- / { sub(/^[ \t]*- */, ""); sub(/[ \t\r]+$/, "");
                               if ($0 ~ /^".*"$/ || $0 ~ /^\047.*\047$/) $0 = substr($0, 2, length($0) - 2);
                               if ($0 != "") print }' "$1"
}

# cloud-init NoCloud: an ISO9660 volume labelled cidata (devices may take a moment to appear)
label() { dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' \000' | tr 'A-Z' 'a-z'; }
found=
for try in 1 2 3 4 5 6 7 8 9 10; do
  for dev in /dev/sr* /dev/vd* /dev/sd* /dev/hd*; do
    [ -b "$dev" ] || continue
    if [ "$(label "$dev")" = cidata ] && mount -t iso9660 -o ro "$dev" /mnt/cidata 2>/dev/null; then
      found=$dev; break 2
    fi
  done
  sleep 0.5
done
if [ -n "$found" ]; then
  log "NoCloud data on $found"
  name=$(sed -n 's/^ *local-hostname: *//p' /mnt/cidata/meta-data 2>/dev/null | head -n1 | tr -d '"'"'"' \r')
  [ -n "$name" ] && hostname "$name"
  if [ "$(head -c 2 /mnt/cidata/user-data 2>/dev/null)" = "#!" ]; then
    cp /mnt/cidata/user-data /run/user-data && chmod 0700 /run/user-data
    log "running user-data"
    /run/user-data
    log "user-data exited $?"
  elif [ "$(head -n 1 /mnt/cidata/user-data 2>/dev/null | tr -d ' \r')" = "#cloud-config" ]; then
    # of cloud-config, the top-level ssh_authorized_keys list: root's keys for the SSH server
    mkdir -p /root/.ssh && chmod 0700 /root/.ssh
    authorized_keys /mnt/cidata/user-data >/root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
    log "cloud-config: $(grep -c . /root/.ssh/authorized_keys) SSH key(s) authorized for root"
  elif [ -s /mnt/cidata/user-data ]; then
    log "user-data is neither a script (#!) nor #cloud-config; ignored"
  fi
else
  log "no NoCloud (cidata) disk"
fi

httpd -p 80 -h /www && log "httpd listening on port 80"
# SSH: Debian's dropbear, host keys made on first use (-R), public keys only (-s), its log off the console
/usr/sbin/dropbear -R -s -E -p 22 2>>/run/dropbear.log && log "dropbear (SSH) listening on port 22"

# QEMU guest agent on its virtio-serial port (the port's name is in sysfs; no udev for the symlink)
for port in /sys/class/virtio-ports/*; do
  [ "$(cat "$port/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] || continue
  /usr/sbin/qemu-ga --daemonize --method virtio-serial --path "/dev/${port##*/}" \
    && log "guest agent on /dev/${port##*/}"
done
echo "$(hostname)" >/etc/hostname
log "login ready"
# the display (VNC) gets a login too, and says the guest is up
( while true; do
    setsid sh -c 'exec </dev/tty1 >/dev/tty1 2>&1; clear; echo "kubevirt-ops demo $(hostname): login ready"; exec login -f root'
  done ) &
# a login (not a bare shell) so the console session is in utmp, as the guest agent's user list reads it
while true; do setsid cttyhack login -f root; done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc event script: apply the lease to the interface.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
exit 0
"""

PROFILE = 'export PATH=/sbin:/bin HOME=/root\nPS1="$(hostname):\\w# "\n'

OS_RELEASE = """NAME="kubevirt-ops demo"
PRETTY_NAME="kubevirt-ops demo (busybox)"
ID=kubevirt-ops-demo
VERSION_ID=1
"""

# The guest agent runs /sbin/shutdown for guest-shutdown (soft reboot, graceful stop); busybox has no
# `shutdown`, so this one maps its flags to busybox's poweroff / reboot / halt.
SHUTDOWN = r"""#!/bin/sh
action=poweroff
for arg in "$@"; do
  case "$arg" in -r) action=reboot ;; -H) action=halt ;; -P|-h) ;; esac
done
sync
exec "/bin/$action" -f
"""

GUEST_AGENT_PACKAGE = "qemu-guest-agent"
GUEST_AGENT_BINARY = "usr/sbin/qemu-ga"
SSH_SERVER_PACKAGE = "dropbear-bin"
SSH_SERVER_BINARY = "usr/sbin/dropbear"
# package -> the binary of it the guest runs (each with the libraries its ELF file needs)
USERLAND = {GUEST_AGENT_PACKAGE: GUEST_AGENT_BINARY, SSH_SERVER_PACKAGE: SSH_SERVER_BINARY}
ELF_INTERPRETER = "lib64/ld-linux-x86-64.so.2"
LIB_DIR = "lib/x86_64-linux-gnu"

SYSLINUX_CFG = f"""SERIAL 0 115200
DEFAULT demo
PROMPT 0
TIMEOUT 0
LABEL demo
  LINUX /vmlinuz
  INITRD /initrd.gz
  APPEND {KERNEL_ARGS}
"""


def run(*cmd, cwd=None, stdin=None) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd, input=stdin).stdout.strip()


def candidate_version(package: str) -> str:
    for line in run("apt-cache", "policy", package).splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(f"no candidate version of {package}")


def installed_version(package: str) -> str:
    return run("dpkg-query", "-W", "-f=${Version}", package)


def kernel_package() -> str:
    for line in run("apt-cache", "depends", "linux-image-amd64").splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("cannot resolve linux-image-amd64")


def download(package: str, dest: Path) -> Path:
    """The .deb of package's candidate version, downloaded into dest once."""
    dest.mkdir(parents=True, exist_ok=True)
    version = candidate_version(package).replace(":", "%3a")
    found = glob.glob(str(dest / f"{package}_{version}_*.deb"))
    if found:
        return Path(found[0])
    try:
        run("apt-get", "download", package, cwd=str(dest))
    except subprocess.CalledProcessError:
        run("apt-get", "update", "-qq")
        run("apt-get", "download", package, cwd=str(dest))
    found = glob.glob(str(dest / f"{package}_{version}_*.deb"))
    if not found:
        raise RuntimeError(f"apt-get download {package} left no .deb in {dest}")
    return Path(found[0])


def parse_modules_dep(text: str) -> dict[str, tuple[str, list[str]]]:
    """modules.dep text -> {module name: (path, [dependency names])} (names with dashes as underscores)."""
    deps = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[module_name(path)] = (path, [module_name(d) for d in rest.split()])
    return deps


def modinfo_depends(data: bytes) -> list[str]:
    """The `depends=` of a kernel module's .modinfo (what depmod reads), as module names."""
    at = data.find(b"\0depends=")
    if at < 0:
        return []
    value = data[at + len(b"\0depends="):data.index(b"\0", at + 1)].decode()
    return [d.replace("-", "_") for d in value.split(",") if d]


def module_name(path: str) -> str:
    base = os.path.basename(path)
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base.replace("-", "_")


def load_order(wanted, modules_dep: dict, builtin: set[str]) -> list[str]:
    """Module paths to insmod, dependencies first, each once. Built-in modules need nothing;
    a wanted module the kernel has neither as module nor built in is skipped."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple):
        if name in seen or name in builtin:
            return
        if name in chain:
            raise ValueError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
        if name not in modules_dep:
            return
        path, deps = modules_dep[name]
        for dep in deps:
            visit(dep, chain + (name,))
        seen.add(name)
        order.append(path)

    for name in wanted:
        visit(name.replace("-", "_"), ())
    return order


def cpio_newc(entries) -> bytes:
    """An uncompressed newc archive; entries are (name, mode, data, rdev_major, rdev_minor)."""
    out = io.BytesIO()

    def pad(n):
        out.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (name, mode, data, major, minor) in enumerate(list(entries) + [("TRAILER!!!", 0, b"", 0, 0)], 1):
        raw = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08x}" for v in (
            ino if name != "TRAILER!!!" else 0, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(raw), 0))
        out.write(header.encode() + raw)
        pad(110 + len(raw))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def elf_needed(data: bytes) -> list[str]:
    """The DT_NEEDED sonames of a 64-bit little-endian ELF file (what the dynamic loader will look for)."""
    import struct
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    needed = []
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[link]
        for pos in range(offset, offset + size, entsize or 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                start = strtab[4] + value
                needed.append(data[start:data.index(b"\0", start)].decode())
    return needed


def package_closure(package: str) -> list[str]:
    """The package and what it depends on, recursively (real packages only, no pre-depends)."""
    out = run("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
              "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", package)
    return sorted({line.strip() for line in out.splitlines() if line and not line.startswith((" ", "<"))})


def deb_files(deb: Path) -> dict[str, bytes | str]:
    """path -> content (bytes) or symlink target (str) of a .deb's regular files and symlinks."""
    files = {}
    for tar, m in _deb_members(deb):
        name = m.name.lstrip("./")
        if m.isfile():
            files[name] = tar.extractfile(m).read()
        elif m.issym():
            files[name] = m.linkname
    return files


def resolve_libraries(binary: bytes, files: dict[str, bytes | str]) -> dict[str, bytes]:
    """{LIB_DIR/soname: content} of every library `binary` needs, transitively, looked up in `files` (the
    unpacked packages; symlinks followed)."""
    by_soname = {}
    for path in files:
        if "/" in path and path.rsplit("/", 1)[0] in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"):
            by_soname.setdefault(path.rsplit("/", 1)[1], path)

    def content(path: str, depth=0) -> bytes:
        value = files[path]
        if isinstance(value, str):
            if depth > 8:
                raise RuntimeError(f"symlink loop at {path}")
            target = value.lstrip("/") if value.startswith("/") else f"{path.rsplit('/', 1)[0]}/{value}"
            return content(os.path.normpath(target), depth + 1)
        return value

    libraries, todo = {}, list(elf_needed(binary))
    while todo:
        soname = todo.pop()
        if f"{LIB_DIR}/{soname}" in libraries:
            continue
        if soname not in by_soname:
            raise RuntimeError(f"no package among the binary's dependencies provides {soname}")
        data = content(by_soname[soname])
        libraries[f"{LIB_DIR}/{soname}"] = data
        todo.extend(elf_needed(data))
    return libraries


def userland_entries(debs: Path) -> list[tuple[str, int, bytes, int, int]]:
    """Initramfs entries for the USERLAND binaries (qemu-ga, dropbear): each binary, the libraries they need
    (once), the ELF interpreter, /sbin/shutdown and the files they read (os-release for guest-get-osinfo,
    /var/run for pid files, /etc/dropbear for host keys, /etc/shells for the login shell)."""
    binaries, libraries = {}, {}
    for package, path in USERLAND.items():
        files: dict[str, bytes | str] = {}
        for dependency in package_closure(package):
            files.update(deb_files(download(dependency, debs)))
        binaries[path] = files[path]
        libraries.update(resolve_libraries(files[path], files))
    interpreter = libraries.get(f"{LIB_DIR}/ld-linux-x86-64.so.2")
    if interpreter is None:
        raise RuntimeError("the binaries' libraries do not include ld-linux-x86-64.so.2")
    entries = [(d, 0o040755, b"", 0, 0) for d in ("usr", "usr/sbin", "lib64", LIB_DIR, "var", "etc/dropbear")]
    entries += [(path, 0o100755, data, 0, 0) for path, data in sorted(binaries.items())]
    entries += [(ELF_INTERPRETER, 0o120777, f"/{LIB_DIR}/ld-linux-x86-64.so.2".encode(), 0, 0),
                ("var/run", 0o120777, b"/run", 0, 0),
                ("sbin/shutdown", 0o100755, SHUTDOWN.encode(), 0, 0),
                ("etc/os-release", 0o100644, OS_RELEASE.encode(), 0, 0),
                ("etc/shells", 0o100644, b"/bin/sh\n", 0, 0)]
    entries += [(path, 0o100755, data, 0, 0) for path, data in sorted(libraries.items())]
    return entries


def initramfs(busybox: bytes, modules: list[tuple[str, bytes]], extra=()) -> bytes:
    """The gzip'd initramfs: busybox, /init, the modules (flat, loaded in the given order) and `extra` entries."""
    dirs = ["bin", "sbin", "dev", "etc", "lib", "lib/modules", "mnt", "proc", "root", "run", "sys", "tmp", "www"]
    entries = [(d, 0o040755, b"", 0, 0) for d in dirs]
    entries += [("dev/console", 0o020600, b"", 5, 1),
                ("bin/busybox", 0o100755, busybox, 0, 0),
                ("bin/sh", 0o120777, b"busybox", 0, 0),
                ("init", 0o100755, INIT.encode(), 0, 0),
                ("etc/udhcpc.script", 0o100755, UDHCPC_SCRIPT.encode(), 0, 0),
                ("etc/profile", 0o100644, PROFILE.encode(), 0, 0),
                ("etc/passwd", 0o100644, b"root:x:0:0:root:/root:/bin/sh\n", 0, 0),
                ("etc/group", 0o100644, b"root:x:0:\n", 0, 0),
                ("www/index.html", 0o100644, f"{HTTP_TEXT}\n".encode(), 0, 0)]
    order = []
    for name, data in modules:
        entries.append((f"lib/modules/{name}.ko", 0o100644, data, 0, 0))
        order.append(name)
    entries.append(("lib/modules/load-order", 0o100644, "".join(f"{n}\n" for n in order).encode(), 0, 0))
    entries += list(extra)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(cpio_newc(entries))
    return buf.getvalue()


def mbr_partition_table(start_sector: int, sectors: int, part_type: int = 0x0E) -> bytes:
    """The 66 bytes at offset 446 of an MBR: one bootable partition (LBA only), then the signature."""
    def chs(_lba):
        return b"\xfe\xff\xff"  # beyond CHS range: firmware and syslinux use the LBA fields
    entry = bytes([0x80]) + chs(start_sector) + bytes([part_type]) + chs(start_sector + sectors - 1)
    entry += start_sector.to_bytes(4, "little") + sectors.to_bytes(4, "little")
    return entry + b"\0" * 48 + b"\x55\xaa"


def fat_image(path: Path, size_mib: int, files: dict[str, Path]) -> None:
    """A FAT filesystem image holding files, made bootable by syslinux (all on a plain file)."""
    sectors = size_mib * 2048
    with open(path, "wb") as f:
        f.truncate(sectors * 512)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", SOURCE_DATE_EPOCH=str(EPOCH))
    for src in files.values():
        os.utime(src, (EPOCH, EPOCH))
    subprocess.run(["mformat", "-i", str(path), "-T", str(sectors), "-h", "64", "-s", "32", "-H", "2048",
                    "-v", "DEMO", "-N", "6b766f70", "::"], check=True, capture_output=True, env=env)
    for name, src in files.items():
        subprocess.run(["mcopy", "-m", "-i", str(path), str(src), f"::/{name}"], check=True, capture_output=True,
                       env=env)
    subprocess.run(["syslinux", "--install", str(path)], check=True, capture_output=True, env=env)


def assemble_disk(out: Path, fat: Path, mbr_code: bytes) -> None:
    start = 2048
    sectors = fat.stat().st_size // 512
    with open(out, "wb") as f:
        f.write(mbr_code[:440] + b"\0" * 6 + mbr_partition_table(start, sectors))
        f.write(b"\0" * (start * 512 - 512))
        with open(fat, "rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)


def _deb_members(deb: Path):
    """Streams the data tar of a .deb (via dpkg-deb --fsys-tarfile)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                yield tar, member
    finally:
        proc.stdout.close()
        if proc.wait() != 0:
            raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb} failed")


def kernel_parts(deb: Path, wanted) -> tuple[bytes, list[tuple[str, bytes]]]:
    """vmlinuz and the wanted modules (with dependencies, in load order) from a linux-image .deb."""
    vmlinuz = builtin_text = None
    modules = {}  # the .deb has no modules.dep (depmod makes it at install): read each module's depends=
    for tar, m in _deb_members(deb):
        name = m.name.lstrip("./")
        if name.startswith("boot/vmlinuz-") and m.isfile():
            vmlinuz = tar.extractfile(m).read()
        elif name.startswith("lib/modules/") and name.endswith("/modules.builtin"):
            builtin_text = tar.extractfile(m).read().decode()
        elif name.startswith("lib/modules/") and ".ko" in name and m.isfile() and name.count("/") >= 3:
            modules[module_name(name)] = (name.split("/", 3)[3], modinfo_depends(tar.extractfile(m).read()))
    if vmlinuz is None or not modules:
        raise RuntimeError(f"{deb}: no vmlinuz or no kernel modules")
    builtin = {module_name(p) for p in (builtin_text or "").split()}
    order = load_order(wanted, modules, builtin)
    wanted_paths = set(order)
    found = {}
    for tar, m in _deb_members(deb):
        name = m.name.lstrip("./")
        rel = name.split("/", 3)[3] if name.startswith("lib/modules/") and name.count("/") >= 3 else None
        if rel in wanted_paths and m.isfile():
            found[rel] = tar.extractfile(m).read()
    missing = wanted_paths - set(found)
    if missing:
        raise RuntimeError(f"{deb}: modules listed in modules.dep but absent: {sorted(missing)}")
    if any(p.endswith((".xz", ".zst", ".gz")) for p in order):
        raise RuntimeError("compressed kernel modules are not supported (busybox insmod)")
    return vmlinuz, [(module_name(p), found[p]) for p in order]


def inputs_key() -> tuple[str, dict]:
    kpkg = kernel_package()
    inputs = {
        "builder": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "kernel": f"{kpkg}={candidate_version(kpkg)}",
        "busybox-static": candidate_version("busybox-static"),
        "syslinux": installed_version("syslinux"),
        "syslinux-common": installed_version("syslinux-common"),
        "mtools": installed_version("mtools"),
        "userland": {p: candidate_version(p) for package in sorted(USERLAND) for p in package_closure(package)},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16], inputs


def build(cache: Path) -> dict:
    key, inputs = inputs_key()
    target = cache / key
    disk = target / DISK_NAME
    result = {"disk": str(disk), "key": key, "inputs": inputs, "marker": READY_MARKER, "changed": False}
    if disk.exists():
        return result
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if disk.exists():
            return result
        with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
            tmp = Path(tmp)
            debs = cache / "debs"
            kdeb = download(kernel_package(), debs)
            bdeb = download("busybox-static", debs)
            busybox = None
            for tar, m in _deb_members(bdeb):
                if m.name.lstrip("./") == "bin/busybox":
                    busybox = tar.extractfile(m).read()
            if busybox is None:
                raise RuntimeError(f"{bdeb}: no bin/busybox")
            vmlinuz, modules = kernel_parts(kdeb, WANTED_MODULES)
            (tmp / "vmlinuz").write_bytes(vmlinuz)
            (tmp / "initrd.gz").write_bytes(initramfs(busybox, modules, userland_entries(debs)))
            (tmp / "syslinux.cfg").write_text(SYSLINUX_CFG)
            content = sum((tmp / n).stat().st_size for n in ("vmlinuz", "initrd.gz")) >> 20
            size = max(MIN_PARTITION_MIB, content + 8)
            fat_image(tmp / "fat.img", size, {n: tmp / n for n in ("vmlinuz", "initrd.gz", "syslinux.cfg")})
            stage = tmp / "out"
            stage.mkdir()
            assemble_disk(stage / DISK_NAME, tmp / "fat.img", Path(SYSLINUX_MBR).read_bytes())
            (stage / "inputs.json").write_text(json.dumps(inputs, indent=1, sort_keys=True) + "\n")
            shutil.copy(tmp / "vmlinuz", stage / "vmlinuz")
            shutil.copy(tmp / "initrd.gz", stage / "initrd.gz")
            if target.exists():
                shutil.rmtree(target)
            stage.rename(target)
        for old in cache.iterdir():  # keep only the current build
            if old.is_dir() and old.name not in (key, "debs") and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
    result["changed"] = True
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_cache = Path(os.environ.get("KUBEVIRT_OPS_CACHE", Path.home() / ".cache" / "kubevirt-ops")) / "images" / "demo-disk"
    p.add_argument("--cache", type=Path, default=default_cache)
    args = p.parse_args(argv)
    print(json.dumps(build(args.cache)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
