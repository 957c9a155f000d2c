"""A control plane with the aggregation layer for virt-api's integration tests, and virt-api registered on it.

`FrontProxyControlPlane` is the shared `apiserver.ControlPlane` plus what kubeadm sets up for aggregated
API servers: a front-proxy CA, kube-apiserver's front-proxy client certificate and the --requestheader-*
flags (kube-apiserver then publishes kube-system/extension-apiserver-authentication itself).

`VirtAPI` runs virt-api as a local process on 127.0.0.1 and registers it like the kubevirt role does:
webhooks by URL (https://127.0.0.1:PORT/...), and the APIService through a Service of type ExternalName
`localhost` (kube-apiserver dials an ExternalName service's name directly, so no cluster network is needed).
Its serving certificate names 127.0.0.1 and virt-api.kubevirt.svc (the name the aggregator checks).
"""
import base64
import subprocess
import sys
import time
from pathlib import Path

from apiserver import ControlPlane, _key, _pem_cert, _pem_key, free_port
from certs import issue

from kubevirt_runtime.machinery.resource import ApiError, Resource, ResourceClient

FRONT_PROXY_NAME = "front-proxy-client"


class FrontProxyControlPlane(ControlPlane):
    def _write_certs(self):
        pki = super()._write_certs()
        ca_key = _key()
        ca = issue("front-proxy-ca", ca_key, ca=True)
        client_key = _key()
        client = issue(FRONT_PROXY_NAME, client_key, ca, ca_key, client=True)
        for name, data in {"front-proxy-ca.crt": _pem_cert(ca), "front-proxy-client.crt": _pem_cert(client),
                           "front-proxy-client.key": _pem_key(client_key)}.items():
            (pki / name).write_bytes(data)
        self.pki = pki
        return pki

    def _spawn(self, name, args):
        if name == "kube-apiserver":
            pki = self.pki
            args = args + [
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                f"--requestheader-allowed-names={FRONT_PROXY_NAME}",
                "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}"]
        return super()._spawn(name, args)


SERVICES = Resource("", "v1", "services", kind="Service")
APISERVICES = Resource("apiregistration.k8s.io", "v1", "apiservices", namespaced=False, kind="APIService")
MUTATING = Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", namespaced=False)
VALIDATING = Resource("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", namespaced=False)


def _rule(plural):
    return {"apiGroups": ["kubevirt.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": [plural]}


class VirtAPI:
    def __init__(self, plane, namespace="kubevirt"):
        self.plane = plane
        self.namespace = namespace
        self.port = free_port()
        pki = plane.workdir / "virt-api-pki"
        pki.mkdir(exist_ok=True)
        ca_key = _key()
        ca = issue("virt-api-ca", ca_key, ca=True)
        key = _key()
        cert = issue("virt-api", key, ca, ca_key, server=True,
                     sans=("127.0.0.1", "localhost", f"virt-api.{namespace}.svc"))
        (pki / "ca.crt").write_bytes(_pem_cert(ca))
        (pki / "tls.crt").write_bytes(_pem_cert(cert))
        (pki / "tls.key").write_bytes(_pem_key(key))
        self.ca_bundle = base64.b64encode(_pem_cert(ca)).decode()
        self.pki = pki
        self.log_path = Path(plane.workdir) / "virt-api.log"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubevirt_runtime.apiserver.main", "--kubeconfig", str(self.plane.kubeconfig),
             "--address", "127.0.0.1", "--port", str(self.port), "--tls-cert-file", str(self.pki / "tls.crt"),
             "--tls-key-file", str(self.pki / "tls.key"), "--metrics-port", "-1", "--log-level", "debug"],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def register(self, timeout=60):
        api = self.plane.api_client
        url = f"https://127.0.0.1:{self.port}"
        webhooks = []
        for kind, resource in (("mutating", MUTATING), ("validating", VALIDATING)):
            action = "mutate" if kind == "mutating" else "validate"
            hooks = [{"name": f"{plural}-{action}.kubevirt.io", "admissionReviewVersions": ["v1"],
                      "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
                      "clientConfig": {"url": f"{url}/{plural}-{action}", "caBundle": self.ca_bundle},
                      "rules": [_rule(plural)]}
                     for plural in ("virtualmachines", "virtualmachineinstances")]
            if kind == "validating":
                hooks.append({"name": "instancetypes-validate.kubevirt.io", "admissionReviewVersions": ["v1"],
                              "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
                              "clientConfig": {"url": f"{url}/instancetypes-validate", "caBundle": self.ca_bundle},
                              "rules": [{"apiGroups": ["instancetype.kubevirt.io"], "apiVersions": ["v1beta1"],
                                         "operations": ["CREATE", "UPDATE"], "scope": "*",
                                         "resources": ["virtualmachineinstancetypes", "virtualmachinepreferences",
                                                       "virtualmachineclusterinstancetypes",
                                                       "virtualmachineclusterpreferences"]}]})
                for group, plural in (("kubevirt.io", "virtualmachineinstancereplicasets"),
                                      ("pool.kubevirt.io", "virtualmachinepools")):
                    hooks.append({"name": f"{plural}-validate.kubevirt.io", "admissionReviewVersions": ["v1"],
                                  "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
                                  "clientConfig": {"url": f"{url}/{plural}-validate", "caBundle": self.ca_bundle},
                                  "rules": [{"apiGroups": [group], "apiVersions": ["*"],
                                             "operations": ["CREATE", "UPDATE"], "resources": [plural],
                                             "scope": "Namespaced"}]})
            webhooks.append((resource, {"apiVersion": "admissionregistration.k8s.io/v1",
                                        "kind": f"{kind.capitalize()}WebhookConfiguration",
                                        "metadata": {"name": f"virt-api-{kind}"}, "webhooks": hooks}))
        objects = [(SERVICES, {"apiVersion": "v1", "kind": "Service",
                               "metadata": {"name": "virt-api", "namespace": self.namespace},
                               "spec": {"type": "ExternalName", "externalName": "localhost",
                                        "ports": [{"name": "https", "port": self.port}]}}),
                   (APISERVICES, {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                                  "metadata": {"name": "v1.subresources.kubevirt.io"},
                                  "spec": {"group": "subresources.kubevirt.io", "version": "v1",
                                           "groupPriorityMinimum": 1000, "versionPriority": 15,
                                           "caBundle": self.ca_bundle,
                                           "service": {"name": "virt-api", "namespace": self.namespace,
                                                       "port": self.port}}}),
                   *webhooks]
        for resource, obj in objects:
            try:
                ResourceClient(api, resource).create(obj)
            except ApiError as exc:
                if not exc.already_exists:
                    raise
        apiservices = ResourceClient(api, APISERVICES)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"virt-api exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            conditions = (apiservices.get("v1.subresources.kubevirt.io").get("status") or {}).get("conditions") or []
            if any(c["type"] == "Available" and c["status"] == "True" for c in conditions):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"APIService not Available: {conditions}\nvirt-api log:\n{self.log()[-3000:]}")
            time.sleep(0.5)
