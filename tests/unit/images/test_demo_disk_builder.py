"""The pure parts of the demo-disk builder (roles/kubevirt_images/files/build_demo_disk.py)."""
import gzip
import importlib.util

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "build_demo_disk", REPO / "roles" / "kubevirt_images" / "files" / "build_demo_disk.py")
bdd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bdd)


def test_modinfo_depends_reads_the_modinfo_string():
    data = b"\x7fELF...\0license=GPL\0depends=virtio,virtio_ring,net-failover\0intree=Y\0name=virtio_net\0"
    assert bdd.modinfo_depends(data) == ["virtio", "virtio_ring", "net_failover"]
    assert bdd.modinfo_depends(b"\0depends=\0name=x\0") == []
    assert bdd.modinfo_depends(b"\0name=x\0") == []


def test_load_order_puts_dependencies_first_once_and_skips_builtins():
    modules = {
        "virtio_net": ("kernel/drivers/net/virtio_net.ko", ["net_failover", "virtio_ring"]),
        "net_failover": ("kernel/drivers/net/net_failover.ko", ["failover"]),
        "failover": ("kernel/net/core/failover.ko", []),
        "virtio_ring": ("kernel/drivers/virtio/virtio_ring.ko", []),
        "virtio_blk": ("kernel/drivers/block/virtio_blk.ko", ["virtio_ring"]),
    }
    order = bdd.load_order(["virtio-net", "virtio_blk", "af_packet", "isofs"], modules, builtin={"isofs"})
    assert order == ["kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko",
                     "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/net/virtio_net.ko",
                     "kernel/drivers/block/virtio_blk.ko"]


def test_load_order_rejects_cycles():
    with pytest.raises(ValueError, match="cycle"):
        bdd.load_order(["a"], {"a": ("a.ko", ["b"]), "b": ("b.ko", ["a"])}, builtin=set())


def test_parse_modules_dep():
    deps = bdd.parse_modules_dep("kernel/a/virtio_net.ko: kernel/b/net_failover.ko kernel/c/failover.ko\n"
                                 "kernel/c/failover.ko:\n")
    assert deps == {"virtio_net": ("kernel/a/virtio_net.ko", ["net_failover", "failover"]),
                    "failover": ("kernel/c/failover.ko", [])}


def test_mbr_partition_table_is_one_bootable_lba_partition():
    table = bdd.mbr_partition_table(2048, 49152)
    assert len(table) == 66 and table[-2:] == b"\x55\xaa"
    assert table[0] == 0x80 and table[4] == 0x0E
    assert int.from_bytes(table[8:12], "little") == 2048 and int.from_bytes(table[12:16], "little") == 49152
    assert table[16:64] == b"\0" * 48


def test_initramfs_holds_busybox_init_and_modules_in_load_order():
    image = gzip.decompress(bdd.initramfs(b"BUSYBOX", [("virtio_ring", b"A"), ("virtio_blk", b"B")]))
    assert image.startswith(b"070701") and b"TRAILER!!!" in image
    for name in (b"init\0", b"bin/busybox\0", b"dev/console\0", b"etc/udhcpc.script\0", b"www/index.html\0",
                 b"lib/modules/virtio_ring.ko\0", b"lib/modules/load-order\0"):
        assert name in image
    assert b"virtio_ring\nvirtio_blk\n" in image
    # reproducible: same inputs, same bytes (the layer digest only changes with its inputs)
    assert bdd.initramfs(b"BUSYBOX", []) == bdd.initramfs(b"BUSYBOX", [])


def test_init_script_does_what_the_demo_promises():
    assert bdd.READY_MARKER == "kubevirt-ops demo: login ready"
    init = bdd.INIT
    assert 'log "login ready"' in init and "log() { echo \"kubevirt-ops demo: $*\"; }" in init
    assert "udhcpc -i eth0" in init and "10.0.2.2/24" in init and "via 10.0.2.1" in init
    assert "= cidata" in init and "mount -t iso9660" in init
    assert '"#!"' in init and "/run/user-data" in init
    assert "httpd -p 80 -h /www" in init
    assert init.index("udhcpc") < init.index("/run/user-data") < init.index('log "login ready"')
    assert "console=ttyS0" in bdd.SYSLINUX_CFG and "INITRD /initrd.gz" in bdd.SYSLINUX_CFG


def test_elf_needed_reads_the_dynamic_section_of_a_real_binary():
    import sys
    from pathlib import Path
    needed = bdd.elf_needed(Path(sys.executable).resolve().read_bytes())
    assert "libc.so.6" in needed
    with pytest.raises(ValueError):
        bdd.elf_needed(b"#!/bin/sh\n")


def test_resolve_libraries_follows_needed_and_symlinks(monkeypatch):
    fake_needed = {b"BIN": ["liba.so.1"], b"A": ["libc.so.6"], b"C": ["ld-linux-x86-64.so.2"], b"LD": []}
    monkeypatch.setattr(bdd, "elf_needed", lambda data: fake_needed[data])
    files = {"usr/lib/x86_64-linux-gnu/liba.so.1": "liba.so.1.2.3",
             "usr/lib/x86_64-linux-gnu/liba.so.1.2.3": b"A",
             "lib/x86_64-linux-gnu/libc.so.6": b"C",
             "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": b"LD",
             "usr/share/doc/liba/README": b"doc"}
    assert bdd.resolve_libraries(b"BIN", files) == {"lib/x86_64-linux-gnu/liba.so.1": b"A",
                                                     "lib/x86_64-linux-gnu/libc.so.6": b"C",
                                                     "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": b"LD"}
    with pytest.raises(RuntimeError, match="provides libmissing"):
        fake_needed[b"BIN"] = ["libmissing.so.0"]
        bdd.resolve_libraries(b"BIN", files)



def _init_function(name):
    start = bdd.INIT.index(f"{name}() {{")
    return bdd.INIT[start:bdd.INIT.index("\n}\n", start) + 3]


@pytest.mark.parametrize("shell", [["sh"], ["busybox", "sh"]])
def test_authorized_keys_come_from_the_top_level_cloud_config_list(tmp_path, shell):
    import shutil
    import subprocess
    if not shutil.which(shell[0]):
        pytest.fail(f"{shell[0]} is needed to run the guest's shell function (busybox is in node packages)")
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nhostname: x\nssh_authorized_keys:\n  - ssh-ed25519 AAAA one@example\n"
                         "  - \"ssh-rsa BBBB two\"\n  - 'ecdsa-sha2-nistp256 CCCC three'\nusers:\n  - name: bob\n"
                         "    ssh_authorized_keys:\n      - ssh-ed25519 NOTROOT bob\nruncmd:\n  - echo hi\n")
    out = subprocess.run([*shell, "-c", _init_function("authorized_keys") + f"authorized_keys {user_data}\n"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["ssh-ed25519 AAAA one@example", "ssh-rsa BBBB two", "ecdsa-sha2-nistp256 CCCC three"]


def test_init_starts_dropbear_with_root_keys_before_the_marker():
    init = bdd.INIT
    assert "/usr/sbin/dropbear -R -s -E -p 22" in init
    assert init.index("authorized_keys /mnt/cidata/user-data") < init.index("/usr/sbin/dropbear")
    assert init.index("/usr/sbin/dropbear") < init.index('log "login ready"')
    assert bdd.USERLAND[bdd.SSH_SERVER_PACKAGE] == "usr/sbin/dropbear"
