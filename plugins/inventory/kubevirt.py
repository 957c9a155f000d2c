"""Ansible inventory plugin: KubeVirt VirtualMachines (running or not) as hosts."""
from __future__ import annotations

DOCUMENTATION = r"""
name: kubevirt
short_description: KubeVirt VirtualMachines and VirtualMachineInstances as inventory hosts
description:
  - Makes a host of every C(VirtualMachine), running or stopped, and of every C(VirtualMachineInstance) without
    one, in the namespaces it reads; takes the options of the C(kubevirt.core.kubevirt) 2.3.0 inventory.
  - Host variables C(vm_*) come from the VM and C(vmi_*) from its instance (a stopped VM has only C(vm_*)),
    namely C(_annotations), C(_labels), C(_resource_version), C(_uid), C(_name), C(_namespace) and every key of
    the object's status, in snake case (C(vmi_phase), C(vmi_node_name), C(vmi_interfaces),
    C(vm_printable_status), ...).
  - C(ansible_host) is the kubesecondarydns name (O(kube_secondary_dns) with O(network_name)); else, with
    O(use_service) and without O(network_name), the address of a LoadBalancer or NodePort service whose single
    port targets port 22 (5986 or 5985 for WinRM) and which selects the VM's C(kubevirt.io/domain) label; else
    the IP of the VMI's first interface, or of the one named O(network_name).
  - Groups are the cluster (O(name)), C(namespace_<namespace>) under it and, with O(create_groups),
    C(label_<key>_<value>), C(node_<node>) and C(phase_<VMI phase>) (C(phase_stopped) for a VM without an
    instance). O(compose), O(groups) and O(keyed_groups) build more from the host variables.
  - Without the right to list namespaces it reads the namespaces it can find (OpenShift projects, the
    namespaces of the VMs it may list everywhere, or the kubeconfig context's), and a namespace whose VMs it may
    not read is skipped; both are reported as warnings and in the cluster group's variables
    C(kubevirt_namespace_source) and C(kubevirt_skipped_namespaces), instead of failing the inventory.
  - The configuration file's name must end with C(kubevirt.yml) or C(kubevirt.yaml).
version_added: 0.1.0
author: [kubevirt-ops developers (!UNKNOWN)]
extends_documentation_fragment:
  - kubevirt.ops.kubevirt_auth_options
  - inventory_cache
  - constructed
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    required: true
    choices: [kubevirt, kubevirt.ops.kubevirt]
    type: str
  host_format:
    description: The hosts' names, from the fields V({name}), V({namespace}) and V({uid}).
    default: "{namespace}-{name}"
    type: str
  name:
    description: Name of the cluster group; by default made from the API server's URL.
    type: str
  namespaces:
    description: Namespaces to read; by default every namespace the user can find.
    type: list
    elements: str
  label_selector:
    description: Only VMs and VMIs with these labels.
    type: str
  network_name:
    description: The interface (by network name) whose IP becomes C(ansible_host); the first one otherwise.
    aliases: [interface_name]
    type: str
  kube_secondary_dns:
    description: With O(network_name), use the name kubesecondarydns gives that interface as C(ansible_host).
    type: bool
    default: false
  use_service:
    description: Reach VMs through a LoadBalancer or NodePort service for SSH or WinRM (without O(network_name)).
    type: bool
    default: true
  unset_ansible_port:
    description: Set C(ansible_port) to null when no service gave a port (so a group's port does not apply).
    type: bool
    default: true
  create_groups:
    description: Also make groups from labels, nodes and phases.
    type: bool
    default: false
  base_domain:
    description:
      - Domain for kubesecondarydns names and, with O(append_base_domain), NodePort node names.
      - By default the OpenShift cluster's base domain, where there is one.
    type: str
  append_base_domain:
    description: Append O(base_domain) to the node name of NodePort services.
    type: bool
    default: false
  default_win_ansible_connection:
    description:
      - C(ansible_connection) for Windows guests (guest agent OS id, or a preference or OS annotation starting with
        V(windows)), unless set otherwise; V(ssh) looks for an SSH service instead of WinRM.
    type: str
    default: winrm
    choices: [winrm, ansible.builtin.winrm, psrp, ansible.builtin.psrp, ssh, ansible.builtin.ssh]
  api_version:
    description: API version of the KubeVirt kinds.
    type: str
    default: kubevirt.io/v1
  connections:
    description:
      - Deprecated (as in kubevirt.core); a list with one entry whose options apply as if given at the top level.
    type: list
    elements: dict
requirements:
  - python >= 3.11
  - kubevirt-runtime on the controller (ships in this collection; C(python3 -m pip install <collection directory>))
"""

EXAMPLES = r"""
# Each item is the content of one inventory file (its name ends with kubevirt.yml or kubevirt.yaml).

# inventory/cluster.kubevirt.yml: every VM of the default kubeconfig's cluster
- plugin: kubevirt.ops.kubevirt

# only namespace demo, labelled app=web, grouped by label, node and phase, plus groups by OS
- plugin: kubevirt.ops.kubevirt
  namespaces: [demo]
  label_selector: app=web
  create_groups: true
  keyed_groups:
    - key: vmi_guest_os_info.id | default('unknown')
      prefix: os
  compose:
    ansible_user: "'root'"
"""

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt import inventory as inv
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.args import AUTH_ARG_SPEC
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.client import (
    ConfigurationError,
    api_client,
    context_namespace,
)
from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.core import missing_requirement

