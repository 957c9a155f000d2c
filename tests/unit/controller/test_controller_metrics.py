"""virt-controller's metrics: kubevirt_vmi_info from the caches and the phase transition histograms."""
from prometheus_client import CollectorRegistry, generate_latest

from kubevirt_runtime.controller import metrics
from kubevirt_runtime.machinery.store import Store


def vmi(phase=None, transitions=(), timeline=(), **status):
    st = dict(status, phaseTransitionTimestamps=[{"phase": p, "phaseTransitionTimestamp": t} for p, t in transitions],
              startupTimeline=[{"stage": s, "time": t} for s, t in timeline])
    if phase:
        st["phase"] = phase
    return {"metadata": {"name": "v1", "namespace": "ns", "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "resourceVersion": "1", "annotations": {"vm.kubevirt.io/os": "linux"}}, "status": st}


def test_phase_transitions_from_creation_and_between_phases():
    old = vmi("Scheduled", [("Pending", "2026-01-01T00:00:00Z"), ("Scheduled", "2026-01-01T00:00:02Z")])
    new = vmi("Running", [("Pending", "2026-01-01T00:00:00Z"), ("Scheduled", "2026-01-01T00:00:02Z"),
                          ("Running", "2026-01-01T00:00:04Z")], timeline=[("Running", "2026-01-01T00:00:03.250Z")])
    observed = {(h._name, tuple(sorted(labels.items()))): round(s, 3)
                for h, labels, s in metrics.phase_transitions(old, new)}
    # Running: the timeline's millisecond stamp beats the whole-second phase timestamp
    assert observed == {
        ("kubevirt_vmi_phase_transition_time_from_creation_seconds", (("phase", "Running"),)): 3.25,
        ("kubevirt_vmi_phase_transition_time_seconds", (("last_phase", "Scheduled"), ("phase", "Running"))): 1.25}
    assert metrics.phase_transitions(new, new) == []
    assert metrics.phase_transitions(vmi(), vmi("Pending", [("Pending", "2026-01-01T00:00:00Z")]))[0][2] == 0


def test_vmi_info_and_phase_count_from_the_caches():
    running = vmi("Running", nodeName="node01", guestOSInfo={"kernelRelease": "6.1", "name": "Debian",
                                                             "versionId": "12", "machine": "x86_64"})
    pods, vmis = Store(), Store()
    vmis.upsert(running)
    pods.upsert({"metadata": {"name": "virt-launcher-v1-abcde", "namespace": "ns", "resourceVersion": "1",
                              "labels": {"kubevirt.io/created-by": "u1"}},
                 "spec": {"nodeName": "node01"}, "status": {"phase": "Running"}})
    registry = CollectorRegistry()
    metrics.register_vmi_collector(vmis, pods, registry)
    text = generate_latest(registry).decode()
    assert ('kubevirt_vmi_info{evictable="true",flavor="",guest_os_arch="x86_64",guest_os_kernel_release="6.1",'
            'guest_os_machine="",guest_os_name="Debian",guest_os_version_id="12",instance_type="",name="v1",'
            'namespace="ns",node="node01",os="linux",outdated="false",phase="running",preference="",'
            'vmi_pod="virt-launcher-v1-abcde",workload=""} 1.0') in text
    assert 'kubevirt_vmi_phase_count{flavor="<none>",instance_type="<none>",node="node01",os="linux",' in text
