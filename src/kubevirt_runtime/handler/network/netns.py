"""I/O of phase 1: read and wire the network namespace of a launcher, entered through its pid.

virt-handler runs with the host's pid namespace (hostPID), so the launcher's pid from its socket's peer
credentials names /proc/<pid>/ns/net; every command runs there through `nsenter --net` (iproute2 for links
and routes, nftables for the NAT, /proc/sys for the sysctls). A namespace that is virt-handler's own or the
host's is refused: rewiring it would cut the node off (a launcher run as a plain process shares it).
"""
from __future__ import annotations

import logging
import os
import subprocess
import time

from .plan import NetworkPlan, plan
from .podfacts import PodFacts, parse

log = logging.getLogger(__name__)

NSENTER = "nsenter"
COMMAND_TIMEOUT = 30


class NetworkSetupError(RuntimeError):
    pass


class PodNetns:
    def __init__(self, pid: int, proc: str = "/proc"):
        self.pid = int(pid)
        self.path = f"{proc}/{self.pid}/ns/net"
        self.proc = proc

    def check_foreign(self) -> None:
        try:
            target = os.stat(self.path).st_ino
        except OSError as exc:
            raise NetworkSetupError(f"the launcher's network namespace ({self.path}) is not reachable: {exc}; "
                                    "virt-handler needs the host's pid namespace") from None
        for other in (f"{self.proc}/self/ns/net", f"{self.proc}/1/ns/net"):
            try:
                same = os.stat(other).st_ino == target
            except OSError:
                continue
            if same:
                raise NetworkSetupError(f"the launcher (pid {self.pid}) shares the network namespace of {other}; "
                                        "refusing to rewire it (a launcher needs a pod network namespace)")

    def run(self, *argv: str, stdin: str | None = None) -> str:
        cmd = [NSENTER, f"--net={self.path}", "--", *argv]
        try:
            done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkSetupError(f"{' '.join(argv)}: {exc}") from None
        if done.returncode != 0:
            raise NetworkSetupError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def facts(self) -> PodFacts:
        return parse(self.run("ip", "-j", "-d", "addr", "show"), self.run("ip", "-j", "route", "show"))

    def apply(self, wiring: NetworkPlan) -> None:
        if wiring.ip_batch:
            self.run("ip", "-batch", "-", stdin="\n".join(wiring.ip_batch) + "\n")
        for key, value in wiring.sysctls:
            self.run("sh", "-c", 'printf %s "$2" > "/proc/sys/$1"', "sysctl", key, value)
        if wiring.nft:
            self.run("nft", "-f", "-", stdin=wiring.nft)


def setup(vmi: dict, pid: int, proc: str = "/proc") -> dict:
    """Wires the launcher's namespace for `vmi` (or finds it wired) and returns the launcher's config."""
    started = time.monotonic()
    netns = PodNetns(pid, proc)
    netns.check_foreign()
    wiring = plan(vmi, netns.facts())
    if not wiring.empty:
        netns.apply(wiring)
    meta = vmi.get("metadata") or {}
    log.info("pod network of %s/%s %s in %.0f ms", meta.get("namespace"), meta.get("name"),
             "wired" if not wiring.empty else "was already wired", (time.monotonic() - started) * 1000)
    return wiring.config
