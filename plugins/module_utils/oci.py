"""Write OCI image archives (the layout `ctr images import` reads) without a container engine.

Layers are uncompressed tars made reproducibly (sorted entries, mtime 0, root owner), so the
same inputs give the same digests: an unchanged image is not rewritten nor re-imported, and a
layer built once (a base layer) is reused from its file by every image that lists it.
"""
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
CHUNK = 1 << 20


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _normalise(info):
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def _add_tree(tar, src_dir, dest):
    for root, dirs, files in os.walk(src_dir):
        dirs.sort()
        rel = os.path.relpath(root, src_dir)
        arc_root = dest if rel == "." else f"{dest}/{rel}" if dest else rel
        if arc_root:
            tar.addfile(_normalise(tar.gettarinfo(root, arc_root)))
        # os.walk lists links to directories in dirs without entering them: store them as links.
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            path = os.path.join(root, name)
            info = tar.gettarinfo(path, f"{arc_root}/{name}" if arc_root else name)
            if info is None:  # sockets and other special files have no tar form
                continue
            _normalise(info)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def write_layer(path, entries):
    """Write a layer tar at path from entries: {"src", "dest", "mode"?} (a file) or {"dir", "dest"} (a tree).

    Parent directories of each dest are created in the layer. Returns the layer's digest.
    """
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".layer-")
    os.close(fd)
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        made = set()
        for entry in entries:
            dest = entry["dest"].strip("/")
            parts = dest.split("/")[:-1] if "src" in entry else dest.split("/") if dest else []
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    info = _normalise(tarfile.TarInfo(d))
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            if "src" in entry:
                info = _normalise(tar.gettarinfo(entry["src"], dest))
                if entry.get("mode") is not None:
                    info.mode = int(str(entry["mode"]), 8)
                with open(entry["src"], "rb") as f:
                    tar.addfile(info, f)
            else:
                _add_tree(tar, entry["dir"], dest)
    os.replace(tmp, path)
    return sha256_file(path)


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob(blobs_dir, data):
    digest = _digest(data)
    with open(os.path.join(blobs_dir, digest.split(":")[1]), "wb") as f:
        f.write(data)
    return digest


def _manifest(layer_paths, config):
    """(manifest, config) as the archive stores them, and the layers with their files; nothing is written."""
    layers = [{"mediaType": MEDIA_LAYER, "digest": sha256_file(path), "size": os.path.getsize(path), "path": path}
              for path in layer_paths]
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config_bytes), "size": len(config_bytes)},
        "layers": [{k: v for k, v in layer.items() if k != "path"} for layer in layers],
    }
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(), config_bytes, layers


def archive_digest(layer_paths, config):
    """The manifest digest write_archive would record for these layers and config (writes nothing)."""
    return _digest(_manifest(layer_paths, config)[0])


def image_config(layer_digests, entrypoint=None, cmd=None, env=None, workdir=None, user=None, labels=None):
    config = {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    for key, value in (("Entrypoint", entrypoint), ("Cmd", cmd), ("WorkingDir", workdir), ("User", user),
                       ("Labels", labels)):
        if value:
            config[key] = value
    return {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z", "config": config,
        "rootfs": {"type": "layers", "diff_ids": list(layer_digests)},
    }


def manifest_digest(archive):
    """The manifest digest recorded in an archive's index.json, or None."""
    try:
        with tarfile.open(archive) as tar:
            index = json.load(tar.extractfile("index.json"))
        return index["manifests"][0]["digest"]
    except (FileNotFoundError, KeyError, IndexError, tarfile.TarError, ValueError, TypeError, AttributeError):
        return None


def write_archive(archive, name, layer_paths, config):
    """Write the OCI layout tar for image `name` from layer files; returns the manifest digest.

    The archive is only rewritten when its manifest digest changes.
    """
    workdir = tempfile.mkdtemp(dir=os.path.dirname(archive), prefix=".oci-")
    try:
        blobs = os.path.join(workdir, "blobs", "sha256")
        os.makedirs(blobs)
        manifest_bytes, config_bytes, layers = _manifest(layer_paths, config)
        _blob(blobs, config_bytes)
        digest = _blob(blobs, manifest_bytes)
        if manifest_digest(archive) == digest:
            return digest, False
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": MEDIA_MANIFEST, "digest": digest, "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }]}
        tmp = archive + ".tmp"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for arcname, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                                  ("index.json", json.dumps(index).encode())):
                info = _normalise(tarfile.TarInfo(arcname))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            for blob in sorted(os.listdir(blobs)):
                tar.add(os.path.join(blobs, blob), f"blobs/sha256/{blob}", filter=_normalise)
            for layer in layers:
                tar.add(layer["path"], f"blobs/sha256/{layer['digest'].split(':')[1]}", filter=_normalise)
        os.replace(tmp, archive)
        return digest, True
    finally:
        shutil.rmtree(workdir)
