"""``keys.toml``: round trip and strict parsing."""

from __future__ import annotations

import pytest

from toolkit.errors import FormatError
from toolkit.signing import Scheme
from toolkit.signing.keyring import KeyEntry, KeyRing

SPKI = "ab" * 32


def _ring() -> KeyRing:
    entries = {
        "tlog": KeyEntry(
            "tlog", "tlog", "pkcs11:token=a%20b;object=tlog;type=private", Scheme.ED25519, SPKI
        ),
        "root-ca": KeyEntry(
            "root-ca", "root-ca", 'pkcs11:token=ca;object="quoted"', Scheme.ECDSA_P384_SHA384, SPKI
        ),
    }
    return KeyRing("/usr/lib/softhsm/libsofthsm2.so", "cd" * 32, entries, "/tmp/x/softhsm2.conf")


def test_round_trip_keeps_order_and_values() -> None:
    ring = _ring()
    text = ring.to_toml(header="Keys of a test.\nNo PINs.")
    assert text.startswith(b"# Keys of a test.\n# No PINs.\n")
    parsed = KeyRing.from_toml(text)
    assert parsed == ring
    assert list(parsed.keys) == ["tlog", "root-ca"]
    assert parsed.by_purpose("tlog").scheme is Scheme.ED25519


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            b"[pkcs11]\nmodule = 'm'\nmodule_sha256 = 'x'\nextra = 1\n[keys]\n",
            "pkcs11.extra: unknown",
        ),
        (b"[pkcs11]\nmodule = 'm'\n[keys]\n", "pkcs11.module_sha256: expected a string"),
        (
            b"[pkcs11]\nmodule='m'\nmodule_sha256='x'\n[keys.a]\npurpose='tlog'\nuri='pkcs11:'\n"
            b"scheme='RSA_PLAIN'\nspki_sha256='" + SPKI.encode() + b"'\n",
            "keys.a.scheme: unknown scheme",
        ),
        (
            b"[pkcs11]\nmodule='m'\nmodule_sha256='x'\n[keys.a]\npurpose='tlog'\n"
            b"uri='pkcs11:token=t?pin-value=1234'\nscheme='PKIX_ED25519'\nspki_sha256='"
            + SPKI.encode()
            + b"'\n",
            "must not carry a PIN",
        ),
        (b"[pkcs11\n", "keys.toml"),
    ],
)
def test_malformed_rings_are_refused_with_the_path(text: bytes, reason: str) -> None:
    with pytest.raises(FormatError, match=reason) as info:
        KeyRing.from_toml(text)
    assert "1234" not in info.value.message


def test_by_purpose_needs_exactly_one() -> None:
    with pytest.raises(FormatError, match="purpose 'ctlog', found 0"):
        _ring().by_purpose("ctlog")
