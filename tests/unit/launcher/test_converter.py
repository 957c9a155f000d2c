"""VMI -> domain XML: table-driven checks of each part of the conversion."""
import copy
import dataclasses
import xml.etree.ElementTree as ET

import pytest

from kubevirt_runtime.api.defaults import default_vmi
from kubevirt_runtime.api.network import interface_mac, pod_interface
from kubevirt_runtime.launcher.converter import (
    KUBEVIRT_NS,
    ConversionError,
    ConverterContext,
    DiskSource,
    TapInterface,
    convert,
)


def vmi(**spec_overrides):
    base = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": "testvmi", "namespace": "default", "uid": "1234-5678"},
        "spec": {
            "domain": {"resources": {"requests": {"memory": "128Mi"}}, "devices": {}},
            "terminationGracePeriodSeconds": 17,
        },
    }
    base["spec"].update(spec_overrides)
    return default_vmi(base)


def with_domain(obj, **domain):
    obj = copy.deepcopy(obj)
    for key, value in domain.items():
        obj["spec"]["domain"][key] = value
    return obj


CTX = ConverterContext()


def wired(ctx, obj):
    """`ctx` with the tap the launcher found for the VMI's pod-network interface (unless it names one)."""
    found = pod_interface(obj)
    if ctx.interfaces or found is None:
        return ctx
    iface = found[1]
    return dataclasses.replace(ctx, interfaces={iface["name"]: TapInterface("tap0", interface_mac(obj, iface), 1500)})


def xml(obj, ctx=CTX):
    return ET.fromstring(convert(obj, wired(ctx, obj)))


# ------------------------------------------------------------------ identity, memory, cpu

def test_identity_and_metadata():
    root = xml(vmi())
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "default_testvmi"
    assert root.find(f"metadata/{{{KUBEVIRT_NS}}}kubevirt/{{{KUBEVIRT_NS}}}uid").text == "1234-5678"
    assert root.find(f"metadata/{{{KUBEVIRT_NS}}}kubevirt/{{{KUBEVIRT_NS}}}graceperiod").text == "17"
    assert root.findtext("on_poweroff") == "destroy"


def test_uuid_from_firmware_or_stable():
    fixed = with_domain(vmi(), firmware={"uuid": "5d307ca9-b3ef-428c-8861-06e72d69f223"})
    assert xml(fixed).findtext("uuid") == "5d307ca9-b3ef-428c-8861-06e72d69f223"
    assert xml(vmi()).findtext("uuid") == xml(vmi()).findtext("uuid")


@pytest.mark.parametrize("memory_spec,kib", [
    ({"resources": {"requests": {"memory": "64Mi"}}}, 65536),
    ({"memory": {"guest": "1Gi"}, "resources": {"requests": {"memory": "1100Mi"}}}, 1048576),
    ({"resources": {"requests": {"memory": "256M"}}}, 250000),
])
def test_memory(memory_spec, kib):
    obj = vmi()
    obj["spec"]["domain"].pop("memory", None)
    obj["spec"]["domain"].update(memory_spec)
    root = xml(obj)
    assert root.find("memory").get("unit") == "KiB"
    assert int(root.findtext("memory")) == kib
    assert int(root.findtext("currentMemory")) == kib


def test_memory_required():
    obj = vmi()
    obj["spec"]["domain"].pop("memory", None)
    obj["spec"]["domain"]["resources"] = {}
    with pytest.raises(ConversionError, match="memory"):
        convert(obj, CTX)


@pytest.mark.parametrize("cpu,vcpus,topology", [
    ({}, 1, ("1", "1", "1")),
    ({"cores": 2}, 2, ("1", "2", "1")),
    ({"sockets": 2, "cores": 2, "threads": 2}, 8, ("2", "2", "2")),
])
def test_cpu_topology(cpu, vcpus, topology):
    root = xml(with_domain(vmi(), cpu=cpu))
    assert root.findtext("vcpu") == str(vcpus)
    top = root.find("cpu/topology")
    assert (top.get("sockets"), top.get("cores"), top.get("threads")) == topology


