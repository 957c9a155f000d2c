import json
import tarfile

from ansible_collections.kubevirt.ops.plugins.module_utils import oci


def _image(tmp_path, content=b"#!/bin/sh\necho hi\n"):
    src = tmp_path / "hello"
    src.write_bytes(content)
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True, exist_ok=True)
    (tree / "etc" / "motd").write_text("hi\n")
    if not (tree / "link").exists():
        (tree / "link").symlink_to("etc/motd")
    layer = str(tmp_path / "layer.tar")
    oci.write_layer(layer, [{"src": str(src), "dest": "/usr/bin/hello", "mode": "0755"},
                            {"dir": str(tree), "dest": "/"}])
    config = oci.image_config([oci.sha256_file(layer)], entrypoint=["/usr/bin/hello"])
    return oci.write_archive(str(tmp_path / "image.tar"), "docker.io/kubevirt-ops/hello:v1", [layer], config)


def test_archive_is_an_oci_layout_containerd_can_name(tmp_path):
    digest, changed = _image(tmp_path)
    assert changed
    with tarfile.open(tmp_path / "image.tar") as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile("index.json"))
        biggest_blob = next(n for n in names if n.startswith("blobs/") and tar.getmember(n).size > 2000)
        layer = tarfile.open(fileobj=tar.extractfile(biggest_blob))
        members = {m.name: m for m in layer.getmembers()}
    assert "oci-layout" in names
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/kubevirt-ops/hello:v1"
    assert members["usr/bin/hello"].mode == 0o755 and members["usr/bin/hello"].uid == 0
    assert members["link"].issym() and members["etc/motd"].mtime == 0


def test_same_inputs_give_the_same_digest_and_no_rewrite(tmp_path):
    first, _ = _image(tmp_path)
    mtime = (tmp_path / "image.tar").stat().st_mtime_ns
    second, changed = _image(tmp_path)
    assert first == second and not changed
    assert (tmp_path / "image.tar").stat().st_mtime_ns == mtime
    assert oci.manifest_digest(str(tmp_path / "image.tar")) == first


def test_changed_content_changes_the_digest(tmp_path):
    first, _ = _image(tmp_path)
    second, changed = _image(tmp_path, b"#!/bin/sh\necho bye\n")
    assert changed and first != second
