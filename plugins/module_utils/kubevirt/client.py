"""A Kubernetes ApiClient from kubernetes.core-style connection options (modules and the inventory plugin).

Each option falls back to its K8S_AUTH_* environment variable (the option's name upper-cased, or the
kubernetes client's name for it: K8S_AUTH_VERIFY_SSL, K8S_AUTH_SSL_CA_CERT, K8S_AUTH_CERT_FILE,
K8S_AUTH_KEY_FILE). Where the configuration comes from:
- O(host) plus a token, a user name and password, or a client certificate and key: only the options;
- else O(kubeconfig) / O(context) given: that kubeconfig (a path, paths joined with os.pathsep, or a dict);
- else the in-cluster service account, then the default kubeconfig ($KUBECONFIG, ~/.kube/config);
then every option that is set overrides what was loaded.
"""
from __future__ import annotations

import base64
import os

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
except ImportError:  # reported by core.missing_requirement before anything calls in here
    k8s_client = k8s_config = urllib3 = None

from ansible_collections.kubevirt.ops.plugins.module_utils.kubevirt.args import AUTH_ARG_SPEC, AUTH_PROXY_HEADERS_SPEC

# option -> the kubernetes Configuration attribute it sets (and its alternative environment name)
CONFIG_ATTRIBUTES = {
    "host": "host",
    "api_key": "api_key",
    "username": "username",
    "password": "password",
    "validate_certs": "verify_ssl",
    "ca_cert": "ssl_ca_cert",
    "client_cert": "cert_file",
    "client_key": "key_file",
    "proxy": "proxy",
    "no_proxy": "no_proxy",
}
LOADER_OPTIONS = ("kubeconfig", "context", "persist_config")
HEADER_OPTIONS = {"impersonate_user": "Impersonate-User", "impersonate_groups": "Impersonate-Group"}


class ConfigurationError(Exception):
    """The connection options do not make a working configuration."""


class _RepeatedHeader(str):
    """A header name that may appear more than once among an ApiClient's default headers (the client keeps
    them in a dict): equal only to itself."""

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other


def _env_bool(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def resolve(params: dict, environ=None) -> dict:
    """The connection options that are set, each from the parameters or else from the environment."""
    environ = os.environ if environ is None else environ
    out = {}
    for option, spec in AUTH_ARG_SPEC.items():
        value = params.get(option)
        if value is None and option == "proxy_headers":
            headers = {key: environ["K8S_AUTH_PROXY_HEADERS_" + key.upper()]
                       for key in AUTH_PROXY_HEADERS_SPEC if environ.get("K8S_AUTH_PROXY_HEADERS_" + key.upper())}
            value = headers or None
        elif value is None:
            names = ["K8S_AUTH_" + option.upper()]
            if option in CONFIG_ATTRIBUTES and CONFIG_ATTRIBUTES[option] != option:
                names.append("K8S_AUTH_" + CONFIG_ATTRIBUTES[option].upper())
            raw = next((environ[n] for n in names if environ.get(n) not in (None, "")), None)
            if raw is not None:
                if spec.get("type") == "bool":
                    value = _env_bool(raw)
                elif spec.get("type") == "list":
                    value = [item.strip() for item in raw.split(",") if item.strip()]
                else:
                    value = raw
        if value is not None:
            out[option] = value
    return out


def _self_sufficient(auth: dict) -> bool:
    if not auth.get("host"):
        return False
    return bool(auth.get("api_key") or (auth.get("username") and auth.get("password"))
                or (auth.get("client_cert") and auth.get("client_key")))


def _load_kubeconfig(auth: dict, configuration) -> None:
    kwargs = {"context": auth.get("context"), "client_configuration": configuration,
              "persist_config": bool(auth.get("persist_config"))}
    kubeconfig = auth.get("kubeconfig")
    if isinstance(kubeconfig, dict):
        kwargs.pop("persist_config")
        k8s_config.load_kube_config_from_dict(config_dict=kubeconfig, **kwargs)
    else:
        k8s_config.load_kube_config(config_file=kubeconfig or None, **kwargs)


def configuration_for(auth: dict):
    """A kubernetes Configuration for resolved options (see resolve)."""
    configuration = k8s_client.Configuration()
    try:
        if _self_sufficient(auth):
            pass
        elif auth.get("kubeconfig") or auth.get("context"):
            _load_kubeconfig(auth, configuration)
        else:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except k8s_config.ConfigException:
                _load_kubeconfig(auth, configuration)
    except (k8s_config.ConfigException, OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"could not load a Kubernetes configuration: {exc}") from exc
    for option, attribute in CONFIG_ATTRIBUTES.items():
        value = auth.get(option)
        if value is None:
            continue
        if option == "host":
            value = value.rstrip("/")
        elif option == "api_key":
            value = {"authorization": f"Bearer {value}"}
        setattr(configuration, attribute, value)
    if auth.get("proxy_headers"):
        configuration.proxy_headers = urllib3.util.make_headers(**auth["proxy_headers"])
    return configuration


def api_client(params: dict, environ=None):
    """An ApiClient for the module's (or inventory's) connection options."""
    auth = resolve(params, environ)
    configuration = configuration_for(auth)
    client = k8s_client.ApiClient(configuration)
    if auth.get("username") and auth.get("password") and not configuration.api_key:
        token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        client.set_default_header("Authorization", f"Basic {token}")
    for option, header in HEADER_OPTIONS.items():
        value = auth.get(option)
        for item in value if isinstance(value, list) else [value] if value else []:
            client.set_default_header(_RepeatedHeader(header), item)
    return client


def context_namespace(params: dict, environ=None) -> str | None:
    """The namespace of the kubeconfig context the options select (None when there is none)."""
    auth = resolve(params, environ)
    kubeconfig = auth.get("kubeconfig")
    if kubeconfig is None and not _self_sufficient(auth):
        kubeconfig = (os.environ if environ is None else environ).get("KUBECONFIG") or os.path.expanduser(
            "~/.kube/config")
    if isinstance(kubeconfig, str):
        try:
            import yaml
            with open(kubeconfig.split(os.pathsep)[0]) as fh:
                kubeconfig = yaml.safe_load(fh)
        except (OSError, ImportError, ValueError):
            return None
    if not isinstance(kubeconfig, dict):
        return None
    wanted = auth.get("context") or kubeconfig.get("current-context")
    for entry in kubeconfig.get("contexts") or []:
        if entry.get("name") == wanted:
            return (entry.get("context") or {}).get("namespace")
    return None
