"""Jinja filters for the roles: command-line flags, file sets read on the controller."""

DOCUMENTATION = ""


def flag(item):
    """{'key': 'v', 'value': 2} (a dict2items entry) -> '--v=2'."""
    return f"--{item['key']}={item['value']}"


def pki_files(wanted, pki_dir, dest_dir, mode="0600"):
    """{'source stem': 'dest name'} -> file_set items whose content is read from pki_dir."""
    items = []
    for src, dest in wanted.items():
        with open(f"{pki_dir}/{src}") as f:
            items.append({"dest": f"{dest_dir}/{dest}", "content": f.read(), "mode": mode})
    return items


def copy_items(names, src_dir, dest_dir, mode="0755"):
    """['etcd', ...] -> file_set items copying src_dir/NAME to dest_dir/NAME."""
    return [{"src": f"{src_dir}/{n}", "dest": f"{dest_dir}/{n}", "mode": mode} for n in names]


class FilterModule:
    def filters(self):
        return {"flag": flag, "pki_files": pki_files, "copy_items": copy_items}
