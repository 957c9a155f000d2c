"""virt-handler's KVM probe (the payload on /dev/kvm's ioctls) agrees with the launcher's (the same payload under
QEMU with -accel kvm) on this host, and answers within its deadline even where the vCPU makes no progress."""
import time

import pytest

from kubevirt_runtime.launcher.accel import probe_guest
from kubevirt_runtime.machinery.kvm_probe import probe

pytestmark = pytest.mark.integration


def test_the_ioctl_probe_agrees_with_qemus():
    started = time.monotonic()
    ok, detail = probe(timeout=3)
    took = time.monotonic() - started
    assert took < 6, took
    qemu_ok, qemu_detail = probe_guest("kvm", timeout=5)
    print(f"ioctl probe: {ok} ({detail}); QEMU probe: {qemu_ok} ({qemu_detail})")
    assert ok == qemu_ok, (detail, qemu_detail)
    assert ("completed" in detail) if ok else detail
