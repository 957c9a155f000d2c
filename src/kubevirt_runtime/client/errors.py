"""What a refused API request means, in words a VM owner can act on (shared by virtctl and the Ansible modules).

    describe(exc)     # multi-line text for an ApiError
    request_of(method, path) -> Request(verb, group, resource, subresource, namespace, name)

- 422 Invalid (a webhook or the CRD schema rejected the object): one line saying what was refused, then one line
  per field cause, "<field>: <message>", as the server listed them.
- 403 Forbidden: names the Kubernetes verb and the resource (with subresource and API group) that was refused,
  then the server's message (which names the user).
- 404: names what was not found. Anything else: status, reason and the server's message.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..machinery.resource import ApiError

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str

    @property
    def qualified_resource(self) -> str:
        """virtualmachines.kubevirt.io/start, pods, ..., as RBAC rules spell them (plus the group)."""
        text = self.resource + (f".{self.group}" if self.group else "")
        return text + (f"/{self.subresource}" if self.subresource else "")

    @property
    def target(self) -> str:
        where = f' "{self.name}"' if self.name else ""
        if self.namespace:
            where += f' in namespace "{self.namespace}"'
        return f"{self.qualified_resource}{where}"


def request_of(method: str, path: str) -> Request:
    """The Kubernetes verb and resource of an API path (/api/v1/... or /apis/GROUP/VERSION/...)."""
    path = urlsplit(path).path if "://" in path else path.split("?", 1)[0]
    parts = [unquote(p) for p in path.strip("/").split("/") if p]
    group = ""
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = (parts[1] if len(parts) > 1 else ""), parts[3:]
    else:
        rest = parts
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = "/".join(rest[2:])
    method = method.upper()
    if method == "GET":
        verb = "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
    return Request(verb, group, resource, subresource, namespace, name)


def causes(exc: ApiError) -> list[str]:
    """The server's field causes as "<field>: <message>" lines (just the message when it names no field)."""
    out = []
    for cause in (exc.body.get("details") or {}).get("causes") or []:
        message = (cause.get("message") or cause.get("reason") or "").strip()
        field = cause.get("field")
        out.append(f"{field}: {message}" if field else message)
    return out


def describe(exc: ApiError) -> str:
    message = (exc.body.get("message") or "").strip()
    req = request_of(exc.method or "GET", exc.path) if exc.path else None
    if exc.status == 422 or exc.reason == "Invalid":
        details = exc.body.get("details") or {}
        kind = details.get("kind") or (req.resource if req else "object")
        name = details.get("name") or (req.name if req else "")
        lines = causes(exc)
        head = f'{kind} "{name}" was rejected as invalid ({exc.status} {exc.reason or "Invalid"})'
        if not lines:
            return f"{head}: {message}"
        return "\n".join([head + ":"] + lines)
    if exc.status == 403:
        if req is None:
            return f"forbidden: {message}"
        return f"forbidden: {req.verb} on {req.target} was refused: {message}"
    if exc.status == 404 and req is not None:
        return f"not found: {req.target} ({message})" if message else f"not found: {req.target}"
    where = f"{req.verb} {req.target}: " if req else ""
    return f"{where}{exc.status} {exc.reason}: {message}".rstrip(": ")
