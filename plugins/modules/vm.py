#!/usr/bin/python
"""Ansible module: KubeVirt VirtualMachines (create, update, delete, start, stop, restart, pause, unpause)."""
from __future__ import annotations

DOCUMENTATION = r"""
module: vm
short_description: Manage KubeVirt VirtualMachines and their lifecycle
description:
  - Creates, updates, replaces and deletes C(VirtualMachines), and starts, stops, restarts, pauses and unpauses them
    through the C(subresources.kubevirt.io) API, as C(virtctl) does.
  - Takes the options of C(kubevirt.core.kubevirt_vm) 2.3.0 with the same names, types, defaults and meaning, so
    a task written for it runs unchanged here; O(state=paused) and O(state=unpaused) are additions.
  - C(changed) is honest for every state. An update that leaves the object as it was, a start of a running VM and
    a stop of a stopped one report C(changed=false).
  - Check mode predicts what a real run would do. Object writes are sent as server-side dry runs, so webhooks and
    validation answer as they would; lifecycle requests are decided from the VM and its instance by the same
    rules a real run uses, and only reported. With C(--diff) the task shows the object's diff and the
    lifecycle change (run strategy, printableStatus, instance).
  - A request the API refuses fails the task with what was refused. A rejected spec lists the webhook's field
    causes one per line. A 403 names the verb and the resource.
  - Needs the kubevirt-runtime Python package on the host that runs the module; it ships inside this
    collection (see the requirements).
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
    description:
      - Name of the C(VirtualMachine).
      - Mutually exclusive with O(generate_name).
    type: str
  generate_name:
    description:
      - Prefix of a name the API server completes with random characters; a new VM is created on every run.
      - Only for O(state=present). Mutually exclusive with O(name).
    type: str
  namespace:
    description: Namespace of the C(VirtualMachine).
    type: str
    required: true
  annotations:
    description: Annotations of the C(VirtualMachine), also set on its template (and so on its instances).
    type: dict
  labels:
    description: Labels of the C(VirtualMachine), also set on its template (and so on its instances).
    type: dict
  running:
    description:
      - Whether the VM runs (C(spec.running), deprecated upstream in favour of O(run_strategy)).
      - When neither O(running) nor O(run_strategy) is given, O(state=present) sets C(spec.running=true).
      - Mutually exclusive with O(run_strategy).
    type: bool
  run_strategy:
    description:
      - The VM's C(spec.runStrategy); clears C(spec.running).
      - Mutually exclusive with O(running).
    type: str
    choices: [Always, Halted, Manual, RerunOnFailure, Once]
  grace_period_seconds:
    description:
      - Grace period in seconds for O(state=stopped) and O(state=restarted).
      - A restart takes only V(0) (force) or nothing (the VM's own grace period).
    type: int
  instancetype:
    description: The C(spec.instancetype) matcher (C(name), C(kind), C(revisionName), C(inferFromVolume), ...).
    type: dict
  preference:
    description: The C(spec.preference) matcher.
    type: dict
  data_volume_templates:
    description: The C(spec.dataVolumeTemplates).
    type: list
    elements: dict
  spec:
    description:
      - The spec of the VM's template (a VirtualMachineInstance spec).
      - "Defaults to C({domain: {devices: {}}})."
    type: dict
  wait:
    description:
      - Wait until the VM reached the state. A running VM is Ready; a stopped VM is Ready=False with reason
        VMINotExists; O(state=restarted) waits for a new instance; O(state=paused) for the Paused condition;
        O(state=present) waits as its O(running) / O(run_strategy) says (Manual only for the object).
      - When the VM ends up running, the result also holds the VMI and its startup timeline.
      - Never waits in check mode.
    type: bool
    default: false
  wait_sleep:
    description: Seconds between two looks while waiting.
    type: int
    default: 5
  wait_timeout:
    description: Seconds to wait at most; the task fails when the state was not reached by then.
    type: int
    default: 120
  delete_options:
    description: Options of the deletion (O(state=absent)).
    type: dict
    suboptions:
      propagationPolicy:
        description: How dependents are deleted (the kind's default when not given).
        type: str
        choices: [Foreground, Background, Orphan]
      preconditions:
        description: Delete only if the VM still matches these.
        type: dict
        suboptions:
          resourceVersion:
            description: The VM's C(metadata.resourceVersion).
            type: str
          uid:
            description: The VM's C(metadata.uid).
            type: str
  state:
    description:
      - V(present) creates the VM when missing and otherwise merge-patches it with what the task says.
      - V(absent) deletes it.
      - V(started), V(stopped) and V(restarted) first apply the task's object as V(present) does (without
        touching C(running) / C(runStrategy) unless the task sets them), then send a start, stop or restart
        request when one is needed.
      - V(paused) and V(unpaused) pause or unpause the VM's running instance.
    type: str
    default: present
    choices: [absent, present, restarted, started, stopped, paused, unpaused]
  force:
    description: With O(state=present), replace an existing VM (PUT) instead of patching it.
    type: bool
    default: false
  hidden_fields:
    description:
      - Fields left out of the result and the diff, and ignored when deciding C(changed), such as
        V(metadata.managedFields) or V(metadata.annotations[kubemacpool.io/transaction-timestamp]).
    type: list
    elements: str
    default: ['metadata.annotations[kubemacpool.io/transaction-timestamp]', metadata.managedFields]
requirements:
  - python >= 3.11
  - kubevirt-runtime (ships in this collection; C(python3 -m pip install <collection directory>)), which brings
    kubernetes, PyYAML and websockets
seealso:
  - module: kubevirt.ops.vm_info
  - module: kubevirt.ops.vm_console
"""

