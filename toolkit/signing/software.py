"""Software keys: a cryptography private key in memory or in a PEM file.

Used for development, tests and throwaway keys (the ceremony lints a
certificate signed by a throwaway key before the HSM signs the real one). The
signer behaves exactly like a token key — same schemes, same signature
encodings, same self-check of every signature — so the contract tests can run
one suite over both.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from toolkit.errors import EnvironmentSetupError, FormatError, UsageError
from toolkit.signing._api import KeyAlgorithm, PrivateKey, Scheme, SignerBase
from toolkit.signing._crypto import check_scheme, key_algorithm_of, rsa_padding, verify_signature

__all__ = ["SoftwareSigner"]

_RSA_EXPONENT = 65537


class SoftwareSigner(SignerBase):
    """A :class:`~toolkit.signing.Signer` over a cryptography private key.

    Args:
        key: An EC (P-256 or P-384), Ed25519 or RSA (3072 or 4096 bits) key.
        scheme: The signing scheme; defaults to the key's
            :meth:`Scheme.default_for`. RSA keys pick PKCS#1 v1.5 or PSS here.

    Raises:
        UsageError: The key is of an unsupported kind or size, or the scheme
            is for another kind of key.
    """

    __slots__ = ("_key",)

    def __init__(self, key: PrivateKey, scheme: Scheme | None = None) -> None:
        algorithm = key_algorithm_of(key)
        super().__init__(algorithm, check_scheme(algorithm, scheme), key.public_key())
        self._key = key

    @classmethod
    def generate(cls, algorithm: KeyAlgorithm, scheme: Scheme | None = None) -> SoftwareSigner:
        """Create a fresh random key of ``algorithm``."""
        algorithm = KeyAlgorithm(algorithm)
        key: PrivateKey
        if algorithm is KeyAlgorithm.ECDSA_P256:
            key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm is KeyAlgorithm.ECDSA_P384:
            key = ec.generate_private_key(ec.SECP384R1())
        elif algorithm is KeyAlgorithm.ED25519:
            key = ed25519.Ed25519PrivateKey.generate()
        elif algorithm is KeyAlgorithm.RSA_3072:
            key = rsa.generate_private_key(_RSA_EXPONENT, 3072)
        else:
            key = rsa.generate_private_key(_RSA_EXPONENT, 4096)
        return cls(key, scheme)

    @classmethod
    def from_pem(
        cls, data: bytes, passphrase: bytes | None = None, *, scheme: Scheme | None = None
    ) -> SoftwareSigner:
        """Load a PEM private key (PKCS#8, or the traditional EC/RSA forms).

        Args:
            data: The PEM text.
            passphrase: The passphrase of an encrypted key.
            scheme: The signing scheme (see the class).

        Raises:
            UsageError: The key is encrypted and no passphrase was given, a
                passphrase was given for a plain key, or the passphrase is wrong.
            FormatError: The data is not a PEM private key.
        """
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError:
            # cryptography raises TypeError for both mismatches; whether a
            # passphrase was given tells which one this is.
            if passphrase is None:
                raise UsageError(
                    "the private key is encrypted and no passphrase was given",
                    hint="give the key's passphrase",
                ) from None
            raise UsageError(
                "a passphrase was given but the private key is not encrypted"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            if passphrase is not None and b"ENCRYPTED" in data:
                raise UsageError("cannot decrypt the private key: wrong passphrase?") from None
            raise FormatError("not a PEM private key of a supported type") from None
        if not isinstance(
            key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
        ):
            raise UsageError(
                f"unsupported key type {type(key).__name__}",
                hint="airseal signs with P-256, P-384, Ed25519, RSA-3072 or RSA-4096 keys",
            )
        return cls(key, scheme)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        passphrase: bytes | None = None,
        *,
        scheme: Scheme | None = None,
    ) -> SoftwareSigner:
        """Load a PEM private key file (see :meth:`from_pem`).

        Raises:
            EnvironmentSetupError: The file cannot be read.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise EnvironmentSetupError(
                f"cannot read key file {str(path)!r}: {exc.strerror}"
            ) from None
        return cls.from_pem(data, passphrase, scheme=scheme)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """The key as PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def sign(self, data: bytes) -> bytes:
        """Sign the whole message ``data`` with the scheme, and check the result.

        Raises:
            UsageError: The signature did not verify (a broken crypto library).
        """
        key = self._key
        hash_algorithm = self._scheme.hash
        if isinstance(key, ed25519.Ed25519PrivateKey):
            signature = key.sign(data)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            assert hash_algorithm is not None
            signature = key.sign(data, ec.ECDSA(hash_algorithm))
        else:
            assert hash_algorithm is not None
            signature = key.sign(data, rsa_padding(self._scheme), hash_algorithm)
        # Checked like a token's signature: the cost is small next to the
        # damage a faulty signature (a fault attack on RSA-CRT) can do.
        if not verify_signature(self._public_key, self._scheme, signature, data):
            raise UsageError(f"software key {self._key_id[:16]} made an invalid signature")
        return signature

    def private_key(self) -> PrivateKey:
        """The cryptography private key itself."""
        return self._key

    def __repr__(self) -> str:
        return f"SoftwareSigner({self._scheme.value}, key_id={self._key_id[:16]}…)"
