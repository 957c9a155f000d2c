"""VirtualMachineInstance (a defaulted dict) -> libvirt domain XML.

A pure function: everything that depends on the node or the pod (where disks were prepared, which
accelerator works, where the console socket goes) comes in through a `ConverterContext`, so the
same VMI and context always give the same XML. The launcher prepares the files the context names
(overlays, ISOs, empty disks) before it calls `convert`.

Choices, in upstream KubeVirt's spirit:
- domain name `<namespace>_<name>`, the VMI uid in <metadata>, user aliases `ua-<name>` on devices;
- machine q35 unless the VMI says otherwise; BIOS unless firmware.bootloader.efi; kernelBoot puts
  <kernel>/<initrd>/<cmdline> into <os>;
- the pod-network interface (masquerade or bridge binding) is libvirt's <interface type='ethernet'> on the
  tap device virt-handler made in the pod (managed='no': libvirt only opens it, so the launcher needs no
  CAP_NET_ADMIN); the NAT, the bridge and the guest's DHCP are not in the XML (see handler/network and
  launcher/network.py);
- disks: cache "none" where the launcher found direct I/O to work on the disk's storage (upstream's
  choice), else "writethrough";
- features (acpi, apic, smm, hyperv), clock and timers, virtio-rng and an swtpm-emulated TPM 2.0 map to
  their libvirt elements;
- TCG gets a bounded translation-block cache (tb-cache), since QEMU's default (1 GiB with
  overcommit) dominates the launcher's memory.
"""
from __future__ import annotations

import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from kubevirt_runtime.api.network import NetworkSpecError, binding, pod_interface
from kubevirt_runtime.api.quantity import memory_bytes
from kubevirt_runtime.api.volumes import is_hotpluggable

KUBEVIRT_NS = "http://kubevirt.io"

DEFAULT_MACHINE = "q35"
DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"
SERIAL_ALIAS = "serial0"

_BUS_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd"}
READONLY_UNSUPPORTED_BUSES = ("sata",)  # libvirt refuses read-only IDE/SATA hard disks
NIC_MODELS = ("virtio", "e1000", "e1000e", "igb", "ne2k_pci", "pcnet", "rtl8139")  # libvirt's model names


class ConversionError(ValueError):
    """The VMI asks for something the converter cannot express; the message names the field."""


@dataclass(frozen=True)
class DiskSource:
    """Where the launcher put a volume's data: a file (or block device) and its format."""

    path: str
    format: str = "raw"  # raw | qcow2
    block: bool = False
    readonly: bool = False
    direct_io: bool = False  # the storage takes O_DIRECT, so cache "none" works


@dataclass(frozen=True)
class TapInterface:
    """A pod-network interface as the launcher found it wired: the tap device, the guest's MAC, the MTU."""

    tap: str
    mac: str
    mtu: int | None = None


@dataclass(frozen=True)
class ConverterContext:
    """Everything node- or pod-specific the XML depends on."""

    accel: str = "tcg"  # "kvm" | "tcg"
    emulator: str = DEFAULT_EMULATOR
    disks: dict = field(default_factory=dict)  # volume name -> DiskSource
    interfaces: dict = field(default_factory=dict)  # interface name -> TapInterface
    serial_socket: str = "/var/run/kubevirt-private/virt-serial0"
    serial_log: str | None = None
    vnc_socket: str = "/var/run/kubevirt-private/virt-vnc"
    tb_cache_mib: int | None = 16  # TCG translation cache (MiB); None = QEMU's default
    ovmf_code: str = "/usr/share/OVMF/OVMF_CODE_4M.fd"
    ovmf_code_secure: str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
    ovmf_vars: str = "/usr/share/OVMF/OVMF_VARS_4M.fd"
    ovmf_vars_secure: str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    nvram_path: str | None = None
    kernel_path: str | None = None  # kernelBoot: where the launcher finds the kernel / initrd
    initrd_path: str | None = None
    guest_agent: bool = True
    memballoon: bool = True


def domain_name(namespace: str, name: str) -> str:
    return f"{namespace}_{name}"