EXAMPLES = r"""
- name: A VM from the demo containerDisk, with an SSH key, started and waited for
  kubevirt.ops.vm:
    name: demo
    namespace: default
    run_strategy: Always
    labels:
      app: demo
    spec:
      domain:
        memory:
          guest: 128Mi
        devices:
          disks:
            - name: containerdisk
              disk: {bus: virtio}
            - name: cloudinitdisk
              disk: {bus: virtio}
          interfaces:
            - name: default
              masquerade: {}
              ports:
                - {name: ssh, port: 22}
      networks:
        - name: default
          pod: {}
      volumes:
        - name: containerdisk
          containerDisk:
            image: docker.io/kubevirt-ops/demo-disk:devel
        - name: cloudinitdisk
          cloudInitNoCloud:
            userData: |
              #cloud-config
              ssh_authorized_keys:
                - ssh-ed25519 AAAA... me@example.com
    wait: true
    wait_timeout: 600
  register: demo

- name: How long each step of the start took
  ansible.builtin.debug:
    msg: "{{ demo.timeline | map(attribute='step') | zip(demo.timeline | map(attribute='seconds')) | list }}"

- name: Stop it (changed=false when it is stopped already)
  kubevirt.ops.vm:
    name: demo
    namespace: default
    state: stopped
    wait: true

- name: Restart at once
  kubevirt.ops.vm:
    name: demo
    namespace: default
    state: restarted
    grace_period_seconds: 0
    wait: true

- name: Pause it
  kubevirt.ops.vm:
    name: demo
    namespace: default
    state: paused
    wait: true

- name: Delete it and wait until it is gone
  kubevirt.ops.vm:
    name: demo
    namespace: default
    state: absent
    wait: true
"""

RETURN = r"""
result:
  description:
    - The C(VirtualMachine) as the API server returned it (after the wait, when waiting), hidden fields left
      out; with O(state=absent) the deletion's answer, empty when there was nothing to delete.
  returned: success
  type: dict
method:
  description: What was done to the object (V(create), V(update), V(replace), V(delete)).
  returned: success
  type: str
  sample: update
duration:
  description: Seconds spent waiting.
  returned: when O(wait=true)
  type: int
  sample: 48
diff:
  description:
    - The parts of the object that changed (C(before), C(after)), and for lifecycle states the run strategy,
      printableStatus and instance before and as they will be after.
  returned: in diff mode, when something changed
  type: dict
vmi:
  description: The VM's C(VirtualMachineInstance) once running.
  returned: when O(wait=true) and the VM ended up running
  type: dict
timeline:
  description:
    - When the running instance's startup steps happened, from the VMI's C(status.startupTimeline) where the
      cluster records it (kubevirt-ops, milliseconds), else from the API's own records (one-second resolution).
    - Steps C(vmi_created), C(pod_scheduled), C(pod_ready), C(domain_started), C(vmi_running); C(time) is the
      server's timestamp and C(seconds) the time since the VMI was created (null when not recorded or not
      readable with the task's credentials).
  returned: when O(wait=true) and the VM ended up running
  type: list
  elements: dict
  sample:
    - {step: vmi_created, time: '2026-01-01T10:00:00Z', seconds: 0.0}
    - {step: vmi_running, time: '2026-01-01T10:00:31Z', seconds: 31.0}
status:
  description: HTTP status of a refused request.
  returned: failure, when the API refused a request
  type: int
  sample: 422
causes:
  description: The field causes of a rejected object (C(field), C(message), C(reason)).
  returned: failure, when the API rejected the object with causes
  type: list
  elements: dict
"""

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.args import DEFAULT_HIDDEN_FIELDS, with_auth
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.core import module as kubevirt_module
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.runner import run_vm

LIFECYCLE_STATES = ["started", "stopped", "restarted", "paused", "unpaused"]


def argument_spec() -> dict:
    return with_auth({
        "api_version": {"type": "str", "default": "kubevirt.io/v1"},
        "name": {"type": "str"},
        "generate_name": {"type": "str"},
        "namespace": {"type": "str", "required": True},
        "annotations": {"type": "dict"},
        "labels": {"type": "dict"},
        "running": {"type": "bool"},
        "run_strategy": {"type": "str", "choices": ["Always", "Halted", "Manual", "RerunOnFailure", "Once"]},
        "grace_period_seconds": {"type": "int"},
        "instancetype": {"type": "dict"},
        "preference": {"type": "dict"},
        "data_volume_templates": {"type": "list", "elements": "dict"},
        "spec": {"type": "dict"},
        "wait": {"type": "bool", "default": False},
        "wait_sleep": {"type": "int", "default": 5},
        "wait_timeout": {"type": "int", "default": 120},
        "delete_options": {"type": "dict", "options": {
            "propagationPolicy": {"type": "str", "choices": ["Foreground", "Background", "Orphan"]},
            "preconditions": {"type": "dict", "options": {"resourceVersion": {"type": "str"},
                                                          "uid": {"type": "str"}}}}},
        "state": {"type": "str", "default": "present", "choices": ["absent", "present"] + LIFECYCLE_STATES},
        "force": {"type": "bool", "default": False},
        "hidden_fields": {"type": "list", "elements": "str", "default": DEFAULT_HIDDEN_FIELDS},
    })


def main():
    module = kubevirt_module(
        argument_spec(),
        mutually_exclusive=[("name", "generate_name"), ("running", "run_strategy")],
        required_one_of=[("name", "generate_name")],
        required_if=[("state", state, ("name",)) for state in LIFECYCLE_STATES],
        supports_check_mode=True,
    )
    run_vm(module)


if __name__ == "__main__":
    main()
