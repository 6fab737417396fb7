"""TLS material for the ingress: the default certificate and key pairs from Secrets."""

import base64

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubesvc.ingress.tls import (
    FAKE_CERTIFICATE_CN,
    InvalidKeyPair,
    KeyPair,
    default_key_pair,
    key_pair_from_secret,
)


def secret(**data: bytes | str) -> dict[str, object]:
    return {"metadata": {"name": "s", "namespace": "default"}, "data": {
        k: v if isinstance(v, str) else base64.b64encode(v).decode() for k, v in data.items()}}


def split(pem: bytes) -> tuple[bytes, bytes]:
    cert, marker, key = pem.partition(b"-----BEGIN PRIVATE KEY-----")
    return cert, marker + key


def test_the_default_certificate_is_ingress_nginx_fake_one() -> None:
    pair = default_key_pair()
    cert = x509.load_pem_x509_certificate(pair.pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value \
        == FAKE_CERTIFICATE_CN
    assert cert.issuer == cert.subject
    assert pair.names == ("ingress.local",)
    # The file nginx loads holds both halves, and they belong together.
    assert key_pair_from_secret(secret(**dict(zip(("tls.crt", "tls.key"),
                                                  split(pair.pem), strict=True)))).pem \
        == pair.pem


def test_a_wildcard_name_covers_one_label() -> None:
    pair = KeyPair(b"", ("*.example.com", "exact.org"))
    assert pair.covers("a.example.com")
    assert not pair.covers("a.b.example.com")
    assert not pair.covers("example.com")
    assert pair.covers("exact.org")
    assert not pair.covers("other.org")


@pytest.mark.parametrize("data,message", [
    ({}, "the secret has no tls.crt"),
    ({"tls.crt": "!!!", "tls.key": "a2V5"}, "tls.crt is not valid base64"),
    ({"tls.crt": b"not a certificate", "tls.key": b"x"}, "tls.crt holds no PEM certificate"),
    ({"tls.crt": "CERT", "tls.key": b"not a key"}, "tls.key holds no unencrypted PEM private key"),
])
def test_unusable_secrets_say_why(data: dict[str, bytes | str], message: str) -> None:
    if data.get("tls.crt") == "CERT":
        data["tls.crt"] = split(default_key_pair().pem)[0]
    with pytest.raises(InvalidKeyPair, match=message):
        key_pair_from_secret(secret(**data))
