"""Ansible inventory plugin: a cluster of NODES nodes on this one host (node01 the host, the others netns nodes)."""
from __future__ import annotations

DOCUMENTATION = r"""
name: local_cluster
short_description: A Kubernetes cluster of one or more nodes on the Ansible controller itself
description:
  - C(node01) is the controller host (local connection). With O(nodes) above 1, C(node02) ... C(nodeNN) are
    network namespaces on the same host, each with its own mount namespace, addresses, kubelet, containerd and
    kube-proxy, reached over SSH (an sshd inside each namespace) exactly as the playbooks reach real hosts; the
    C(kubevirt.ops.netns_node) role makes and removes them (group C(netns_nodes)).
  - Nodes take consecutive addresses of O(node_cidr) (C(node01) the first, as C(node_ip)); the first
    O(control_plane_nodes) nodes form the C(kube_control_plane) and C(etcd) groups, every node is in
    C(kube_node); all three are children of C(k8s_cluster).
  - Nodes that the C(netns_node) role recorded as existing are always included, so a run without O(nodes)
    (C(make cluster-sync), C(make cluster-down)) sees the whole cluster; a cluster shrinks only by
    C(make cluster-down).
  - The configuration file's name must end with C(local_cluster.yml) or C(local_cluster.yaml).
version_added: 0.2.0
author: [kubevirt-ops developers (!UNKNOWN)]
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    required: true
    choices: [local_cluster, kubevirt.ops.local_cluster]
    type: str
  nodes:
    description: Number of nodes (C(make cluster-up NODES=3)); by default as many as exist, else 1.
    type: int
    env:
      - name: NODES
  control_plane_nodes:
    description:
      - How many of the nodes run etcd and the control plane (C(make cluster-up NODES=3 CONTROL_PLANE_NODES=3));
        by default as recorded, else 1. With more than one node, HAProxy serves a fixed virtual address in
        front of all kube-apiservers.
    type: int
    env:
      - name: CONTROL_PLANE_NODES
  cluster_name:
    description: The cluster's name (C(cluster_name) of the roles).
    type: str
    default: kubevirt-ops
    env:
      - name: CLUSTER_NAME
  node_cidr:
    description: The node network (C(kube_node_cidr) of the roles).
    type: str
    default: 10.222.0.0/24
  netns_root:
    description: Where the netns nodes' files live on this host (a directory per cluster below it).
    type: path
    default: /var/lib/kubevirt-ops-nodes
"""

EXAMPLES = r"""
# inventories/local/local_cluster.yml
plugin: kubevirt.ops.local_cluster
# then: NODES=3 ansible-playbook -i inventories/local playbooks/cluster-up.yml
"""

import os
import sys

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

from ansible_collections.kubevirt.ops.plugins.module_utils import local_cluster as lc


class InventoryModule(BaseInventoryPlugin):
    NAME = "kubevirt.ops.local_cluster"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("local_cluster.yml", "local_cluster.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cluster = self.get_option("cluster_name")
        netns_root = os.path.join(self.get_option("netns_root"), cluster)
        try:
            record = lc.read_record(os.path.join(netns_root, "nodes.json"))
            shape = lc.layout(self.get_option("nodes"), self.get_option("control_plane_nodes"),
                              self.get_option("node_cidr"), netns_root, record, cluster, sys.executable)
        except lc.LayoutError as exc:
            raise AnsibleParserError(f"{path}: {exc}") from None
        self.inventory.set_variable("all", "cluster_name", cluster)
        for key, value in shape["vars"].items():
            self.inventory.set_variable("all", key, value)
        for parent, children in shape["children"].items():
            self.inventory.add_group(parent)
            for child in children:
                self.inventory.add_group(child)
                self.inventory.add_child(parent, child)
        for group in shape["groups"]:
            self.inventory.add_group(group)
        for host, hostvars in shape["hosts"].items():
            self.inventory.add_host(host)
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
        for group, hosts in shape["groups"].items():
            for host in hosts:
                self.inventory.add_host(host, group=group)
