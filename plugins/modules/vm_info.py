#!/usr/bin/python
"""Ansible module: read KubeVirt VirtualMachines, optionally waiting until they run or are stopped."""
from __future__ import annotations

DOCUMENTATION = r"""
module: vm_info
short_description: Describe KubeVirt VirtualMachines
description:
  - Lists C(VirtualMachines) by name, namespace, label and field selectors, and can wait until they are running
    (Ready) or stopped (Ready=False with reason VMINotExists).
  - Takes the options of C(kubevirt.core.kubevirt_vm_info) 2.3.0; never changes anything.
version_added: 0.1.0
author: [kubevirt-ops developers (!UNKNOWN)]
extends_documentation_fragment:
  - kubevirt.ops.kubevirt_auth_options
options:
  api_version:
    description: API version of the KubeVirt kinds.
    type: str
    default: kubevirt.io/v1
  name:
    description: Name of the C(VirtualMachine).
    type: str
  namespace:
    description: Namespace to look in; all namespaces when not given.
    type: str
  label_selectors:
    description: Label selectors the VMs must match (all of them).
    type: list
    elements: str
    default: []
  field_selectors:
    description: Field selectors the VMs must match (all of them).
    type: list
    elements: str
    default: []
  running:
    description:
      - What O(wait) waits for; V(true) (the default) for running VMs, V(false) for stopped ones.
      - Needs O(wait).
    type: bool
  wait:
    description:
      - Wait until something matches, then until each match is running (or stopped, see O(running)).
    type: bool
  wait_sleep:
    description: Seconds between two looks while waiting.
    type: int
    default: 5
  wait_timeout:
    description: Seconds to wait at most.
    type: int
    default: 120
  hidden_fields:
    description: Fields left out of the returned objects.
    type: list
    elements: str
    default: ['metadata.annotations[kubemacpool.io/transaction-timestamp]', metadata.managedFields]
requirements:
  - python >= 3.11
  - kubevirt-runtime (ships in this collection; C(python3 -m pip install <collection directory>))
seealso:
  - module: kubevirt.ops.vm
  - module: kubevirt.ops.vmi_info
"""

EXAMPLES = r"""
- name: One VM
  kubevirt.ops.vm_info:
    name: demo
    namespace: default
  register: demo

- name: Every VM labelled app=demo, in every namespace
  kubevirt.ops.vm_info:
    label_selectors: [app=demo]

- name: Wait until it is stopped
  kubevirt.ops.vm_info:
    name: demo
    namespace: default
    running: false
    wait: true
"""

RETURN = r"""
api_found:
  description: Whether the API server serves O(api_version) C(VirtualMachines).
  returned: always
  type: bool
resources:
  description: The matching C(VirtualMachines) (C(apiVersion), C(kind), C(metadata), C(spec), C(status)).
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.args import INFO_ARG_SPEC, with_auth
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.core import module as kubevirt_module
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.runner import run_info

RUNNING = {"type": "Ready", "status": True}
STOPPED = {"type": "Ready", "status": False, "reason": "VMINotExists"}


def main():
    spec = with_auth(INFO_ARG_SPEC)
    spec["running"] = {"type": "bool"}
    module = kubevirt_module(spec, required_by={"running": "wait"}, supports_check_mode=True)
    run_info(module, "VirtualMachine", STOPPED if module.params["running"] is False else RUNNING)


if __name__ == "__main__":
    main()