@pytest.mark.parametrize("accel,model,mode,named", [
    ("kvm", None, "host-model", None),
    ("kvm", "host-passthrough", "host-passthrough", None),
    ("kvm", "Skylake-Server", "custom", "Skylake-Server"),
    ("tcg", None, None, None),
    ("tcg", "host-model", None, None),
    ("tcg", "Westmere", "custom", "Westmere"),
])
def test_cpu_model(accel, model, mode, named):
    cpu = {"model": model} if model else {}
    root = xml(with_domain(vmi(), cpu=cpu), ConverterContext(accel=accel))
    assert root.get("type") == ("kvm" if accel == "kvm" else "qemu")
    assert root.find("cpu").get("mode") == mode
    assert root.findtext("cpu/model") == named


def test_tcg_translation_cache():
    assert xml(vmi(), ConverterContext(tb_cache_mib=32)).findtext("features/tcg/tb-cache") == "32"
    assert xml(vmi(), ConverterContext(tb_cache_mib=None)).find("features/tcg") is None
    assert xml(vmi(), ConverterContext(accel="kvm")).find("features/tcg") is None


def test_bad_accel():
    with pytest.raises(ConversionError):
        convert(vmi(), ConverterContext(accel="xen"))


# ------------------------------------------------------------------ machine and firmware

@pytest.mark.parametrize("machine,expected", [(None, "q35"), ({"type": "pc-q35-7.2"}, "pc-q35-7.2"),
                                              ({"type": "pc"}, "pc")])
def test_machine_type(machine, expected):
    obj = vmi()
    if machine is None:
        obj["spec"]["domain"].pop("machine", None)
    else:
        obj["spec"]["domain"]["machine"] = machine
    assert xml(obj).find("os/type").get("machine") == expected


def test_bios_default_boots_disk():
    root = xml(vmi())
    assert root.find("os/loader") is None
    assert root.find("os/boot").get("dev") == "hd"


def test_bios_use_serial():
    root = xml(with_domain(vmi(), firmware={"bootloader": {"bios": {"useSerial": True}}}))
    assert root.find("os/bios").get("useserial") == "yes"


@pytest.mark.parametrize("efi,secure", [({}, True), ({"secureBoot": True}, True), ({"secureBoot": False}, False)])
def test_efi(efi, secure):
    obj = vmi()
    obj["spec"]["domain"]["firmware"] = {"bootloader": {"efi": efi}}
    ctx = ConverterContext(nvram_path="/run/priv/nvram.fd")
    root = xml(obj, ctx)
    loader = root.find("os/loader")
    assert loader.get("type") == "pflash" and loader.get("readonly") == "yes"
    assert loader.get("secure") == ("yes" if secure else "no")
    assert loader.text == (ctx.ovmf_code_secure if secure else ctx.ovmf_code)
    assert root.findtext("os/nvram") == "/run/priv/nvram.fd"
    assert (root.find("features/smm") is not None) == secure


def test_bios_and_efi_exclusive():
    with pytest.raises(ConversionError, match="mutually exclusive"):
        convert(with_domain(vmi(), firmware={"bootloader": {"bios": {}, "efi": {}}}), CTX)


def test_kernel_boot():
    obj = with_domain(vmi(), firmware={"kernelBoot": {
        "kernelArgs": "console=ttyS0 quiet",
        "container": {"image": "k:1", "kernelPath": "/boot/vmlinuz", "initrdPath": "/boot/initrd"}}})
    ctx = ConverterContext(kernel_path="/p/vmlinuz", initrd_path="/p/initrd")
    root = xml(obj, ctx)
    assert root.findtext("os/kernel") == "/p/vmlinuz"
    assert root.findtext("os/initrd") == "/p/initrd"
    assert root.findtext("os/cmdline") == "console=ttyS0 quiet"
    assert root.find("os/boot") is None
    with pytest.raises(ConversionError, match="not prepared"):
        convert(obj, CTX)


# ------------------------------------------------------------------ disks

def disks_vmi():
    return vmi(
        domain={
            "resources": {"requests": {"memory": "128Mi"}},
            "devices": {"disks": [
                {"name": "root", "disk": {"bus": "virtio"}, "bootOrder": 1},
                {"name": "data", "disk": {"bus": "sata"}},
                {"name": "cloudinit", "disk": {"bus": "virtio"}},
                {"name": "iso", "cdrom": {"bus": "sata"}, "bootOrder": 2},
                {"name": "scratch", "disk": {"bus": "scsi"}},
            ]},
        },
        volumes=[
            {"name": "root", "containerDisk": {"image": "img:1"}},
            {"name": "data", "emptyDisk": {"capacity": "1Gi"}},
            {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}},
            {"name": "iso", "containerDisk": {"image": "iso:1"}},
            {"name": "scratch", "emptyDisk": {"capacity": "2Gi"}},
        ])


