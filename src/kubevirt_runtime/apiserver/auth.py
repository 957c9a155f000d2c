"""Who is calling: the aggregation layer's front-proxy (request-header authentication) and SubjectAccessReviews.

kube-apiserver proxies ``/apis/subresources.kubevirt.io/...`` to virt-api over TLS, presenting its
front-proxy client certificate and naming the real user in headers. As every aggregated API server does,
virt-api trusts those headers only when the client certificate chains to the request-header CA published in
``kube-system/extension-apiserver-authentication`` (and, when that ConfigMap lists allowed names, has one
of them as its CN). The user is then authorized with a SubjectAccessReview for the subresource.
"""
from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass, field

from ..machinery.resource import ApiError, Resource, ResourceClient

log = logging.getLogger(__name__)

CONFIGMAPS = Resource("", "v1", "configmaps", kind="ConfigMap")
SUBJECT_ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False,
                                  kind="SubjectAccessReview")
AUTH_CONFIGMAP_NAMESPACE = "kube-system"
AUTH_CONFIGMAP_NAME = "extension-apiserver-authentication"


class Unauthenticated(Exception):
    """401: the request did not come from a trusted front-proxy."""


@dataclass(frozen=True)
class RequestHeaderConfig:
    client_ca: str  # PEM of the request-header (front-proxy) CA
    allowed_names: tuple = ()
    username_headers: tuple = ("X-Remote-User",)
    group_headers: tuple = ("X-Remote-Group",)
    extra_headers_prefixes: tuple = ("X-Remote-Extra-",)

    @classmethod
    def from_configmap(cls, data: dict) -> "RequestHeaderConfig":
        ca = data.get("requestheader-client-ca-file")
        if not ca:
            raise ValueError(f"{AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME} has no requestheader-client-ca-file: "
                             "kube-apiserver runs without the aggregation layer (--requestheader-* flags)")

        def strings(key, default=()):
            raw = data.get(key)
            return tuple(json.loads(raw)) if raw else tuple(default)

        return cls(client_ca=ca, allowed_names=strings("requestheader-allowed-names"),
                   username_headers=strings("requestheader-username-headers", ("X-Remote-User",)),
                   group_headers=strings("requestheader-group-headers", ("X-Remote-Group",)),
                   extra_headers_prefixes=strings("requestheader-extra-headers-prefix", ("X-Remote-Extra-",)))


def load_requestheader_config(api_client) -> RequestHeaderConfig:
    cm = ResourceClient(api_client, CONFIGMAPS).get(AUTH_CONFIGMAP_NAME, AUTH_CONFIGMAP_NAMESPACE)
    return RequestHeaderConfig.from_configmap(cm.get("data") or {})


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple = ()
    extra: dict = field(default_factory=dict)
    uid: str = ""


def peer_common_name(peercert: dict | None) -> str | None:
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def authenticate(config: RequestHeaderConfig, peercert: dict | None, headers) -> UserInfo:
    """`peercert` is ``SSLSocket.getpeercert()`` of a connection whose TLS context verifies client
    certificates against ``config.client_ca`` only (so a non-empty dict means "signed by the front-proxy
    CA"); `headers` is an email.message.Message-like mapping (``get_all``)."""
    if not peercert:
        raise Unauthenticated("no client certificate from the front-proxy CA")
    cn = peer_common_name(peercert)
    if config.allowed_names and cn not in config.allowed_names:
        raise Unauthenticated(f"client certificate CN {cn!r} is not an allowed front-proxy name")
    user = next((v.strip() for h in config.username_headers for v in (headers.get_all(h) or ()) if v.strip()), "")
    if not user:
        raise Unauthenticated("the front-proxy named no user")
    groups = tuple(g.strip() for h in config.group_headers for v in (headers.get_all(h) or ())
                   for g in v.split(",") if g.strip())
    extra: dict[str, list[str]] = {}
    prefixes = [p.lower() for p in config.extra_headers_prefixes]
    for key, value in headers.items():
        low = key.lower()
        for prefix in prefixes:
            if low.startswith(prefix):
                from urllib.parse import unquote
                extra.setdefault(unquote(low[len(prefix):]), []).append(value)
    return UserInfo(user, groups, extra)


def server_ssl_context(config: RequestHeaderConfig, cert_file: str, key_file: str) -> ssl.SSLContext:
    """virt-api's server context: its serving certificate; client certificates optional (webhook calls carry
    none) but, when given, verified against the request-header CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=config.client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class Authorizer:
    """SubjectAccessReviews through the kube API (virt-api's service account needs create on them)."""

    def __init__(self, api_client):
        self.reviews = ResourceClient(api_client, SUBJECT_ACCESS_REVIEWS)

    def allowed(self, user: UserInfo, attributes: dict) -> tuple[bool, str]:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user.name, "groups": list(user.groups), "extra": user.extra,
                         "resourceAttributes": attributes}}
        if user.uid:
            body["spec"]["uid"] = user.uid
        try:
            status = self.reviews.create(body).get("status") or {}
        except ApiError as exc:
            log.warning("SubjectAccessReview failed: %s", exc)
            return False, f"authorization check failed: {exc.body.get('message', exc)}"
        return bool(status.get("allowed")) and not status.get("denied"), status.get("reason", "")
