"""The kubevirt.ops.kubevirt inventory's work: what it fetches from the API, and what it makes of it (pure).

fetch() returns plain data (it is what the inventory cache stores):
    {"cluster": name from the API server URL, "base_domain": OpenShift's cluster DNS base domain or None,
     "namespace_source": where the namespace list came from, "skipped": {namespace: why},
     "namespaces": {namespace: {"vms": [...], "vmis": [...], "services": [...]}}}

Namespaces: the `namespaces` option; else all of them; else, without the right to list namespaces, the
OpenShift projects the user may see, else the namespaces of the VMs and VMIs the user may list cluster-wide,
else the kubeconfig context's namespace. A namespace whose VMs cannot be read is skipped, and said so, instead
of failing the inventory.
"""
from __future__ import annotations

import re

try:
    from kubevirt_runtime.client.errors import describe
    from kubevirt_runtime.machinery.resource import NAMESPACES, ApiError, Resource, ResourceClient
    SERVICES = Resource("", "v1", "services", kind="Service")
    PROJECTS = Resource("project.openshift.io", "v1", "projects", namespaced=False, kind="Project")
    DNSES = Resource("config.openshift.io", "v1", "dnses", namespaced=False, kind="DNS")
except ImportError:  # the plugin reports the missing library before anything calls in here
    describe = NAMESPACES = Resource = ResourceClient = SERVICES = PROJECTS = DNSES = None

    class ApiError(Exception):  # noqa: N818 - the name kubevirt_runtime gives it
        status = 0

SSH_PORT, WINRM_HTTP_PORT, WINRM_HTTPS_PORT = 22, 5985, 5986
DOMAIN_LABEL = "kubevirt.io/domain"
WINDOWS_ANNOTATIONS = ("kubevirt.io/cluster-preference-name", "kubevirt.io/preference-name", "vm.kubevirt.io/os")
SSH_CONNECTIONS = (None, "ssh", "ansible.builtin.ssh")
WINRM_CONNECTIONS = ("winrm", "ansible.builtin.winrm", "psrp", "ansible.builtin.psrp")
_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


# ---------------------------------------------------------------- fetching

def cluster_name(host: str) -> str:
    """https://api.example.com:6443 -> api-example-com_6443 (what kubevirt.core names the cluster group)."""
    return re.sub(r"^https?://", "", host or "").replace(".", "-").replace(":", "_")


def _names(items) -> list[str]:
    return sorted({i["metadata"]["name"] for i in items if (i.get("metadata") or {}).get("name")})


def _kubevirt(api_client, api_version: str, plural: str, kind: str):
    group, version = api_version.rsplit("/", 1) if "/" in api_version else ("", api_version)
    return ResourceClient(api_client, Resource(group, version, plural, kind=kind))


def namespaces_to_read(api_client, api_version: str, context_namespace: str | None, warn) -> tuple[list[str], str]:
    """(namespaces, where the list came from) when the `namespaces` option is not given."""
    try:
        return _names(ResourceClient(api_client, NAMESPACES).list()["items"]), "all namespaces"
    except ApiError as exc:
        if exc.status != 403:
            raise
        refusal = describe(exc)
    try:
        projects = _names(ResourceClient(api_client, PROJECTS).list()["items"])
        source = "the OpenShift projects the user may see"
    except ApiError:
        projects, source = None, ""
    if projects is None:
        try:
            found = []
            kinds = (("virtualmachines", "VirtualMachine"), ("virtualmachineinstances", "VirtualMachineInstance"))
            for plural, kind in kinds:
                found += _kubevirt(api_client, api_version, plural, kind).list()["items"]
            projects = sorted({i["metadata"]["namespace"] for i in found})
            source = "the namespaces of the VMs and VMIs the user may list in all namespaces"
        except ApiError:
            projects = [context_namespace or "default"]
            source = "the kubeconfig context's namespace"
    warn(f"kubevirt inventory: cannot list namespaces ({refusal}); reading {source}: {', '.join(projects) or 'none'}")
    return projects, source


def base_domain(api_client) -> str | None:
    """OpenShift's cluster DNS base domain, None elsewhere."""
    try:
        return (ResourceClient(api_client, DNSES).get("cluster").get("spec") or {}).get("baseDomain")
    except ApiError:
        return None


def fetch(api_client, namespaces, api_version: str, label_selector: str | None, context_namespace, warn) -> dict:
    source = "the namespaces option"
    if not namespaces:
        namespaces, source = namespaces_to_read(api_client, api_version, context_namespace, warn)
    vms = _kubevirt(api_client, api_version, "virtualmachines", "VirtualMachine")
    vmis = _kubevirt(api_client, api_version, "virtualmachineinstances", "VirtualMachineInstance")
    services = ResourceClient(api_client, SERVICES)
    data = {"cluster": cluster_name(api_client.configuration.host), "base_domain": base_domain(api_client),
            "namespace_source": source, "namespaces": {}, "skipped": {}}
    for namespace in namespaces:
        try:
            found_vms = vms.list(namespace, label_selector=label_selector)["items"]
            found_vmis = vmis.list(namespace, label_selector=label_selector)["items"]
        except ApiError as exc:
            if exc.status not in (403, 404):
                raise
            data["skipped"][namespace] = describe(exc)
            warn(f"kubevirt inventory: skipped namespace {namespace}: {describe(exc)}")
            continue
        if not found_vms and not found_vmis:
            continue
        try:
            found_services = services.list(namespace)["items"]
        except ApiError as exc:  # the VMs are still listed, by their interface addresses
            warn(f"kubevirt inventory: services of {namespace} not readable, addresses from interfaces: "
                 f"{describe(exc)}")
            found_services = []
        data["namespaces"][namespace] = {"vms": found_vms, "vmis": found_vmis, "services": found_services}
    return data