DISK_CTX = ConverterContext(disks={
    "root": DiskSource("/priv/root.qcow2", "qcow2"),
    "data": DiskSource("/priv/data.qcow2", "qcow2"),
    "cloudinit": DiskSource("/priv/cloudinit.iso", "raw"),
    "iso": DiskSource("/priv/iso.qcow2", "qcow2"),
    "scratch": DiskSource("/dev/sdz", "raw", block=True),
})


@pytest.mark.parametrize("alias,device,dev,bus,source,fmt,readonly,boot", [
    ("ua-root", "disk", "vda", "virtio", "/priv/root.qcow2", "qcow2", False, "1"),
    ("ua-data", "disk", "sda", "sata", "/priv/data.qcow2", "qcow2", False, None),
    ("ua-cloudinit", "disk", "vdb", "virtio", "/priv/cloudinit.iso", "raw", True, None),
    ("ua-iso", "cdrom", "sdb", "sata", "/priv/iso.qcow2", "qcow2", True, "2"),
    ("ua-scratch", "disk", "sdc", "scsi", "/dev/sdz", "raw", False, None),
])
def test_disks(alias, device, dev, bus, source, fmt, readonly, boot):
    root = xml(disks_vmi(), DISK_CTX)
    disk = next(d for d in root.findall("devices/disk") if d.find("alias").get("name") == alias)
    assert disk.get("device") == device
    assert disk.find("target").get("dev") == dev and disk.find("target").get("bus") == bus
    src = disk.find("source")
    assert (src.get("dev") if disk.get("type") == "block" else src.get("file")) == source
    assert disk.find("driver").get("type") == fmt
    assert (disk.find("readonly") is not None) == readonly
    assert (disk.find("boot").get("order") if disk.find("boot") is not None else None) == boot


def test_boot_order_removes_os_boot_and_scsi_gets_controller():
    root = xml(disks_vmi(), DISK_CTX)
    assert root.find("os/boot") is None
    assert root.find("devices/controller[@type='scsi']").get("model") == "virtio-scsi"


def test_many_disks_get_linux_names():
    names = [f"d{i}" for i in range(28)]
    obj = vmi(domain={"resources": {"requests": {"memory": "64Mi"}},
                      "devices": {"disks": [{"name": n, "disk": {}} for n in names]}},
              volumes=[{"name": n, "emptyDisk": {"capacity": "1Mi"}} for n in names])
    root = xml(obj, ConverterContext(disks={n: DiskSource(f"/p/{n}") for n in names}))
    devs = [d.find("target").get("dev") for d in root.findall("devices/disk")]
    assert devs[0] == "sda" and devs[25] == "sdz" and devs[26] == "sdaa" and devs[27] == "sdab"


@pytest.mark.parametrize("mutate,match", [
    (lambda o: o["spec"]["volumes"].pop(0), "no volume named 'root'"),
    (lambda o: o["spec"]["domain"]["devices"]["disks"][3]["cdrom"].update(bus="virtio"), "virtio"),
    (lambda o: o["spec"]["domain"]["devices"]["disks"][0]["disk"].update(bus="ide"), "unsupported bus"),
])
def test_disk_errors(mutate, match):
    obj = disks_vmi()
    mutate(obj)
    with pytest.raises(ConversionError, match=match):
        convert(obj, DISK_CTX)


def test_unprepared_volume():
    with pytest.raises(ConversionError, match="not prepared"):
        convert(disks_vmi(), CTX)


# ------------------------------------------------------------------ network

def test_pod_network_is_the_tap_virt_handler_made():
    root = xml(vmi())
    iface = root.find("devices/interface")
    assert iface.get("type") == "ethernet"
    assert iface.find("target").attrib == {"dev": "tap0", "managed": "no"}  # libvirt only opens it
    assert iface.find("mac").get("address") == interface_mac(vmi(), {"name": "default"})
    assert iface.find("model").get("type") == "virtio"
    assert iface.find("mtu").get("size") == "1500"
    assert iface.find("rom").get("enabled") == "no" and iface.find("boot") is None
    assert iface.find("alias").get("name") == "ua-default"
    assert root.find("{http://libvirt.org/schemas/domain/qemu/1.0}commandline") is None


