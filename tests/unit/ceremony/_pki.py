"""Software signers and a small ceremony PKI for the ceremony unit tests.

:class:`LocalSigner` implements :class:`toolkit.signing.Signer` with
cryptography keys, so these tests do not depend on the signer implementations
being written alongside them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from ceremony import certs
from ceremony.certs import CertificateProfile, IssuedCertificate, build_certificate, random_serial
from toolkit.signing._api import KeyAlgorithm, PrivateKey, PublicKey, Scheme, spki_der

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROOT_END = datetime(2036, 1, 1, tzinfo=UTC)
LEAF_END = datetime(2031, 1, 1, tzinfo=UTC)
#: A moment inside every test certificate's validity (for openssl -attime).
INSIDE = datetime(2027, 6, 1, tzinfo=UTC)


def name(common_name: str, organization: str = "Airseal Test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@cache
def _rsa_key(bits: int) -> rsa.RSAPrivateKey:
    # RSA key generation costs up to a second; one key per size is enough.
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def generate(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm is KeyAlgorithm.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is KeyAlgorithm.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return _rsa_key(3072 if algorithm is KeyAlgorithm.RSA_3072 else 4096)


class LocalSigner:
    """A software :class:`~toolkit.signing.Signer` over a cryptography key."""

    def __init__(self, key: PrivateKey, scheme: Scheme) -> None:
        self._key = key
        self._scheme = scheme

    @classmethod
    def generate(cls, scheme: Scheme) -> LocalSigner:
        return cls(generate(scheme.key_algorithm), scheme)

    @property
    def scheme(self) -> Scheme:
        return self._scheme

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    @property
    def key_id(self) -> str:
        return hashlib.sha256(spki_der(self.public_key)).hexdigest()

    def sign(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        algorithm = self._scheme.hash
        assert algorithm is not None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(algorithm))
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
            if self._scheme.pss
            else padding.PKCS1v15()
        )
        return key.sign(data, pad, algorithm)

    def private_key(self) -> PrivateKey:
        return self._key


class ForgingEcKey(ec.EllipticCurvePrivateKey):
    """An EC private key proxy that claims one key and signs with another.

    It stands for a faulty token: the public key is right, the signature is not.
    """

    def __init__(self, claimed: ec.EllipticCurvePrivateKey, *, corrupt: bool = False) -> None:
        self._claimed = claimed
        self._other = ec.generate_private_key(claimed.curve)
        self._corrupt = corrupt
        self.signatures = 0

    def sign(self, data: Any, signature_algorithm: Any) -> bytes:
        self.signatures += 1
        if self._corrupt:
            # A well-formed DER signature over the right data, with one bit flipped in s.
            good = bytearray(self._claimed.sign(data, signature_algorithm))
            good[-1] ^= 0x01
            return bytes(good)
        return self._other.sign(data, signature_algorithm)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._claimed.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._claimed.curve

    @property
    def key_size(self) -> int:
        return self._claimed.key_size

    def exchange(self, algorithm: Any, peer_public_key: Any) -> bytes:
        raise NotImplementedError

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise NotImplementedError

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise NotImplementedError

    def __copy__(self) -> ForgingEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> ForgingEcKey:
        return self


class ProxySigner(LocalSigner):
    """A signer whose ``private_key()`` is an arbitrary object (a faulty proxy)."""

    def __init__(self, real: LocalSigner, proxy: PrivateKey) -> None:
        super().__init__(real.private_key(), real.scheme)
        self._proxy = proxy
        self.private_key_calls = 0

    def private_key(self) -> PrivateKey:
        self.private_key_calls += 1
        return self._proxy


@dataclass(frozen=True)
class Pki:
    root_signer: LocalSigner
    root: IssuedCertificate
    intermediate_signer: LocalSigner
    intermediate: IssuedCertificate
    tsa_signer: LocalSigner
    tsa: IssuedCertificate


def build_pki(
    *,
    intermediate_scheme: Scheme = Scheme.ECDSA_P384_SHA384,
    tsa_scheme: Scheme = Scheme.ECDSA_P256_SHA256,
) -> Pki:
    root_signer = LocalSigner.generate(Scheme.ECDSA_P384_SHA384)
    root_name = name("Airseal Test Root CA")

    # The root key issues all three, its own certificate included.
    def issue(
        profile: CertificateProfile,
        subject: x509.Name,
        subject_signer: LocalSigner,
        not_after: datetime = LEAF_END,
    ) -> IssuedCertificate:
        return build_certificate(
            profile,
            subject=subject,
            subject_key=subject_signer.public_key,
            issuer=root_name,
            issuer_key=root_signer.public_key,
            issuer_signer=root_signer,
            not_before=T0,
            not_after=not_after,
            serial=random_serial(),
        )

    root = issue(CertificateProfile.ROOT, root_name, root_signer, not_after=ROOT_END)
    intermediate_signer = LocalSigner.generate(intermediate_scheme)
    intermediate = issue(
        CertificateProfile.INTERMEDIATE, name("Airseal Test Intermediate CA"), intermediate_signer
    )
    tsa_signer = LocalSigner.generate(tsa_scheme)
    tsa = issue(CertificateProfile.TSA, name("Airseal Test TSA"), tsa_signer)
    return Pki(root_signer, root, intermediate_signer, intermediate, tsa_signer, tsa)


def code_signing_leaf(pki: Pki) -> x509.Certificate:
    """A Fulcio-like leaf under the intermediate, to exercise the CA chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_key = pki.intermediate_signer.private_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(pki.intermediate.certificate.subject)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(INSIDE)
        .not_valid_after(INSIDE.replace(minute=10))
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("dev@example.org")]), critical=True
        )
        .add_extension(certs._key_usage(digital_signature=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.intermediate_signer.public_key),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA384())
    )