def guest_memory_bytes(vmi: dict) -> int:
    domain = vmi.get("spec", {}).get("domain", {})
    guest = (domain.get("memory") or {}).get("guest")
    if guest is None:
        resources = domain.get("resources") or {}
        guest = (resources.get("requests") or {}).get("memory") or (resources.get("limits") or {}).get("memory")
    if guest is None:
        raise ConversionError("spec.domain.memory.guest: required (or spec.domain.resources.requests.memory)")
    try:
        value = memory_bytes(guest)
    except ValueError as exc:
        raise ConversionError(f"spec.domain.memory.guest: {exc}") from None
    if value < 1 << 20:
        raise ConversionError(f"spec.domain.memory.guest: {guest!r} is less than 1Mi")
    return value


def domain_uuid(vmi: dict) -> str:
    firmware = vmi.get("spec", {}).get("domain", {}).get("firmware") or {}
    if firmware.get("uuid"):
        return str(uuidlib.UUID(firmware["uuid"]))
    meta = vmi.get("metadata", {})
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"kubevirt.io/{meta.get('namespace')}/{meta.get('name')}"))


def _sub(parent, tag, text=None, **attrs):
    el = ET.SubElement(parent, tag, {k.rstrip("_").replace("__", "-"): str(v) for k, v in attrs.items()
                                     if v is not None})
    if text is not None:
        el.text = str(text)
    return el


def _cpu(domain_el, spec, ctx):
    cpu = spec["domain"].get("cpu") or {}
    sockets, cores, threads = (int(cpu.get(k) or 1) for k in ("sockets", "cores", "threads"))
    _sub(domain_el, "vcpu", sockets * cores * threads, placement="static")
    model = cpu.get("model") or ("host-model" if ctx.accel == "kvm" else "")
    if ctx.accel != "kvm" and model in ("host-model", "host-passthrough"):
        model = ""  # not available under TCG: QEMU's default model
    if model in ("host-model", "host-passthrough"):
        cpu_el = _sub(domain_el, "cpu", mode=model, check="none")
        if model == "host-passthrough":
            cpu_el.set("migratable", "on")
    elif model:
        cpu_el = _sub(domain_el, "cpu", mode="custom", match="exact", check="none")
        _sub(cpu_el, "model", model, fallback="allow")
    else:
        cpu_el = _sub(domain_el, "cpu")
    _sub(cpu_el, "topology", sockets=sockets, dies=1, cores=cores, threads=threads)


def _os(domain_el, vmi, ctx, boot_ordered):
    domain = vmi["spec"]["domain"]
    machine = (domain.get("machine") or {}).get("type") or DEFAULT_MACHINE
    firmware = domain.get("firmware") or {}
    bootloader = firmware.get("bootloader") or {}
    if bootloader.get("bios") is not None and bootloader.get("efi") is not None:
        raise ConversionError("spec.domain.firmware.bootloader: bios and efi are mutually exclusive")
    os_el = _sub(domain_el, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine=machine)
    efi = bootloader.get("efi")
    secure = False
    if efi is not None:
        secure = efi.get("secureBoot", True) is not False
        _sub(os_el, "loader", ctx.ovmf_code_secure if secure else ctx.ovmf_code,
             readonly="yes", secure="yes" if secure else "no", type="pflash")
        nvram = ctx.nvram_path or "/var/run/kubevirt-private/nvram/VARS.fd"
        _sub(os_el, "nvram", nvram, template=ctx.ovmf_vars_secure if secure else ctx.ovmf_vars)
    elif (bootloader.get("bios") or {}).get("useSerial"):
        _sub(os_el, "bios", useserial="yes")
    kernel_boot = firmware.get("kernelBoot")
    if kernel_boot:
        container = kernel_boot.get("container") or {}
        if not container.get("kernelPath") and not container.get("initrdPath"):
            raise ConversionError("spec.domain.firmware.kernelBoot.container: kernelPath or initrdPath is required")
        if container.get("kernelPath"):
            if not ctx.kernel_path:
                raise ConversionError("spec.domain.firmware.kernelBoot.container.kernelPath: kernel not prepared")
            _sub(os_el, "kernel", ctx.kernel_path)
        if container.get("initrdPath"):
            if not ctx.initrd_path:
                raise ConversionError("spec.domain.firmware.kernelBoot.container.initrdPath: initrd not prepared")
            _sub(os_el, "initrd", ctx.initrd_path)
        if kernel_boot.get("kernelArgs"):
            if not container.get("kernelPath"):
                raise ConversionError("spec.domain.firmware.kernelBoot.kernelArgs: needs kernelPath")
            _sub(os_el, "cmdline", kernel_boot["kernelArgs"])
    if firmware.get("serial") or firmware.get("uuid"):
        _sub(os_el, "smbios", mode="sysinfo")
    if not boot_ordered and not kernel_boot:
        _sub(os_el, "boot", dev="hd")
    return secure