def test_interface_model_mac_and_boot_order():
    obj = vmi(domain={"resources": {"requests": {"memory": "64Mi"}}, "devices": {"interfaces": [
        {"name": "default", "masquerade": {}, "model": "e1000", "macAddress": "DE:AD:00:00:BE:AF",
         "ports": [{"port": 80}], "bootOrder": 3}]}},
        networks=[{"name": "default", "pod": {"vmNetworkCIDR": "10.11.12.0/24"}}])
    iface = xml(obj).find("devices/interface")
    assert iface.find("model").get("type") == "e1000"
    assert iface.find("mac").get("address") == "de:ad:00:00:be:af"
    assert iface.find("boot").get("order") == "3" and iface.find("rom") is None


def test_the_mac_the_launcher_found_wins():
    ctx = ConverterContext(interfaces={"default": TapInterface("tap0", "0a:58:0a:f4:00:07", 9000)})
    iface = xml(vmi(), ctx).find("devices/interface")
    assert iface.find("mac").get("address") == "0a:58:0a:f4:00:07" and iface.find("mtu").get("size") == "9000"


def test_mac_is_stable_and_local():
    mac = interface_mac(vmi(), {"name": "default"})
    assert mac == interface_mac(vmi(), {"name": "default"})
    assert int(mac.split(":")[0], 16) & 0x02 and not int(mac.split(":")[0], 16) & 0x01


@pytest.mark.parametrize("iface,networks,match", [
    ({"name": "default", "sriov": {}}, [{"name": "default", "pod": {}}], "masquerade and bridge"),
    ({"name": "default", "masquerade": {}}, [{"name": "default", "multus": {"networkName": "x"}}], "pod network"),
    ({"name": "other", "masquerade": {}}, [{"name": "default", "pod": {}}], "pod network"),
    ({"name": "default", "masquerade": {}, "model": "vmxnet3"}, [{"name": "default", "pod": {}}], "unsupported model"),
])
def test_network_errors(iface, networks, match):
    obj = vmi(domain={"resources": {"requests": {"memory": "64Mi"}}, "devices": {"interfaces": [iface]}},
              networks=networks)
    with pytest.raises(ConversionError, match=match):
        convert(obj, wired(CTX, obj))


def test_an_unwired_pod_network_is_refused():
    with pytest.raises(ConversionError, match=r"interfaces\[0\]: the pod network was not prepared"):
        convert(vmi(), CTX)


def test_no_interfaces_no_network():
    obj = vmi(networks=[])
    obj["spec"]["domain"]["devices"]["interfaces"] = []
    assert xml(obj).find("devices/interface") is None


# ------------------------------------------------------------------ console and other devices

def test_serial_console_autoattached():
    root = xml(vmi(), ConverterContext(serial_socket="/priv/serial.sock", serial_log="/priv/serial.log"))
    serial = root.find("devices/serial")
    assert serial.get("type") == "unix"
    assert serial.find("source").get("mode") == "bind"
    assert serial.find("source").get("path") == "/priv/serial.sock"
    assert serial.find("log").get("file") == "/priv/serial.log"
    assert root.find("devices/console/target").get("type") == "serial"


def test_serial_console_off():
    obj = vmi()
    obj["spec"]["domain"]["devices"]["autoattachSerialConsole"] = False
    assert xml(obj).find("devices/serial") is None


def test_guest_agent_channel_and_balloon():
    root = xml(vmi())
    assert root.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"
    assert root.find("devices/memballoon").get("model") == "virtio"
    assert root.find("devices/memballoon/stats").get("period") == "10"
    assert xml(vmi(), ConverterContext(memballoon=False)).find("devices/memballoon").get("model") == "none"


def test_no_usb_controller():
    assert xml(vmi()).find("devices/controller[@type='usb']").get("model") == "none"


def test_pure():
    obj = disks_vmi()
    before = copy.deepcopy(obj)
    assert convert(obj, wired(DISK_CTX, obj)) == convert(obj, wired(DISK_CTX, obj))
    assert obj == before


def test_default_interface_is_bridge_on_the_pod_network():
    obj = vmi()
    assert obj["spec"]["domain"]["devices"]["interfaces"] == [{"name": "default", "bridge": {}, "model": "virtio"}]
    assert xml(obj).find("devices/interface/target").get("dev") == "tap0"


