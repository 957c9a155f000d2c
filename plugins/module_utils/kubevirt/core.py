"""The Python requirements of the VM modules, checked before anything runs, and the module wrapper.

The modules build on `kubevirt_runtime.client` (the client virtctl uses too), from the kubevirt-runtime
Python package. That package's source ships inside this collection (pyproject.toml and src/ at the
collection's root), so wherever the collection is installed, `python3 -m pip install <that directory>`
provides it; it brings `kubernetes`, `PyYAML` and `websockets` along. A missing library fails the task
with a message that names it and says how to install it, never with a traceback.
"""
from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

REQUIREMENT_HELP = ("kubevirt-runtime is the Python package of kubevirt-ops and ships inside the kubevirt.ops "
                    "collection: install it on the host that runs the module with "
                    "'python3 -m pip install <collections path>/ansible_collections/kubevirt/ops' "
                    "(it brings kubernetes, PyYAML and websockets)")

try:
    import kubernetes  # noqa: F401  pylint: disable=unused-import
except ImportError:
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
else:
    KUBERNETES_IMPORT_ERROR = None

try:
    # the newest parts of the client the modules need: an older kubevirt-runtime fails here too
    from kubevirt_runtime.client import lifecycle as _lifecycle  # noqa: F401  pylint: disable=unused-import
    from kubevirt_runtime.machinery.resource import ResourceClient as _ResourceClient
    if not hasattr(_ResourceClient, "request"):
        raise ImportError("kubevirt-runtime is too old (ResourceClient has no public request method)")
except ImportError:
    RUNTIME_IMPORT_ERROR = traceback.format_exc()
else:
    RUNTIME_IMPORT_ERROR = None


def missing_requirement() -> tuple[str, str] | None:
    """(message, traceback) for the first missing library, or None when all are there."""
    if KUBERNETES_IMPORT_ERROR:
        return missing_required_lib("kubernetes", reason="to talk to the Kubernetes API", url=None) + \
            " " + REQUIREMENT_HELP, KUBERNETES_IMPORT_ERROR
    if RUNTIME_IMPORT_ERROR:
        return missing_required_lib("kubevirt-runtime", reason="for its KubeVirt client") + " " + REQUIREMENT_HELP, \
            RUNTIME_IMPORT_ERROR
    return None


def module(argument_spec: dict, **kwargs) -> AnsibleModule:
    """An AnsibleModule whose Python requirements are present (it fails the task otherwise)."""
    mod = AnsibleModule(argument_spec=argument_spec, **kwargs)
    missing = missing_requirement()
    if missing:
        mod.fail_json(msg=missing[0], exception=missing[1])
    if isinstance(mod.params.get("kubeconfig"), dict):
        mod.no_log_values.update(kubeconfig_secrets(mod.params["kubeconfig"]))
    return mod


_SECRET_KEYS = {"token", "password", "client-key-data", "client-certificate-data", "access-token", "refresh-token",
                "id-token", "secret"}


def kubeconfig_secrets(config) -> set:
    """Secret strings inside an in-line kubeconfig, so Ansible masks them in its output and logs."""
    found = set()
    if isinstance(config, dict):
        for key, value in config.items():
            if key in _SECRET_KEYS and isinstance(value, str) and value:
                found.add(value)
            else:
                found |= kubeconfig_secrets(value)
    elif isinstance(config, list):
        for item in config:
            found |= kubeconfig_secrets(item)
    return found
