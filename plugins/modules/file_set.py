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
  - In check mode nothing is written; C(written) lists what would be. The diff shows each file's mode
    and a digest (content) or size and modification time (copy), never the content, which may be a key.
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
attributes:
  check_mode: {support: full, description: Predicts C(changed) and the diff without changing anything.}
  diff_mode: {support: full, description: Shows what changes (or would change in check mode).}
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


def _mode_of(path):
    return os.stat(path).st_mode & 0o7777


def _state(path, summary):
    """What the diff shows of a file: never its content (it may be a key), only a digest or size and mtime."""
    try:
        return {**summary(path), "mode": f"{_mode_of(path):04o}"}
    except FileNotFoundError:
        return None


def _content_summary(data):
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def plan_content(dest, data, mode):
    """(action, before, after) for a file that must hold data: action is None, 'mode' or 'write'."""
    before = _state(dest, lambda p: _content_summary(_read(p)))
    after = {**_content_summary(data), "mode": f"{mode:04o}"}
    if before is None or before["sha256"] != after["sha256"]:
        return "write", before, after
    return ("mode" if before["mode"] != after["mode"] else None), before, after


def _copy_summary(path):
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def plan_copy(src, dest, mode):
    """(action, before, after) for a copy of src (compared by size and mtime, which the copy keeps)."""
    before = _state(dest, _copy_summary)
    after = {**_copy_summary(src), "mode": f"{mode:04o}"}
    if before is None or (before["size"], before["mtime_ns"]) != (after["size"], after["mtime_ns"]):
        return "write", before, after
    return ("mode" if before["mode"] != after["mode"] else None), before, after


def _atomic_write(dest, mode, fill):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.kvo-tmp"
    fill(tmp)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)


def _write_content(dest, data, mode):
    def fill(tmp):
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            f.write(data)
    _atomic_write(dest, mode, fill)


def _copy_file(src, dest, mode):
    def fill(tmp):
        shutil.copyfile(src, tmp)
        st = os.stat(src)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    _atomic_write(dest, mode, fill)


def _yaml_lines(state):
    return "".join(f"{key}: {value}\n" for key, value in (state or {}).items()) or "(absent)\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(files=dict(type="list", elements="dict", required=True, options=dict(
            dest=dict(type="path", required=True),
            content=dict(type="str", no_log=True),
            src=dict(type="path"),
            mode=dict(type="str", default="0600"),
        ))),
        supports_check_mode=True,
    )
    written, diffs, digest = [], [], hashlib.sha256()
    for i, item in enumerate(module.params["files"]):
        if (item["content"] is None) == (item["src"] is None):
            module.fail_json(msg=f"files[{i}] ({item['dest']}): give exactly one of content or src")
        try:
            mode = int(item["mode"], 8)
        except ValueError:
            module.fail_json(msg=f"files[{i}].mode: {item['mode']!r} is not an octal mode")
        dest = item["dest"]
        digest.update(dest.encode())
        if item["content"] is not None:
            data = item["content"].encode()
            digest.update(data)
            action, before, after = plan_content(dest, data, mode)
            write = _write_content if action == "write" else None
            args = (dest, data, mode)
        else:
            if not os.path.isfile(item["src"]):
                module.fail_json(msg=f"files[{i}].src: {item['src']} does not exist")
            st = os.stat(item["src"])
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            action, before, after = plan_copy(item["src"], dest, mode)
            write = _copy_file if action == "write" else None
            args = (item["src"], dest, mode)
        if action is None:
            continue
        written.append(dest)
        diffs.append({"before_header": dest, "after_header": dest,
                      "before": _yaml_lines(before), "after": _yaml_lines(after)})
        if module.check_mode:
            continue
        if write:
            write(*args)
        else:
            os.chmod(dest, mode)
    result = dict(changed=bool(written), written=written, digest=digest.hexdigest())
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
