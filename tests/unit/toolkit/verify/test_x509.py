"""Fulcio leaf profile and extension decoding, on sigstore-python's bogus certificates."""

from __future__ import annotations

import pytest
from cryptography import x509

from tests.conftest import load_cases, require_vectors
from toolkit.errors import Check, VerificationError
from toolkit.verify import _x509


def _pem(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(
        (require_vectors() / "_x509" / f"x509__{name}.pem").read_bytes()
    )


def test_bogus_leaf_has_the_profile() -> None:
    _x509.check_leaf_profile(_pem("bogus-leaf"))


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("bogus-leaf-invalid-eku", "lacks codeSigning"),
        ("bogus-leaf-missing-eku", "no extendedKeyUsage"),
        ("bogus-leaf-invalid-ku", "lacks digitalSignature"),
        ("bogus-root", "is a CA certificate"),
        ("bogus-root-missing-ku", "is a CA certificate"),
        ("bogus-root-invalid-ku", "is a CA certificate"),
        ("bogus-root-noncritical-bc", "is a CA certificate"),
        ("bogus-intermediate", "is a CA certificate"),
        ("bogus-intermediate-with-eku", "is a CA certificate"),
    ],
)
def test_profile_violations(name: str, detail: str) -> None:
    with pytest.raises(VerificationError) as info:
        _x509.check_leaf_profile(_pem(name))
    assert info.value.check is Check.CERT_PROFILE
    assert detail in info.value.detail


def _leaf(case_name: str) -> x509.Certificate:
    import json

    from toolkit.encoding import b64decode

    case = next(c for c in load_cases() if c.name == case_name)
    material = json.loads(case.bundle_path.read_text())["verificationMaterial"]
    raw = (
        material["certificate"]["rawBytes"]
        if "certificate" in material
        else material["x509CertificateChain"]["certificates"][0]["rawBytes"]
    )
    return x509.load_der_x509_certificate(b64decode(raw))


def test_issuer_and_sans_of_real_leaves() -> None:
    github = _leaf("production-v0.2-github-wheel")
    assert _x509.oidc_issuer(github) == "https://token.actions.githubusercontent.com"
    assert _x509.san_values(github) == (
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
    )
    # .1.12 (source repository URI) is a DER UTF8String extension.
    assert (
        _x509.extension_text(github, x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.12"))
        == "https://github.com/trailofbits/rfc8785.py"
    )
    # .1.2 (workflow trigger) is a raw-string extension from Fulcio's first series.
    assert _x509.extension_text(github, x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.2")) == "release"
    email = _leaf("staging-v0.3-happy")
    assert _x509.san_values(email) == ("william@yossarian.net",)
    assert _x509.extension_text(email, x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.99")) is None


def test_der_utf8string_decoding() -> None:
    assert _x509._der_utf8string(b"\x0c\x03abc") == "abc"
    long = "x" * 200
    assert _x509._der_utf8string(b"\x0c\x81\xc8" + long.encode()) == long
    for bad in [b"", b"\x0c", b"\x13\x01a", b"\x0c\x02a", b"\x0c\x81\x05abcde", b"\x0c\x01\xff"]:
        assert _x509._der_utf8string(bad) is None
