"""Live migration between two real launchers (libvirt + QEMU under TCG) through virt-handler's migration proxy
over mutual TLS: the guest keeps running (same boot, its counter goes on), its disk writes move along, and a
cancelled migration leaves it running where it was."""
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kubevirt_runtime.handler import migration_proxy as proxy
from kubevirt_runtime.handler.launcher_client import LauncherClient, LauncherError, open_console, peer_pid
from kubevirt_runtime.handler.network import netns

try:
    from . import guest as guest_mod
    from .certs import issue, new_key, write_pair
    from .test_launcher import Events
except ImportError:  # tests/integration is not a package: pytest put it on sys.path
    import guest as guest_mod
    from certs import issue, new_key, write_pair
    from test_launcher import Events

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(420)]

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not os.path.exists("/usr/sbin/libvirtd"):
    pytest.skip("needs root, libvirtd and qemu-system-x86_64 (hack/install-node-packages.sh)",
                allow_module_level=True)

MARKER = guest_mod.MARKER.encode()
BOOT_TIMEOUT = 120


@pytest.fixture(scope="module")
def tls():
    d = Path(tempfile.mkdtemp(prefix="kvm-tls-"))
    ca_key = new_key()
    ca = issue("handler CA", ca_key, ca=True)
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, cn in (("handler", "virt-handler"), ("api", "virt-api")):
        key = new_key()
        write_pair(d, name, issue(cn, key, ca, ca_key, server=True, client=True), key)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def contexts(tls, client="handler"):
    return (proxy.server_context(str(tls / "handler.crt"), str(tls / "handler.key"), str(tls / "ca.crt")),
            proxy.client_context(str(tls / f"{client}.crt"), str(tls / f"{client}.key"), str(tls / "ca.crt")))


@pytest.fixture(scope="module")
def guest():
    return guest_mod.build()


@pytest.fixture
def pair(guest):
    """A source launcher running the guest (a containerDisk rides along) and a fresh target launcher. The
    source's QEMU driver is embedded; the target runs libvirtd, as a migration target pod does."""
    base = Path(tempfile.mkdtemp(prefix="kvm-", dir="/tmp"))
    uid = str(uuid.uuid4())
    launchers = []
    for side, daemon in (("src", ()), ("dst", ("--libvirt-daemon",))):
        launcher = guest_mod.LocalLauncher(base / side, guest, "mig", uid=uid,
                                           extra_args=("--accel", "tcg", *daemon)).start()
        launchers.append(launcher)
        disk = launcher.container_disks / "data"
        disk.mkdir(parents=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk / "disk.img"), "8M"], check=True)
    vmi = guest_mod.vmi("mig", guest, uid=uid, memory="128Mi",
                        disks=[{"name": "data", "disk": {"bus": "virtio"}}],
                        volumes=[{"name": "data", "containerDisk": {"image": "example/data:1"}}])
    source, target = launchers
    source.sync(vmi)
    yield source, target, vmi, uid
    for launcher in launchers:
        launcher.stop(timeout=20)
    shutil.rmtree(base, ignore_errors=True)


def console_line(console, command: bytes, marker: bytes, timeout=60) -> bytes:
    console.sendall(command + b"\n")
    return guest_mod.read_until(console, marker, timeout)


def boot_id_of(console) -> bytes:
    """The guest kernel's boot id (markers are computed by the shell, so the echoed command never matches)."""
    out = console_line(console, b"echo BOOT-$((6*7))-$(cat /proc/sys/kernel/random/boot_id)-DONE-$((6*7))",
                       b"-DONE-42")
    return out.rsplit(b"BOOT-42-", 1)[1].split(b"-DONE-42")[0]


def prepare_target(target, vmi, migration_uid):
    network = netns.setup(vmi, peer_pid(target.socket))
    return LauncherClient(target.socket).prepare_migration_target(vmi, {"migrationUid": migration_uid,
                                                                         "network": network})


def path_map(source, target):
    return {str(source.private): str(target.private), str(source.container_disks): str(target.container_disks)}


