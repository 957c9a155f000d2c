from cryptography import x509

from ansible_collections.kubevirt.ops.plugins.module_utils import pki


def _cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_authority_is_made_once(tmp_path):
    assert pki.ensure_authority(str(tmp_path), "ca", "kubernetes")[2] is True
    before = (tmp_path / "ca.crt").read_bytes()
    assert pki.ensure_authority(str(tmp_path), "ca", "kubernetes")[2] is False
    assert (tmp_path / "ca.crt").read_bytes() == before
    assert oct((tmp_path / "ca.key").stat().st_mode & 0o777) == "0o600"


def test_certificate_kept_while_it_matches_and_renewed_when_sans_change(tmp_path):
    pki.ensure_authority(str(tmp_path), "ca", "kubernetes")
    args = dict(common_name="kube-apiserver", usages=["server"], dns_names=["kubernetes"], ip_addresses=["10.96.0.1"])
    assert pki.ensure_certificate(str(tmp_path), "apiserver", "ca", **args) is True
    assert pki.ensure_certificate(str(tmp_path), "apiserver", "ca", **args) is False
    args["ip_addresses"] = ["10.96.0.1", "10.222.0.1"]
    assert pki.ensure_certificate(str(tmp_path), "apiserver", "ca", **args) is True
    sans = _cert(tmp_path / "apiserver.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"10.96.0.1", "10.222.0.1"}


def test_client_certificate_carries_groups_and_is_signed_by_its_ca(tmp_path):
    pki.ensure_authority(str(tmp_path), "ca", "kubernetes")
    pki.ensure_certificate(str(tmp_path), "kubelet-n1", "ca", "system:node:n1", ["system:nodes"], ["client"])
    cert, ca = _cert(tmp_path / "kubelet-n1.crt"), _cert(tmp_path / "ca.crt")
    cert.verify_directly_issued_by(ca)
    assert cert.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"


def test_certificate_is_remade_when_its_ca_changes(tmp_path):
    pki.ensure_authority(str(tmp_path), "ca", "kubernetes")
    pki.ensure_certificate(str(tmp_path), "admin", "ca", "kubernetes-admin")
    (tmp_path / "ca.crt").unlink()
    pki.ensure_authority(str(tmp_path), "ca", "kubernetes")
    assert pki.ensure_certificate(str(tmp_path), "admin", "ca", "kubernetes-admin") is True


def test_missing_authority_is_named(tmp_path):
    try:
        pki.ensure_certificate(str(tmp_path), "x", "front-proxy-ca", "x")
    except ValueError as e:
        assert "front-proxy-ca" in str(e)
    else:
        raise AssertionError("expected a ValueError")


def test_key_pair(tmp_path):
    assert pki.ensure_key_pair(str(tmp_path), "sa") is True
    assert pki.ensure_key_pair(str(tmp_path), "sa") is False
    assert b"PUBLIC KEY" in (tmp_path / "sa.pub").read_bytes()
