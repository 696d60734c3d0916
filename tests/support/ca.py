"""Pieces for CA tests: a software CA chain, a fake CT log, principals and requests.

* :func:`software_chain` -- a P-384 root and an intermediate (P-256 or P-384)
  with the ceremony's profile, the intermediate's key as a software
  :class:`~toolkit.signing.Signer`;
* :class:`FakeCT` -- a :class:`~toolkit.services.ct.client.CTClient` that signs
  real RFC 6962 SCTs with a software P-256 key (or fails as told) and records
  every chain it was sent;
* :func:`principal` / :func:`github_principal` -- identities as the OIDC
  verifier returns them;
* :func:`proof_of_possession`, :func:`csr_pem`, :func:`public_key_request`,
  :func:`csr_request` -- what clients send.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from toolkit.errors import TransportError
from toolkit.services.ca.oidc import Principal
from toolkit.services.ct.client import CTRefused
from toolkit.services.ct.sct import (
    SignedCertificateTimestamp,
    issuer_key_hash,
    precert_signing_input,
    precert_tbs,
)
from toolkit.signing import KeyAlgorithm, SoftwareSigner, spki_der

__all__ = [
    "CA_NOT_AFTER",
    "CA_NOT_BEFORE",
    "FakeCT",
    "SoftwareChain",
    "SubjectKey",
    "csr_pem",
    "csr_request",
    "github_principal",
    "principal",
    "proof_of_possession",
    "public_key_pem",
    "public_key_request",
    "software_chain",
]

UTC = dt.UTC
CA_NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=UTC)
CA_NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=UTC)
ISSUER = "https://oidc.airseal.test"

SubjectKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SoftwareChain:
    """A root and an intermediate, and the intermediate's signer."""

    signer: SoftwareSigner
    intermediate: x509.Certificate
    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.intermediate, self.root]


