#!/usr/bin/python
"""Ansible module: build an OCI image archive from files and directories, no container engine."""
from __future__ import annotations

DOCUMENTATION = r"""
module: oci_image
short_description: Build an OCI image archive from local files, reproducibly
description:
  - Writes an OCI image layout tar that C(ctr images import) reads. Layers are uncompressed,
    reproducible tars; an unchanged image leaves the archive untouched (C(changed=false)).
  - A layer is either built from C(entries) into C(layer_dir) or taken from a prebuilt C(path)
    (a cached base layer), so rebuilding an image after a code change rewrites only its top layer.
  - In check mode a stale layer is built in a temporary directory (removed afterwards) so that
    C(changed) and C(digest) are what a real run would report; the archive and C(layer_dir) are untouched.
    The diff shows the archive's manifest digest before and after.
options:
  path: {description: Archive to write., type: path, required: true}
  name:
    description: Image reference recorded in the archive (e.g. C(docker.io/kubevirt-ops/pause:3.10)).
    type: str
    required: true
  layer_dir: {description: Where built layers are kept., type: path, required: true}
  layers:
    description: Layers bottom-up. Each has C(name) and either C(entries) (files {src, dest, mode} or trees
      {dir, dest}) or C(path) (a layer tar).
    type: list
    elements: dict
    required: true
  entrypoint: {description: Image entrypoint., type: list, elements: str}
  cmd: {description: Image command., type: list, elements: str}
  env: {description: Environment (KEY=value)., type: list, elements: str}
  workdir: {description: Working directory., type: str}
  user: {description: User (and group) the entrypoint runs as., type: str}
  labels: {description: Image labels., type: dict}
attributes:
  check_mode: {support: full, description: Predicts C(changed) and the diff without changing anything.}
  diff_mode: {support: full, description: Shows what changes (or would change in check mode).}
author: [kubevirt-ops developers (!UNKNOWN)]
"""

EXAMPLES = r"""
- name: The pause image
  kubevirt.ops.oci_image:
    path: ~/.cache/kubevirt-ops/images/pause.tar
    name: docker.io/kubevirt-ops/pause:3.10
    layer_dir: ~/.cache/kubevirt-ops/images/layers
    layers:
      - name: pause
        entries: [{src: /tmp/pause, dest: /pause, mode: "0755"}]
    entrypoint: [/pause]
"""

RETURN = r"""
digest: {description: The image manifest digest., type: str, returned: always}
"""

import hashlib
import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubevirt.ops.plugins.module_utils import oci


def _inputs_fingerprint(entries):
    """A cheap key for a built layer: paths, sizes, mtimes and modes of its inputs."""
    h = hashlib.sha256()
    for entry in entries:
        h.update(json.dumps(entry, sort_keys=True).encode())
        src = entry.get("src") or entry.get("dir")
        walk = os.walk(src) if entry.get("dir") else [(os.path.dirname(src), [], [os.path.basename(src)])]
        for root, _dirs, files in walk:
            for name in sorted(files):
                st = os.lstat(os.path.join(root, name))
                h.update(f"{root}/{name}:{st.st_size}:{st.st_mtime_ns}:{st.st_mode}".encode())
    return h.hexdigest()


def _built_layer(layer_dir, layer, scratch_dir=None):
    """Path of the layer tar for `layer`, rebuilt only when its inputs changed. With scratch_dir (check mode)
    a stale layer is built there instead, so the image digest is known without touching layer_dir."""
    path = os.path.join(layer_dir, f"{layer['name']}.tar")
    stamp = path + ".inputs"
    fingerprint = _inputs_fingerprint(layer["entries"])
    try:
        with open(stamp) as f:
            if f.read() == fingerprint and os.path.exists(path):
                return path
    except FileNotFoundError:
        pass
    if scratch_dir:
        path = os.path.join(scratch_dir, f"{layer['name']}.tar")
        oci.write_layer(path, layer["entries"])
        return path
    oci.write_layer(path, layer["entries"])
    with open(stamp, "w") as f:
        f.write(fingerprint)
    return path


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            name=dict(type="str", required=True),
            layer_dir=dict(type="path", required=True),
            layers=dict(type="list", elements="dict", required=True),
            entrypoint=dict(type="list", elements="str"),
            cmd=dict(type="list", elements="str"),
            env=dict(type="list", elements="str"),
            workdir=dict(type="str"),
            user=dict(type="str"),
            labels=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    scratch_dir = tempfile.mkdtemp(prefix="kvo-oci-check-") if module.check_mode else None
    try:
        result = _ensure_image(module, p, scratch_dir)
    finally:
        if scratch_dir:
            shutil.rmtree(scratch_dir)
    module.exit_json(**result)


def _ensure_image(module, p, scratch_dir):
    if not scratch_dir:
        os.makedirs(p["layer_dir"], exist_ok=True)
        os.makedirs(os.path.dirname(p["path"]), exist_ok=True)
    layer_paths = []
    for i, layer in enumerate(p["layers"]):
        if "path" in layer:
            if not os.path.isfile(layer["path"]):
                module.fail_json(msg=f"layers[{i}].path: {layer['path']} does not exist")
            layer_paths.append(layer["path"])
        elif "entries" in layer and "name" in layer:
            for j, entry in enumerate(layer["entries"]):
                src = entry.get("src") or entry.get("dir")
                if not src or not os.path.exists(src) or "dest" not in entry:
                    module.fail_json(msg=f"layers[{i}].entries[{j}]: needs an existing src (or dir) and a dest")
            layer_paths.append(_built_layer(p["layer_dir"], layer, scratch_dir))
        else:
            module.fail_json(msg=f"layers[{i}]: give either path, or name and entries")
    diff_ids = [oci.sha256_file(path) for path in layer_paths]
    config = oci.image_config(diff_ids, p["entrypoint"], p["cmd"], p["env"], p["workdir"], p["user"], p["labels"])
    before = oci.manifest_digest(p["path"])
    if scratch_dir:
        digest = oci.archive_digest(layer_paths, config)
        changed = digest != before
    else:
        digest, changed = oci.write_archive(p["path"], p["name"], layer_paths, config)
    result = dict(changed=changed, digest=digest, path=p["path"])
    if module._diff:
        result["diff"] = {"before_header": p["path"], "after_header": p["path"],
                          "before": f"digest: {before}\n" if before else "(absent)\n", "after": f"digest: {digest}\n"}
    return result


if __name__ == "__main__":
    main()
