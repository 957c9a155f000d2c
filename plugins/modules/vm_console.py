#!/usr/bin/python
"""Ansible module: drive a VM's serial console (expect / send), e.g. to configure a VM that has no network."""
from __future__ import annotations

DOCUMENTATION = r"""
module: vm_console
short_description: Automate a KubeVirt VM's serial console
description:
  - Connects to the serial console of a C(VirtualMachineInstance) through the C(subresources.kubevirt.io) console
    (as C(virtctl console) does) and runs O(steps) in order. A step sends text, then waits for a regular
    expression.
  - An expectation only looks at output that arrived after the previous step's match and after the step's own
    send, so an earlier prompt or earlier output cannot answer it. The first step may match output the console
    replays from before the connection (kubevirt-ops' virt-handler replays the last 64 KiB).
  - Returns everything the console printed and each step's match and groups.
  - C(changed) is true when a step sends something (typing into a console may change the guest). Check mode
    opens nothing and sends nothing.
version_added: 0.1.0
author: [kubevirt-ops developers (!UNKNOWN)]
extends_documentation_fragment:
  - kubevirt.ops.kubevirt_auth_options
options:
  name:
    description: Name of the C(VirtualMachineInstance) (the VM's name).
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    required: true
  steps:
    description: What to do on the console, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      send:
        description: Text to type (followed by a newline unless O(steps[].newline=false)).
        type: str
      expect:
        description: A Python regular expression (multi-line mode) to wait for after the send.
        type: str
      timeout:
        description: Seconds this step may wait for O(steps[].expect); O(timeout) when not given.
        type: float
      newline:
        description: Whether O(steps[].send) is followed by a newline.
        type: bool
        default: true
  timeout:
    description: Seconds a step may wait for its expectation, unless the step says otherwise.
    type: float
    default: 60
  connect_timeout:
    description: Seconds to keep trying to connect while the instance does not exist or does not run yet.
    type: float
    default: 120
requirements:
  - python >= 3.11
  - kubevirt-runtime (ships in this collection; C(python3 -m pip install <collection directory>)), with websockets
seealso:
  - module: kubevirt.ops.vm
"""

EXAMPLES = r"""
- name: Wait for the guest to come up, then ask it for its kernel
  kubevirt.ops.vm_console:
    name: demo
    namespace: default
    timeout: 30
    steps:
      - expect: "kubevirt-ops demo: login ready"
        timeout: 600
      - send: "uname -r"
        expect: '(\d+\.\d+\.\d+\S*)'
  register: console

- name: The kernel version the guest printed
  ansible.builtin.debug:
    msg: "{{ console.matches[-1][0] }}"

- name: Log in on a login prompt and configure the network before the VM has one
  kubevirt.ops.vm_console:
    name: legacy
    namespace: default
    steps:
      - expect: "login: $"
        timeout: 300
      - send: root
        expect: "Password: $"
      - send: "{{ root_password }}"
        expect: "# $"
      - send: "ip addr add 192.0.2.10/24 dev eth0 && echo done"
        expect: "^done"
"""

RETURN = r"""
transcript:
  description: Everything the console printed during the session (UTF-8, undecodable bytes replaced).
  returned: success
  type: str
steps:
  description: Per step, C(send), C(expect), C(matched) (the matched text), C(groups) and C(named) (named groups).
  returned: success
  type: list
  elements: dict
matches:
  description: The groups of each step that expected something, in order.
  returned: success
  type: list
  elements: list
"""

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.args import with_auth
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.core import module as kubevirt_module
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.runner import run_console


def argument_spec() -> dict:
    return with_auth({
        "name": {"type": "str", "required": True},
        "namespace": {"type": "str", "required": True},
        "steps": {"type": "list", "elements": "dict", "required": True, "options": {
            "send": {"type": "str"},
            "expect": {"type": "str"},
            "timeout": {"type": "float"},
            "newline": {"type": "bool", "default": True},
        }, "required_one_of": [("send", "expect")]},
        "timeout": {"type": "float", "default": 60},
        "connect_timeout": {"type": "float", "default": 120},
    })


def main():
    module = kubevirt_module(argument_spec(), supports_check_mode=True)
    run_console(module)


if __name__ == "__main__":
    main()