def _ca_builder(
    subject: x509.Name, issuer: x509.Name, public: Any, path_length: int | None
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(CA_NOT_BEFORE)
        .not_valid_after(CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def software_chain(
    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256,
    *,
    eku: bool = True,
    ca: bool = True,
) -> SoftwareChain:
    """A root (P-384) and an intermediate of ``algorithm`` with the ceremony's profile.

    Args:
        algorithm: The intermediate's key.
        eku: Give the intermediate EKU codeSigning.
        ca: Make the intermediate a CA (False: a broken chain for start-up checks).
    """
    root_key = ec.generate_private_key(ec.SECP384R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    root = _ca_builder(root_name, root_name, root_key.public_key(), None).sign(
        root_key, hashes.SHA384()
    )
    signer = SoftwareSigner.generate(algorithm)
    public = signer.public_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test intermediate")])
    builder = _ca_builder(name, root_name, public, 0)
    if not ca:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(root_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(CA_NOT_BEFORE)
            .not_valid_after(CA_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
    )
    intermediate = builder.sign(root_key, hashes.SHA384())
    return SoftwareChain(signer, intermediate, root, root_key)


@dataclass
class FakeCT:
    """A CT log in memory: signs SCTs with a P-256 key, or fails as told.

    Attributes:
        key: The log key.
        fail: ``None`` (sign), ``"down"`` (TransportError), ``"refuse"``
            (a 4xx CTRefused), ``"tamper"`` (an SCT whose signature is wrong),
            ``"other-log"`` (an SCT signed by a key nobody trusts).
        chains: Every chain received (DER certificates).
        timestamp: The SCT time (default: the precertificate's notBefore).
    """

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    fail: Literal["down", "refuse", "tamper", "other-log"] | None = None
    chains: list[list[bytes]] = field(default_factory=list)
    timestamp: dt.datetime | None = None

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()

    @property
    def log_id(self) -> bytes:
        import hashlib

        return hashlib.sha256(spki_der(self.public_key)).digest()

    async def add_pre_chain(self, chain: Sequence[bytes]) -> SignedCertificateTimestamp:
        self.chains.append(list(chain))
        if self.fail == "down":
            raise TransportError("cannot reach the CT log at http://127.0.0.1:1: ConnectError")
        if self.fail == "refuse":
            raise CTRefused(400, "bad-chain", "Bad chain", "the chain does not end in a root")
        precert = x509.load_der_x509_certificate(chain[0])
        issuer = x509.load_der_x509_certificate(chain[1])
        moment = self.timestamp or precert.not_valid_before_utc
        millis = int(moment.timestamp() * 1000)
        signed = precert_signing_input(millis, issuer_key_hash(issuer), precert_tbs(chain[0]))
        key = self.key
        if self.fail == "other-log":
            key = ec.generate_private_key(ec.SECP256R1())
        elif self.fail == "tamper":
            signed = signed + b"x"
        signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
        log_id = self.log_id
        if self.fail == "other-log":
            import hashlib

            log_id = hashlib.sha256(spki_der(key.public_key())).digest()
        return SignedCertificateTimestamp(log_id=log_id, timestamp=millis, signature=signature)

    async def aclose(self) -> None:
        """Nothing to release."""


def principal(
    kind: Literal["email", "uri", "username"] = "email",
    value: str = "signer@airseal.test",
    *,
    issuer: str = ISSUER,
    challenge: str | None = None,
    extensions: dict[str, str] | None = None,
) -> Principal:
    """A principal as the OIDC verifier returns it."""
    return Principal(
        issuer=issuer,
        san_type=kind,
        san_value=value,
        challenge=challenge if challenge is not None else value,
        extensions=extensions or {},
        subject=challenge or value,
    )


def github_principal(issuer: str = "https://token.actions.githubusercontent.com") -> Principal:
    """A GitHub Actions principal with the .1.2-.1.6 and .1.9-.1.22 extensions."""
    from toolkit.services.ca.oidc import IssuerConfig, IssuerType, map_identity

    claims = {
        "iss": issuer,
        "sub": "repo:octo/hello:ref:refs/heads/main",
        "job_workflow_ref": "octo/hello/.github/workflows/release.yml@refs/heads/main",
        "job_workflow_sha": "a" * 40,
        "runner_environment": "github-hosted",
        "repository": "octo/hello",
        "sha": "b" * 40,
        "ref": "refs/heads/main",
        "repository_id": "12345",
        "repository_owner": "octo",
        "repository_owner_id": "678",
        "workflow_ref": "octo/hello/.github/workflows/release.yml@refs/heads/main",
        "workflow_sha": "c" * 40,
        "event_name": "push",
        "run_id": "99",
        "run_attempt": "1",
        "repository_visibility": "public",
        "workflow": "Release",
    }
    return map_identity(IssuerConfig(issuer, IssuerType.GITHUB_WORKFLOW), issuer, claims)


def public_key_pem(key: SubjectKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def proof_of_possession(
    key: SubjectKey, challenge: str, *, pss: bool = False, hash_name: str = "sha256"
) -> bytes:
    """The key's signature over the challenge, as cosign and sigstore-go make it."""
    message = challenge.encode("utf-8")
    algorithm: hashes.HashAlgorithm = {
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
        "sha1": hashes.SHA1(),
    }[hash_name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(algorithm))
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
        if pss
        else padding.PKCS1v15()
    )
    return key.sign(message, pad, algorithm)


def csr_pem(key: SubjectKey, *, tamper: bool = False) -> bytes:
    """A PKCS#10 request as sigstore-python builds it (empty subject, basicConstraints CA=false)."""
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm)
    der = csr.public_bytes(serialization.Encoding.DER)
    if tamper:
        # Flip one bit of the signature (the DER's last byte).
        der = der[:-1] + bytes([der[-1] ^ 0x01])
    return (
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(der)
        + b"-----END CERTIFICATE REQUEST-----\n"
    )


def public_key_request(
    token: str | None,
    key: SubjectKey,
    challenge: str,
    *,
    proof: bytes | None = None,
    algorithm: str | None = None,
) -> dict[str, Any]:
    """A ``publicKeyRequest`` body (token in ``credentials`` unless None)."""
    public_key: dict[str, Any] = {"content": public_key_pem(key)}
    if algorithm is not None:
        public_key["algorithm"] = algorithm
    document: dict[str, Any] = {
        "publicKeyRequest": {
            "publicKey": public_key,
            "proofOfPossession": base64.b64encode(
                proof if proof is not None else proof_of_possession(key, challenge)
            ).decode("ascii"),
        }
    }
    if token is not None:
        document["credentials"] = {"oidcIdentityToken": token}
    return document


def csr_request(token: str | None, csr: bytes) -> dict[str, Any]:
    """A ``certificateSigningRequest`` body, as sigstore-python sends it (base64 of PEM)."""
    document: dict[str, Any] = {"certificateSigningRequest": base64.b64encode(csr).decode()}
    if token is not None:
        document["credentials"] = {"oidcIdentityToken": token}
    return document


def to_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode("utf-8")
