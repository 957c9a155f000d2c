"""Documentation of the connection options of the kubevirt.ops VM modules and inventory."""
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  host:
    description:
      - URL of the Kubernetes API server.
      - Falls back to the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token for the API server.
      - Falls back to E(K8S_AUTH_API_KEY).
    type: str
  kubeconfig:
    description:
      - A kubeconfig file, several joined with C(:) (C(;) on Windows), or the kubeconfig itself as a dictionary.
      - Without it and without O(host), the in-cluster service account is tried, then C(~/.kube/config).
      - Falls back to E(K8S_AUTH_KUBECONFIG).
    type: raw
  context:
    description:
      - The kubeconfig context to use.
      - Falls back to E(K8S_AUTH_CONTEXT).
    type: str
  username:
    description:
      - User name for HTTP basic authentication (only API servers or proxies that accept it).
      - Falls back to E(K8S_AUTH_USERNAME).
    type: str
  password:
    description:
      - Password for HTTP basic authentication.
      - Falls back to E(K8S_AUTH_PASSWORD).
    type: str
  client_cert:
    description:
      - Client certificate file for TLS client authentication.
      - Falls back to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Key file of O(client_cert).
      - Falls back to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  ca_cert:
    description:
      - CA bundle that signed the API server's certificate (the whole chain).
      - Falls back to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description:
      - Whether to verify the API server's certificate.
      - Falls back to E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  proxy:
    description:
      - URL of an HTTP proxy for the API server connection.
      - Falls back to E(K8S_AUTH_PROXY).
    type: str
  no_proxy:
    description:
      - Comma separated hosts, domains and networks reached without the proxy.
      - Falls back to E(K8S_AUTH_NO_PROXY).
    type: str
  proxy_headers:
    description:
      - Headers for the proxy.
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - C(user:password) for the proxy's basic authentication.
          - Falls back to E(K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH).
        type: str
      basic_auth:
        description:
          - C(user:password) for a basic authentication header.
          - Falls back to E(K8S_AUTH_PROXY_HEADERS_BASIC_AUTH).
        type: str
      user_agent:
        description:
          - User-Agent header, such as C(my-tool/1.0).
          - Falls back to E(K8S_AUTH_PROXY_HEADERS_USER_AGENT).
        type: str
  persist_config:
    description:
      - Whether refreshed tokens are written back to the kubeconfig file.
      - Falls back to E(K8S_AUTH_PERSIST_CONFIG).
    type: bool
  impersonate_user:
    description:
      - User to act as (C(Impersonate-User)); the credentials need the C(impersonate) permission.
      - Falls back to E(K8S_AUTH_IMPERSONATE_USER).
    type: str
  impersonate_groups:
    description:
      - Groups to act as (one C(Impersonate-Group) header each).
      - Falls back to E(K8S_AUTH_IMPERSONATE_GROUPS), comma separated.
    type: list
    elements: str
notes:
  - The options and their environment variables are those of C(kubernetes.core) and C(kubevirt.core), so tasks
    and inventories written for them keep working.
"""
