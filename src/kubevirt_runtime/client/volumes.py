"""Disk hotplug and image upload through the API server, shared by virtctl and the web console.

    volumes = Volumes(api_client)
    volumes.add(namespace, "vm1", "extra-disk")          # addvolume on the VM (its VMI when there is no VM)
    volumes.remove(namespace, "vm1", "extra-disk")       # removevolume, the same way
    volumes.upload(namespace, "dv1", "disk.qcow2", size="1Gi")   # CDI's upload source, as `virtctl image-upload`

addvolume finds out, as upstream's virtctl does, whether the name is a DataVolume or a PVC. The upload
creates the DataVolume (source upload) unless it exists, waits for UploadReady, and streams the file to the
upload server pod through the API server's pod proxy (pods/proxy in the namespace is what it takes).
"""
from __future__ import annotations

import http.client
import os
import time
from urllib.parse import urlparse

from ..api import cdi
from ..machinery.resource import ApiError, Resource, ResourceClient
from .subresources import GROUP, VERSION, Subresources

_DVS = Resource(cdi.GROUP, cdi.VERSION, cdi.PLURAL, kind=cdi.KIND)
_PVCS = Resource("", "v1", "persistentvolumeclaims", kind="PersistentVolumeClaim")
_SUB_VMS = Resource(GROUP, VERSION, "virtualmachines", kind="VirtualMachine")
_SUB_VMIS = Resource(GROUP, VERSION, "virtualmachineinstances", kind="VirtualMachineInstance")
UPLOAD_PORT = 8443
CACHE_MODES = ("none", "writethrough", "writeback")


class VolumeError(Exception):
    pass


def add_options(volume_name: str, source_kind: str, disk_name: str | None = None, serial: str | None = None,
                cache: str | None = None, bus: str = "scsi", dry_run: bool = False) -> dict:
    """upstream's AddVolumeOptions as virtctl addvolume builds it."""
    name = disk_name or volume_name
    if len(name) > 63:
        raise VolumeError(f"Invalid volume name {name}, must not exceed 63 characters"
                          + ("" if disk_name else ". Use --disk-name to specify a shorter name"))
    if cache and cache not in CACHE_MODES:
        raise VolumeError(f"error adding volume, invalid cache value {cache}")
    source = {"name": volume_name} if source_kind == "dataVolume" else {"claimName": volume_name}
    opts = {"name": name, "disk": {"name": name, "disk": {"bus": bus}, "serial": serial or name},
            "volumeSource": {source_kind: {**source, "hotpluggable": True}}}
    if cache:
        opts["disk"]["cache"] = cache
    if dry_run:
        opts["dryRun"] = ["All"]
    return opts


class Volumes:
    def __init__(self, api_client):
        self.api = api_client
        self.subresources = Subresources(api_client)
        self.dvs = ResourceClient(api_client, _DVS)
        self.pvcs = ResourceClient(api_client, _PVCS)
        self.vms = ResourceClient(api_client, _SUB_VMS)

    def source_kind(self, namespace: str, name: str) -> str:
        for client, kind in ((self.dvs, "dataVolume"), (self.pvcs, "persistentVolumeClaim")):
            try:
                client.get(name, namespace)
                return kind
            except ApiError as exc:
                if not exc.not_found:
                    raise
        raise VolumeError(f"Volume {name} is not a DataVolume or PersistentVolumeClaim")

    def _put(self, namespace: str, name: str, sub: str, body: dict) -> str:
        """The VM's subresource, else (no such VM) the VMI's; returns which kind took it."""
        try:
            self.vms.request("PUT", _SUB_VMS.path(namespace, name, sub), body=body, subresource=sub)
            return "VM"
        except ApiError as exc:
            if not exc.not_found:
                raise
        self.vms.request("PUT", _SUB_VMIS.path(namespace, name, sub), body=body, subresource=sub)
        return "VMI"

    def add(self, namespace: str, name: str, volume_name: str, **options) -> str:
        opts = add_options(volume_name, self.source_kind(namespace, volume_name), **options)
        return self._put(namespace, name, "addvolume", opts)

    def remove(self, namespace: str, name: str, volume_name: str, dry_run: bool = False) -> str:
        body = {"name": volume_name}
        if dry_run:
            body["dryRun"] = ["All"]
        return self._put(namespace, name, "removevolume", body)

    # -- image upload

    def _wait_phase(self, namespace: str, name: str, phases, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            dv = self.dvs.get(name, namespace)
            status = dv.get("status") or {}
            if status.get("phase") in phases:
                return dv
            if status.get("phase") == cdi.Phase.FAILED:
                ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
                raise VolumeError(f"DataVolume {name} failed: {ready.get('message') or 'see its events'}")
            if time.monotonic() > deadline:
                raise VolumeError(f"DataVolume {name} is {status.get('phase') or 'Pending'} after {timeout:.0f}s "
                                  f"(waiting for {', '.join(phases)})")
            time.sleep(1)

    def upload(self, namespace: str, name: str, image_path: str, size: str | None = None,
               storage_class: str | None = None, timeout: float = 300, progress=None) -> dict:
        if not os.path.isfile(image_path):
            raise VolumeError(f"{image_path} is not a file")
        try:
            dv = self.dvs.get(name, namespace)
            if ((dv.get("spec") or {}).get("source") or {}).get("upload") is None:
                raise VolumeError(f"DataVolume {name} exists and its source is not upload")
        except ApiError as exc:
            if not exc.not_found:
                raise
            if not size:
                raise VolumeError("when creating the DataVolume, --size is required") from None
            storage = {"resources": {"requests": {"storage": size}}}
            if storage_class:
                storage["storageClassName"] = storage_class
            self.dvs.create({"apiVersion": cdi.API_VERSION, "kind": cdi.KIND,
                             "metadata": {"name": name, "namespace": namespace},
                             "spec": {"source": {"upload": {}}, "storage": storage}}, namespace)
        self._wait_phase(namespace, name, (cdi.Phase.UPLOAD_READY,), timeout)
        self._send(namespace, cdi.UPLOAD_PREFIX + name, image_path, progress)
        return self._wait_phase(namespace, name, (cdi.Phase.SUCCEEDED,), timeout)

    def _send(self, namespace: str, pod: str, image_path: str, progress=None) -> None:
        """POSTs the file to the upload server through the API server's pod proxy, in 1 MiB chunks."""
        cfg = self.api.configuration
        url = urlparse(cfg.host)
        path = f"{url.path.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{pod}:{UPLOAD_PORT}/proxy/v1beta1/upload"
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=self.subresources.ssl_context(),
                                               timeout=600)
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=600)
        size = os.path.getsize(image_path)
        try:
            conn.putrequest("POST", path)
            for key, value in {**self.subresources.auth_headers(), "Content-Type": "application/octet-stream",
                               "Content-Length": str(size)}.items():
                conn.putheader(key, value)
            conn.endheaders()
            sent = 0
            with open(image_path, "rb") as f:
                while chunk := f.read(1 << 20):
                    conn.send(chunk)
                    sent += len(chunk)
                    if progress:
                        progress(sent, size)
            response = conn.getresponse()
            body = response.read().decode(errors="replace").strip()
        except OSError as exc:
            raise VolumeError(f"the upload to {pod} broke off: {exc}") from exc
        finally:
            conn.close()
        if response.status != 200:
            raise VolumeError(f"the upload server answered {response.status}: {body}")
