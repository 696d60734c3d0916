"""The key registry's RSA-PSS rules: which logged scheme fits which key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from toolkit.models.common import HashAlgorithm, PublicKeyDetails
from toolkit.verify import _keys

MESSAGE = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_rsa_key_may_take_the_pss_scheme_of_its_own_size(rsa2048: rsa.RSAPrivateKey) -> None:
    key, derived = _keys.as_verifying_key(rsa2048.public_key())
    assert derived is PublicKeyDetails.PKIX_RSA_PKCS1V15_2048_SHA256
    assert _keys.logged_scheme(derived.value, derived, key) is derived
    pss = _keys.logged_scheme("PKIX_RSA_PSS_2048_SHA256", derived, key)
    assert pss is PublicKeyDetails.PKIX_RSA_PSS_2048_SHA256
    assert _keys.is_pss(pss)


@pytest.mark.parametrize(
    "logged",
    ["PKIX_RSA_PSS_3072_SHA256", "PKIX_RSA_PKCS1V5", "PKCS1_RSA_PKCS1V5", "nonsense", ""],
)
def test_rsa_key_refuses_other_schemes(rsa2048: rsa.RSAPrivateKey, logged: str) -> None:
    key, derived = _keys.as_verifying_key(rsa2048.public_key())
    assert _keys.logged_scheme(logged, derived, key) is None


def test_ec_key_never_takes_a_pss_scheme() -> None:
    key, derived = _keys.as_verifying_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert _keys.logged_scheme("PKIX_RSA_PSS_2048_SHA256", derived, key) is None


@pytest.mark.parametrize("salt", [padding.PSS.DIGEST_LENGTH, padding.PSS.MAX_LENGTH])
def test_pss_message_signature_verifies_only_as_pss(rsa2048: rsa.RSAPrivateKey, salt: int) -> None:
    # The DSSE path: a whole message, hashed by the scheme. Both salt lengths in
    # use (airseal's digest length, Go's maximum) verify; PKCS#1 v1.5 does not.
    signature = rsa2048.sign(
        MESSAGE, padding.PSS(padding.MGF1(hashes.SHA256()), salt), hashes.SHA256()
    )
    key = rsa2048.public_key()
    assert _keys.verify_message(key, signature, MESSAGE, HashAlgorithm.SHA2_256, pss=True)
    assert not _keys.verify_message(key, signature, MESSAGE, HashAlgorithm.SHA2_256)
    pkcs1 = rsa2048.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    assert not _keys.verify_message(key, pkcs1, MESSAGE, HashAlgorithm.SHA2_256, pss=True)
