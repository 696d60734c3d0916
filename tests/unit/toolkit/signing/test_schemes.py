"""Signing schemes: the Sigstore names, what each fixes, and the TUF names."""

from __future__ import annotations

import pytest

from toolkit.signing import KeyAlgorithm, Scheme, SoftwareSigner
from toolkit.signing._crypto import check_scheme, key_algorithm_of
from toolkit.signing.tuf import tuf_scheme

# scheme -> (key algorithm, hash name or None, PSS?, securesystemslib scheme)
TABLE = {
    Scheme.ECDSA_P256_SHA256: (KeyAlgorithm.ECDSA_P256, "sha256", False, "ecdsa-sha2-nistp256"),
    Scheme.ECDSA_P384_SHA384: (KeyAlgorithm.ECDSA_P384, "sha384", False, "ecdsa-sha2-nistp384"),
    Scheme.ED25519: (KeyAlgorithm.ED25519, None, False, "ed25519"),
    Scheme.RSA_PKCS1V15_3072_SHA256: (
        KeyAlgorithm.RSA_3072,
        "sha256",
        False,
        "rsa-pkcs1v15-sha256",
    ),
    Scheme.RSA_PKCS1V15_4096_SHA256: (
        KeyAlgorithm.RSA_4096,
        "sha256",
        False,
        "rsa-pkcs1v15-sha256",
    ),
    Scheme.RSA_PSS_3072_SHA256: (KeyAlgorithm.RSA_3072, "sha256", True, "rsassa-pss-sha256"),
    Scheme.RSA_PSS_4096_SHA256: (KeyAlgorithm.RSA_4096, "sha256", True, "rsassa-pss-sha256"),
}


def test_table_is_complete() -> None:
    assert set(TABLE) == set(Scheme)


@pytest.mark.parametrize("scheme", list(Scheme))
def test_scheme_properties(scheme: Scheme) -> None:
    algorithm, hash_name, pss, tuf = TABLE[scheme]
    assert scheme.key_algorithm is algorithm
    assert (scheme.hash.name if scheme.hash else None) == hash_name
    assert scheme.pss is pss
    assert tuf_scheme(scheme) == tuf


def test_sigstore_names() -> None:
    # PublicKeyDetails names of the Sigstore protobuf specs, spelled exactly.
    assert [s.value for s in Scheme] == [
        "PKIX_ECDSA_P256_SHA_256",
        "PKIX_ECDSA_P384_SHA_384",
        "PKIX_ED25519",
        "PKIX_RSA_PKCS1V15_3072_SHA256",
        "PKIX_RSA_PKCS1V15_4096_SHA256",
        "PKIX_RSA_PSS_3072_SHA256",
        "PKIX_RSA_PSS_4096_SHA256",
    ]


@pytest.mark.parametrize(
    ("algorithm", "scheme"),
    [
        (KeyAlgorithm.ECDSA_P256, Scheme.ECDSA_P256_SHA256),
        (KeyAlgorithm.ECDSA_P384, Scheme.ECDSA_P384_SHA384),
        (KeyAlgorithm.ED25519, Scheme.ED25519),
        (KeyAlgorithm.RSA_3072, Scheme.RSA_PKCS1V15_3072_SHA256),
        (KeyAlgorithm.RSA_4096, Scheme.RSA_PKCS1V15_4096_SHA256),
    ],
)
def test_defaults(algorithm: KeyAlgorithm, scheme: Scheme) -> None:
    assert Scheme.default_for(algorithm) is scheme
    assert check_scheme(algorithm, None) is scheme


def test_check_scheme_accepts_names() -> None:
    assert check_scheme(KeyAlgorithm.RSA_3072, "PKIX_RSA_PSS_3072_SHA256") is (  # type: ignore[arg-type]
        Scheme.RSA_PSS_3072_SHA256
    )


def test_key_algorithm_of_public_and_private_keys() -> None:
    signer = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P384)
    assert key_algorithm_of(signer.public_key) is KeyAlgorithm.ECDSA_P384
    assert key_algorithm_of(signer.private_key()) is KeyAlgorithm.ECDSA_P384
