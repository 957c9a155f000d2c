"""The shape of a cluster on this one host (the kubevirt.ops.local_cluster inventory), as a pure function.

node01 is this host itself (local connection). node02..nodeNN are network namespaces on this host, each with
its own mount namespace and sshd (the netns_node role makes them), reached over SSH like any real host: the
roles never learn that they are not. Nodes take consecutive addresses of the node network (node01 the first),
the first `control_plane_nodes` of them run etcd and the control plane, and every node runs workloads.

Once the netns nodes exist, their names are recorded on this host (netns_node role), and the inventory
always includes the recorded nodes: a later run without NODES (cluster-sync, cluster-down) sees the whole
cluster, and a smaller NODES never orphans a node (make cluster-down removes them).
"""
from __future__ import annotations

import ipaddress
import json
import os

FIRST_NODE = "node01"
NETNS_GROUP = "netns_nodes"
SSH_OPTIONS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o LogLevel=ERROR"


class LayoutError(ValueError):
    pass


def node_name(index: int) -> str:
    """node01, node02, ... (1-based, as kubevirtci names them)."""
    return f"node{index:02d}"


def node_index(name: str) -> int:
    if not (name.startswith("node") and name[4:].isdigit()):
        raise LayoutError(f"recorded node name {name!r} is not nodeNN")
    return int(name[4:])


def read_record(path: str) -> dict:
    """What the netns_node role recorded about the nodes it made ({} when there is no record)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LayoutError(f"cannot read the node record {path}: {exc}") from None


def layout(nodes: int | None, control_plane_nodes: int | None, node_cidr: str, netns_root: str,
           record: dict | None = None, cluster_name: str = "kubevirt-ops", controller_python: str = "python3") -> dict:
    """{"hosts": {name: hostvars}, "groups": {group: [hosts]}, "children": {group: [groups]}, "vars": {...}}.

    `nodes` / `control_plane_nodes` None: as recorded (else 1). `controller_python`: the interpreter of node01,
    the controller itself (a path: ansible-core does not template variables an inventory plugin sets)."""
    record = record or {}
    recorded = [node_index(n) for n in record.get("nodes") or []]
    count = max([nodes or 1] + recorded)
    cp_count = control_plane_nodes or record.get("control_plane_nodes") or 1
    if count < 1:
        raise LayoutError(f"nodes must be at least 1, not {count}")
    if not 1 <= cp_count <= count:
        raise LayoutError(f"control_plane_nodes must be between 1 and the number of nodes ({count}), not {cp_count}")
    try:
        network = ipaddress.ip_network(node_cidr, strict=True)
    except ValueError as exc:
        raise LayoutError(f"node_cidr {node_cidr!r} is not a network in CIDR notation: {exc}") from None
    if count + 2 > network.num_addresses:  # a VIP and the broadcast address stay free
        raise LayoutError(f"node_cidr {node_cidr} has no room for {count} nodes")
    key = os.path.join(netns_root, "ssh", "id_ed25519")
    hosts = {}
    for i in range(1, count + 1):
        address = str(network.network_address + i)
        hostvars = {"node_ip": address}
        if i == 1:
            hostvars.update(ansible_connection="local", ansible_python_interpreter=controller_python)
        else:
            hostvars.update(ansible_host=address, ansible_user="root", ansible_ssh_private_key_file=key,
                            ansible_ssh_common_args=SSH_OPTIONS, ansible_python_interpreter="/usr/bin/python3",
                            kube_cgroup_root=f"/kvo-{cluster_name}-{node_name(i)}")
        hosts[node_name(i)] = hostvars
    names = list(hosts)
    control_plane = names[:cp_count]
    return {
        "hosts": hosts,
        "groups": {"kube_control_plane": control_plane, "etcd": control_plane, "kube_node": names,
                   NETNS_GROUP: names[1:]},
        "children": {"k8s_cluster": ["kube_control_plane", "etcd", "kube_node"]},
        "vars": {"kube_node_cidr": node_cidr, "netns_node_root": netns_root},
    }
