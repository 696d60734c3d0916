"""Public keys and signature schemes: the Sigstore algorithm registry.

Maps ``PublicKeyDetails`` to concrete cryptography keys and checks signatures
with the scheme each key type implies. Unknown or unsafe combinations are
refused rather than guessed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from toolkit.models.common import HashAlgorithm, PublicKeyDetails

__all__ = [
    "VerifyingKey",
    "hash_function",
    "key_details_for",
    "load_verifying_key",
    "logged_scheme",
    "spki_der",
]

VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_HASHES: Final[dict[HashAlgorithm, Callable[[], hashes.HashAlgorithm]]] = {
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
    HashAlgorithm.SHA3_256: hashes.SHA3_256,
    HashAlgorithm.SHA3_384: hashes.SHA3_384,
}

_HASHLIB: Final[dict[HashAlgorithm, str]] = {
    HashAlgorithm.SHA2_256: "sha256",
    HashAlgorithm.SHA2_384: "sha384",
    HashAlgorithm.SHA2_512: "sha512",
    HashAlgorithm.SHA3_256: "sha3_256",
    HashAlgorithm.SHA3_384: "sha3_384",
}


def hash_function(algorithm: HashAlgorithm) -> Callable[[bytes], bytes]:
    """Return a function computing ``algorithm`` digests of bytes."""
    name = _HASHLIB[algorithm]
    return lambda data: hashlib.new(name, data).digest()


class _Scheme(NamedTuple):
    key_type: type
    curve: type[ec.EllipticCurve] | None
    # The hash the scheme applies to whole messages (None for pure Ed25519).
    hash: HashAlgorithm | None
    pss: bool = False
    rsa_bits: int | None = None


# The registry of https://github.com/sigstore/architecture-docs algorithm-registry.md,
# limited to what airseal verifies. Deprecated RSA aliases keep SHA-256 with PKCS#1 v1.5.
_SCHEMES: Final[dict[PublicKeyDetails, _Scheme]] = {
    PublicKeyDetails.PKIX_ECDSA_P256_SHA_256: _Scheme(
        ec.EllipticCurvePublicKey, ec.SECP256R1, HashAlgorithm.SHA2_256
    ),
    PublicKeyDetails.PKIX_ECDSA_P384_SHA_384: _Scheme(
        ec.EllipticCurvePublicKey, ec.SECP384R1, HashAlgorithm.SHA2_384
    ),
    PublicKeyDetails.PKIX_ECDSA_P521_SHA_512: _Scheme(
        ec.EllipticCurvePublicKey, ec.SECP521R1, HashAlgorithm.SHA2_512
    ),
    PublicKeyDetails.PKIX_ED25519: _Scheme(ed25519.Ed25519PublicKey, None, None),
    PublicKeyDetails.PKIX_RSA_PKCS1V15_2048_SHA256: _Scheme(
        rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256, rsa_bits=2048
    ),
    PublicKeyDetails.PKIX_RSA_PKCS1V15_3072_SHA256: _Scheme(
        rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256, rsa_bits=3072
    ),
    PublicKeyDetails.PKIX_RSA_PKCS1V15_4096_SHA256: _Scheme(
        rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256, rsa_bits=4096
    ),
    PublicKeyDetails.PKIX_RSA_PSS_2048_SHA256: _Scheme(
        rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256, pss=True, rsa_bits=2048
    ),
    PublicKeyDetails.PKIX_RSA_PSS_3072_SHA256: _Scheme(
        rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256, pss=True, rsa_bits=3072
    ),
    PublicKeyDetails.PKIX_RSA_PSS_4096_SHA256: _Scheme(
        rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256, pss=True, rsa_bits=4096
    ),
    PublicKeyDetails.PKCS1_RSA_PKCS1V5: _Scheme(rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256),
    PublicKeyDetails.PKIX_RSA_PKCS1V5: _Scheme(rsa.RSAPublicKey, None, HashAlgorithm.SHA2_256),
}

#: Smallest RSA modulus accepted anywhere.
MIN_RSA_BITS: Final = 2048


class KeySchemeError(ValueError):
    """A key does not match its declared scheme (caller maps it to a check)."""


def supported(details: PublicKeyDetails) -> bool:
    """Return True when airseal can verify signatures of this scheme."""
    return details in _SCHEMES


def load_verifying_key(der: bytes, details: PublicKeyDetails) -> VerifyingKey:
    """Load a DER SubjectPublicKeyInfo and check it matches ``details``.

    Raises:
        KeySchemeError: The bytes are not a key, or not the declared kind of key.
    """
    scheme = _SCHEMES.get(details)
    if scheme is None:
        raise KeySchemeError(f"unsupported key scheme {details.value}")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeySchemeError(f"not a DER public key: {exc}") from None
    return _check_scheme(key, scheme, details)


def _check_scheme(key: PublicKeyTypes, scheme: _Scheme, details: PublicKeyDetails) -> VerifyingKey:
    if not isinstance(key, scheme.key_type):
        raise KeySchemeError(f"key is a {_describe(key)}, but {details.value} was declared")
    if isinstance(key, ec.EllipticCurvePublicKey):
        if scheme.curve is None or not isinstance(key.curve, scheme.curve):
            raise KeySchemeError(f"key is a {_describe(key)}, but {details.value} was declared")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeySchemeError(f"RSA key of {key.key_size} bits is too small")
        if scheme.rsa_bits is not None and key.key_size != scheme.rsa_bits:
            raise KeySchemeError(f"key is a {_describe(key)}, but {details.value} was declared")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeySchemeError(f"unsupported key type {_describe(key)}")  # pragma: no cover


def key_details_for(key: PublicKeyTypes) -> PublicKeyDetails:
    """Return the registry entry Sigstore clients use for a certificate key.

    RSA keys map to PKCS#1 v1.5 with SHA-256, as Fulcio issues them.

    Raises:
        KeySchemeError: The key type or size has no registry entry.
    """
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_curve = {
            "secp256r1": PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
            "secp384r1": PublicKeyDetails.PKIX_ECDSA_P384_SHA_384,
            "secp521r1": PublicKeyDetails.PKIX_ECDSA_P521_SHA_512,
        }
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
    elif isinstance(key, rsa.RSAPublicKey):
        by_size = {
            2048: PublicKeyDetails.PKIX_RSA_PKCS1V15_2048_SHA256,
            3072: PublicKeyDetails.PKIX_RSA_PKCS1V15_3072_SHA256,
            4096: PublicKeyDetails.PKIX_RSA_PKCS1V15_4096_SHA256,
        }
        if key.key_size in by_size:
            return by_size[key.key_size]
    elif isinstance(key, ed25519.Ed25519PublicKey):
        return PublicKeyDetails.PKIX_ED25519
    raise KeySchemeError(f"no Sigstore key scheme for a {_describe(key)}")


def as_verifying_key(key: PublicKeyTypes) -> tuple[VerifyingKey, PublicKeyDetails]:
    """Narrow a public key to the types airseal verifies with, and name its scheme.

    Raises:
        KeySchemeError: For DSA, X25519 and other key types.
    """
    details = key_details_for(key)
    return _check_scheme(key, _SCHEMES[details], details), details


def logged_scheme(
    logged: str, derived: PublicKeyDetails, key: VerifyingKey
) -> PublicKeyDetails | None:
    """Settle the signature scheme of a key from the ``keyDetails`` a log entry names.

    A certificate or SPKI names only the key, not the padding, so
    :func:`key_details_for` maps RSA keys to PKCS#1 v1.5. Rekor v2 records
    whatever scheme the client declared, and an RSA key may sign with RSA-PSS
    instead. The logged name is covered by the inclusion proof and checkpoint,
    so it (not the bundle) decides, and only within one narrow rule: an RSA key
    may switch to the PSS entry for exactly its modulus size. Anything else
    (another size, another key type, an alias, an unknown name) is refused, so
    the log cannot move a key to a scheme that does not match it.

    Args:
        logged: The ``keyDetails`` string recorded in the log entry body.
        derived: The scheme derived from the key (see :func:`key_details_for`).
        key: The verifying key.

    Returns:
        The scheme to verify with, or None when the logged name does not fit the key.
    """
    if logged == derived.value:
        return derived
    try:
        named = PublicKeyDetails(logged)
    except ValueError:
        return None
    scheme = _SCHEMES.get(named)
    if (
        scheme is None
        or not scheme.pss
        or not isinstance(key, rsa.RSAPublicKey)
        # The PKCS#1 v1.5 entry derived for the key must be the sized one, so
        # the PSS entry is its exact sibling: same key type, size and hash.
        or _SCHEMES[derived].pss
        or _SCHEMES[derived].rsa_bits != key.key_size
        or scheme.rsa_bits != key.key_size
        or scheme.hash is not _SCHEMES[derived].hash
    ):
        return None
    return named


def message_hash(details: PublicKeyDetails) -> HashAlgorithm | None:
    """The hash a registry scheme applies to messages (None for Ed25519)."""
    return _SCHEMES[details].hash


def verify_message(
    key: VerifyingKey,
    signature: bytes,
    message: bytes,
    algorithm: HashAlgorithm | None,
    *,
    pss: bool = False,
) -> bool:
    """Verify a signature over a whole message.

    Args:
        key: The verifying key.
        signature: The signature (DER for ECDSA).
        message: The signed bytes.
        algorithm: The message hash (see :func:`message_hash`); None only for
            Ed25519, which hashes internally.
        pss: Use RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys only; see :func:`is_pss`).
    """
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            if algorithm is None:
                raise KeySchemeError(f"a {_describe(key)} needs a message hash")
            _verify_hashed(key, signature, message, _HASHES[algorithm](), prehashed=False, pss=pss)
    except InvalidSignature:
        return False
    return True


def verify_digest(
    key: VerifyingKey,
    signature: bytes,
    digest: bytes,
    algorithm: HashAlgorithm,
    *,
    pss: bool = False,
) -> bool:
    """Verify a signature made over a precomputed digest ("prehash").

    Raises:
        KeySchemeError: For Ed25519, which cannot sign a digest in Sigstore's scheme.
    """
    if isinstance(key, ed25519.Ed25519PublicKey):
        raise KeySchemeError("Ed25519 signs whole messages, not digests")
    try:
        _verify_hashed(key, signature, digest, _HASHES[algorithm](), prehashed=True, pss=pss)
    except InvalidSignature:
        return False
    return True


def _verify_hashed(
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm,
    *,
    prehashed: bool,
    pss: bool = False,
) -> None:
    chosen: hashes.HashAlgorithm | Prehashed = Prehashed(algorithm) if prehashed else algorithm
    if prehashed and len(data) != algorithm.digest_size:
        raise InvalidSignature
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(chosen))
    elif pss:
        # MGF1 with the message hash, as the registry's PSS entries specify. The
        # salt length is recovered, not pinned: airseal's signers use the digest
        # length, but Go's crypto/rsa default (PSSSaltLengthAuto, which the Go
        # Sigstore clients build on) signs with the maximum and verifies with
        # auto-detection. Fixing it on the verifier side adds no security to PSS.
        key.verify(
            signature,
            data,
            padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO),
            chosen,
        )
    else:
        key.verify(signature, data, padding.PKCS1v15(), chosen)


def is_pss(details: PublicKeyDetails) -> bool:
    """Return True for RSA-PSS schemes."""
    scheme = _SCHEMES.get(details)
    return bool(scheme and scheme.pss)


def spki_der(key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _describe(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name} key"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size} key"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519 key"
    return type(key).__name__
