"""Argument specs the VM modules share (each module file adds its own options to these).

The connection options are kubernetes.core's (names, types, aliases, no_log), so a task written for
kubevirt.core keeps working; their K8S_AUTH_* environment fallbacks are resolved in client.py.
"""
from __future__ import annotations

import copy

AUTH_PROXY_HEADERS_SPEC = {
    "proxy_basic_auth": {"type": "str", "no_log": True},
    "basic_auth": {"type": "str", "no_log": True},
    "user_agent": {"type": "str"},
}

AUTH_ARG_SPEC = {
    "kubeconfig": {"type": "raw"},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"]},
    "client_cert": {"type": "path", "aliases": ["cert_file"]},
    "client_key": {"type": "path", "aliases": ["key_file"]},
    "proxy": {"type": "str"},
    "no_proxy": {"type": "str"},
    "proxy_headers": {"type": "dict", "options": AUTH_PROXY_HEADERS_SPEC},
    "persist_config": {"type": "bool"},
    "impersonate_user": {"type": "str"},
    "impersonate_groups": {"type": "list", "elements": "str"},
}

# kubemacpool stamps this annotation on every write; managedFields change with every write too.
DEFAULT_HIDDEN_FIELDS = ["metadata.annotations[kubemacpool.io/transaction-timestamp]", "metadata.managedFields"]

INFO_ARG_SPEC = {
    "api_version": {"type": "str", "default": "kubevirt.io/v1"},
    "name": {"type": "str"},
    "namespace": {"type": "str"},
    "label_selectors": {"type": "list", "elements": "str", "default": []},
    "field_selectors": {"type": "list", "elements": "str", "default": []},
    "wait": {"type": "bool"},
    "wait_sleep": {"type": "int", "default": 5},
    "wait_timeout": {"type": "int", "default": 120},
    "hidden_fields": {"type": "list", "elements": "str", "default": DEFAULT_HIDDEN_FIELDS},
}


def with_auth(spec: dict) -> dict:
    """`spec` plus the connection options (deep copies: AnsibleModule writes into specs)."""
    out = copy.deepcopy(spec)
    out.update(copy.deepcopy(AUTH_ARG_SPEC))
    return out
