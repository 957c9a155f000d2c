"""A throwaway control plane for integration tests: etcd + kube-apiserver from the cached upstream binaries.

    plane = ControlPlane(bin_dir, workdir).start()   # raises with the logs' tail when anything fails
    plane.kubeconfig      # admin kubeconfig (client certificate in group system:masters)
    plane.api_client      # kubernetes.client.ApiClient for it
    plane.stop()          # stops exactly the processes it started (by pid)

Details that matter to tests:
- everything listens on 127.0.0.1 on free ports; etcd keeps its data under workdir (no fsync);
- certificates (CA, serving, admin client, service-account keys) are made with `cryptography`;
- --allow-privileged=true (launcher pods are privileged); authorization RBAC,Node;
- the ServiceAccount admission plugin is disabled: without kube-controller-manager nobody creates the
  `default` ServiceAccount, and pods would be rejected;
- no scheduler, controller-manager or kubelet: pods stay Pending and nothing is garbage-collected unless the
  test does it (see bind_pod / set_pod_phase / force_delete_pod to play the scheduler and kubelet).
"""
import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml
from certs import issue
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REQUIRED_BINARIES = ("etcd", "kube-apiserver")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())




def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class ControlPlane:
    def __init__(self, bin_dir, workdir):
        self.bin_dir = Path(bin_dir)
        self.workdir = Path(workdir)
        self.procs = []
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.api_client = None
        self.server = None

    # -- setup

    def check_binaries(self):
        missing = [b for b in REQUIRED_BINARIES if not os.access(self.bin_dir / b, os.X_OK)]
        if missing:
            raise RuntimeError(f"integration tests need {', '.join(missing)} in {self.bin_dir} (run `make binaries` or "
                               f"set KUBEVIRT_OPS_BIN_DIR); not skipping")

    def _write_certs(self):
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        ca_key = _key()
        ca = issue("kubevirt-ops-test-ca", ca_key, ca=True)
        serving_key = _key()
        serving = issue("kube-apiserver", serving_key, ca, ca_key, server=True, sans=(
            "127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "10.96.0.1"))
        admin_key = _key()
        admin = issue("kubernetes-admin", admin_key, ca, ca_key, organization="system:masters", client=True)
        sa_key = _key()
        files = {"ca.crt": _pem_cert(ca), "ca.key": _pem_key(ca_key), "apiserver.crt": _pem_cert(serving),
                 "apiserver.key": _pem_key(serving_key), "admin.crt": _pem_cert(admin),
                 "admin.key": _pem_key(admin_key),
                 "sa.key": _pem_key(sa_key),
                 "sa.pub": sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)}
        for name, data in files.items():
            (pki / name).write_bytes(data)
        return pki

    def _spawn(self, name, args):
        log = open(self.workdir / f"{name}.log", "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def log_tail(self, name, lines=30):
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def start(self, timeout=120):
        self.check_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = self._write_certs()
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self._spawn("etcd", [
            str(self.bin_dir / "etcd"), "--name", "default", "--data-dir", str(self.workdir / "etcd-data"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer_port}", "--unsafe-no-fsync",
            "--log-level", "warn"])
        self.server = f"https://127.0.0.1:{api_port}"
        self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC,Node", "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount", f"--cert-dir={self.workdir / 'cert-dir'}",
            "--watch-cache=true", "--v=1"])
        self._write_kubeconfig(pki)
        self._wait_ready(pki, timeout)
        from kubernetes import client, config
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        self.api_client = client.ApiClient(configuration)
        return self

    def _write_kubeconfig(self, pki):
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.server,
                                                      "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": "admin", "user": {"client-certificate": str(pki / "admin.crt"),
                                                 "client-key": str(pki / "admin.key")}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        }
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig))

    def _wait_ready(self, pki, timeout):
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.5)
        tail = self.log_tail("kube-apiserver")
        self.stop()
        raise RuntimeError(f"kube-apiserver not ready after {timeout}s ({last}):\n{tail}")

    # -- helpers for tests

    def install_crds(self, crds, timeout=60):
        """Creates (or replaces) CRDs and waits until they are Established."""
        from kubevirt_runtime.machinery.resource import ApiError, Resource, ResourceClient
        client = ResourceClient(self.api_client, Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                                          namespaced=False))
        for crd in crds:
            try:
                client.create(crd)
            except ApiError as exc:
                if not exc.already_exists:
                    raise
                current = client.get(crd["metadata"]["name"])
                crd = dict(crd, metadata=dict(crd["metadata"], resourceVersion=current["metadata"]["resourceVersion"]))
                client.update(crd)
        deadline = time.monotonic() + timeout
        for crd in crds:
            while True:
                conditions = (client.get(crd["metadata"]["name"]).get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {crd['metadata']['name']} not established")
                time.sleep(0.2)

    def kubectl(self, *args, check=True):
        """Runs kubectl (from the same bin dir) against this control plane; returns stdout."""
        kubectl = self.bin_dir / "kubectl"
        if not kubectl.exists():
            kubectl = shutil.which("kubectl")
        if not kubectl:
            raise RuntimeError(f"no kubectl in {self.bin_dir} or PATH")
        proc = subprocess.run([str(kubectl), f"--kubeconfig={self.kubeconfig}", *args], capture_output=True,
                              text=True, timeout=60)
        if check and proc.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    # -- teardown

    def stop(self):
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.procs = []


# -- playing scheduler and kubelet (nothing else runs in this control plane)

def bind_pod(api_client, namespace, name, node):
    """What the scheduler does: a Binding sets spec.nodeName."""
    from kubevirt_runtime.machinery.resource import Resource, ResourceClient
    pods = ResourceClient(api_client, Resource("", "v1", "pods"))
    pods.request("POST", pods.resource.path(namespace, name, "binding"), subresource="binding", body={
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}})


def set_pod_phase(api_client, namespace, name, phase, ready=None, exit_code=None, reason=None, message=None):
    """What the kubelet reports: status.phase (and the Ready condition / compute container state; `reason` and
    `message`: why it failed the pod, as for a pod it rejected at admission)."""
    from kubevirt_runtime.machinery.resource import PODS, ResourceClient
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"phase": phase}
    if reason is not None:
        status.update(reason=reason, message=message or "")
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]
    if exit_code is not None:
        status["containerStatuses"] = [{"name": "compute", "ready": False, "restartCount": 0, "image": "x",
                                        "imageID": "", "state": {"terminated": {"exitCode": exit_code,
                                                                                 "finishedAt": now}}}]
    ResourceClient(api_client, PODS).patch_status(name, {"status": status}, namespace)


def force_delete_pod(api_client, namespace, name):
    """What the kubelet does once a deleted pod's containers stopped."""
    from kubevirt_runtime.machinery.resource import PODS, ApiError, ResourceClient
    try:
        ResourceClient(api_client, PODS).delete(name, namespace, grace_period_seconds=0)
    except ApiError as exc:
        if not exc.not_found:
            raise


def dump(obj):
    return json.dumps(obj, indent=1, sort_keys=True)


def wait_for(predicate, timeout=30, interval=0.2, message="condition"):
    """Polls predicate() until it returns something truthy and returns that; a 404 counts as "not yet"."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")