def _enabled(state, default=True) -> bool:
    """A FeatureState ({enabled: bool}) that is present counts as on unless it says enabled: false."""
    if state is None:
        return False
    return (state or {}).get("enabled", default) is not False


# spec.domain.features.hyperv.<name> -> libvirt <hyperv> child
_HYPERV = {"relaxed": "relaxed", "vapic": "vapic", "vpindex": "vpindex", "runtime": "runtime", "synic": "synic",
           "reset": "reset", "frequencies": "frequencies", "reenlightenment": "reenlightenment", "ipi": "ipi",
           "tlbflush": "tlbflush", "spinlocks": "spinlocks", "vendorid": "vendor_id", "synictimer": "stimer"}


def _hyperv(features_el, hyperv, accel):
    el = _sub(features_el, "hyperv", mode="custom")
    for name, tag in _HYPERV.items():
        state = hyperv.get(name)
        if state is None or (name == "vpindex" and accel != "kvm"):
            continue  # QEMU sets the VP index through KVM only; under TCG it refuses to start with it
        on = _enabled(state)
        child = _sub(el, tag, state="on" if on else "off")
        if name == "spinlocks" and on:
            child.set("retries", str(int(state.get("spinlocks") or 4096)))
        elif name == "vendorid" and on:
            child.set("value", state.get("vendorid") or "")
        elif name == "synictimer" and on and state.get("direct") is not None:
            _sub(child, "direct", state="on" if _enabled(state["direct"]) else "off")


def _features(domain_el, vmi, ctx, secure):
    features = vmi["spec"]["domain"].get("features") or {}
    features_el = _sub(domain_el, "features")
    if _enabled(features.get("acpi", {})):
        _sub(features_el, "acpi")
    apic = features.get("apic", {})
    if _enabled(apic):
        apic_el = _sub(features_el, "apic")
        if (apic or {}).get("endOfInterrupt"):
            apic_el.set("eoi", "on")
    if features.get("hyperv"):
        _hyperv(features_el, features["hyperv"], ctx.accel)
    smm = features.get("smm")
    if secure or _enabled(smm):
        _sub(features_el, "smm", state="on")
    elif smm is not None:
        _sub(features_el, "smm", state="off")
    if ctx.accel != "kvm" and ctx.tb_cache_mib:
        tcg = _sub(features_el, "tcg")
        _sub(tcg, "tb-cache", ctx.tb_cache_mib, unit="MiB")


# spec.domain.clock.timer.<name> -> libvirt timer name
_TIMERS = {"hpet": "hpet", "kvm": "kvmclock", "pit": "pit", "rtc": "rtc", "hyperv": "hypervclock"}


def _clock(domain_el, vmi):
    clock = vmi["spec"]["domain"].get("clock") or {}
    if clock.get("timezone"):
        clock_el = _sub(domain_el, "clock", offset="timezone", timezone=clock["timezone"])
    elif (clock.get("utc") or {}).get("offsetSeconds"):
        clock_el = _sub(domain_el, "clock", offset="variable", basis="utc",
                        adjustment=int(clock["utc"]["offsetSeconds"]))
    else:
        clock_el = _sub(domain_el, "clock", offset="utc")
    for name, timer in sorted((clock.get("timer") or {}).items()):
        if name not in _TIMERS or timer is None:
            continue
        timer_el = _sub(clock_el, "timer", name=_TIMERS[name],
                        present="no" if timer.get("present") is False else "yes")
        if timer.get("tickPolicy"):
            timer_el.set("tickpolicy", timer["tickPolicy"])
        if name == "rtc" and timer.get("track"):
            timer_el.set("track", timer["track"])


