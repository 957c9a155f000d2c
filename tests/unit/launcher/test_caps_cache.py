"""The pre-warmed QEMU capability cache: the variant matching /dev/kvm, re-stamped to this container's files."""
import os

from kubevirt_runtime.launcher import caps_cache, libvirtd

XML = """<qemuCaps>
  <emulator>{emulator}</emulator>
  <qemuctime>1700000001</qemuctime>
  <qemumoddirmtime>1700000002</qemumoddirmtime>
  <selfctime>1700000003</selfctime>
  <selfvers>9000000</selfvers>
  <flag name='kvm'/>
</qemuCaps>
"""


def test_restamp_replaces_only_the_given_tags():
    xml = XML.format(emulator="/usr/bin/qemu-system-x86_64")
    out = caps_cache.restamp(xml, {"qemuctime": 5, "selfctime": 7, "nosuchtag": 9})
    assert "<qemuctime>5</qemuctime>" in out and "<selfctime>7</selfctime>" in out
    assert "<qemumoddirmtime>1700000002</qemumoddirmtime>" in out and "<selfvers>9000000</selfvers>" in out


def test_install_picks_the_variant_and_stamps_local_file_times(tmp_path, monkeypatch):
    emulator = tmp_path / "qemu-system-x86_64"
    emulator.write_bytes(b"")
    daemon, driver_dir = tmp_path / "libvirtd", tmp_path / "drivers"
    daemon.write_bytes(b"")
    driver_dir.mkdir()
    (driver_dir / "libvirt_driver_qemu.so").write_bytes(b"")
    monkeypatch.setattr(libvirtd, "LIBVIRTD", str(daemon))
    monkeypatch.setattr(libvirtd, "DRIVER_DIR", str(driver_dir))
    monkeypatch.setattr(caps_cache, "QEMU_MODULE_DIR", tmp_path / "nomodules")
    variants, cache = tmp_path / "variants", tmp_path / "cache"
    (variants / "tcg").mkdir(parents=True)
    (variants / "tcg" / "abc.xml").write_text(XML.format(emulator=emulator))
    assert caps_cache.install(variants, cache, kvm=True) is None  # the image has no kvm variant
    assert not cache.exists()
    assert caps_cache.install(variants, cache, kvm=False) == "tcg"
    out = (cache / "abc.xml").read_text()
    assert f"<qemuctime>{int(os.stat(emulator).st_ctime)}</qemuctime>" in out
    assert f"<selfctime>{int(os.stat(daemon).st_ctime)}</selfctime>" in out
    assert "<qemumoddirmtime>1700000002</qemumoddirmtime>" in out  # no module dir here: left as it was


def test_embedded_driver_stamps_only_its_module(tmp_path, monkeypatch):
    """libvirt embedded in the launcher counts the QEMU driver module it loaded, not a libvirtd it never ran."""
    emulator, driver_dir = tmp_path / "qemu-system-x86_64", tmp_path / "drivers"
    emulator.write_bytes(b"")
    driver_dir.mkdir()
    (driver_dir / "libvirt_driver_qemu.so").write_bytes(b"")
    monkeypatch.setattr(libvirtd, "LIBVIRTD", str(tmp_path / "no-libvirtd"))
    monkeypatch.setattr(libvirtd, "DRIVER_DIR", str(driver_dir))
    monkeypatch.setattr(caps_cache, "QEMU_MODULE_DIR", tmp_path / "nomodules")
    (tmp_path / "variants" / "tcg").mkdir(parents=True)
    (tmp_path / "variants" / "tcg" / "abc.xml").write_text(XML.format(emulator=emulator))
    assert caps_cache.install(tmp_path / "variants", tmp_path / "cache", kvm=False, embedded=True) == "tcg"
    stamp = int(os.stat(driver_dir / "libvirt_driver_qemu.so").st_ctime)
    assert f"<selfctime>{stamp}</selfctime>" in (tmp_path / "cache" / "abc.xml").read_text()
