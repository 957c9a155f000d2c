#!/usr/bin/python
"""Ansible module: a daemon kept running by kvo-supervise (nodes where systemd is not PID 1)."""
from __future__ import annotations

DOCUMENTATION = r"""
module: supervised_service
short_description: Run a daemon under kvo-supervise with pid files and a log
description:
  - Where systemd is not PID 1, keeps one daemon running with a small supervisor that records
    its own pid and the daemon's under I(state_dir)/run, logs to I(state_dir)/log/NAME.log and
    restarts the daemon with backoff when it exits.
  - Only processes recorded in those pid files are ever signalled.
options:
  name: {description: Service name (file names derive from it)., type: str, required: true}
  state:
    description: C(started) keeps it running (restarting when argv, env or checksum change), C(restarted) always
      restarts, C(stopped) stops it.
    type: str
    choices: [started, stopped, restarted]
    default: started
  argv: {description: The daemon's command line., type: list, elements: str}
  env: {description: Extra environment., type: dict, default: {}}
  cwd: {description: Working directory., type: path}
  checksum: {description: A digest of the daemon's config files; a new value restarts it., type: str}
  state_dir: {description: The cluster's state directory on the node., type: path, required: true}
  supervisor: {description: Path of kvo-supervise.py on the node., type: path, required: true}
author: [kubevirt-ops developers (!UNKNOWN)]
"""

EXAMPLES = r"""
- name: Keep etcd running
  kubevirt.ops.supervised_service:
    name: etcd
    argv: [/opt/kubevirt-ops/bin/etcd, --config-file, /root/.local/state/kubevirt-ops/c1/etcd/etcd.yaml]
    state_dir: /root/.local/state/kubevirt-ops/c1
    supervisor: /root/.local/state/kubevirt-ops/c1/bin/kvo-supervise.py
"""

RETURN = r"""
pid: {description: The daemon's pid (absent when stopped)., type: int, returned: when running}
log: {description: The daemon's log file., type: str, returned: always}
"""

import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubevirt.ops.plugins.module_utils import supervisor as sv


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="started", choices=["started", "stopped", "restarted"]),
            argv=dict(type="list", elements="str"),
            env=dict(type="dict", default={}),
            cwd=dict(type="path"),
            checksum=dict(type="str", no_log=False),
            state_dir=dict(type="path", required=True),
            supervisor=dict(type="path", required=True),
        ),
        required_if=[("state", "started", ["argv"]), ("state", "restarted", ["argv"])],
        supports_check_mode=True,
    )
    p = module.params
    paths = sv.ServicePaths(p["state_dir"], p["name"])
    running = sv.supervisor_pid(paths) is not None
    result = dict(changed=False, log=paths.log)

    if p["state"] == "stopped":
        result["changed"] = running
        if running and not module.check_mode:
            sv.stop(paths)
        module.exit_json(**result)

    spec = sv.desired_spec(paths, p["argv"], p["env"], p["cwd"], p["checksum"])
    current = sv.current_spec(paths)
    must_restart = p["state"] == "restarted" or (running and current != spec)
    result["changed"] = must_restart or not running
    if result["changed"]:
        result["diff"] = dict(before=current or {}, after=spec)
    if module.check_mode or not result["changed"]:
        if running:
            result["pid"] = sv.read_pid(paths.child_pidfile)
        module.exit_json(**result)
    if running:
        sv.stop(paths)
    if not sv.start(paths, spec, p["supervisor"], sys.executable):
        tail = ""
        try:
            with open(paths.log, "rb") as f:
                tail = f.read()[-3000:].decode(errors="replace")
        except FileNotFoundError:
            pass
        module.fail_json(msg=f"{p['name']} did not stay up; last log lines from {paths.log}:\n{tail}", **result)
    result["pid"] = sv.read_pid(paths.child_pidfile)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
