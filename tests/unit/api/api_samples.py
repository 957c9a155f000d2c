"""Sample objects for the API unit tests."""
import copy

VMI = {
    "apiVersion": "kubevirt.io/v1",
    "kind": "VirtualMachineInstance",
    "metadata": {"name": "testvmi", "namespace": "default"},
    "spec": {
        "domain": {
            "cpu": {"cores": 2},
            "memory": {"guest": "128Mi"},
            "devices": {
                "disks": [
                    {"name": "containerdisk", "disk": {"bus": "virtio"}, "bootOrder": 1},
                    {"name": "cloudinitdisk", "cdrom": {"bus": "sata"}},
                ],
                "interfaces": [{"name": "default", "masquerade": {}, "ports": [{"port": 22}]}],
            },
        },
        "networks": [{"name": "default", "pod": {}}],
        "volumes": [
            {"name": "containerdisk", "containerDisk": {"image": "quay.io/containerdisks/cirros:6.2"}},
            {"name": "cloudinitdisk", "cloudInitNoCloud": {"userData": "#cloud-config\n"}},
        ],
        "terminationGracePeriodSeconds": 0,
    },
}

VM = {
    "apiVersion": "kubevirt.io/v1",
    "kind": "VirtualMachine",
    "metadata": {"name": "testvm", "namespace": "default"},
    "spec": {
        "runStrategy": "Always",
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": copy.deepcopy(VMI["spec"])},
    },
}


def vmi():
    return copy.deepcopy(VMI)


def vm():
    return copy.deepcopy(VM)
