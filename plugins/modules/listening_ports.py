#!/usr/bin/python
"""Ansible module: which of the given TCP ports are listened on, and by which pid."""
from __future__ import annotations

DOCUMENTATION = r"""
module: listening_ports
short_description: Report the owners of listening TCP ports (from /proc, no extra tools)
description:
  - For each port asked, reports the pid listening on it (IPv4 or IPv6, any address), or nothing.
  - Never changes anything.
options:
  ports: {description: TCP ports to look at., type: list, elements: int, required: true}
author: [kubevirt-ops developers (!UNKNOWN)]
"""

EXAMPLES = r"""
- kubevirt.ops.listening_ports:
    ports: [6443, 2379]
  register: ports
"""

RETURN = r"""
listeners: {description: Port (as a string) -> pid (null when the owner is not visible)., type: dict, returned: always}
"""

import os

from ansible.module_utils.basic import AnsibleModule

LISTEN = "0A"


def listening_inodes(ports):
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == LISTEN and port in ports:
                found[fields[9]] = port
    return found


def owners(inodes):
    pids = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids[inodes[target[8:-1]]] = int(pid)
        except OSError:
            continue
    return pids


def main():
    module = AnsibleModule(argument_spec=dict(ports=dict(type="list", elements="int", required=True)),
                           supports_check_mode=True)
    inodes = listening_inodes(set(module.params["ports"]))
    pids = owners(inodes)
    module.exit_json(changed=False, listeners={str(port): pids.get(port) for port in sorted(set(inodes.values()))})


if __name__ == "__main__":
    main()
