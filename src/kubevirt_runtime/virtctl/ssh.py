"""`virtctl ssh`: the local OpenSSH client with `virtctl port-forward --stdio` as its ProxyCommand, as upstream's
virtctl does it, so ssh's own options, agent and known_hosts work unchanged."""
from __future__ import annotations

import os
import shlex
import sys

from .forward import UsageError, parse_target

SHORT_KIND = {"virtualmachines": "vm", "virtualmachineinstances": "vmi"}


def parse_ssh_target(text: str) -> tuple[str | None, str, str, str | None]:
    """[USER@]TYPE/NAME[/NAMESPACE] -> (user or None, resource, name, namespace or None)."""
    user = None
    if "@" in text:
        user, _at, text = text.partition("@")
        if not user:
            raise UsageError("expected a user name before '@'")
    if not text:
        raise UsageError("expected a target after '@'")
    resource, name, namespace = parse_target(text)
    return user, resource, name, namespace


def ssh_argv(virtctl: list[str], resource: str, name: str, namespace: str, *, port: int = 22, user: str | None = None,
             identity: str | None = None, known_hosts: str | None = None, local_opts=(), command: str | None = None,
             ssh: str = "ssh") -> list[str]:
    """The ssh command line; `virtctl` is how the ProxyCommand runs virtctl (with its kubeconfig options)."""
    kind = SHORT_KIND[resource]
    proxy = shlex.join([*virtctl, "port-forward", "--stdio=true", f"{kind}/{name}/{namespace}", str(port)])
    argv = [ssh, "-o", f"ProxyCommand={proxy}"]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
    for opt in local_opts:
        argv += shlex.split(opt)
    if identity:
        argv += ["-i", identity]
    target = f"{kind}.{name}.{namespace}"
    argv.append(f"{user}@{target}" if user else target)
    if command:
        argv.append(command)
    return argv


def self_command(kubeconfig: str | None, context: str | None) -> list[str]:
    """How to run this virtctl again from ssh's ProxyCommand."""
    argv0 = sys.argv[0] if sys.argv and os.path.isabs(sys.argv[0]) else None
    base = [argv0] if argv0 and os.access(argv0, os.X_OK) else [sys.executable, "-m", "kubevirt_runtime.virtctl.main"]
    if kubeconfig:
        base += ["--kubeconfig", os.path.abspath(kubeconfig)]
    if context:
        base += ["--context", context]
    return base


def run(argv: list[str]) -> int:
    os.execvp(argv[0], argv)
    return 127  # not reached
