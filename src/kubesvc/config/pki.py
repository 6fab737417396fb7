"""The cluster's certificates: a CA, the API server's serving certificate and an admin client
certificate, generated on first start and kept in the state directory."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def token_file(self) -> Path:
        """A bearer token for clients without a certificate (pods through `kubernetes`)."""
        return self.directory / "token"

    def token(self) -> str:
        return self.token_file.read_text().strip()

    def ensure(self, hosts: list[str]) -> None:
        """Create whatever is missing; reissue the serving cert if its names changed."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.ca_cert.exists():
            key = _new_key()
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubesvc-ca")])
            builder = _builder(name, name, key.public_key()).add_extension(
                x509.BasicConstraints(ca=True, path_length=None), critical=True)
            _write(self.ca_cert, self.ca_key, builder.sign(key, hashes.SHA256()), key)
            for stale in (self.server_cert, self.admin_cert):
                stale.unlink(missing_ok=True)
        self.serving("apiserver", "kube-apiserver", hosts)
        if not self.admin_cert.exists():
            self._issue(self.admin_cert, self.admin_key, "kubernetes-admin", "system:masters",
                        ExtendedKeyUsageOID.CLIENT_AUTH, [])
        if not self.token_file.exists():
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")

    def serving(self, name: str, common_name: str, hosts: list[str]) -> tuple[Path, Path]:
        """A serving certificate for `hosts` (the API server's, a node agent's), reissued when
        the names change; returns the certificate and key paths."""
        cert, key = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        if not cert.exists() or _sans(cert) != set(hosts):
            self._issue(cert, key, common_name, None, ExtendedKeyUsageOID.SERVER_AUTH, hosts)
        return cert, key

    def _issue(self, cert_path: Path, key_path: Path, common_name: str, org: str | None,
               usage: x509.ObjectIdentifier, hosts: list[str]) -> None:
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = _new_key()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if org:
            attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        builder = _builder(x509.Name(attrs), ca.subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False)
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        _write(cert_path, key_path, builder.sign(ca_key, hashes.SHA256()), key)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject: x509.Name, issuer: x509.Name,
             public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY))


def _write(cert_path: Path, key_path: Path, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _sans(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName))
