#!/usr/bin/python
"""Ansible module: server-side apply (or delete) Kubernetes objects with kubectl, idempotently."""
from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_apply
short_description: Apply or delete Kubernetes objects with server-side apply, reporting changes honestly
description:
  - C(state=present) asks the API server first (C(kubectl diff --server-side), a server-side dry run)
    whether an apply would change anything; only then it applies with C(kubectl apply --server-side)
    under O(field_manager). So C(changed) is true only when an object is created or modified.
  - When the dry run cannot tell (for example a Namespace or CRD that later objects need is part of the
    same call), the module applies and reports C(changed=true).
  - C(state=absent) deletes the objects that exist and reports C(changed) only if there were any.
  - Needs only a C(kubectl) binary and a kubeconfig; no Python Kubernetes client.
  - Supports check mode (the dry-run diff decides C(changed)) and diff mode (kubectl's diff text).
options:
  definition:
    description: Objects to manage, as a dict, a list of dicts, or a YAML string (one or more documents).
    type: raw
  src:
    description: A file of YAML documents on the managed host. Combined with O(definition) if both are given.
    type: path
  state:
    description: Whether the objects should exist.
    type: str
    choices: [present, absent]
    default: present
  kubeconfig:
    description: kubeconfig file; without it kubectl uses its own defaults (C($KUBECONFIG), in-cluster).
    type: path
  context:
    description: kubeconfig context.
    type: str
  kubectl:
    description: The kubectl binary.
    type: path
    default: kubectl
  field_manager:
    description: Field manager of the server-side apply.
    type: str
    default: kubevirt-ops
  force_conflicts:
    description: Take over fields another manager owns (C(--force-conflicts)).
    type: bool
    default: true
  wait:
    description: With C(state=absent), wait until the objects are gone (finalizers done).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for deletion.
    type: int
    default: 300
author: [kubevirt-ops developers (!UNKNOWN)]
"""

EXAMPLES = r"""
- name: The kubevirt namespace
  kubevirt.ops.k8s_apply:
    kubeconfig: /root/.local/state/kubevirt-ops/kubevirt-ops/admin.kubeconfig
    kubectl: /root/.local/state/kubevirt-ops/kubevirt-ops/bin/kubectl
    definition:
      apiVersion: v1
      kind: Namespace
      metadata: {name: kubevirt}

- name: Everything rendered from a template
  kubevirt.ops.k8s_apply:
    definition: "{{ lookup('ansible.builtin.template', 'rbac.yaml.j2') }}"

- name: Remove the CRDs
  kubevirt.ops.k8s_apply:
    src: /tmp/crds.yaml
    state: absent
"""

RETURN = r"""
objects:
  description: kind/namespace/name of every object in the request.
  type: list
  elements: str
  returned: always
applied:
  description: What kubectl apply reported (C(kind.group/name)); empty when nothing had to change.
  type: list
  elements: str
  returned: state=present
deleted:
  description: Objects that existed and were (or in check mode would be) deleted.
  type: list
  elements: str
  returned: state=absent
diff_reliable:
  description: False when the server-side dry run could not compute a diff (then an apply ran anyway).
  type: bool
  returned: state=present
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubevirt.ops.plugins.module_utils import k8s_apply as ka


def run(module, cmd, stdin, what, ok=(0,)):
    rc, out, err = module.run_command(cmd, data=stdin, binary_data=True)
    if rc not in ok:
        module.fail_json(msg=f"{what} failed ({rc}): {(err or out).strip()}", cmd=cmd, rc=rc, stdout=out, stderr=err)
    return rc, out, err


def main():
    module = AnsibleModule(
        argument_spec=dict(
            definition=dict(type="raw"),
            src=dict(type="path"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            kubeconfig=dict(type="path"),
            context=dict(type="str"),
            kubectl=dict(type="path", default="kubectl"),
            field_manager=dict(type="str", default="kubevirt-ops"),
            force_conflicts=dict(type="bool", default=True),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=300),
        ),
        required_one_of=[["definition", "src"]],
        supports_check_mode=True,
    )
    p = module.params
    if not ka.HAS_YAML:
        module.fail_json(msg="PyYAML is required")
    src_text = None
    if p["src"]:
        try:
            with open(p["src"]) as f:
                src_text = f.read()
        except OSError as e:
            module.fail_json(msg=f"src: {e}")
    try:
        docs = ka.documents(p["definition"], src_text)
    except (ValueError, Exception) as e:  # yaml errors too
        module.fail_json(msg=f"definition: {e}")
    names = ka.object_names(docs)
    if not docs:
        module.exit_json(changed=False, objects=[], applied=[], deleted=[])
    base = ka.base_command(p["kubectl"], p["kubeconfig"], p["context"])
    stdin = ka.stdin_for(docs)

    if p["state"] == "absent":
        _rc, out, _err = run(module, base + ["get", "-f", "-", "-o", "name", "--ignore-not-found"], stdin,
                             "kubectl get", ok=(0, 1))
        existing = ka.existing_names(out)
        if existing and not module.check_mode:
            cmd = base + ["delete", "-f", "-", "--ignore-not-found", f"--wait={str(p['wait']).lower()}",
                          f"--timeout={p['wait_timeout']}s"]
            run(module, cmd, stdin, "kubectl delete")
        module.exit_json(changed=bool(existing), objects=names, deleted=existing)

    rc, out, err = module.run_command(ka.diff_command(base, p["field_manager"], p["force_conflicts"]),
                                      data=stdin, binary_data=True)
    would_change, reliable = ka.interpret_diff(rc, err)
    result = dict(objects=names, diff_reliable=reliable, applied=[])
    if module._diff and reliable and would_change:
        result["diff"] = {"prepared": out}
    if not would_change:
        module.exit_json(changed=False, **result)
    if module.check_mode:
        module.exit_json(changed=True, **result)
    apply = ka.apply_command(base, p["field_manager"], p["force_conflicts"])
    _rc, out, _err = run(module, apply, stdin, "kubectl apply")
    result["applied"] = [line.strip() for line in out.splitlines() if line.strip()]
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
