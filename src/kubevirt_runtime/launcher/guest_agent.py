"""What the QEMU guest agent tells, in upstream's shapes (kubevirt.io/v1 VirtualMachineInstanceGuestAgentInfo,
VirtualMachineInstanceGuestOSUserList, VirtualMachineInstanceFileSystemList).

`query(dom)` asks the agent through libvirt (qemuAgentCommand: the raw guest-* commands, as upstream's agent
poller does); the shaping functions below are pure and take the agent's raw answers.
"""
from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)

AGENT_TIMEOUT = 5  # seconds per agent command
COMMANDS = {"info": "guest-info", "os": "guest-get-osinfo", "hostname": "guest-get-host-name",
            "timezone": "guest-get-timezone", "users": "guest-get-users", "fs": "guest-get-fsinfo"}
OS_FIELDS = {"name": "name", "kernel-release": "kernelRelease", "version": "version", "pretty-name": "prettyName",
             "version-id": "versionId", "kernel-version": "kernelVersion", "machine": "machine", "id": "id"}


class AgentUnavailable(RuntimeError):
    """No agent connected, or it did not answer."""


def command(dom, execute: str, timeout: int = AGENT_TIMEOUT):
    """The `return` value of one guest agent command."""
    import libvirt
    import libvirt_qemu
    try:
        raw = libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": execute}), timeout, 0)
    except libvirt.libvirtError as exc:
        raise AgentUnavailable(f"guest agent: {execute}: {exc.get_error_message()}") from None
    return json.loads(raw).get("return")


def query(dom, what: tuple[str, ...]) -> dict:
    """{key: raw answer} for the keys of COMMANDS in `what`; a command the agent lacks gives None."""
    answers = {}
    for key in what:
        try:
            answers[key] = command(dom, COMMANDS[key])
        except AgentUnavailable as exc:
            if key == what[0]:
                raise  # the first one failing means there is no agent to ask
            log.info("%s", exc)
            answers[key] = None
    return answers


def os_info(raw: dict | None) -> dict:
    return {ours: raw[theirs] for theirs, ours in OS_FIELDS.items() if (raw or {}).get(theirs)}


def users(raw: list | None) -> list[dict]:
    out = []
    for user in raw or []:
        entry = {"userName": user.get("user", "")}
        if user.get("domain"):
            entry["domain"] = user["domain"]
        if user.get("login-time") is not None:
            entry["loginTime"] = float(user["login-time"])
        out.append(entry)
    return out


def filesystems(raw: list | None) -> list[dict]:
    out = []
    for fs in raw or []:
        entry = {"diskName": fs.get("name", ""), "mountPoint": fs.get("mountpoint", ""),
                 "fileSystemType": fs.get("type", ""), "usedBytes": int(fs.get("used-bytes") or 0),
                 "totalBytes": int(fs.get("total-bytes") or 0)}
        disks = [{"busType": d.get("bus-type", ""), **({"serial": d["serial"]} if d.get("serial") else {})}
                 for d in fs.get("disk") or []]
        if disks:
            entry["disk"] = disks
        out.append(entry)
    return out


def agent_info(answers: dict) -> dict:
    """VirtualMachineInstanceGuestAgentInfo from the raw answers of query(dom, tuple(COMMANDS))."""
    info = answers.get("info") or {}
    result = {"guestAgentVersion": info.get("version", ""),
              "supportedCommands": [{"name": c["name"], "enabled": bool(c.get("enabled"))}
                                    for c in info.get("supported_commands") or []],
              "hostname": (answers.get("hostname") or {}).get("host-name", ""),
              "os": os_info(answers.get("os"))}
    timezone = answers.get("timezone")
    if timezone:
        result["timezone"] = f"{timezone.get('zone', '')}, {int(timezone.get('offset') or 0)}"
    if answers.get("users"):
        result["userList"] = users(answers["users"])
    result["fsInfo"] = {"disks": filesystems(answers.get("fs"))}
    return result


def user_list(raw: list | None) -> dict:
    return {"metadata": {}, "items": users(raw)}


def filesystem_list(raw: list | None) -> dict:
    return {"metadata": {}, "items": filesystems(raw)}
