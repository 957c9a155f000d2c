#!/usr/bin/python
"""Ansible module: import an OCI archive into containerd unless that exact image is there."""
from __future__ import annotations

DOCUMENTATION = r"""
module: containerd_image
short_description: Import an OCI image archive into a containerd namespace
description:
  - Imports with C(ctr images import) when the image C(name) is missing from the namespace or
    points at another manifest digest than the archive's; otherwise reports C(changed=false).
options:
  archive: {description: The OCI archive (as written by M(kubevirt.ops.oci_image))., type: path, required: true}
  name: {description: Image reference inside the archive., type: str, required: true}
  address: {description: containerd's socket., type: path, required: true}
  namespace: {description: containerd namespace (the kubelet uses C(k8s.io))., type: str, default: k8s.io}
  ctr: {description: Path of the ctr client., type: path, default: ctr}
author: [kubevirt-ops developers (!UNKNOWN)]
"""

EXAMPLES = r"""
- name: Make the pause image available to the kubelet
  kubevirt.ops.containerd_image:
    archive: /root/.cache/kubevirt-ops/images/pause.tar
    name: docker.io/kubevirt-ops/pause:3.10
    address: /run/kubevirt-ops/containerd/containerd.sock
"""

RETURN = r"""
digest: {description: The manifest digest now behind C(name)., type: str, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubevirt.ops.plugins.module_utils import oci


def current_digest(module, base):
    rc, out, err = module.run_command(base + ["images", "ls"])
    if rc != 0:
        module.fail_json(msg=f"ctr images ls failed: {err.strip()}")
    for line in out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == module.params["name"]:
            return next((f for f in fields if f.startswith("sha256:")), None)
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            archive=dict(type="path", required=True),
            name=dict(type="str", required=True),
            address=dict(type="path", required=True),
            namespace=dict(type="str", default="k8s.io"),
            ctr=dict(type="path", default="ctr"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    wanted = oci.manifest_digest(p["archive"])
    if wanted is None:
        module.fail_json(msg=f"archive: {p['archive']} is not an OCI image archive")
    base = [p["ctr"], "--address", p["address"], "--namespace", p["namespace"]]
    if current_digest(module, base) == wanted:
        module.exit_json(changed=False, digest=wanted)
    if not module.check_mode:
        rc, out, err = module.run_command(base + ["images", "import", p["archive"]])
        if rc != 0:
            module.fail_json(msg=f"ctr images import failed: {err.strip() or out.strip()}")
        if current_digest(module, base) != wanted:
            module.fail_json(msg=f"after import, {p['name']} does not point at {wanted}")
    module.exit_json(changed=True, digest=wanted)


if __name__ == "__main__":
    main()
