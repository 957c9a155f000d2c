#!/usr/bin/python
"""Ansible module: read KubeVirt VirtualMachineInstances, optionally waiting until they are Ready."""
from __future__ import annotations

DOCUMENTATION = r"""
module: vmi_info
short_description: Describe KubeVirt VirtualMachineInstances
description:
  - Lists C(VirtualMachineInstances) by name, namespace, label and field selectors, and can wait until they are
    Ready.
  - Takes the options of C(kubevirt.core.kubevirt_vmi_info) 2.3.0; never changes anything.
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
    description: Name of the C(VirtualMachineInstance).
    type: str
  namespace:
    description: Namespace to look in; all namespaces when not given.
    type: str
  label_selectors:
    description: Label selectors the VMIs must match (all of them).
    type: list
    elements: str
    default: []
  field_selectors:
    description: Field selectors the VMIs must match (all of them), such as V(status.phase=Running).
    type: list
    elements: str
    default: []
  wait:
    description: Wait until something matches, then until each match is Ready.
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
  - module: kubevirt.ops.vm_info
"""

EXAMPLES = r"""
- name: The instance of a VM, once Ready
  kubevirt.ops.vmi_info:
    name: demo
    namespace: default
    wait: true
  register: demo_vmi

- name: Its address
  ansible.builtin.debug:
    msg: "{{ demo_vmi.resources[0].status.interfaces[0].ipAddress }}"
"""

RETURN = r"""
api_found:
  description: Whether the API server serves O(api_version) C(VirtualMachineInstances).
  returned: always
  type: bool
resources:
  description: The matching C(VirtualMachineInstances) (C(apiVersion), C(kind), C(metadata), C(spec), C(status)).
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.args import INFO_ARG_SPEC, with_auth
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.core import module as kubevirt_module
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.runner import run_info


def main():
    module = kubevirt_module(with_auth(INFO_ARG_SPEC), supports_check_mode=True)
    run_info(module, "VirtualMachineInstance", {"type": "Ready", "status": True})


if __name__ == "__main__":
    main()
