#!/usr/bin/python
"""Ansible module: write a set of files in one go (one module run instead of one per file)."""
from __future__ import annotations

DOCUMENTATION = r"""
module: file_set
short_description: Write many files at once, each from given content or from a local source file
description:
  - Writes each file only when it differs, atomically, with the given mode; creates parent directories.
  - Items with C(content) carry the data (e.g. certificates read on the controller with a lookup);
    items with C(src) copy a file that exists where the module runs (e.g. binaries from a cache on
    the same host), compared by size and modification time, which the copy keeps.
  - One module run for the whole set keeps re-runs fast; C(digest) changes whenever any file does,
    so it can be handed to a service as its config checksum.
options:
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      dest: {type: path, required: true, description: Where the file goes.}
      content: {type: str, description: The file's content (text).}
      src: {type: path, description: A file on the managed host to copy instead.}
      mode: {type: str, default: "0600", description: Octal permissions.}
author: [kubevirt-ops developers (!UNKNOWN)]
"""

EXAMPLES = r"""
- name: Certificates of the control plane
  kubevirt.ops.file_set:
    files:
      - {dest: /etc/kvo/ca.crt, content: "{{ lookup('file', 'pki/ca.crt') }}", mode: "0644"}
      - {dest: /opt/kvo/bin/etcd, src: /root/.cache/kubevirt-ops/bin/etcd, mode: "0755"}
"""

RETURN = r"""
written: {description: Files written in this run., type: list, returned: always}
digest: {description: sha256 over the set's paths and contents (or source size and mtime)., type: str, returned: always}
"""

import hashlib
import os
import shutil

from ansible.module_utils.basic import AnsibleModule


def _write_content(dest, data, mode):
    try:
        with open(dest, "rb") as f:
            if f.read() == data:
                return _fix_mode(dest, mode)
    except FileNotFoundError:
        pass
    tmp = f"{dest}.kvo-tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)
    return True


def _copy_file(src, dest, mode):
    s = os.stat(src)
    try:
        d = os.stat(dest)
        if d.st_size == s.st_size and d.st_mtime_ns == s.st_mtime_ns:
            return _fix_mode(dest, mode)
    except FileNotFoundError:
        pass
    tmp = f"{dest}.kvo-tmp"
    shutil.copyfile(src, tmp)
    os.utime(tmp, ns=(s.st_atime_ns, s.st_mtime_ns))
    os.chmod(tmp, mode)
    os.replace(tmp, dest)
    return True


def _fix_mode(path, mode):
    if os.stat(path).st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        return True
    return False


def main():
    module = AnsibleModule(
        argument_spec=dict(files=dict(type="list", elements="dict", required=True, options=dict(
            dest=dict(type="path", required=True),
            content=dict(type="str", no_log=True),
            src=dict(type="path"),
            mode=dict(type="str", default="0600"),
        ))),
        supports_check_mode=False,
    )
    written, digest = [], hashlib.sha256()
    for i, item in enumerate(module.params["files"]):
        if (item["content"] is None) == (item["src"] is None):
            module.fail_json(msg=f"files[{i}] ({item['dest']}): give exactly one of content or src")
        try:
            mode = int(item["mode"], 8)
        except ValueError:
            module.fail_json(msg=f"files[{i}].mode: {item['mode']!r} is not an octal mode")
        os.makedirs(os.path.dirname(item["dest"]), exist_ok=True)
        digest.update(item["dest"].encode())
        if item["content"] is not None:
            data = item["content"].encode()
            digest.update(data)
            changed = _write_content(item["dest"], data, mode)
        else:
            if not os.path.isfile(item["src"]):
                module.fail_json(msg=f"files[{i}].src: {item['src']} does not exist")
            st = os.stat(item["src"])
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            changed = _copy_file(item["src"], item["dest"], mode)
        if changed:
            written.append(item["dest"])
    module.exit_json(changed=bool(written), written=written, digest=digest.hexdigest())


if __name__ == "__main__":
    main()
