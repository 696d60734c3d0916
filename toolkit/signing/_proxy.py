"""cryptography private-key objects whose private half lives on a token.

``x509.CertificateBuilder.sign()`` and the CSR and CRL builders accept any
subclass of cryptography's private-key ABCs and call its ``sign`` method, so a
token key wrapped in one of these classes signs certificates with no change to
the building code. cryptography embeds whatever bytes ``sign`` returns, unchecked:
the operations behind these proxies verify each signature before returning it.

Since cryptography 45 the builders copy the key (``__copy__``) and since 47
deep-copy it; a proxy is a handle, so both return the proxy itself.
"""

from __future__ import annotations

from typing import Protocol, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from cryptography.utils import Buffer

from toolkit.errors import UsageError

__all__ = [
    "TokenEd25519PrivateKey",
    "TokenEllipticCurvePrivateKey",
    "TokenKeyOperations",
    "TokenRSAPrivateKey",
]


class TokenKeyOperations(Protocol):
    """What a proxy needs from the token key behind it."""

    def describe(self) -> str:
        """Name the key for messages, e.g. ``key 'root' on token 'ca'``."""
        ...

    def sign_ecdsa(self, data: bytes, algorithm: hashes.HashAlgorithm | Prehashed) -> bytes:
        """Return a checked DER ECDSA signature."""
        ...

    def sign_eddsa(self, data: bytes) -> bytes:
        """Return a checked Ed25519 signature."""
        ...

    def sign_rsa(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | Prehashed,
    ) -> bytes:
        """Return a checked RSA signature."""
        ...


def _refuse(ops: TokenKeyOperations, what: str) -> UsageError:
    return UsageError(
        f"{ops.describe()} never leaves the token: {what} is not possible",
        hint="only signing works with a token key",
    )


class _TokenKey:
    """What the three proxies share, whatever the kind of key.

    Listed before the cryptography ABC in each proxy's bases, so that its
    methods are the ones that fill the ABC's abstract ``private_bytes``,
    ``__copy__`` and ``__deepcopy__``.
    """

    _ops: TokenKeyOperations

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Refused: the private value stays on the token."""
        raise _refuse(self._ops, "serialising the private key")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._ops.describe()}>"


class TokenEllipticCurvePrivateKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An ECDSA token key as a cryptography ``EllipticCurvePrivateKey``."""

    def __init__(self, ops: TokenKeyOperations, public_key: ec.EllipticCurvePublicKey) -> None:
        self._ops = ops
        self._public_key = public_key

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Refused: airseal's token keys have no DERIVE capability."""
        raise _refuse(self._ops, "key agreement")

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        return self._public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        """The curve."""
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        """The curve's size in bits."""
        return self._public_key.key_size

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """Sign with ECDSA on the token; the hash (or ``Prehashed``) is the caller's."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UsageError(f"unsupported EC signature algorithm {signature_algorithm!r}")
        if signature_algorithm.deterministic_signing:
            # The token draws the nonce; RFC 6979 cannot be asked of it.
            raise UsageError("deterministic ECDSA is not available with a token key")
        return self._ops.sign_ecdsa(bytes(data), signature_algorithm.algorithm)

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        """Refused: the private value stays on the token."""
        raise _refuse(self._ops, "reading the private numbers")


class TokenEd25519PrivateKey(_TokenKey, ed25519.Ed25519PrivateKey):
    """An Ed25519 token key as a cryptography ``Ed25519PrivateKey``."""

    def __init__(self, ops: TokenKeyOperations, public_key: ed25519.Ed25519PublicKey) -> None:
        self._ops = ops
        self._public_key = public_key

    def public_key(self) -> ed25519.Ed25519PublicKey:
        """The public half."""
        return self._public_key

    def sign(self, data: Buffer) -> bytes:
        """Sign with pure Ed25519 (CKM_EDDSA) on the token."""
        return self._ops.sign_eddsa(bytes(data))

    def private_bytes_raw(self) -> bytes:
        """Refused: the private value stays on the token."""
        raise _refuse(self._ops, "serialising the private key")


class TokenRSAPrivateKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA token key as a cryptography ``RSAPrivateKey``."""

    def __init__(self, ops: TokenKeyOperations, public_key: rsa.RSAPublicKey) -> None:
        self._ops = ops
        self._public_key = public_key

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        """Refused: airseal's token keys have no DECRYPT capability."""
        raise _refuse(self._ops, "decryption")

    @property
    def key_size(self) -> int:
        """The modulus size in bits."""
        return self._public_key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half."""
        return self._public_key

    def sign(
        self,
        data: Buffer,
        padding: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | Prehashed | NoDigestInfo,
    ) -> bytes:
        """Sign with PKCS#1 v1.5 or PSS on the token; the message is hashed here."""
        if isinstance(algorithm, NoDigestInfo):
            raise UsageError("RSA signing without a DigestInfo is not supported")
        return self._ops.sign_rsa(bytes(data), padding, algorithm)

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        """Refused: the private value stays on the token."""
        raise _refuse(self._ops, "reading the private numbers")