# ---------------------------------------------------------------- what hosts get

def snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def object_vars(prefix: str, obj: dict) -> dict:
    """<prefix>_annotations/_labels/_resource_version/_uid/_name/_namespace and every status key, snake_cased."""
    meta = obj.get("metadata") or {}
    out = {}
    for key, var in (("annotations", "annotations"), ("labels", "labels"), ("resourceVersion", "resource_version"),
                     ("uid", "uid"), ("name", "name"), ("namespace", "namespace")):
        if meta.get(key):
            out[f"{prefix}_{var}"] = meta[key]
    for key, value in (obj.get("status") or {}).items():
        out[f"{prefix}_{snake(key)}"] = value
    return out


def connection_services(services: list[dict]) -> dict[str, list[dict]]:
    """LoadBalancer / NodePort services with one port aimed at SSH or WinRM, by the kubevirt.io/domain they
    select."""
    out: dict[str, list[dict]] = {}
    for service in services:
        spec = service.get("spec") or {}
        ports = spec.get("ports") or []
        domain = (spec.get("selector") or {}).get(DOMAIN_LABEL)
        if spec.get("type") in ("LoadBalancer", "NodePort") and len(ports) == 1 and domain \
                and ports[0].get("targetPort") in (SSH_PORT, WINRM_HTTP_PORT, WINRM_HTTPS_PORT):
            out.setdefault(domain, []).append(service)
    return out


def is_windows(vmi: dict) -> bool:
    guest = (vmi.get("status") or {}).get("guestOSInfo") or {}
    if guest.get("id"):
        return guest["id"] == "mswindows"
    annotations = (vmi.get("metadata") or {}).get("annotations") or {}
    for key in WINDOWS_ANNOTATIONS:
        if key in annotations:
            return annotations[key].startswith("windows")
    return False


def pick_interface(vmi: dict, network_name: str | None) -> dict | None:
    interfaces = (vmi.get("status") or {}).get("interfaces") or []
    if network_name is None:
        return interfaces[0] if interfaces else None
    return next((i for i in interfaces if i.get("name") == network_name), None)


def _service_endpoint(service: dict, node: str | None) -> tuple[str | None, int | None]:
    spec = service.get("spec") or {}
    port = (spec.get("ports") or [{}])[0]
    if spec.get("type") == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ingress:
            return ingress[0].get("hostname") or ingress[0].get("ip"), port.get("port")
        return None, None
    return node, port.get("nodePort")


def connection_vars(vmi: dict, services: dict[str, list[dict]], opts: dict, ansible_connection=None) -> dict:
    """ansible_host / ansible_port (and ansible_connection for a Windows guest) for a VMI; {} when it has no
    usable address. Order: kubesecondarydns name (with network_name), an SSH/WinRM service (without
    network_name), the interface's IP."""
    interface = pick_interface(vmi, opts.get("network_name"))
    if not interface or not interface.get("ipAddress"):
        return {}
    out = {}
    if ansible_connection is None and is_windows(vmi):
        ansible_connection = out["ansible_connection"] = opts.get("default_win_ansible_connection") or "winrm"
    meta = vmi["metadata"]
    host, port = None, None
    if opts.get("kube_secondary_dns") and opts.get("network_name"):
        host = f"{opts['network_name']}.{meta['name']}.{meta['namespace']}.vm"
        if opts.get("base_domain"):
            host += f".{opts['base_domain']}"
    elif opts.get("use_service") and not opts.get("network_name"):
        candidates = services.get((meta.get("labels") or {}).get(DOMAIN_LABEL), [])
        wanted = [SSH_PORT] if ansible_connection in SSH_CONNECTIONS else \
            [WINRM_HTTPS_PORT, WINRM_HTTP_PORT] if ansible_connection in WINRM_CONNECTIONS else []
        service = next((s for target in wanted for s in candidates
                        if s["spec"]["ports"][0].get("targetPort") == target), None)
        if service is not None:
            node = (vmi.get("status") or {}).get("nodeName")
            if node and opts.get("append_base_domain") and opts.get("base_domain"):
                node += f".{opts['base_domain']}"
            host, port = _service_endpoint(service, node)
            if host is None or port is None:
                host, port = None, None
    out["ansible_host"] = host or interface["ipAddress"]
    if port is not None or opts.get("unset_ansible_port", True):
        out["ansible_port"] = port
    return out


def extra_groups(vm: dict | None, vmi: dict | None) -> list[tuple[str, str]]:
    """(kind, value) of the groups create_groups adds besides the label groups: the node the instance runs on
    and its phase (stopped for a VM without an instance)."""
    out = []
    status = (vmi or {}).get("status") or {}
    if status.get("nodeName"):
        out.append(("node", status["nodeName"]))
    out.append(("phase", (status.get("phase") or "unknown").lower() if vmi else "stopped"))
    return out
