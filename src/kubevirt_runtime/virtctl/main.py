"""virtctl: KubeVirt's command line, on the aggregated API subresources.kubevirt.io (through the kube-apiserver).

    virtctl [--kubeconfig PATH] [--context NAME] [-n NAMESPACE] start|stop|restart VM [--force --grace-period N]
    virtctl [...] pause|unpause vm|vmi NAME
    virtctl [...] soft-reboot|reset VMI
    virtctl [...] guestosinfo|userlist|fslist VMI                 (JSON from the guest agent)
    virtctl [...] console VMI [--timeout SECONDS] [--until TEXT] [--send TEXT]
    virtctl [...] vnc VMI [--proxy-only] [--port N] [--address A] [--preserve-session] [--vnc-type T] [--vnc-path P]
    virtctl [...] port-forward TYPE/NAME[/NAMESPACE] [tcp/]LOCAL[:REMOTE]... [--address A] [--stdio]
    virtctl [...] ssh [USER@]TYPE/NAME[/NAMESPACE] [-l USER] [-i KEY] [-p PORT] [-c COMMAND] [-t SSH-OPTION]...
    virtctl [...] ui [--address 127.0.0.1] [--port N] [--no-browser] [--prometheus NS/SVC:PORT]   (web console, as you)
    virtctl [...] timeline VM                                     (the VMI's startup stages and their durations)
    virtctl [...] migrate VM [--addedNodeSelector k=v,...] [--dry-run]   (live migration to another node)
    virtctl [...] migrate-cancel VM
    virtctl [...] addvolume VM|VMI --volume-name=DV|PVC [--disk-name N] [--serial S] [--cache C] [--dry-run]
    virtctl [...] removevolume VM|VMI --volume-name=NAME [--dry-run]
    virtctl [...] image-upload dv NAME --image-path=FILE [--size=1Gi] [--storage-class SC] [--wait-secs 300]

`console` is interactive on a terminal (raw mode; Ctrl+] leaves). Without a terminal on stdin (or with
--until/--send) it streams the console to stdout: stdin, if any, goes to the guest; it ends at --timeout
seconds, when --until TEXT has been seen (exit 0; exit 1 if the time ran out first) or when the console closes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from kubevirt_runtime.client import migration
from kubevirt_runtime.client.subresources import ApiError, Subresources, connect
from kubevirt_runtime.client.volumes import VolumeError, Volumes

from . import forward
from . import ssh as ssh_mod
from . import timeline as timeline_mod

ESCAPE = b"\x1d"  # Ctrl+]


def _common(default):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    common.add_argument("--context", default=default, help="kubeconfig context")
    common.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's, else default)")
    return common


def parse_args(argv=None):
    # global options work before and after the command; the command's copy must not reset them
    common = _common(argparse.SUPPRESS)
    p = argparse.ArgumentParser(prog="virtctl", parents=[_common(None)],
                                description="Control KubeVirt virtual machines (kubevirt-ops).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (("start", "start a VirtualMachine"), ("stop", "stop a VirtualMachine"),
                       ("restart", "restart a VirtualMachine")):
        sp = sub.add_parser(name, parents=[common], help=text)
        sp.add_argument("name", metavar="VM")
        if name != "start":
            sp.add_argument("--force", action="store_true", help="stop the guest within --grace-period seconds")
            sp.add_argument("--grace-period", type=int, default=None, metavar="SECONDS",
                            help="with --force: how long the guest may take to shut down (restart: only 0)")
    for name, text in (("pause", "pause a VM's instance or a VMI"), ("unpause", "unpause a VM's instance or a VMI")):
        sp = sub.add_parser(name, parents=[common], help=text)
        sp.add_argument("kind", choices=("vm", "vmi", "virtualmachine", "virtualmachineinstance"))
        sp.add_argument("name", metavar="NAME")
    for name, text in (("soft-reboot", "soft reboot a VMI (guest agent, else ACPI)"),
                       ("reset", "hard reset a VMI"),
                       ("guestosinfo", "guest OS information from the guest agent (JSON)"),
                       ("userlist", "users logged in to the guest, from the guest agent (JSON)"),
                       ("fslist", "the guest's filesystems, from the guest agent (JSON)")):
        sp = sub.add_parser(name, parents=[common], help=text)
        sp.add_argument("name", metavar="VMI")
    sp = sub.add_parser("vnc", parents=[common], help="open a VNC connection to a VMI")
    sp.add_argument("name", metavar="VMI")
    sp.add_argument("--proxy-only", action="store_true",
                    help='only run the local proxy and print {"port": N} for a viewer of your choice')
    sp.add_argument("--port", type=int, default=0, help="local port of the proxy (default: any free port)")
    sp.add_argument("--address", default="127.0.0.1", help="local address of the proxy (with --proxy-only)")
    sp.add_argument("--preserve-session", action="store_true",
                    help="keep an existing VNC session instead of replacing it (then this connection is refused)")
    sp.add_argument("--vnc-type", default=None, help="viewer to start: remote-viewer or tiger")
    sp.add_argument("--vnc-path", default=None, help="path of the viewer executable")
    sp = sub.add_parser("port-forward", parents=[common], help="forward local ports to a VM or VMI")
    sp.add_argument("target", metavar="TYPE/NAME[/NAMESPACE]")
    sp.add_argument("ports", nargs="+", metavar="[tcp/]LOCAL[:REMOTE]")
    sp.add_argument("--address", default="127.0.0.1", help="local address to listen on")
    sp.add_argument("--stdio", nargs="?", const="true", default="false", choices=("true", "false"),
                    help="forward one port to stdin/stdout (what ssh's ProxyCommand uses)")
    sp = sub.add_parser("ssh", parents=[common], help="ssh into a VM or VMI (the local ssh client)")
    sp.add_argument("target", metavar="[USER@]TYPE/NAME[/NAMESPACE]")
    sp.add_argument("-l", "--username", default=None, help="user to log in as")
    sp.add_argument("-i", "--identity-file", default=None, help="private key file")
    sp.add_argument("-p", "--port", type=int, default=22, help="the guest's SSH port")
    sp.add_argument("-c", "--command", dest="remote_command", default=None, help="command to run in the guest")
    sp.add_argument("-t", "--local-ssh-opts", action="append", default=[], help="extra option for the ssh client")
    sp.add_argument("--known-hosts", default=None, help="known_hosts file for the guests")
    sp = sub.add_parser("ui", parents=[common], help="serve the web console on this machine, with your credentials")
    sp.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=0, help="listen port (default: any free port)")
    sp.add_argument("--no-browser", action="store_true", help="do not open a browser, only print the address")
    sp.add_argument("--prometheus", default="monitoring/prometheus:9090",
                    help="NAMESPACE/SERVICE:PORT of Prometheus for the metrics (through the API server, as you)")
    sp = sub.add_parser("timeline", parents=[common], help="print how a VM's instance started, stage by stage")
    sp.add_argument("name", metavar="VM")
    sp = sub.add_parser("migrate", parents=[common], help="live migrate a VirtualMachine to another node")
    sp.add_argument("name", metavar="VM")
    sp.add_argument("--addedNodeSelector", dest="added_node_selector", default="",
                    help="more labels the target node must have: key=value[,key=value...]")
    sp.add_argument("--dry-run", action="store_true", help="only check the request; create nothing")
    sp = sub.add_parser("migrate-cancel", parents=[common], help="cancel the live migration of a VirtualMachine")
    sp.add_argument("name", metavar="VM")
    sp = sub.add_parser("addvolume", parents=[common], help="attach a DataVolume or PVC to a running VM or VMI")
    sp.add_argument("name", metavar="VMI")
    sp.add_argument("--volume-name", required=True, help="name of the volume source, either DV or PVC")
    sp.add_argument("--disk-name", default=None, help="name used in the disk/volume section of spec")
    sp.add_argument("--serial", default=None, help="serial number you want to assign to the disk")
    sp.add_argument("--cache", default=None, choices=("none", "writethrough", "writeback"),
                    help="cache mode of the disk")
    sp.add_argument("--bus", default="scsi", help="disk bus (scsi: the bus a running guest takes new disks on)")
    sp.add_argument("--persist", action="store_true", help="[deprecated] no effect: a VM's spec always keeps it")
    sp.add_argument("--dry-run", action="store_true", help="check the request without changing anything")
    sp = sub.add_parser("removevolume", parents=[common], help="detach a hotplugged volume from a VM or VMI")
    sp.add_argument("name", metavar="VMI")
    sp.add_argument("--volume-name", required=True, help="name of the volume to remove")
    sp.add_argument("--persist", action="store_true", help="[deprecated] no effect")
    sp.add_argument("--dry-run", action="store_true", help="check the request without changing anything")
    sp = sub.add_parser("image-upload", parents=[common], help="upload a disk image into a DataVolume")
    sp.add_argument("kind", choices=("dv",), help="dv: a DataVolume with an upload source (made unless it exists)")
    sp.add_argument("name", metavar="NAME")
    sp.add_argument("--image-path", required=True, help="the image (raw or qcow2, optionally gzip/xz)")
    sp.add_argument("--size", default=None, help="size of the DataVolume to create (e.g. 1Gi)")
    sp.add_argument("--storage-class", default=None, help="StorageClass of the DataVolume to create")
    sp.add_argument("--wait-secs", type=float, default=300, help="how long to wait for the upload server and the end")
    sp.add_argument("--insecure", action="store_true", help="accepted for upstream's command lines; TLS is the "
                                                            "API server's")
    sp = sub.add_parser("console", parents=[common], help="connect to the serial console of a VMI")
    sp.add_argument("name", metavar="VMI")
    sp.add_argument("--timeout", type=float, default=None,
                    help="seconds to keep trying to connect (default 300); without a terminal also how long "
                         "to stream")
    sp.add_argument("--until", default=None, help="stream until this text appears (exit 0), then leave")
    sp.add_argument("--send", default=None, help="write this text to the console once connected (\\n, \\r escapes)")
    return p.parse_args(argv)


def _fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def _message(exc: ApiError) -> str:
    return exc.body.get("message") or str(exc)


def _grace_body(args) -> dict | None:
    """As upstream virtctl: stop --force --grace-period N sends {"gracePeriod": N}; restart --force sends
    {"gracePeriodSeconds": 0}."""
    if not getattr(args, "force", False):
        if getattr(args, "grace_period", None) is not None:
            raise SystemExit("virtctl: --grace-period needs --force")
        return None
    if args.command == "restart":
        return {"gracePeriodSeconds": 0 if args.grace_period is None else args.grace_period}
    if args.grace_period is None:
        raise SystemExit("virtctl: --force needs --grace-period")
    return {"gracePeriod": args.grace_period}


def _volumes(args, volumes: Volumes, namespace: str) -> int:
    try:
        if args.command == "addvolume":
            volumes.add(namespace, args.name, args.volume_name, disk_name=args.disk_name, serial=args.serial,
                        cache=args.cache, bus=args.bus, dry_run=args.dry_run)
            print(f"Successfully submitted add volume request to VM {args.name} for volume {args.volume_name}")
        elif args.command == "removevolume":
            volumes.remove(namespace, args.name, args.volume_name, dry_run=args.dry_run)
            print(f"Successfully submitted remove volume request to VM {args.name} for volume {args.volume_name}")
        else:
            def show(sent, total):
                print(f"\r{sent >> 20} MiB / {total >> 20} MiB", end="", file=sys.stderr, flush=True)
            volumes.upload(namespace, args.name, args.image_path, args.size, args.storage_class, args.wait_secs,
                           show if sys.stderr.isatty() else None)
            print(f"\nUploading {args.image_path} completed successfully" if sys.stderr.isatty()
                  else f"Uploading {args.image_path} completed successfully")
    except VolumeError as exc:
        return _fail(str(exc))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        api_client, default_ns = connect(args.kubeconfig, args.context)
    except Exception as exc:
        return _fail(f"cannot load the kubeconfig: {exc}")
    namespace = args.namespace or default_ns
    sub = Subresources(api_client)
    try:
        if args.command in ("start", "stop", "restart"):
            sub.vm(namespace, args.name, args.command, _grace_body(args))
            print(f"VM {args.name} was scheduled to {args.command}")
            return 0
        if args.command == "migrate":
            sub.vm(namespace, args.name, "migrate",
                   migration.migrate_options(_selector(args.added_node_selector), args.dry_run))
            print(f"VM {args.name} was scheduled to migrate" + (" (server dry run)" if args.dry_run else ""))
            return 0
        if args.command == "migrate-cancel":
            migration.cancel(api_client, namespace, args.name)
            print(f"VM {args.name} was scheduled to migrate-cancel")
            return 0
        if args.command in ("pause", "unpause", "soft-reboot", "reset"):
            sub.vmi(namespace, args.name, args.command.replace("-", ""))
            print(f"VMI {args.name} was scheduled to {args.command}")
            return 0
        if args.command in ("addvolume", "removevolume", "image-upload"):
            return _volumes(args, Volumes(api_client), namespace)
        if args.command in AGENT_QUERIES:
            print(json.dumps(getattr(sub, AGENT_QUERIES[args.command])(namespace, args.name), indent=2))
            return 0
        if args.command == "vnc":
            query = f"preserveSession={'true' if args.preserve_session else 'false'}"
            return forward.vnc(lambda: sub.stream(namespace, args.name, "vnc", query=query), args.address,
                               args.port, args.proxy_only, args.vnc_type, args.vnc_path)
        if args.command == "port-forward":
            return _port_forward(sub, namespace, args)
        if args.command == "ssh":
            return _ssh(namespace, args)
        if args.command == "ui":
            from kubevirt_runtime.ui.server import serve_local
            return serve_local(api_client, args.address, args.port, open_browser=not args.no_browser,
                               namespace=namespace, prometheus=args.prometheus)
        if args.command == "timeline":
            print(timeline_mod.table(sub.get_vmi(namespace, args.name)), end="")
            return 0
        return console(sub, namespace, args)
    except ApiError as exc:
        verb = args.command
        return _fail(f"{verb} {getattr(args, 'name', None) or getattr(args, 'target', '')}: {_message(exc)}")
    except (forward.UsageError, OSError, migration.NothingToCancel, ValueError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


AGENT_QUERIES = {"guestosinfo": "guestosinfo", "userlist": "userlist", "fslist": "filesystemlist"}


def _selector(text: str) -> dict:
    """key=value[,key=value...] -> dict (upstream's --addedNodeSelector)."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--addedNodeSelector: {item!r} is not key=value")
        out[key] = value
    return out


def _port_forward(sub, namespace, args) -> int:
    resource, name, target_ns = forward.parse_target(args.target)
    ports = [forward.parse_port(p) for p in args.ports]
    ns = target_ns or namespace

    def open_ws(remote, protocol):
        return sub.stream(ns, name, f"portforward/{remote}/{protocol}", resource=resource)
    return forward.port_forward(open_ws, ports, args.address, args.stdio == "true")


def _ssh(namespace, args) -> int:
    user, resource, name, target_ns = ssh_mod.parse_ssh_target(args.target)
    argv = ssh_mod.ssh_argv(ssh_mod.self_command(args.kubeconfig, args.context), resource, name,
                            target_ns or namespace, port=args.port, user=user or args.username,
                            identity=args.identity_file, known_hosts=args.known_hosts,
                            local_opts=args.local_ssh_opts, command=args.remote_command)
    return ssh_mod.run(argv)


# ---------------------------------------------------------------- console

def _open(sub, namespace, name, timeout):
    """Connects, retrying while the VMI is not there or not running yet (as upstream virtctl waits)."""
    return sub.open_console(namespace, name, timeout,
                            on_wait=lambda reason: print(f"waiting for the console: {reason}", file=sys.stderr))


def _unescape(text: str) -> bytes:
    return text.encode().decode("unicode_escape").encode("latin-1")


def console(sub, namespace, args) -> int:
    interactive = sys.stdin.isatty() and args.until is None and args.send is None
    connect_timeout = args.timeout if args.timeout is not None else 300.0
    ws = _open(sub, namespace, args.name, connect_timeout)
    if interactive:
        return _interactive(ws, args.name)
    return _stream(ws, args, args.timeout)


def _stream(ws, args, duration) -> int:
    from websockets.exceptions import ConnectionClosed
    out = sys.stdout.buffer
    deadline = time.monotonic() + duration if duration else None
    seen = b""
    marker = args.until.encode() if args.until else None
    if args.send:
        ws.send(_unescape(args.send))
    if not sys.stdin.isatty() and args.until is None and args.send is None:
        threading.Thread(target=_pump_stdin, args=(ws, False), daemon=True).start()
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                data = ws.recv(timeout=left)
            except TimeoutError:
                break
            except ConnectionClosed:
                return 0 if marker is None else 1
            data = data.encode() if isinstance(data, str) else data
            out.write(data)
            out.flush()
            if marker:
                seen = (seen + data)[-(len(marker) + 65536):]
                if marker in seen:
                    return 0
    finally:
        ws.close()
    if marker:
        print(f"\nError: {args.until!r} did not appear within {duration:.0f}s", file=sys.stderr)
        return 1
    return 0


def _pump_stdin(ws, escape: bool):
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            return
        if escape and ESCAPE in data:
            data = data[:data.index(ESCAPE)]
            if data:
                ws.send(data)
            ws.close()
            return
        try:
            ws.send(data)
        except Exception:  # the connection went away
            return


def _interactive(ws, name) -> int:
    import termios
    import tty

    from websockets.exceptions import ConnectionClosed
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    print(f"Successfully connected to {name} console. The escape sequence is ^]", file=sys.stderr)
    tty.setraw(fd)
    try:
        threading.Thread(target=_pump_stdin, args=(ws, True), daemon=True).start()
        out = sys.stdout.buffer
        while True:
            try:
                data = ws.recv()
            except ConnectionClosed:
                break
            out.write(data.encode() if isinstance(data, str) else data)
            out.flush()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        ws.close()
    print("", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
