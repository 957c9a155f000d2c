"""The command channel between virt-handler and virt-launcher (a unix socket, launcher.sock).

Version 1, newline-delimited JSON (one object per line, UTF-8):

1. Handshake. The client sends {"version": 1}; the server answers {"version": 1, "ok": true} or
   {"version": 1, "ok": false, "error": "..."} (then closes) when it does not speak that version.
2. Requests: {"id": <int>, "cmd": <name>, ...args}; answers {"id": <same>, "ok": true, "result": ...}
   or {"id": <same>, "ok": false, "error": "..."}.
     sync       {"vmi": <VMI dict>, "options": {"accel": "kvm"|"tcg"|null, "useEmulation": bool}}
                starts the domain if it is not running yet (idempotent); result: domain state
     shutdown   {"gracePeriod": <seconds, optional>}  ACPI power button, destroy after the grace period
     kill       destroy now
     pause / unpause
     state      result: domain state (below)
     guestinfo  result: guest OS info from the guest agent ({} without an agent)
     softreboot through the guest agent when connected, else the ACPI power button
     reset      hard reset (the domain keeps running)
     guestosinfo / userlist / filesystemlist
                result: upstream's VirtualMachineInstanceGuestAgentInfo / GuestOSUserList / FileSystemList
                (error when no agent is connected)
     stats      result: {"stats": libvirt's domain stats (raw keys), "drives": {target dev: disk name},
                "interfaces": {target dev: interface name}} (virt-handler's metrics)
     attachvolume {"disk": <the VMI's disk>, "volume": <the VMI's volume>}  attach <hotplug dir>/<volume>.img
                to the running domain; result: domain state
     detachvolume {"volume": <name>}  detach it; result: domain state
     snapshotvolumes {"id": <snapshot uid>, "volumes": [names]}  a point-in-time copy of those disks beside
                them (.vmsnapshot-<id>.qcow2), the guest frozen for the cut when its agent runs; result:
                {"files": {volume: file}, "frozen", "frozenFilesystems", "guestAgent", "seconds"}
     ping       result: "pong"
     prepare_migration_target {"vmi": <VMI dict>, "options": {"migrationUid", "network"}}
                a fresh launcher becomes the target of a live migration (volumes, network, socket directory
                ready; see launcher/migration.py); the domain arrives through libvirt
     migrate    {"options": {"migrationUid", "bandwidthMiB", "progressTimeout", "completionTimeoutPerGiB",
                "allowAutoConverge", "pathMap"}} starts the live migration of the running domain; returns at once
     abort_migration  aborts a migration in progress (it then ends failed, the domain keeps running here)
3. Subscription: {"id": n, "cmd": "subscribe"} -> ok, then the server pushes
   {"event": "domain", "domain": <state>} whenever the domain changes (libvirt lifecycle and agent
   events), starting with the current state. The connection then carries only events.
4. Console: {"id": n, "cmd": "console", "history": bool} -> ok, then the connection is a raw byte
   stream to and from the guest's serial console (history: first replay recent output).
5. Streams: {"id": n, "cmd": "vnc"} (QEMU's VNC server: RFB) or {"id": n, "cmd": "portforward", "port": P,
   "protocol": "tcp"} (a TCP connection to the guest's port P) -> ok, then raw bytes both ways until
   either side closes; or {"ok": false, "error"} and the connection stays usable.

Domain state: {"name", "uid", "status": "Missing"|"Running"|"Paused"|"Shutdown"|"Shutoff"|"Crashed"|
"NoState", "reason", "final": bool, "outcome": "Succeeded"|"Failed"|null (set when final),
"accel", "interfaces": [...], "guestOSInfo": {...}, "startedAt", "message", "timeline": {stage: time},
"migration": null | {"role": "source"|"target", "migrationUid", "startTimestamp", "endTimestamp", "completed",
"failed", "failureReason", "abortStatus", "mode", "prepared", "domainDetected", "domainReadyTimestamp",
"downtimeMs"},
"volumes": [{"name", "target", "hotplug": bool}]}
(timeline: the startup stages this launcher saw, ContainersStarted ... FirstConsoleOutput, see
kubevirt_runtime/api/timeline.py). A domain that ended because its pod was deleted (SIGTERM) without
virt-handler asking for the stop is final with outcome "Failed" and reason "PodTerminated"; one that left for
another node is final with status "Shutoff", reason "Migrated" and outcome "Succeeded".
"""
from __future__ import annotations

import json
import socket

VERSION = 1
MAX_LINE = 16 << 20  # a VMI dict is far smaller


class ProtocolError(Exception):
    pass


def encode(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class LineReader:
    """Reads newline-delimited JSON from a socket, keeping bytes after the last line (for the console)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                if self.buf:
                    raise ProtocolError("connection closed mid-message")
                return None
            self.buf += chunk
            if len(self.buf) > MAX_LINE:
                raise ProtocolError("message too long")
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"bad message: {exc}") from None
