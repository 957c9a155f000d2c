"""The accelerator of this node's guests, decided once by virt-handler instead of by every launcher.

decide() is pure: useEmulation in the KubeVirt CR means TCG without probing; otherwise KVM only if the probe
guest (machinery/kvm_probe.py, straight on /dev/kvm) proved it runs here, else TCG. NodeAccel runs the
probe at most once, when a VMI first needs the answer, and hands launchers the result in every sync.
"""
from __future__ import annotations

import logging
import threading

from kubevirt_runtime.machinery import kvm_probe

log = logging.getLogger(__name__)


def decide(use_emulation: bool, probe=None) -> tuple[str, str]:
    """("kvm" | "tcg", why). `probe` is called only when its answer matters: () -> (ok, detail)."""
    if use_emulation:
        return "tcg", "useEmulation"
    ok, detail = probe()
    return ("kvm", detail) if ok else ("tcg", f"KVM not usable: {detail}")


class NodeAccel:
    def __init__(self, cluster_config, use_emulation_flag: bool = False, forced: str | None = None,
                 probe=kvm_probe.probe):
        self.cluster_config, self.flag, self.forced, self.probe = cluster_config, use_emulation_flag, forced, probe
        self._lock = threading.Lock()
        self._probed = None

    def _probe_once(self):
        with self._lock:
            if self._probed is None:
                self._probed = self.probe()
                log.info("KVM on this node: %s", self._probed[1])
            return self._probed

    def sync_options(self) -> dict:
        """What launchers are told: {"useEmulation": bool, "accel": "kvm" | "tcg"}."""
        use_emulation = self.flag or self.cluster_config.current().use_emulation
        accel = self.forced or decide(use_emulation, self._probe_once)[0]
        return {"useEmulation": use_emulation, "accel": accel}
