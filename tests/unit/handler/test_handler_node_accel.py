"""The node's accelerator: decided once by virt-handler, TCG under useEmulation without probing."""
from kubevirt_runtime.api.cluster_config import ClusterConfig
from kubevirt_runtime.handler.node_accel import NodeAccel, decide
from kubevirt_runtime.machinery.cluster_config import StaticClusterConfig


def test_decide():
    def never():
        raise AssertionError("no probe under useEmulation")
    assert decide(True, never) == ("tcg", "useEmulation")
    assert decide(False, lambda: (True, "probe guest completed in 0.10s"))[0] == "kvm"
    assert decide(False, lambda: (False, "no /dev/kvm")) == ("tcg", "KVM not usable: no /dev/kvm")


def test_the_probe_runs_once_and_follows_the_cr():
    calls = []

    def probe():
        calls.append(1)
        return True, "ok"

    config = StaticClusterConfig(ClusterConfig(use_emulation=True))
    accel = NodeAccel(config, probe=probe)
    assert accel.sync_options() == {"useEmulation": True, "accel": "tcg"} and not calls
    config.config = ClusterConfig(use_emulation=False)
    assert accel.sync_options() == {"useEmulation": False, "accel": "kvm"}
    assert accel.sync_options()["accel"] == "kvm" and calls == [1]
    assert NodeAccel(config, forced="tcg", probe=probe).sync_options()["accel"] == "tcg" and calls == [1]
