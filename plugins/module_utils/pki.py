"""A small X.509 PKI for a cluster: certificate authorities, signed certificates, key pairs.

Keys are ECDSA P-256 (what kubeadm offers as ECDSA-P256): fast to make, accepted by every
Kubernetes component. A certificate is kept while it matches what is asked (subject, SANs,
usage, issuer) and has more than RENEW_BEFORE left; otherwise it is made anew.
"""
import datetime
import ipaddress
import os
import traceback

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:
    # The module reports this with missing_required_lib instead of failing to import.
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
    USAGES = {}
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None
    USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}

CA_LIFETIME = datetime.timedelta(days=3650)
CERT_LIFETIME = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path, data, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _new_key():
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_cert(path):
    try:
        with open(path, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())
    except (FileNotFoundError, ValueError):
        return None


def _load_key(path):
    try:
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), None)
    except (FileNotFoundError, ValueError):
        return None


def _name(common_name, organizations=()):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _fresh(cert):
    return cert is not None and cert.not_valid_after_utc - _now() > RENEW_BEFORE


def _builder(subject, issuer, public_key, lifetime, ca):
    """Subject, issuer, validity, basic constraints and key usage of a CA or a leaf certificate."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5)).not_valid_after(_now() + lifetime)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=not ca, key_cert_sign=ca, crl_sign=ca,
                                     content_commitment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
    )


def describe(pki_dir, name):
    """What a diff shows of NAME.crt: its subject and expiry, or that it is absent."""
    cert = _load_cert(os.path.join(pki_dir, f"{name}.crt"))
    if cert is None:
        return "absent"
    return f"{cert.subject.rfc4514_string()}, valid until {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"


def ensure_authority(pki_dir, name, common_name, write=True):
    """CA at pki_dir/name.{crt,key}. Returns (cert, key, changed); with write=False only decides."""
    crt_path, key_path = (os.path.join(pki_dir, f"{name}.{ext}") for ext in ("crt", "key"))
    cert, key = _load_cert(crt_path), _load_key(key_path)
    if _fresh(cert) and key is not None and cert.subject == _name(common_name):
        return cert, key, False
    if not write:
        return None, None, True
    key = _new_key()
    subject = _name(common_name)
    cert = (
        _builder(subject, subject, key.public_key(), CA_LIFETIME, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(crt_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key, True


def _sans(dns_names, ip_addresses):
    return [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]


def _matches(cert, ca_cert, subject, usages, sans):
    if not _fresh(cert) or cert.subject != subject or cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value if sans else []
    except (x509.ExtensionNotFound, InvalidSignature, ValueError, TypeError):
        return False
    return set(eku) == {USAGES[u] for u in usages} and set(present) == set(sans)


def ensure_certificate(pki_dir, name, ca, common_name, organizations=(), usages=("client",),
                       dns_names=(), ip_addresses=(), write=True):
    """Certificate at pki_dir/name.{crt,key} signed by the CA pki_dir/ca.{crt,key}. Returns changed;
    with write=False only decides."""
    ca_cert, ca_key = _load_cert(os.path.join(pki_dir, f"{ca}.crt")), _load_key(os.path.join(pki_dir, f"{ca}.key"))
    if ca_cert is None or ca_key is None:
        raise ValueError(f"certificate {name}: authority {ca!r} does not exist")
    crt_path, key_path = (os.path.join(pki_dir, f"{name}.{ext}") for ext in ("crt", "key"))
    subject = _name(common_name, organizations)
    sans = _sans(dns_names, ip_addresses)
    if _matches(_load_cert(crt_path), ca_cert, subject, usages, sans) and _load_key(key_path) is not None:
        return False
    if not write:
        return True
    key = _new_key()
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), CERT_LIFETIME, ca=False)
        .add_extension(x509.ExtendedKeyUsage([USAGES[u] for u in usages]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(key_path, _key_pem(key), 0o600)
    _write(crt_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


def ensure_key_pair(pki_dir, name, write=True):
    """Key pair at pki_dir/name.key and name.pub (service-account token signing). Returns changed;
    with write=False only decides."""
    key_path, pub_path = os.path.join(pki_dir, f"{name}.key"), os.path.join(pki_dir, f"{name}.pub")
    key = _load_key(key_path)
    if key is not None and os.path.exists(pub_path):
        return False
    if not write:
        return True
    key = key or _new_key()
    _write(key_path, _key_pem(key), 0o600)
    _write(pub_path, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return True