def test_guest_moves_with_its_memory_and_disk_and_keeps_running(pair, tls):
    source, target, vmi, _uid = pair
    console = open_console(source.socket, history=True)
    guest_mod.read_until(console, MARKER, BOOT_TIMEOUT)
    boot_id = boot_id_of(console)
    # a marker on the containerDisk (written to the overlay), and a counter that runs through the migration
    console_line(console, b"printf kvo-disk-marker > /dev/vda; sync; echo WROTE-$((1+1))", b"WROTE-2")
    console.sendall(b"(i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done) &\n")
    guest_mod.read_until(console, b"tick-5", 30)

    migration_uid = str(uuid.uuid4())
    prepared = prepare_target(target, vmi, migration_uid)
    assert prepared["migration"]["role"] == "target" and prepared["status"] == "Missing"
    server_ctx, client_ctx = contexts(tls)
    server = proxy.TargetServer("127.0.0.1", 0, server_ctx).start()
    server.register(migration_uid, target.private)
    source_proxy = proxy.SourceProxy(migration_uid, source.private, "127.0.0.1", server.port, client_ctx).start()
    source_events, target_events = Events(source.socket), Events(target.socket)
    try:
        source_proxy.check_target()
        started = time.monotonic()
        LauncherClient(source.socket).migrate({"migrationUid": migration_uid, "pathMap": path_map(source, target)})
        done = source_events.wait(lambda s: (s.get("migration") or {}).get("completed"), timeout=180)
        took = time.monotonic() - started
        assert not done["migration"].get("failed"), done["migration"]
        final = source_events.wait(lambda s: s["final"], timeout=30)
        downtime = final["migration"].get("downtimeMs")
        assert downtime is not None and downtime < took * 1000
        assert (final["status"], final["reason"], final["outcome"]) == ("Shutoff", "Migrated", "Succeeded")
        arrived = target_events.wait(lambda s: s["status"] == "Running", timeout=30)
        info = arrived["migration"]
        assert info["domainDetected"] and info["completed"] and info["domainReadyTimestamp"]
        print(f"\nmigration of a 128 MiB TCG guest with an 8 MiB disk: {took:.1f}s, "
              f"downtime {downtime} ms (QEMU's measure)")
    finally:
        source_proxy.stop()
        server.stop()
    assert source.proc.wait(30) == 0  # the source launcher ends: its pod succeeds
    console.close()

    console = open_console(target.socket, history=True)
    after = guest_mod.read_until(console, b"tick-", 30)
    first = int(after.split(b"tick-")[-1].split(b"\r")[0].split(b"\n")[0] or 0)
    assert boot_id_of(console) == boot_id  # the same boot: not restarted
    assert first > 5  # the counter went on where it was
    disk = console_line(console, b"echo 3 > /proc/sys/vm/drop_caches; head -c 15 /dev/vda; echo; echo DISK-$((1+2))",
                        b"DISK-3")
    assert b"kvo-disk-marker" in disk  # the guest's write came along with the disk
    console.close()


def test_cancelled_migration_leaves_the_guest_on_the_source(pair, tls):
    source, target, vmi, _uid = pair
    console = open_console(source.socket, history=True)
    guest_mod.read_until(console, MARKER, BOOT_TIMEOUT)
    migration_uid = str(uuid.uuid4())
    prepare_target(target, vmi, migration_uid)
    server_ctx, client_ctx = contexts(tls)
    server = proxy.TargetServer("127.0.0.1", 0, server_ctx).start()
    server.register(migration_uid, target.private)
    source_proxy = proxy.SourceProxy(migration_uid, source.private, "127.0.0.1", server.port, client_ctx).start()
    events = Events(source.socket)
    client = LauncherClient(source.socket)
    try:
        # 1 MiB/s: slow enough to be cancelled on the way
        client.migrate({"migrationUid": migration_uid, "pathMap": path_map(source, target), "bandwidthMiB": 1})
        events.wait(lambda s: (s.get("migration") or {}).get("startTimestamp"), timeout=30)
        time.sleep(2)
        client.abort_migration()
        done = events.wait(lambda s: (s.get("migration") or {}).get("failed"), timeout=60)
    finally:
        source_proxy.stop()
        server.stop()
    assert done["migration"]["abortStatus"] == "Succeeded"
    assert "cancelled" in done["migration"]["failureReason"]
    assert client.state()["status"] == "Running" and not client.state()["final"]
    out = console_line(console, b"echo STILL-$((20+1))", b"STILL-21", 30)
    assert b"STILL-21" in out
    console.close()


def test_the_target_serves_only_registered_migrations_to_handlers(pair, tls):
    source, target, vmi, _uid = pair
    server_ctx, client_ctx = contexts(tls)
    server = proxy.TargetServer("127.0.0.1", 0, server_ctx).start()
    try:
        unregistered = proxy.SourceProxy("nobody", source.private, "127.0.0.1", server.port, client_ctx)
        with pytest.raises(proxy.ProxyError, match="not the target of migration"):
            unregistered.check_target()
        server.register("m1", target.private)
        _server, api_ctx = contexts(tls, client="api")  # the CA's, but not a handler's certificate
        with pytest.raises(proxy.ProxyError, match="not allowed|refused"):
            proxy.SourceProxy("m1", source.private, "127.0.0.1", server.port, api_ctx).check_target()
    finally:
        server.stop()
    with pytest.raises(LauncherError):  # a launcher that ran a domain never becomes a target
        prepare_target(source, vmi, "m2")
