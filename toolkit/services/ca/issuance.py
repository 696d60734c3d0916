"""Certificate issuance: subject keys, proofs of possession, precertificate, SCT, certificate.

The pure core of the CA, with the time as a parameter. The HTTP edge
(:mod:`.app`) parses the request and verifies the identity token; this module
does the rest:

1. :func:`load_public_key` / :func:`load_csr` -- the subject key, from a PEM
   public key (then :func:`verify_proof_of_possession` checks the signature
   over the principal's challenge) or from a PKCS#10 request (whose
   self-signature is the proof). :func:`check_subject_key` refuses weak and
   unsupported keys.
2. :meth:`CertificateAuthority.issue` -- the Fulcio profile: a precertificate
   with the critical CT poison extension last, signed by the intermediate;
   the SCT from the CT log (``add-pre-chain``); the final certificate with the
   same fields and the SCT list in the poison's place, signed again. Before it
   returns, it checks that the final certificate's TBS without the SCT list is
   the precertificate's TBS without the poison, that the certificate verifies
   under the intermediate and that the SCT verifies with a trusted CT key over
   the reconstructed precertificate (the verifier's own code).

The profile matches what the public Fulcio issues (checked against real
certificates): empty subject; extensions keyUsage (critical,
digitalSignature), extendedKeyUsage (codeSigning), subjectKeyIdentifier,
authorityKeyIdentifier (= the issuer's SKI), subjectAltName (critical, one
name), then the Fulcio extensions in OID order -- ``.1.1`` to ``.1.6`` as raw
string bytes, ``.1.8`` onwards as a DER UTF8String -- then the SCT list. Fulcio
sets no basicConstraints in leaves (its CSR's basicConstraints is ignored),
and neither does airseal.

Every refusal is a :class:`~toolkit.services._http.ProblemError` with its own
slug; no refusal reaches the CT log, so a refused request leaves no trace.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import itertools
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from toolkit import _der
from toolkit.errors import Error, FormatError, HSMError, TransportError, UsageError
from toolkit.models.common import TimeRange
from toolkit.services._http import ProblemError
from toolkit.signing import PublicKey, Signer, spki_der
from toolkit.verify._x509 import CTLogKey, spki_hash

if TYPE_CHECKING:
    from toolkit.services.ca.oidc import Principal
    from toolkit.services.ct.client import CTClient
    from toolkit.services.ct.sct import SignedCertificateTimestamp

__all__ = [
    "FULCIO_ARC",
    "KEY_ALGORITHMS",
    "SLOW_SIGNATURE_S",
    "OID_ISSUER_V1",
    "OID_ISSUER_V2",
    "OID_OTHERNAME_USERNAME",
    "CertificateAuthority",
    "IssuedCertificate",
    "check_subject_key",
    "ct_logs_from_keys",
    "decode_bytes_field",
    "der_utf8string",
    "fulcio_extension",
    "load_csr",
    "load_public_key",
    "random_serial",
    "verify_proof_of_possession",
]

FULCIO_ARC: Final = "1.3.6.1.4.1.57264.1."
OID_ISSUER_V1: Final = x509.ObjectIdentifier(FULCIO_ARC + "1")
OID_OTHERNAME_USERNAME: Final = x509.ObjectIdentifier(FULCIO_ARC + "7")
OID_ISSUER_V2: Final = x509.ObjectIdentifier(FULCIO_ARC + "8")
#: Fulcio's first extensions hold the raw string bytes; .1.8 onwards a DER UTF8String.
_RAW_ARCS: Final = frozenset(range(1, 7))
#: Extensions the CA writes itself: a principal may not supply them.
_RESERVED_ARCS: Final = frozenset({1, 7, 8})

#: ``publicKeyRequest.publicKey.algorithm`` values of Fulcio v2's
#: ``PublicKeyAlgorithm`` enum, by name and number, and the key type each names.
KEY_ALGORITHMS: Final[Mapping[str | int, type | None]] = {
    "PUBLIC_KEY_ALGORITHM_UNSPECIFIED": None,
    0: None,
    "RSA_PSS": rsa.RSAPublicKey,
    1: rsa.RSAPublicKey,
    "ECDSA": ec.EllipticCurvePublicKey,
    2: ec.EllipticCurvePublicKey,
    "ED25519": ed25519.Ed25519PublicKey,
    3: ed25519.Ed25519PublicKey,
}

_MIN_RSA_BITS: Final = 2048
_MAX_RSA_BITS: Final = 8192
_CURVE_HASHES: Final[Mapping[str, tuple[hashes.HashAlgorithm, ...]]] = {
    # SHA-256 first: Fulcio checks every proof with SHA-256 (cosign and
    # sigstore-go sign the challenge with it), whatever the curve; the
    # curve's own hash is accepted too.
    "secp256r1": (hashes.SHA256(),),
    "secp384r1": (hashes.SHA256(), hashes.SHA384()),
    "secp521r1": (hashes.SHA256(), hashes.SHA512()),
}
#: A signature slower than this (seconds) is made in a worker thread (see
#: :class:`CertificateAuthority`): PKCS#11 calls release the GIL.
SLOW_SIGNATURE_S: Final = 0.0006
#: The longest PEM text accepted for a public key or a CSR (an RSA-8192 CSR is ~3.5 kB).
MAX_PEM_BYTES: Final = 16384


def _refuse(status: int, slug: str, title: str, detail: str) -> ProblemError:
    return ProblemError(status, slug, title, detail)


def _invalid_request(detail: str) -> ProblemError:
    return _refuse(400, "invalid-request", "Invalid request", detail)


# --------------------------------------------------------------------------- request fields


def decode_bytes_field(value: object, field: str, *, limit: int = MAX_PEM_BYTES) -> bytes:
    """Decode a proto3 JSON ``bytes`` field: standard or URL-safe base64, padded or not.

    Go's protojson (Fulcio) accepts all four spellings, so clients send any of
    them; the alphabet is still checked strictly.

    Raises:
        ProblemError: ``invalid-request`` (400) when not a string or not base64.
    """
    if not isinstance(value, str):
        raise _invalid_request(f"{field} must be a base64 string")
    if len(value) > limit * 4 // 3 + 4:
        raise _invalid_request(f"{field} is too long")
    text = value.replace("-", "+").replace("_", "/") if ("-" in value or "_" in value) else value
    if len(text) % 4:
        text += "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise _invalid_request(f"{field} is not base64") from None


def check_subject_key(key: object) -> PublicKey:
    """Refuse keys a certificate must not be issued for.

    Accepted: ECDSA on P-256, P-384 or P-521; RSA of 2048 to 8192 bits with
    exponent 65537; Ed25519.

    Raises:
        ProblemError: ``weak-key`` (RSA shorter than 2048 bits or with another
            exponent, EC curves shorter than 256 bits) or ``unsupported-key``
            (any other kind of key, RSA longer than 8192 bits, other curves).
    """
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in _CURVE_HASHES:
            return key
        if key.curve.key_size < 256:
            raise _refuse(
                400, "weak-key", "Weak key", f"EC curve {key.curve.name} is too weak; use P-256"
            )
        raise _refuse(
            400,
            "unsupported-key",
            "Unsupported key",
            f"EC curve {key.curve.name} is not supported; use P-256, P-384 or P-521",
        )
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < _MIN_RSA_BITS:
            raise _refuse(
                400, "weak-key", "Weak key", f"RSA key of {bits} bits is too short (minimum 2048)"
            )
        if bits > _MAX_RSA_BITS:
            raise _refuse(
                400,
                "unsupported-key",
                "Unsupported key",
                f"RSA key of {bits} bits is too long (maximum 8192)",
            )
        if key.public_numbers().e != 65537:
            raise _refuse(400, "weak-key", "Weak key", "RSA public exponent must be 65537")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise _refuse(
        400,
        "unsupported-key",
        "Unsupported key",
        f"{type(key).__name__.lstrip('_')} keys are not supported; use ECDSA, RSA or Ed25519",
    )


def load_public_key(content: object, algorithm: object = None) -> PublicKey:
    """The subject key of a ``publicKeyRequest``: a PEM ``PUBLIC KEY``.

    Args:
        content: ``publicKey.content``, PEM text.
        algorithm: ``publicKey.algorithm`` (a ``PublicKeyAlgorithm`` name or
            number), or None. When given, the key must be of that kind.

    Raises:
        ProblemError: ``invalid-public-key`` when not a PEM public key,
            ``invalid-request`` for an unknown or contradicting algorithm, and
            the refusals of :func:`check_subject_key`.
    """
    if not isinstance(content, str) or not content:
        raise _invalid_request("publicKeyRequest.publicKey.content must be PEM text")
    if len(content) > MAX_PEM_BYTES:
        raise _invalid_request("publicKeyRequest.publicKey.content is too long")
    if algorithm is not None and (isinstance(algorithm, bool) or algorithm not in KEY_ALGORITHMS):
        raise _invalid_request(
            "publicKeyRequest.publicKey.algorithm is not one of "
            "PUBLIC_KEY_ALGORITHM_UNSPECIFIED, RSA_PSS, ECDSA, ED25519"
        )
    try:
        key = serialization.load_pem_public_key(content.encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise _refuse(
            400,
            "invalid-public-key",
            "Invalid public key",
            "publicKeyRequest.publicKey.content is not a PEM SubjectPublicKeyInfo",
        ) from None
    checked = check_subject_key(key)
    expected = KEY_ALGORITHMS[algorithm] if isinstance(algorithm, str | int) else None
    if expected is not None and not isinstance(checked, expected):
        raise _invalid_request(
            f"publicKeyRequest.publicKey.algorithm {algorithm} does not match the key"
        )
    return checked


def verify_proof_of_possession(key: PublicKey, proof: bytes, challenge: str) -> None:
    """Check a ``proofOfPossession``: the subject key's signature over the challenge.

    The challenge is the principal's email or subject, as UTF-8 bytes, signed
    as Fulcio checks it (and cosign, sigstore-go sign it): ECDSA with SHA-256
    (or the curve's own hash), RSA PKCS#1 v1.5 or PSS with SHA-256, Ed25519
    over the raw bytes.

    Raises:
        ProblemError: ``invalid-proof-of-possession`` (400) when it does not verify.
    """
    message = challenge.encode("utf-8")
    if 0 < len(proof) <= 1024:
        try:
            if _verifies(key, proof, message):
                return
        except (ValueError, TypeError):
            pass
    raise _refuse(
        400,
        "invalid-proof-of-possession",
        "Invalid proof of possession",
        "proofOfPossession is not a signature by the submitted key over the identity "
        "token's challenge claim (email, or sub)",
    )


def _verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    if isinstance(key, ed25519.Ed25519PublicKey):
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True
    if isinstance(key, ec.EllipticCurvePublicKey):
        for algorithm in _CURVE_HASHES.get(key.curve.name, ()):
            try:
                key.verify(signature, message, ec.ECDSA(algorithm))
            except InvalidSignature:
                continue
            return True
        return False
    if isinstance(key, rsa.RSAPublicKey):
        sha256 = hashes.SHA256()
        paddings: tuple[padding.AsymmetricPadding, ...] = (
            padding.PKCS1v15(),
            padding.PSS(mgf=padding.MGF1(sha256), salt_length=padding.PSS.AUTO),
        )
        for pad in paddings:
            try:
                key.verify(signature, message, pad, sha256)
            except InvalidSignature:
                continue
            return True
    return False


def load_csr(value: object) -> PublicKey:
    """The subject key of a ``certificateSigningRequest``, its self-signature checked.

    Accepts what clients send: base64 of the PEM request (sigstore-python,
    Fulcio's documented form), the PEM text itself, or base64 of DER. The
    request's subject and extensions are ignored, as Fulcio ignores them:
    the certificate's identity comes from the token alone.

    Raises:
        ProblemError: ``invalid-csr`` when not a PKCS#10 request or signed
            with a weak hash, ``invalid-proof-of-possession`` when its
            signature does not verify, and the refusals of
            :func:`check_subject_key`.
    """
    if not isinstance(value, str) or not value:
        raise _invalid_request("certificateSigningRequest must be a base64 string")
    if value.lstrip().startswith("-----BEGIN"):
        data = value.encode("utf-8", "replace")
        if len(data) > MAX_PEM_BYTES:
            raise _invalid_request("certificateSigningRequest is too long")
    else:
        data = decode_bytes_field(value, "certificateSigningRequest")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
        algorithm = csr.signature_hash_algorithm
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm, TypeError):
        raise _refuse(
            400,
            "invalid-csr",
            "Invalid certificate signing request",
            "certificateSigningRequest is not a PKCS#10 request (PEM, base64-encoded)",
        ) from None
    if algorithm is not None and not isinstance(
        algorithm, hashes.SHA256 | hashes.SHA384 | hashes.SHA512
    ):
        raise _refuse(
            400,
            "invalid-csr",
            "Invalid certificate signing request",
            f"certificateSigningRequest is signed with {algorithm.name}; use SHA-256 or better",
        )
    checked = check_subject_key(key)
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise _refuse(
            400,
            "invalid-proof-of-possession",
            "Invalid proof of possession",
            "certificateSigningRequest signature does not verify with its own key",
        )
    return checked


# --------------------------------------------------------------------------- encodings


def der_utf8string(text: str) -> bytes:
    """DER UTF8String of ``text`` (Fulcio extensions ``.1.8`` onwards, otherName ``.1.7``)."""
    return _der.utf8string(text)


def fulcio_extension(dotted: str, value: str) -> x509.UnrecognizedExtension:
    """A Fulcio identity extension, encoded as Fulcio encodes its arc.

    Raises:
        UsageError: Not an OID under ``1.3.6.1.4.1.57264.1``.
    """
    arc = dotted[len(FULCIO_ARC) :] if dotted.startswith(FULCIO_ARC) else ""
    if not arc.isdigit() or arc.startswith("0"):
        raise UsageError(f"{dotted!r} is not a Fulcio certificate extension OID")
    raw = value.encode("utf-8") if int(arc) in _RAW_ARCS else der_utf8string(value)
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(dotted), raw)


def random_serial() -> int:
    """A random positive 160-bit serial whose DER INTEGER is exactly 20 bytes.

    159 random bits below a clear top bit (so the value is positive without a
    leading zero byte), redrawn in the 1/128 case where the first byte would
    be zero.
    """
    while True:
        value = int.from_bytes(os.urandom(20), "big") >> 1
        if value >> 152:
            return value


def ct_logs_from_keys(
    keys: Iterable[PublicKey], *, start: datetime, base_url: str = "ct"
) -> dict[bytes, list[CTLogKey]]:
    """CT keys by RFC 6962 log id, for :class:`CertificateAuthority` (valid from ``start``)."""
    logs: dict[bytes, list[CTLogKey]] = {}
    for key in keys:
        log_id = hashlib.sha256(spki_der(key)).digest()
        logs.setdefault(log_id, []).append(
            CTLogKey(key=key, valid_for=TimeRange(start=start), base_url=base_url)
        )
    return logs


# --------------------------------------------------------------------------- the CA


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate the CA issued.

    Attributes:
        certificate: The leaf, with its embedded SCT.
        chain: The issuer (intermediate) first, then up to the root.
        sct: The SCT the CT log returned for the precertificate.
        precertificate: The precertificate the CT log logged.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    sct: SignedCertificateTimestamp
    precertificate: x509.Certificate

    def pem_chain(self) -> list[str]:
        """The leaf and its chain as PEM texts, leaf first (Fulcio's response order)."""
        return [
            cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for cert in (self.certificate, *self.chain)
        ]


class _Signing(NamedTuple):
    algorithm: hashes.HashAlgorithm | None
    rsa_padding: padding.PSS | padding.PKCS1v15 | None


class CertificateAuthority:
    """Issues Fulcio-profile certificates through the intermediate's :class:`Signer`.

    Args:
        signer: The intermediate CA key (SoftHSM or an HSM in production).
        chain: The intermediate's certificate first, then up to the root.
        ct: Where precertificates are logged (``add-pre-chain``).
        ct_logs: The CT keys an SCT must verify with, by log id (the trusted
            root's ``ctlogs``; see :func:`ct_logs_from_keys`).
        validity_minutes: Certificate lifetime (Fulcio: 10).
        offload_signing: Sign in a worker thread, so that the event loop
            serves other requests while the key signs. Worth it only for slow
            keys (a P-384 or RSA key on SoftHSM takes over 1 ms; P-256 about
            0.2 ms, less than the hand-over costs). None: decide from the
            fastest of the first three signatures (over :data:`SLOW_SIGNATURE_S`).

    Raises:
        UsageError: The key does not match the first certificate, the first
            certificate is not a code-signing CA certificate, or the chain
            does not link.
    """

    def __init__(
        self,
        signer: Signer,
        chain: Sequence[x509.Certificate],
        ct: CTClient,
        ct_logs: Mapping[bytes, Sequence[CTLogKey]],
        *,
        validity_minutes: int = 10,
        offload_signing: bool | None = None,
    ) -> None:
        if not chain:
            raise UsageError("the CA chain is empty; give the intermediate certificate first")
        if not 1 <= validity_minutes <= 24 * 60:
            raise UsageError("validity_minutes must be between 1 and 1440")
        if not ct_logs:
            raise UsageError("no CT log key to check SCTs with")
        issuer = chain[0]
        if spki_der(signer.public_key) != spki_der(issuer.public_key()):  # type: ignore[arg-type]
            raise UsageError(
                "the CA key does not match the first certificate of the chain",
                hint="the chain must start with the certificate of the configured key",
            )
        _check_issuing_ca(issuer)
        for child, parent in itertools.pairwise(chain):
            try:
                child.verify_directly_issued_by(parent)
            except (ValueError, TypeError, InvalidSignature):
                raise UsageError(
                    f"CA chain does not link: {child.subject.rfc4514_string()!r} is not "
                    f"issued by {parent.subject.rfc4514_string()!r}"
                ) from None
        self._signer = signer
        self._private_key = signer.private_key()
        self._chain = tuple(chain)
        self._chain_der = tuple(c.public_bytes(serialization.Encoding.DER) for c in chain)
        self._ct = ct
        self._ct_logs = {log_id: list(keys) for log_id, keys in ct_logs.items()}
        self._validity = timedelta(minutes=validity_minutes)
        self._signing = _signing_parameters(signer)
        # None: decided from the first signatures (the key never signs
        # anything but certificates, not even a probe).
        self._offload = offload_signing
        self._timings: list[float] = []
        try:
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            self._aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            self._aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.public_key()  # type: ignore[arg-type]
            )
        self._issuer_key_hash = spki_hash(issuer)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The intermediate first, then up to the root."""
        return self._chain

    @property
    def validity(self) -> timedelta:
        """The lifetime of each certificate."""
        return self._validity

    def chain_pem(self) -> list[str]:
        """The chain as PEM texts (for ``/api/v2/trustBundle``)."""
        return [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in self._chain]

    def _builder(
        self, principal: Principal, public_key: PublicKey, now: datetime
    ) -> x509.CertificateBuilder:
        start = now.replace(microsecond=0)
        issuer = self._chain[0]
        if not (
            issuer.not_valid_before_utc <= start
            and start + self._validity <= issuer.not_valid_after_utc
        ):
            raise _refuse(
                503,
                "ca-not-valid",
                "CA certificate not valid",
                "the intermediate CA certificate does not cover the new certificate's "
                "validity; the CA needs a new intermediate",
            )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer.subject)
            .public_key(public_key)
            .serial_number(random_serial())
            .not_valid_before(start)
            .not_valid_after(start + self._validity)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._aki, critical=False)
            .add_extension(x509.SubjectAlternativeName([_san(principal)]), critical=True)
        )
        for extension in _identity_extensions(principal):
            builder = builder.add_extension(extension, critical=False)
        return builder

    def _sign_now(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(
            self._private_key,
            self._signing.algorithm,  # type: ignore[arg-type]
            rsa_padding=self._signing.rsa_padding,
        )

    async def _sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        try:
            if self._offload:
                return await asyncio.to_thread(self._sign_now, builder)
            if self._offload is None:
                return self._sign_timed(builder)
            return self._sign_now(builder)
        except HSMError as exc:
            raise _refuse(
                503, "signer-unavailable", "Signer unavailable", f"the CA key failed: {exc.message}"
            ) from None

    def _sign_timed(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign inline and time it; after three, decide where signing happens."""
        started = time.perf_counter()
        cert = self._sign_now(builder)
        self._timings.append(time.perf_counter() - started)
        if len(self._timings) >= 3:
            # The fastest of three: one slow signature on a busy machine is noise.
            self._offload = min(self._timings) > SLOW_SIGNATURE_S
        return cert

    async def issue(
        self, principal: Principal, public_key: PublicKey, now: datetime
    ) -> IssuedCertificate:
        """Issue a certificate for ``principal``'s key, with an embedded SCT.

        Args:
            principal: The verified identity (from the token).
            public_key: The subject key, already checked (proof of possession,
                :func:`check_subject_key`).
            now: The issuance time (notBefore, truncated to the second).

        Raises:
            ProblemError: ``ca-not-valid`` (503) outside the intermediate's
                validity, ``signer-unavailable`` (503) when the CA key fails,
                ``ct-unavailable`` (503) when the CT log cannot be reached,
                ``ct-refused`` / ``ct-invalid-response`` / ``ct-invalid-sct``
                (502) when it refuses or answers with something unusable. No
                certificate is returned in any of these cases.
        """
        check_subject_key(public_key)
        base = self._builder(principal, public_key, now)
        precert = await self._sign(base.add_extension(x509.PrecertPoison(), critical=True))
        precert_der = precert.public_bytes(serialization.Encoding.DER)
        sct = await self._add_pre_chain([precert_der, *self._chain_der])
        try:
            from toolkit.services.ct.sct import sct_list_extension

            extension = sct_list_extension([sct])
            cert = await self._sign(base.add_extension(extension, critical=False))
        except ProblemError:
            raise
        except (Error, ValueError, TypeError) as exc:
            raise _refuse(
                502,
                "ct-invalid-sct",
                "Unusable SCT",
                f"the CT log's SCT cannot be embedded: {type(exc).__name__}",
            ) from None
        self._self_check(precert, cert, sct)
        return IssuedCertificate(
            certificate=cert, chain=self._chain, sct=sct, precertificate=precert
        )

    async def _add_pre_chain(self, chain: list[bytes]) -> SignedCertificateTimestamp:
        try:
            return await self._ct.add_pre_chain(chain)
        except TransportError as exc:
            raise ProblemError(
                503,
                "ct-unavailable",
                "CT log unavailable",
                f"the CT log cannot be reached: {exc.message}",
                headers={"Retry-After": "5"},
            ) from None
        except ProblemError as exc:
            raise _refuse(
                502,
                "ct-refused",
                "CT log refused the precertificate",
                f"the CT log answered {exc.status} {exc.slug}: {exc.detail}",
            ) from None
        except FormatError as exc:
            raise _refuse(
                502,
                "ct-invalid-response",
                "Invalid CT log response",
                f"the CT log's answer is not an SCT: {exc.message}",
            ) from None
        except Error as exc:
            raise _refuse(
                502,
                "ct-invalid-response",
                "Invalid CT log response",
                f"the CT log request failed: {exc.message}",
            ) from None

    def _self_check(
        self,
        precert: x509.Certificate,
        cert: x509.Certificate,
        sct: SignedCertificateTimestamp,
    ) -> None:
        """The final certificate is the logged precertificate, signed, with a good SCT.

        The SCT is checked as verifiers check it: over the TBS they rebuild
        from the final certificate (cryptography's ``tbs_precertificate_bytes``),
        with a CT key the trusted root lists for the SCT's time. The unit
        tests also run the verifier's own embedded-SCT check on every profile.
        """
        from toolkit.services.ct.sct import precert_tbs
        from toolkit.services.ct.sct import verify_sct as sct_signature_verifies

        try:
            # cryptography rebuilds the TBS from the certificate as verifiers
            # do; the CT log's code strips the poison from the precertificate.
            tbs = cert.tbs_precertificate_bytes
            same = tbs == precert_tbs(precert.public_bytes(serialization.Encoding.DER))
        except (ValueError, FormatError):
            same = False
        if not same:
            raise _refuse(
                502,
                "ct-invalid-sct",
                "Unusable SCT",
                "the certificate's TBS without the SCT differs from the logged precertificate",
            )
        # The certificate's own signature is not checked again here: token
        # signers verify every signature before cryptography embeds it (ADR
        # 0008), software keys sign inside cryptography itself, and the key was
        # matched to the chain's first certificate at start.
        stamp = datetime.fromtimestamp(sct.timestamp / 1000, UTC)
        logs = [
            log
            for log in self._ct_logs.get(sct.log_id, ())
            if log.valid_for.contains(stamp) and isinstance(log.key, ec.EllipticCurvePublicKey)
        ]
        if not logs:
            raise _refuse(
                502,
                "ct-invalid-sct",
                "Invalid SCT",
                f"the SCT is from CT log {sct.log_id.hex()[:16]}…, which the trusted root "
                f"does not list for {stamp.isoformat()}",
            )
        if not any(
            sct_signature_verifies(sct, log.key, self._issuer_key_hash, tbs)  # type: ignore[arg-type]
            for log in logs
        ):
            raise _refuse(
                502,
                "ct-invalid-sct",
                "Invalid SCT",
                "the CT log's SCT signature does not verify over the certificate",
            )


def _check_issuing_ca(cert: x509.Certificate) -> None:
    """The CA certificate must be a CA, allowed to sign certificates, for code signing."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise UsageError(
            f"the CA certificate lacks the {exc.oid.dotted_string} extension"
        ) from None
    if not constraints.ca:
        raise UsageError("the CA certificate is not a CA certificate (basicConstraints)")
    if not usage.key_cert_sign:
        raise UsageError("the CA certificate's keyUsage does not allow keyCertSign")
    if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise UsageError("the CA certificate's extendedKeyUsage lacks codeSigning")


def _signing_parameters(signer: Signer) -> _Signing:
    scheme = signer.scheme
    key = signer.public_key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return _Signing(None, None)
    algorithm = scheme.hash
    if isinstance(key, rsa.RSAPublicKey):
        if scheme.pss:
            assert algorithm is not None
            return _Signing(
                algorithm,
                padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH),
            )
        return _Signing(algorithm, padding.PKCS1v15())
    return _Signing(algorithm, None)


def _san(principal: Principal) -> x509.GeneralName:
    kind, value = principal.san_type, principal.san_value
    if kind == "email":
        return x509.RFC822Name(value)
    if kind == "uri":
        return x509.UniformResourceIdentifier(value)
    if kind == "username":
        return x509.OtherName(OID_OTHERNAME_USERNAME, der_utf8string(value))
    raise UsageError(f"unknown SAN type {kind!r}")


def _identity_extensions(principal: Principal) -> list[x509.UnrecognizedExtension]:
    """The issuer (.1.1 and .1.8) and the principal's extensions, in OID order."""
    values: dict[int, tuple[str, str]] = {
        1: (str(OID_ISSUER_V1.dotted_string), principal.issuer),
        8: (str(OID_ISSUER_V2.dotted_string), principal.issuer),
    }
    # Fulcio still writes the deprecated .1.2-.1.6 (raw strings) for GitHub
    # tokens, beside their .1.9-.1.22 successors; so does airseal.
    legacy: Mapping[str, str] = getattr(principal, "legacy_extensions", {})
    for dotted, value in (*legacy.items(), *principal.extensions.items()):
        arc = dotted[len(FULCIO_ARC) :] if dotted.startswith(FULCIO_ARC) else ""
        if not arc.isdigit() or int(arc) in _RESERVED_ARCS:
            raise UsageError(f"a principal may not set certificate extension {dotted!r}")
        values[int(arc)] = (dotted, value)
    return [fulcio_extension(*values[arc]) for arc in sorted(values)]
