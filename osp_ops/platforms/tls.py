"""The local certificate authority of the hosts platform (``tls_mode: local-ca``).

osp-ops creates one CA under ``settings.data_dir / "ca"`` the first time it needs it
(key mode 0600) and issues each tenant a certificate for its host names. Browsers and
clients trust the instances once they trust ``ca_cert_path(settings)``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from osp_ops.domain.errors import PlatformError
from osp_ops.settings import Settings

CA_NAME = "osp-ops local CA"
CA_DAYS = 3650
LEAF_DAYS = 397  # the longest validity browsers accept
RENEW_BEFORE = dt.timedelta(days=30)


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class IssuedCert:
    """PEM text of a tenant certificate (with the CA appended) and its key."""

    cert_pem: str
    key_pem: str
    ca_pem: str


def ca_dir(settings: Settings) -> Path:
    """Directory holding the CA key and certificate."""
    return settings.data_dir / "ca"


def ca_cert_path(settings: Settings) -> Path:
    """Path of the CA certificate users add to their trust store (created if missing)."""
    ensure_ca(settings)
    return ca_dir(settings) / "ca.crt"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def ensure_ca(settings: Settings) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the CA, creating it on first use."""
    directory = ca_dir(settings)
    cert_file, key_file = directory / "ca.crt", directory / "ca.key"
    try:
        if cert_file.exists() and key_file.exists():
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise PlatformError(f"{key_file}: the local CA key is not an EC key")
            return cert, key
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(key_file, _key_pem(key))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, key
    except OSError as e:
        raise PlatformError(f"local CA in {directory}: {e.strerror or e}") from e


def issue_cert(settings: Settings, *, slug: str, hostnames: Sequence[str]) -> IssuedCert:
    """A certificate for ``hostnames`` signed by the local CA; reused while still valid.

    Issued certificates are kept next to the CA (``certs/<slug>.crt`` and ``.key``,
    mode 0600) so a re-converge ships identical files and nginx is not reloaded.
    """
    ca_cert, ca_key = ensure_ca(settings)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    certs = ca_dir(settings) / "certs"
    cert_file, key_file = certs / f"{slug}.crt", certs / f"{slug}.key"
    if cert_file.exists() and key_file.exists():
        existing = x509.load_pem_x509_certificate(cert_file.read_bytes())
        try:
            san = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = set(san.value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = set()
        if (
            names == set(hostnames)
            and existing.issuer == ca_cert.subject
            and existing.not_valid_after_utc - RENEW_BEFORE > _now()
        ):
            return IssuedCert(cert_file.read_text(), key_file.read_text(), ca_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    certs.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(key_file, _key_pem(key))
    _write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return IssuedCert(cert_file.read_text(), key_file.read_text(), ca_pem)


def forget_cert(settings: Settings, *, slug: str) -> list[str]:
    """Remove the tenant's certificate and private key from the CA's ``certs/`` (they
    leave with the tenant); the names of the files removed."""
    removed = []
    for path in (
        ca_dir(settings) / "certs" / f"{slug}.key",
        ca_dir(settings) / "certs" / f"{slug}.crt",
    ):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise PlatformError(f"cannot remove {path}: {e.strerror or e}") from e
        removed.append(path.name)
    return removed