try:
    from kubevirt_runtime.client.errors import describe
    from kubevirt_runtime.machinery.resource import ApiError
except ImportError:  # missing_requirement() says so first
    class ApiError(Exception):  # noqa: N818 - the name kubevirt_runtime gives it
        pass

OPTION_NAMES = ("host_format", "name", "namespaces", "label_selector", "network_name", "kube_secondary_dns",
                "use_service", "unset_ansible_port", "create_groups", "base_domain", "append_base_domain",
                "default_win_ansible_connection", "api_version")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "kubevirt.ops.kubevirt"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("kubevirt.yml", "kubevirt.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path)
        missing = missing_requirement()
        if missing:
            raise AnsibleError(missing[0])
        self._read_config_data(path)
        opts = self._options_in_use()
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        data = None
        if use_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                data = None
        if data is None:
            data = self._fetch(opts)
            if self.get_option("cache"):
                self._cache[cache_key] = data
        self._populate(data, opts)

    def _options_in_use(self) -> dict:
        opts = {name: self.get_option(name) for name in OPTION_NAMES}
        opts.update({name: self.get_option(name) for name in AUTH_ARG_SPEC})
        connections = self.get_option("connections")
        if connections:
            self.display.deprecated("The 'connections' option is deprecated: give its options at the top level",
                                    version="1.0.0", collection_name="kubevirt.ops")
            if len(connections) != 1:
                raise AnsibleError("connections: only one entry is supported; use one file per cluster")
            opts.update({k: v for k, v in connections[0].items() if v is not None})
        return opts

    def _fetch(self, opts: dict) -> dict:
        auth = {name: opts.get(name) for name in AUTH_ARG_SPEC}
        try:
            client = api_client(auth)
            return inv.fetch(client, opts.get("namespaces"), opts["api_version"], opts.get("label_selector"),
                             context_namespace(auth), self.display.warning)
        except ConfigurationError as exc:
            raise AnsibleError(f"kubevirt inventory: {exc}") from exc
        except ApiError as exc:
            raise AnsibleError(f"kubevirt inventory: {describe(exc)}") from exc

    # -- building the inventory

    def _populate(self, data: dict, opts: dict) -> None:
        opts = dict(opts)
        if opts.get("base_domain") is None:
            opts["base_domain"] = data.get("base_domain")
        cluster = self._sanitize_group_name(opts.get("name") or data["cluster"])
        self.inventory.add_group(cluster)
        self.inventory.set_variable(cluster, "kubevirt_namespace_source", data.get("namespace_source"))
        self.inventory.set_variable(cluster, "kubevirt_skipped_namespaces", data.get("skipped") or {})
        for namespace, found in sorted(data["namespaces"].items()):
            self._add_namespace(cluster, namespace, found, opts)

    def _add_namespace(self, cluster: str, namespace: str, found: dict, opts: dict) -> None:
        vms = {vm["metadata"]["name"]: vm for vm in found["vms"] if _valid(vm)}
        vmis = {vmi["metadata"]["name"]: vmi for vmi in found["vmis"] if _valid(vmi)}
        if not vms and not vmis:
            return
        services = inv.connection_services(found.get("services") or [])
        group = self._sanitize_group_name(f"namespace_{namespace}")
        self.inventory.add_group(group)
        self.inventory.add_child(cluster, group)
        for name in sorted(set(vms) | set(vmis)):
            vm, vmi = vms.get(name), vmis.get(name)
            meta = (vm or vmi)["metadata"]
            host = opts["host_format"].format(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
            self.inventory.add_host(host)
            self.inventory.add_child(group, host)
            variables = {}
            if vm:
                variables.update(inv.object_vars("vm", vm))
            if vmi:
                variables.update(inv.object_vars("vmi", vmi))
            for key, value in variables.items():
                self.inventory.set_variable(host, key, value)
            if vmi:
                current = self.inventory.get_host(host).get_vars().get("ansible_connection")
                for key, value in inv.connection_vars(vmi, services, opts, current).items():
                    self.inventory.set_variable(host, key, value)
            if opts.get("create_groups"):
                labels = dict((vm or {}).get("metadata", {}).get("labels") or {})
                labels.update((vmi or {}).get("metadata", {}).get("labels") or {})
                kinds = [("label", f"{k}_{v}") for k, v in sorted(labels.items())] + inv.extra_groups(vm, vmi)
                for kind, value in kinds:
                    name_ = self._sanitize_group_name(f"{kind}_{value}")
                    self.inventory.add_group(name_)
                    self.inventory.add_child(name_, host)
            self._construct(host)

    def _construct(self, host: str) -> None:
        hostvars = self.inventory.get_host(host).get_vars()
        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)


def _valid(obj: dict) -> bool:
    meta = obj.get("metadata") or {}
    return bool(meta.get("name") and meta.get("namespace") and meta.get("uid"))
