"""Jinja filter turning {flag: value} items into command-line flags."""

DOCUMENTATION = ""


def flag(item):
    """{'key': 'v', 'value': 2} (a dict2items entry) -> '--v=2'."""
    return f"--{item['key']}={item['value']}"


class FilterModule:
    def filters(self):
        return {"flag": flag}