def test_usb_disk_gets_a_usb_controller():
    obj = vmi(domain={"resources": {"requests": {"memory": "64Mi"}},
                      "devices": {"disks": [{"name": "stick", "disk": {"bus": "usb"}}]}},
              volumes=[{"name": "stick", "emptyDisk": {"capacity": "1Mi"}}])
    root = xml(obj, ConverterContext(disks={"stick": DiskSource("/p/stick.qcow2", "qcow2")}))
    assert root.find("devices/controller[@type='usb']").get("model") == "qemu-xhci"
    assert root.find("devices/disk/target").get("bus") == "usb"


# ------------------------------------------------------------------ disk cache and io

@pytest.mark.parametrize("disk, direct_io, cache, io", [
    ({}, True, "none", None),
    ({}, False, "writethrough", None),
    ({"cache": "writeback"}, True, "writeback", None),
    ({"cache": "none", "io": "native"}, True, "none", "native"),
    ({"io": "threads"}, True, "none", "threads"),
    ({"io": "default"}, True, "none", None),
])
def test_disk_cache_none_where_the_storage_allows_it(disk, direct_io, cache, io):
    obj = vmi(domain={"resources": {"requests": {"memory": "64Mi"}},
                      "devices": {"disks": [dict({"name": "d", "disk": {"bus": "virtio"}}, **disk)]}},
              volumes=[{"name": "d", "emptyDisk": {"capacity": "1Mi"}}])
    driver = xml(obj, ConverterContext(disks={"d": DiskSource("/p/d.qcow2", "qcow2", direct_io=direct_io)})).find(
        "devices/disk/driver")
    assert driver.get("cache") == cache and driver.get("io") == io


def test_cache_none_without_direct_io_is_an_error():
    obj = vmi(domain={"resources": {"requests": {"memory": "64Mi"}},
                      "devices": {"disks": [{"name": "d", "cache": "none"}]}},
              volumes=[{"name": "d", "emptyDisk": {"capacity": "1Mi"}}])
    with pytest.raises(ConversionError, match="direct I/O"):
        convert(obj, ConverterContext(disks={"d": DiskSource("/p/d.qcow2", "qcow2")}))


def test_read_only_iso_on_sata_is_not_marked_read_only():
    """libvirt refuses read-only SATA hard disks; the ISO is never written anyway."""
    obj = vmi(domain={"resources": {"requests": {"memory": "64Mi"}}, "devices": {}},
              volumes=[{"name": "cm", "configMap": {"name": "c"}}])
    disk = xml(obj, ConverterContext(disks={"cm": DiskSource("/p/cm.iso", readonly=True)})).find("devices/disk")
    assert disk.find("target").get("bus") == "sata" and disk.find("readonly") is None


# ------------------------------------------------------------------ features, clock, rng, tpm

def features_of(**features):
    return xml(with_domain(vmi(), features=features)).find("features")


def test_default_features_acpi_apic_no_smm():
    features = xml(vmi()).find("features")
    assert features.find("acpi") is not None and features.find("apic") is not None
    assert features.find("smm") is None and features.find("hyperv") is None


def test_features_can_be_turned_off_and_smm_on():
    features = features_of(acpi={"enabled": False}, apic={"enabled": False}, smm={})
    assert features.find("acpi") is None and features.find("apic") is None
    assert features.find("smm").get("state") == "on"
    assert features_of(smm={"enabled": False}).find("smm").get("state") == "off"
    assert features_of(apic={"endOfInterrupt": True}).find("apic").get("eoi") == "on"


def test_hyperv_features():
    hyperv = features_of(hyperv={"relaxed": {}, "vapic": {"enabled": False}, "spinlocks": {"spinlocks": 8191},
                                 "vendorid": {"vendorid": "kubevirt"}, "synictimer": {"direct": {}},
                                 "synic": {}, "vpindex": {}}).find("hyperv")
    assert hyperv.get("mode") == "custom"
    assert hyperv.find("relaxed").get("state") == "on" and hyperv.find("vapic").get("state") == "off"
    assert hyperv.find("spinlocks").get("retries") == "8191"
    assert hyperv.find("vendor_id").get("value") == "kubevirt"
    assert hyperv.find("stimer/direct").get("state") == "on"
    assert hyperv.find("synic").get("state") == "on" and hyperv.find("vpindex") is None  # TCG: see below


