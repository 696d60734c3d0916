"""Scheme plumbing shared by the software and the PKCS#11 signers.

Both signers check every signature they produce with the public key before
handing it out; this module holds that check and the mapping from a public key
to the :class:`KeyAlgorithm` it is, so the two implementations cannot drift.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from toolkit.errors import UsageError
from toolkit.signing._api import KeyAlgorithm, PublicKey, Scheme

__all__ = [
    "RSA_PSS_SALT_LENGTH",
    "check_scheme",
    "key_algorithm_of",
    "rsa_padding",
    "verify_signature",
]

#: RSASSA-PSS salt length of every airseal PSS scheme: the SHA-256 digest length.
RSA_PSS_SALT_LENGTH: Final = 32

_RSA_SIZES: Final[dict[int, KeyAlgorithm]] = {
    3072: KeyAlgorithm.RSA_3072,
    4096: KeyAlgorithm.RSA_4096,
}
_CURVES: Final[dict[str, KeyAlgorithm]] = {
    "secp256r1": KeyAlgorithm.ECDSA_P256,
    "secp384r1": KeyAlgorithm.ECDSA_P384,
}


def key_algorithm_of(key: object) -> KeyAlgorithm:
    """The :class:`KeyAlgorithm` of a cryptography public or private key.

    Raises:
        UsageError: The key is of a kind or size airseal does not use (for
            example P-521 or RSA-2048).
    """
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        algorithm = _CURVES.get(key.curve.name)
        if algorithm is None:
            raise UsageError(
                f"unsupported EC curve {key.curve.name}",
                hint="airseal signs with P-256, P-384, Ed25519, RSA-3072 or RSA-4096 keys",
            )
        return algorithm
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return KeyAlgorithm.ED25519
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        algorithm = _RSA_SIZES.get(key.key_size)
        if algorithm is None:
            raise UsageError(
                f"unsupported RSA key size {key.key_size} bits",
                hint="airseal uses RSA-3072 or RSA-4096",
            )
        return algorithm
    raise UsageError(
        f"unsupported key type {type(key).__name__}",
        hint="airseal signs with P-256, P-384, Ed25519, RSA-3072 or RSA-4096 keys",
    )


def check_scheme(algorithm: KeyAlgorithm, scheme: Scheme | None) -> Scheme:
    """Return ``scheme`` (or the default for ``algorithm``) after checking they fit.

    Raises:
        UsageError: The scheme signs with a different kind of key.
    """
    if scheme is None:
        return Scheme.default_for(algorithm)
    scheme = Scheme(scheme)
    if scheme.key_algorithm is not algorithm:
        raise UsageError(
            f"scheme {scheme.value} needs a {scheme.key_algorithm.value} key, not {algorithm.value}"
        )
    return scheme


def rsa_padding(scheme: Scheme) -> padding.PSS | padding.PKCS1v15:
    """The cryptography padding object of an RSA scheme."""
    hash_algorithm = scheme.hash
    assert hash_algorithm is not None
    if scheme.pss:
        return padding.PSS(padding.MGF1(hash_algorithm), RSA_PSS_SALT_LENGTH)
    return padding.PKCS1v15()


def verify_signature(public_key: PublicKey, scheme: Scheme, signature: bytes, data: bytes) -> bool:
    """Check ``signature`` over the whole message ``data`` under ``scheme``."""
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            hash_algorithm = _scheme_hash(scheme)
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        else:
            public_key.verify(signature, data, rsa_padding(scheme), _scheme_hash(scheme))
    except InvalidSignature:
        return False
    return True


def _scheme_hash(scheme: Scheme) -> hashes.HashAlgorithm:
    hash_algorithm = scheme.hash
    assert hash_algorithm is not None, f"{scheme} hashes messages"
    return hash_algorithm