def _rng_and_tpm(devices_el, devices):
    if devices.get("rng") is not None:
        rng = _sub(devices_el, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")
        _sub(rng, "alias", name="ua-rng")
    tpm = devices.get("tpm")
    if tpm is not None and tpm.get("enabled", True) is not False:
        tpm_el = _sub(devices_el, "tpm", model="tpm-tis")
        _sub(tpm_el, "backend", type="emulator", version="2.0")
        _sub(tpm_el, "alias", name="ua-tpm")


def _sysinfo(domain_el, vmi, uuid):
    firmware = vmi["spec"]["domain"].get("firmware") or {}
    if not (firmware.get("serial") or firmware.get("uuid")):
        return
    sysinfo = _sub(domain_el, "sysinfo", type="smbios")
    system = _sub(sysinfo, "system")
    _sub(system, "entry", "KubeVirt", name="manufacturer")
    _sub(system, "entry", "None", name="product")
    _sub(system, "entry", uuid, name="uuid")
    if firmware.get("serial"):
        _sub(system, "entry", firmware["serial"], name="serial")


def _disks(devices_el, vmi, ctx):
    spec = vmi["spec"]
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    counters: dict[str, int] = {}
    # as upstream: a SCSI controller unless hotplug is disabled, so a disk can be attached to the running guest
    scsi = not (spec["domain"].get("devices") or {}).get("disableHotplug")
    usb = False
    for i, disk in enumerate(spec["domain"].get("devices", {}).get("disks") or []):
        path = f"spec.domain.devices.disks[{i}]"
        name = disk.get("name")
        volume = volumes.get(name)
        if volume is None:
            raise ConversionError(f"{path}.name: no volume named {name!r}")
        if is_hotpluggable(volume):
            continue  # virt-handler attaches it once the guest runs (hotplug_disk_xml)
        source = ctx.disks.get(name)
        if source is None:
            raise ConversionError(f"spec.volumes: volume {name!r} was not prepared by the launcher")
        bus = disk_bus(disk)
        prefix = _BUS_PREFIX.get(bus, "sd")
        index = counters.get(prefix, 0)
        counters[prefix] = index + 1
        _disk_element(devices_el, disk, volume, source, prefix + _drive_letters(index), path)
        scsi = scsi or bus == "scsi"
        usb = usb or bus == "usb"
    if scsi:
        _sub(devices_el, "controller", type="scsi", index=0, model="virtio-scsi")
    return usb


def disk_bus(disk: dict) -> str:
    target = disk.get("cdrom") if disk.get("cdrom") is not None else (disk.get("disk") or {})
    return target.get("bus") or "sata"


def _disk_element(devices_el, disk, volume, source, target_dev, path):
    name = disk.get("name")
    if disk.get("cdrom") is not None:
        kind, target = "cdrom", disk["cdrom"]
        bus = target.get("bus") or "sata"
        readonly = target.get("readonly", True) is not False
    elif disk.get("lun") is not None:
        raise ConversionError(f"{path}.lun: not supported")
    else:
        kind, target = "disk", disk.get("disk") or {}
        bus = target.get("bus") or "sata"
        readonly = bool(target.get("readonly"))
    if bus not in _BUS_PREFIX:
        raise ConversionError(f"{path}.{kind}.bus: unsupported bus {bus!r}")
    if kind == "cdrom" and bus == "virtio":
        raise ConversionError(f"{path}.cdrom.bus: a cdrom cannot use the virtio bus")
    if kind == "disk" and bus in READONLY_UNSUPPORTED_BUSES and readonly:
        raise ConversionError(f"{path}.disk.readonly: a read-only disk cannot use the {bus} bus")
    if kind == "disk" and bus not in READONLY_UNSUPPORTED_BUSES:
        # config ISOs and cloud-init data are never written; say so where the bus can (the files are
        # writable copies, so a SATA disk simply opens them read-write)
        readonly = readonly or source.readonly or "cloudInitNoCloud" in volume
    disk_el = _sub(devices_el, "disk", type="block" if source.block else "file", device=kind)
    driver = _sub(disk_el, "driver", name="qemu", type=source.format, error_policy="stop")
    cache = disk.get("cache") or ("none" if source.direct_io else "writethrough")
    if cache == "none" and not source.direct_io:
        raise ConversionError(f"{path}.cache: 'none' needs direct I/O, which the storage of {source.path} "
                              "does not support")
    driver.set("cache", cache)
    if disk.get("io") and disk["io"] != "default":
        driver.set("io", disk["io"])
    if kind == "disk" and not readonly:
        driver.set("discard", "unmap")
    _sub(disk_el, "source", **{"dev" if source.block else "file": source.path})
    _sub(disk_el, "target", dev=target_dev, bus=bus)
    if readonly:
        _sub(disk_el, "readonly")
    if disk.get("serial"):
        _sub(disk_el, "serial", disk["serial"])
    if disk.get("bootOrder") is not None:
        _sub(disk_el, "boot", order=int(disk["bootOrder"]))
    _sub(disk_el, "alias", name=f"ua-{name}")
    return disk_el


def hotplug_disk_xml(disk: dict, volume: dict, source: DiskSource, taken_targets) -> tuple[str, str]:
    """The <disk> to attach to the running domain for a hotplugged volume, on the next free target of its bus
    (`taken_targets`: the domain's current ones); returns (xml, target)."""
    prefix = _BUS_PREFIX.get(disk_bus(disk), "sd")
    index = 0
    while prefix + _drive_letters(index) in set(taken_targets):
        index += 1
    target = prefix + _drive_letters(index)
    holder = ET.Element("devices")
    _disk_element(holder, disk, volume, source, target, f"spec.domain.devices.disks[{disk.get('name')}]")
    return ET.tostring(holder[0], encoding="unicode"), target


def graphics_enabled(vmi: dict) -> bool:
    """A VNC display unless spec.domain.devices.autoattachGraphicsDevice is false (as upstream)."""
    devices = ((vmi.get("spec") or {}).get("domain") or {}).get("devices") or {}
    return devices.get("autoattachGraphicsDevice", True) is not False


def _graphics(devices_el, vmi, ctx):
    """Upstream's display: VNC on a unix socket in the private dir (virt-handler relays it), VGA with 16 MiB
    of video memory for BIOS guests, bochs for EFI ones."""
    if not graphics_enabled(vmi):
        return
    graphics = _sub(devices_el, "graphics", type="vnc")
    _sub(graphics, "listen", type="socket", socket=ctx.vnc_socket)
    video = _sub(devices_el, "video")
    efi = (((vmi["spec"]["domain"].get("firmware") or {}).get("bootloader") or {}).get("efi")) is not None
    if efi:
        _sub(video, "model", type="bochs", heads=1)
    else:
        _sub(video, "model", type="vga", heads=1, vram=16384)


def _drive_letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa (as Linux names disks)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def _interfaces(devices_el, vmi, ctx):
    found = pod_interface(vmi)
    interfaces = vmi["spec"]["domain"].get("devices", {}).get("interfaces") or []
    for i in range(len(interfaces)):
        if found is None or i != found[0]:
            raise ConversionError(f"spec.domain.devices.interfaces[{i}]: only one interface, on the pod network, "
                                  "is supported")
    if found is None:
        return
    i, iface, _network = found
    path = f"spec.domain.devices.interfaces[{i}]"
    try:
        binding(iface, path)
    except NetworkSpecError as exc:
        raise ConversionError(str(exc)) from None
    model = iface.get("model") or "virtio"
    if model not in NIC_MODELS:
        raise ConversionError(f"{path}.model: unsupported model {model!r}")
    tap = ctx.interfaces.get(iface["name"])
    if tap is None:
        raise ConversionError(f"{path}: the pod network was not prepared (virt-handler wires it before the start)")
    iface_el = _sub(devices_el, "interface", type="ethernet")
    _sub(iface_el, "mac", address=tap.mac)
    _sub(iface_el, "target", dev=tap.tap, managed="no")
    _sub(iface_el, "model", type=model)
    if tap.mtu:
        _sub(iface_el, "mtu", size=tap.mtu)
    if iface.get("bootOrder") is not None:
        _sub(iface_el, "boot", order=int(iface["bootOrder"]))
    else:
        _sub(iface_el, "rom", enabled="no")  # no iPXE ROM: nothing boots from it, and it saves memory
    _sub(iface_el, "alias", name=f"ua-{iface['name']}")


def convert(vmi: dict, ctx: ConverterContext) -> str:
    """The libvirt domain XML for `vmi` (defaulted VMI dict) in `ctx`."""
    if ctx.accel not in ("kvm", "tcg"):
        raise ConversionError(f"accelerator must be kvm or tcg, not {ctx.accel!r}")
    meta = vmi.get("metadata") or {}
    spec = vmi.get("spec") or {}
    if not meta.get("name") or not meta.get("namespace"):
        raise ConversionError("metadata: name and namespace are required")
    if not isinstance(spec.get("domain"), dict):
        raise ConversionError("spec.domain: required")
    devices = spec["domain"].get("devices") or {}
    boot_ordered = any(d.get("bootOrder") is not None for d in devices.get("disks") or []) or \
        any(i.get("bootOrder") is not None for i in devices.get("interfaces") or [])

    dom = ET.Element("domain", type="kvm" if ctx.accel == "kvm" else "qemu")
    _sub(dom, "name", domain_name(meta["namespace"], meta["name"]))
    uuid = domain_uuid(vmi)
    _sub(dom, "uuid", uuid)
    metadata = _sub(dom, "metadata")
    kv = ET.SubElement(metadata, f"{{{KUBEVIRT_NS}}}kubevirt")
    ET.SubElement(kv, f"{{{KUBEVIRT_NS}}}uid").text = str(meta.get("uid", ""))
    ET.SubElement(kv, f"{{{KUBEVIRT_NS}}}graceperiod").text = str(int(spec.get("terminationGracePeriodSeconds", 30)))
    mem = guest_memory_bytes(vmi)
    _sub(dom, "memory", mem // 1024, unit="KiB")
    _sub(dom, "currentMemory", mem // 1024, unit="KiB")
    _cpu(dom, spec, ctx)
    _sysinfo(dom, vmi, uuid)
    secure = _os(dom, vmi, ctx, boot_ordered)
    _features(dom, vmi, ctx, secure)
    _clock(dom, vmi)
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices_el = _sub(dom, "devices")
    _sub(devices_el, "emulator", ctx.emulator)
    usb = _disks(devices_el, vmi, ctx)
    _interfaces(devices_el, vmi, ctx)
    # no USB controller unless a USB disk needs one: nothing else uses it, and it costs memory
    _sub(devices_el, "controller", type="usb", index=0, model="qemu-xhci" if usb else "none")
    if devices.get("autoattachSerialConsole", True) is not False:
        serial = _sub(devices_el, "serial", type="unix")
        _sub(serial, "source", mode="bind", path=ctx.serial_socket)
        if ctx.serial_log:
            _sub(serial, "log", file=ctx.serial_log, append="on")
        _sub(serial, "target", type="isa-serial", port=0)
        _sub(serial, "alias", name=SERIAL_ALIAS)
        console = _sub(devices_el, "console", type="unix")
        _sub(console, "source", mode="bind", path=ctx.serial_socket)
        _sub(console, "target", type="serial", port=0)
    _graphics(devices_el, vmi, ctx)
    if ctx.guest_agent:
        channel = _sub(devices_el, "channel", type="unix")
        _sub(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    balloon = ctx.memballoon and devices.get("autoattachMemBalloon") is not False
    balloon_el = _sub(devices_el, "memballoon", model="virtio" if balloon else "none")
    if balloon:  # the guest's memory stats every 10 s, as upstream (kubevirt_vmi_memory_available_bytes...)
        _sub(balloon_el, "stats", period=10)
    _rng_and_tpm(devices_el, devices)
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")