@pytest.mark.parametrize("clock, attrs", [
    (None, {"offset": "utc"}),
    ({"utc": {}}, {"offset": "utc"}),
    ({"utc": {"offsetSeconds": -3600}}, {"offset": "variable", "basis": "utc", "adjustment": "-3600"}),
    ({"timezone": "Europe/Paris"}, {"offset": "timezone", "timezone": "Europe/Paris"}),
])
def test_clock_offset(clock, attrs):
    obj = vmi() if clock is None else with_domain(vmi(), clock=clock)
    assert xml(obj).find("clock").attrib == attrs


def test_clock_timers():
    clock = xml(with_domain(vmi(), clock={"utc": {}, "timer": {
        "hpet": {"present": False}, "rtc": {"tickPolicy": "catchup", "track": "guest"}, "kvm": {},
        "hyperv": {}, "pit": {"tickPolicy": "delay"}}})).find("clock")
    timers = {t.get("name"): t.attrib for t in clock.findall("timer")}
    assert timers["hpet"] == {"name": "hpet", "present": "no"}
    assert timers["rtc"] == {"name": "rtc", "present": "yes", "tickpolicy": "catchup", "track": "guest"}
    assert timers["kvmclock"]["present"] == "yes" and timers["hypervclock"]["present"] == "yes"
    assert timers["pit"]["tickpolicy"] == "delay"


def test_rng_device():
    obj = vmi()
    obj["spec"]["domain"]["devices"]["rng"] = {}
    rng = xml(obj).find("devices/rng")
    assert rng.get("model") == "virtio"
    assert rng.find("backend").get("model") == "random" and rng.find("backend").text == "/dev/urandom"
    assert xml(vmi()).find("devices/rng") is None


@pytest.mark.parametrize("tpm, present", [(None, False), ({}, True), ({"enabled": True}, True),
                                          ({"enabled": False}, False)])
def test_tpm_is_emulated_by_swtpm(tpm, present):
    obj = vmi()
    if tpm is not None:
        obj["spec"]["domain"]["devices"]["tpm"] = tpm
    el = xml(obj).find("devices/tpm")
    assert (el is not None) == present
    if present:
        assert el.get("model") == "tpm-tis"
        assert el.find("backend").attrib == {"type": "emulator", "version": "2.0"}


def test_mem_balloon_can_be_left_out():
    obj = vmi()
    obj["spec"]["domain"]["devices"]["autoattachMemBalloon"] = False
    assert xml(obj).find("devices/memballoon").get("model") == "none"


def test_firmware_serial_in_sysinfo():
    obj = with_domain(vmi(), firmware={"uuid": "5d307ca9-b3ef-428c-8861-06e72d69f223", "serial": "abc-1"})
    entries = {e.get("name"): e.text for e in xml(obj).findall("sysinfo/system/entry")}
    assert entries["serial"] == "abc-1" and entries["uuid"] == "5d307ca9-b3ef-428c-8861-06e72d69f223"
    assert xml(obj).find("os/smbios").get("mode") == "sysinfo"


# ------------------------------------------------------------------ graphics (VNC)

def test_vnc_on_a_unix_socket_and_vga_by_default():
    root = xml(vmi(), ConverterContext(vnc_socket="/priv/virt-vnc"))
    graphics = root.find("devices/graphics")
    assert graphics.get("type") == "vnc"
    assert graphics.find("listen").attrib == {"type": "socket", "socket": "/priv/virt-vnc"}
    assert root.find("devices/video/model").attrib == {"type": "vga", "heads": "1", "vram": "16384"}


def test_efi_guests_get_bochs_video():
    obj = with_domain(vmi(), firmware={"bootloader": {"efi": {"secureBoot": False}}})
    assert xml(obj).find("devices/video/model").get("type") == "bochs"


def test_no_graphics_when_autoattach_is_off():
    obj = vmi()
    obj["spec"]["domain"]["devices"]["autoattachGraphicsDevice"] = False
    root = xml(obj)
    assert root.find("devices/graphics") is None and root.find("devices/video") is None


def test_vpindex_needs_kvm():
    obj = with_domain(vmi(), features={"hyperv": {"vpindex": {}, "synic": {}}})
    assert xml(obj).find("features/hyperv/vpindex") is None
    assert xml(obj).find("features/hyperv/synic").get("state") == "on"
    assert xml(obj, ConverterContext(accel="kvm")).find("features/hyperv/vpindex").get("state") == "on"
