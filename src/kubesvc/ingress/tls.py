"""TLS material for nginx: ingress-nginx's self-signed default certificate, and key pairs read
from `kubernetes.io/tls` Secrets, checked here so that a bad Secret becomes an Event rather
than an nginx configuration that fails to load."""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# What ingress-nginx's generated default certificate says about itself.
FAKE_CERTIFICATE_CN = "Kubernetes Ingress Controller Fake Certificate"
FAKE_CERTIFICATE_HOST = "ingress.local"
FAKE_CERTIFICATE_VALIDITY = datetime.timedelta(days=365)


class InvalidKeyPair(ValueError):
    """A Secret that does not hold a usable certificate and key; the message says why."""


@dataclass(frozen=True)
class KeyPair:
    # The certificate chain, then the key: nginx reads both from one file.
    pem: bytes
    # The DNS names the leaf certificate is valid for.
    names: tuple[str, ...]

    def covers(self, host: str) -> bool:
        """Whether the certificate is valid for `host` (a `*.` name covers one label)."""
        parent = host.partition(".")[2]
        return any(name == host or (name.startswith("*.") and name[2:] == parent)
                   for name in self.names)


def default_key_pair() -> KeyPair:
    """A fresh self-signed certificate for hosts without one of their own, as ingress-nginx
    makes at start-up."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Co"),
                      x509.NameAttribute(NameOID.COMMON_NAME, FAKE_CERTIFICATE_CN)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + FAKE_CERTIFICATE_VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(FAKE_CERTIFICATE_HOST)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM) + key_pem,
                   (FAKE_CERTIFICATE_HOST,))


def _field(data: dict[str, Any], key: str) -> bytes:
    value = data.get(key)
    if not value:
        raise InvalidKeyPair(f"the secret has no {key}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyPair(f"{key} is not valid base64") from None


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return tuple(str(a.value).lower() for a in common)
    return tuple(n.lower() for n in sans.get_values_for_type(x509.DNSName))


def key_pair_from_secret(secret: dict[str, Any]) -> KeyPair:
    """The key pair in a Secret's `tls.crt` and `tls.key`, or InvalidKeyPair."""
    data = secret.get("data") or {}
    chain, key_pem = _field(data, "tls.crt"), _field(data, "tls.key")
    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise InvalidKeyPair("tls.crt holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKeyPair("tls.key holds no unencrypted PEM private key") from None
    spki = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != certs[0].public_key().public_bytes(*spki):
        raise InvalidKeyPair("tls: private key does not match public key")
    return KeyPair(chain.rstrip(b"\n") + b"\n" + key_pem, _dns_names(certs[0]))
