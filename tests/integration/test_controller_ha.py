"""No duplicate launcher pods across controller crashes and replicas; one leader with fail-over."""
import time

import pytest
from apiserver import wait_for

from kubevirt_runtime.machinery.resource import LEASES, PODS, VMIS, ResourceClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def vmi_body(name):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": name},
            "spec": {"domain": {"memory": {"guest": "64Mi"}, "devices": {}}}}


def pods_per_vmi(api_client, namespace):
    counts = {}
    for pod in ResourceClient(api_client, PODS).list(namespace, label_selector="kubevirt.io=virt-launcher")["items"]:
        uid = pod["metadata"]["labels"]["kubevirt.io/created-by"]
        counts[uid] = counts.get(uid, 0) + 1
    return counts


def test_controller_killed_midway_creates_no_duplicate_pod(api_client, namespace, virt_controller):
    vmis = ResourceClient(api_client, VMIS)
    for i in range(20):
        vmis.create(vmi_body(f"vmi{i}"), namespace)
    first = virt_controller(leader_elect=False)
    wait_for(lambda: pods_per_vmi(api_client, namespace), message="some pods")
    first.kill()  # SIGKILL in the middle of creating pods
    created_before = sum(pods_per_vmi(api_client, namespace).values())
    virt_controller(leader_elect=False)
    wait_for(lambda: len(pods_per_vmi(api_client, namespace)) == 20, message="a pod for every VMI")
    time.sleep(2)  # give a buggy controller time to create extras
    counts = pods_per_vmi(api_client, namespace)
    assert set(counts.values()) == {1}, counts
    assert created_before <= 20


def test_two_active_replicas_still_create_one_pod_per_vmi(api_client, namespace, virt_controller):
    """Even without leader election (e.g. a partitioned old leader), pod names derived from the VMI uid make
    the API server reject a second pod."""
    virt_controller(leader_elect=False)
    virt_controller(leader_elect=False)
    vmis = ResourceClient(api_client, VMIS)
    for i in range(10):
        vmis.create(vmi_body(f"race{i}"), namespace)
    wait_for(lambda: len(pods_per_vmi(api_client, namespace)) == 10, timeout=90, message="pods")
    time.sleep(2)
    assert set(pods_per_vmi(api_client, namespace).values()) == {1}


def test_two_controllers_elect_one_leader_and_fail_over(api_client, namespace, virt_controller):
    a, b = virt_controller(), virt_controller()
    leases = ResourceClient(api_client, LEASES)
    holder = wait_for(lambda: (leases.get("virt-controller", "kubevirt").get("spec") or {}).get("holderIdentity"),
                      message="a lease holder")
    leader, standby = (a, b) if holder == "controller-1" else (b, a)
    wait_for(lambda: leader.metric("kubevirt_virt_controller_leading_status") == 1.0, message="leader metric")
    assert standby.metric("kubevirt_virt_controller_leading_status") in (0.0, None)

    vmis = ResourceClient(api_client, VMIS)
    vmis.create(vmi_body("before"), namespace)
    wait_for(lambda: len(pods_per_vmi(api_client, namespace)) == 1, message="pod from the leader")

    leader.kill()
    new_holder = wait_for(lambda: (h := (leases.get("virt-controller", "kubevirt").get("spec") or {})
                                   .get("holderIdentity")) != holder and h, timeout=30, message="fail-over")
    assert new_holder
    vmis.create(vmi_body("after"), namespace)
    wait_for(lambda: len(pods_per_vmi(api_client, namespace)) == 2, timeout=30, message="pod from the new leader")
    assert set(pods_per_vmi(api_client, namespace).values()) == {1}
    assert standby.alive()
