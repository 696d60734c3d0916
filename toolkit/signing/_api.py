"""The signer interface every airseal key is used through.

A :class:`Signer` hides where a private key lives (in memory, in a PEM file,
on a PKCS#11 token) behind four things: the bytes-in, signature-out
:meth:`Signer.sign`, the public key, a key id and the signing scheme. Services,
the ceremony and the TUF repository only ever see this protocol, so a key can
move from a file to an HSM without code changes.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Final, Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = [
    "KeyAlgorithm",
    "PrivateKey",
    "PublicKey",
    "Scheme",
    "Signer",
    "SignerBase",
    "spki_der",
    "spki_sha256",
]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class KeyAlgorithm(enum.StrEnum):
    """Kinds of key airseal generates, as they are spelled in configs."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    ED25519 = "ed25519"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"


class Scheme(enum.StrEnum):
    """Signing schemes, named as Sigstore's ``PublicKeyDetails`` registry names them.

    The scheme fixes the key kind, the padding and the hash applied to the
    whole message, so a signature is reproducible from (scheme, key, message).
    """

    ECDSA_P256_SHA256 = "PKIX_ECDSA_P256_SHA_256"
    ECDSA_P384_SHA384 = "PKIX_ECDSA_P384_SHA_384"
    ED25519 = "PKIX_ED25519"
    RSA_PKCS1V15_3072_SHA256 = "PKIX_RSA_PKCS1V15_3072_SHA256"
    RSA_PKCS1V15_4096_SHA256 = "PKIX_RSA_PKCS1V15_4096_SHA256"
    RSA_PSS_3072_SHA256 = "PKIX_RSA_PSS_3072_SHA256"
    RSA_PSS_4096_SHA256 = "PKIX_RSA_PSS_4096_SHA256"

    @property
    def key_algorithm(self) -> KeyAlgorithm:
        """The kind of key this scheme signs with."""
        return _SCHEME_KEY[self]

    @property
    def hash(self) -> hashes.HashAlgorithm | None:
        """The hash applied to messages (None for pure Ed25519)."""
        factory = _SCHEME_HASH[self]
        return factory() if factory is not None else None

    @property
    def pss(self) -> bool:
        """True for RSASSA-PSS (salt length = digest length, MGF1 with the same hash)."""
        return self in (Scheme.RSA_PSS_3072_SHA256, Scheme.RSA_PSS_4096_SHA256)

    @classmethod
    def default_for(cls, algorithm: KeyAlgorithm) -> Scheme:
        """The scheme a key of ``algorithm`` signs with unless told otherwise."""
        return _DEFAULT_SCHEME[algorithm]


_SCHEME_KEY: Final[dict[Scheme, KeyAlgorithm]] = {
    Scheme.ECDSA_P256_SHA256: KeyAlgorithm.ECDSA_P256,
    Scheme.ECDSA_P384_SHA384: KeyAlgorithm.ECDSA_P384,
    Scheme.ED25519: KeyAlgorithm.ED25519,
    Scheme.RSA_PKCS1V15_3072_SHA256: KeyAlgorithm.RSA_3072,
    Scheme.RSA_PKCS1V15_4096_SHA256: KeyAlgorithm.RSA_4096,
    Scheme.RSA_PSS_3072_SHA256: KeyAlgorithm.RSA_3072,
    Scheme.RSA_PSS_4096_SHA256: KeyAlgorithm.RSA_4096,
}
_SCHEME_HASH: Final[dict[Scheme, type[hashes.HashAlgorithm] | None]] = {
    Scheme.ECDSA_P256_SHA256: hashes.SHA256,
    Scheme.ECDSA_P384_SHA384: hashes.SHA384,
    Scheme.ED25519: None,
    Scheme.RSA_PKCS1V15_3072_SHA256: hashes.SHA256,
    Scheme.RSA_PKCS1V15_4096_SHA256: hashes.SHA256,
    Scheme.RSA_PSS_3072_SHA256: hashes.SHA256,
    Scheme.RSA_PSS_4096_SHA256: hashes.SHA256,
}
_DEFAULT_SCHEME: Final[dict[KeyAlgorithm, Scheme]] = {
    KeyAlgorithm.ECDSA_P256: Scheme.ECDSA_P256_SHA256,
    KeyAlgorithm.ECDSA_P384: Scheme.ECDSA_P384_SHA384,
    KeyAlgorithm.ED25519: Scheme.ED25519,
    KeyAlgorithm.RSA_3072: Scheme.RSA_PKCS1V15_3072_SHA256,
    KeyAlgorithm.RSA_4096: Scheme.RSA_PKCS1V15_4096_SHA256,
}


def spki_der(key: PublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of a public key."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_sha256(key: PublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: airseal's key id (and Sigstore's log id)."""
    return hashlib.sha256(spki_der(key)).hexdigest()


@runtime_checkable
class Signer(Protocol):
    """A private key that signs, wherever it lives.

    Implementations verify every signature they produce before returning it,
    so a faulty token cannot hand out a bad signature.
    """

    @property
    def scheme(self) -> Scheme:
        """The signing scheme (key kind, padding and message hash)."""
        ...

    @property
    def public_key(self) -> PublicKey:
        """The public half of the key."""
        ...

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (the whole message; hashing is part of the scheme).

        Returns:
            DER ``Ecdsa-Sig-Value`` for ECDSA, 64 raw bytes for Ed25519, the
            modulus-sized signature for RSA.
        """
        ...

    def private_key(self) -> PrivateKey:
        """A cryptography private-key object that signs with this key.

        It can be passed to ``CertificateBuilder.sign()`` and the CSR and CRL
        builders. For token keys it is a proxy: private numbers and
        serialisation raise.
        """
        ...


class SignerBase:
    """The key facts of a :class:`Signer`, kept the same way by every implementation.

    The software and the PKCS#11 signer derive from it, so the protocol's
    ``scheme``, ``public_key`` and ``key_id`` (and ``algorithm``) read alike;
    each adds ``sign`` and ``private_key`` for where its key lives.

    Args:
        algorithm: The kind of key.
        scheme: The signing scheme, already checked against ``algorithm`` by
            the caller with ``_crypto.check_scheme`` (``_crypto`` imports this
            module, so the check cannot be made here).
        public_key: The public half of the key.
    """

    __slots__ = ("_algorithm", "_key_id", "_public_key", "_scheme")

    def __init__(self, algorithm: KeyAlgorithm, scheme: Scheme, public_key: PublicKey) -> None:
        self._algorithm = algorithm
        self._scheme = scheme
        self._public_key = public_key
        self._key_id = spki_sha256(public_key)

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The kind of key."""
        return self._algorithm

    @property
    def scheme(self) -> Scheme:
        """The signing scheme."""
        return self._scheme

    @property
    def public_key(self) -> PublicKey:
        """The public half of the key."""
        return self._public_key

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
        return self._key_id
