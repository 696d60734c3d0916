"""airseal signers as securesystemslib signers, for python-tuf's Metadata API.

``Metadata.sign()`` takes a ``securesystemslib.signer.Signer``.
:class:`TufSigner` adapts any airseal :class:`~toolkit.signing.Signer` (software
or token key) to it. securesystemslib's own ``HSMSigner`` cannot serve here:
it signs ECDSA only and finds keys by integer ID, not by RFC 7512 URI and label.

Key IDs are TUF's default ones (SHA-256 of the canonical JSON of the key),
which is what python-tuf computes and checks; they differ from airseal's
SPKI-hash key IDs.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import Key, SecretsHandler, Signature, SSlibKey
from securesystemslib.signer import Signer as SslibSigner

from toolkit.errors import UsageError
from toolkit.signing._api import PublicKey, Scheme, Signer
from toolkit.signing._crypto import key_algorithm_of

__all__ = ["TufSigner", "tuf_key", "tuf_scheme"]

_TUF_SCHEMES: Final[dict[Scheme, str]] = {
    Scheme.ED25519: "ed25519",
    Scheme.ECDSA_P256_SHA256: "ecdsa-sha2-nistp256",
    Scheme.ECDSA_P384_SHA384: "ecdsa-sha2-nistp384",
    Scheme.RSA_PSS_3072_SHA256: "rsassa-pss-sha256",
    Scheme.RSA_PSS_4096_SHA256: "rsassa-pss-sha256",
    Scheme.RSA_PKCS1V15_3072_SHA256: "rsa-pkcs1v15-sha256",
    Scheme.RSA_PKCS1V15_4096_SHA256: "rsa-pkcs1v15-sha256",
}


def tuf_scheme(scheme: Scheme) -> str:
    """The securesystemslib scheme name of an airseal scheme (``ecdsa-sha2-nistp256``…)."""
    return _TUF_SCHEMES[Scheme(scheme)]


def tuf_key(public_key: PublicKey, scheme: Scheme | None = None) -> SSlibKey:
    """The TUF key (``SSlibKey``) of a public key, with TUF's default key ID.

    Args:
        public_key: An airseal public key.
        scheme: Its signing scheme (default: the key's default scheme; pass it
            for RSA-PSS keys).

    Raises:
        UsageError: Unsupported key, or a scheme for another kind of key.
    """
    algorithm = key_algorithm_of(public_key)
    chosen = Scheme.default_for(algorithm) if scheme is None else Scheme(scheme)
    if chosen.key_algorithm is not algorithm:
        raise UsageError(f"scheme {chosen.value} does not fit a {algorithm.value} key")
    return SSlibKey.from_crypto(public_key, scheme=tuf_scheme(chosen))


def _scheme_of(key: SSlibKey) -> Scheme:
    """The airseal scheme a TUF key signs with."""
    value = str(key.keyval.get("public", ""))
    public: object
    try:
        if key.keytype == "ed25519":
            public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
        else:
            public = serialization.load_pem_public_key(value.encode())
    except ValueError:
        raise UsageError(f"TUF key {key.keyid[:16]}… has a malformed public value") from None
    algorithm = key_algorithm_of(public)
    for scheme, name in _TUF_SCHEMES.items():
        if scheme.key_algorithm is algorithm and name == key.scheme:
            return scheme
    raise UsageError(f"TUF scheme {key.scheme!r} does not fit a {algorithm.value} key")


class TufSigner(SslibSigner):
    """A securesystemslib signer over an airseal signer.

    Args:
        signer: The airseal signer.
        key: The TUF key to sign as (default: :func:`tuf_key` of the signer);
            give it to keep a key ID that is already in metadata.

    Raises:
        UsageError: ``key`` is not the signer's public key.
    """

    def __init__(self, signer: Signer, key: SSlibKey | None = None) -> None:
        own = tuf_key(signer.public_key, signer.scheme)
        if key is not None and (key.keytype, key.scheme, key.keyval) != (
            own.keytype,
            own.scheme,
            own.keyval,
        ):
            raise UsageError(f"TUF key {key.keyid[:16]}… is not the public key of this signer")
        self._signer = signer
        self._key = key if key is not None else own

    @property
    def public_key(self) -> SSlibKey:
        """The TUF key signatures are made as."""
        return self._key

    @property
    def signer(self) -> Signer:
        """The airseal signer underneath."""
        return self._signer

    def sign(self, payload: bytes) -> Signature:
        """Sign ``payload`` (TUF's canonical signed bytes) with the airseal signer."""
        return Signature(self._key.keyid, self._signer.sign(payload).hex())

    @classmethod
    def from_priv_key_uri(
        cls,
        priv_key_uri: str,
        public_key: Key,
        secrets_handler: SecretsHandler | None = None,
    ) -> TufSigner:
        """Open an airseal key URI (``pkcs11:`` or ``file:``) as a TUF signer.

        ``secrets_handler``, when given, is asked for the token PIN if no
        pin-source or environment variable provides it.

        Raises:
            UsageError: ``public_key`` is not an ``SSlibKey`` of that key.
        """
        from toolkit.signing import load_signer

        if not isinstance(public_key, SSlibKey):
            raise UsageError(f"unsupported TUF key type {type(public_key).__name__}")
        prompt = None
        if secrets_handler is not None:
            handler = secrets_handler

            def prompt(text: str) -> str:
                return handler(text.rstrip(": "))

        signer = load_signer(priv_key_uri, prompt=prompt, scheme=_scheme_of(public_key))
        return cls(signer, public_key)

    def __repr__(self) -> str:
        return f"TufSigner({self._signer!r}, keyid={self._key.keyid[:16]}…)"
