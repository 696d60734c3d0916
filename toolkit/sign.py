"""The signing client: token → key → certificate → signature → timestamp → log → bundle.

A thin I/O shell (:class:`SigningClient`) over pure steps that build requests
and check answers. The flow, for a keyless signature (DESIGN.md §1):

1. an ephemeral P-256 key signs the token's challenge claim (``email`` for
   email identities, ``sub`` otherwise) as proof of possession, and the CA
   (Fulcio v2 ``POST /api/v2/signingCert``, ``publicKeyRequest``) answers with
   a short-lived certificate chain;
2. the chain is checked against the trusted root before the key is used: it
   must chain to a trusted CA now, hold the submitted key, and carry one SCT
   from a trusted CT log (:func:`check_issued_chain`);
3. the key signs the artifact (ECDSA-SHA256 over the artifact, i.e. over its
   prehashed digest) or, with DSSE, an in-toto statement naming the artifact,
   as a DSSE envelope over its PAE;
4. an RFC 3161 TSA timestamps the signature bytes (SHA-256 imprint, nonce,
   certReq); the reply's status, imprint and nonce are checked;
5. the Rekor v2 log (``POST /api/v2/log/entries``) records a
   ``hashedRekordRequestV002``: the artifact digest for a message signature,
   SHA-256 of the PAE for a DSSE envelope (rekor-v2-spec §6.1.4: the encoding
   sigstore-python and :mod:`toolkit.verify` accept for DSSE in Rekor v2);
6. the pieces become a Sigstore bundle v0.3, which :class:`toolkit.verify.Verifier`
   verifies against the trusted root and the expected identity before it is
   written atomically (temp file + rename): a failure leaves no file.

A managed key (``pkcs11:`` or ``file:`` URI) skips steps 1-2; its bundle
carries a ``publicKey`` hint (hex SHA-256 of the SPKI) and is logged with a
``publicKey`` verifier and timestamped all the same.

Errors: an unreachable or failing service is a :class:`~toolkit.errors.TransportError`
(exit 3); a 4xx refusal is a :class:`ServiceRefusedError` naming the problem
slug and detail (exit 2); answers that do not check out are
:class:`~toolkit.errors.VerificationError` (exit 1). No message ever contains
the identity token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.verification import PolicyBuilder
from cryptography.x509.verification import VerificationError as X509VerificationError

from toolkit import _der
from toolkit._fs import write_durably
from toolkit.encoding import b64encode, load_json
from toolkit.errors import Check, Error, FormatError, TransportError, UsageError, VerificationError
from toolkit.models.bundle import (
    Bundle,
    BundleMediaType,
    TimestampVerificationData,
    VerificationMaterial,
)
from toolkit.models.common import (
    HashAlgorithm,
    HashOutput,
    MessageSignature,
    PublicKeyIdentifier,
    RFC3161SignedTimestamp,
    X509Certificate,
)
from toolkit.models.dsse import Envelope, Signature, pae
from toolkit.models.rekor import TransparencyLogEntry
from toolkit.models.signing_config import ClientTrustConfig, Service, SigningConfig
from toolkit.models.trustroot import TrustedRoot

if TYPE_CHECKING:
    import httpx

    from toolkit.signing import Signer
    from toolkit.verify import VerificationResult

__all__ = [
    "DEFAULT_PAYLOAD_TYPE",
    "IN_TOTO_STATEMENT_V1",
    "Endpoints",
    "ServiceRefusedError",
    "SigningClient",
    "SigningResult",
    "TokenClaims",
    "assemble_bundle",
    "check_issued_chain",
    "endpoints_from_signing_config",
    "fetch_dev_token",
    "hashedrekord_request",
    "in_toto_statement",
    "load_trust_config",
    "parse_issued_chain",
    "parse_log_entry",
    "read_token",
    "signing_cert_request",
    "timestamp_request",
    "check_payload_type",
    "check_timestamp_reply",
    "write_bundle",
]

DEFAULT_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_V1: Final = "https://in-toto.io/Statement/v1"
#: The predicate type of the statements ``airseal sign --dsse`` makes: "this
#: identity signed this artifact", with an empty predicate.
DEFAULT_PREDICATE_TYPE: Final = "https://airseal.dev/attestation/signed-artifact/v1"

SIGNING_CERT_PATH: Final = "/api/v2/signingCert"
LOG_ENTRIES_PATH: Final = "/api/v2/log/entries"
TIMESTAMP_PATH: Final = "/api/v1/timestamp"
#: Largest answer read from any service (a chain or log entry is a few KiB).
MAX_ANSWER_BYTES: Final = 1 << 20
#: Largest identity token accepted (the CA's own limit).
MAX_TOKEN_BYTES: Final = 16384
DEFAULT_TIMEOUT: Final = 30.0

_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_SHA256_OID: Final = bytes.fromhex("0609608648016503040201")
_P256_DETAILS: Final = "PKIX_ECDSA_P256_SHA_256"
_HASH_BY_NAME: Final = {
    "sha256": HashAlgorithm.SHA2_256,
    "sha384": HashAlgorithm.SHA2_384,
    "sha512": HashAlgorithm.SHA2_512,
}

ServiceKind = Literal["ca", "tsa", "log", "oidc-dev"]
#: How messages name each service.
_NAMES: Final[dict[str, str]] = {
    "ca": "CA",
    "tsa": "TSA",
    "log": "log",
    "oidc-dev": "oidc-dev issuer",
}


class ServiceRefusedError(Error):
    """A service understood the request and refused it (an HTTP 4xx answer).

    Attributes:
        service: Which service refused (``ca``, ``tsa``, ``log``, ``oidc-dev``).
        status: The HTTP status.
        slug: The last path segment of the problem ``type`` (e.g. ``invalid-token``).
        detail: The problem document's detail.
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, service: str, status: int, slug: str, detail: str) -> None:
        name = _NAMES.get(service, service)
        super().__init__(f"the {name} refused the request ({status} {slug}): {detail}")
        self.service = service
        self.status = status
        self.slug = slug
        self.detail = detail


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Endpoints:
    """The service URLs one signature uses.

    Attributes:
        ca: Base URL of the CA (None for managed keys).
        tsa: Full URL of the TSA's timestamp endpoint.
        log: Base URL of the Rekor v2 log.
    """

    ca: str | None
    tsa: str
    log: str

    def __post_init__(self) -> None:
        for name, url in (("ca", self.ca), ("tsa", self.tsa), ("log", self.log)):
            if url is not None:
                _check_url(url, name)

    @classmethod
    def explicit(cls, ca: str | None, tsa: str, log: str) -> Endpoints:
        """Endpoints from URLs given by hand (a TSA base URL gets its path appended)."""
        return cls(ca=ca.rstrip("/") if ca else None, tsa=tsa_endpoint(tsa), log=log.rstrip("/"))

    def replace(
        self, *, ca: str | None = None, tsa: str | None = None, log: str | None = None
    ) -> Endpoints:
        """These endpoints with some URLs overridden (None keeps the current one)."""
        return Endpoints(
            ca=ca.rstrip("/") if ca else self.ca,
            tsa=tsa_endpoint(tsa) if tsa else self.tsa,
            log=log.rstrip("/") if log else self.log,
        )


def _check_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"the {what} URL {url[:100]!r} is not an http(s) URL")


def tsa_endpoint(url: str) -> str:
    """The timestamp URL for a TSA URL: kept when it names a path, else ``/api/v1/timestamp``.

    Signing configs list the full endpoint (sigstore-python POSTs to it as
    is); a bare ``http://host:port`` given by hand means the standard path.
    """
    url = url.rstrip("/")
    return url if urlsplit(url).path else url + TIMESTAMP_PATH


def _first_valid(services: Sequence[Service], versions: Sequence[int], now: datetime) -> str | None:
    for service in services:
        if service.major_api_version in versions and service.valid_for.contains(now):
            return service.url
    return None


def endpoints_from_signing_config(
    config: SigningConfig, now: datetime, *, need_ca: bool = True
) -> Endpoints:
    """Pick the first service of each kind valid at ``now`` that this client speaks.

    CA: Fulcio v2 REST (``majorApiVersion`` 1); log: Rekor v2 only (this client
    records ``hashedRekordRequestV002`` entries); TSA: version 1.

    Raises:
        UsageError: No usable service of a needed kind.
    """
    ca = _first_valid(config.ca_urls, (1,), now)
    log = _first_valid(config.rekor_tlog_urls, (2,), now)
    tsa = _first_valid(config.tsa_urls, (1,), now)
    missing = [
        name
        for name, url in (("CA", ca if need_ca else ""), ("Rekor v2 log", log), ("TSA", tsa))
        if url is None
    ]
    if missing:
        raise UsageError(
            f"the signing config lists no {', '.join(missing)} valid at {now.isoformat()}",
            hint="give the service URLs with --ca, --tsa and --log",
        )
    assert log is not None and tsa is not None
    return Endpoints(ca=ca.rstrip("/") if ca else None, tsa=tsa.rstrip("/"), log=log.rstrip("/"))


def load_trust_config(data: bytes) -> tuple[TrustedRoot | None, SigningConfig]:
    """Read a ClientTrustConfig (trusted root + signing config) or a bare SigningConfig v0.2.

    Returns:
        The trusted root (None for a bare signing config) and the signing config.

    Raises:
        FormatError: Neither document, or malformed.
    """
    value = load_json(data, what="trust config")
    if isinstance(value, dict) and "trustedRoot" in value:
        config = ClientTrustConfig.from_dict(value)
        return config.trusted_root, config.signing_config
    return None, SigningConfig.from_dict(value)


# --------------------------------------------------------------------------- token


@dataclass(frozen=True)
class TokenClaims:
    """What the client reads from an identity token (unverified: the CA verifies it).

    Attributes:
        issuer: ``iss``.
        subject: ``sub``.
        email: ``email`` if present.
        expires: ``exp`` (seconds since the epoch), if present.
    """

    issuer: str
    subject: str
    email: str | None = None
    expires: int | None = None

    @property
    def challenge(self) -> str:
        """What the proof of possession signs: the email if there is one, else ``sub``.

        The CA signs the challenge claim of the issuer's type; for an email
        issuer that is ``email``, for every other type ``sub``. A token with an
        email from a non-email issuer would need ``sub``: the caller can
        override with ``challenge=`` where it knows better.
        """
        return self.email if self.email else self.subject

    @property
    def identity(self) -> str:
        """The identity the certificate is expected to name."""
        return self.challenge


def read_token(token: str) -> TokenClaims:
    """Decode a JWT's claims without verifying it (the CA does that).

    Raises:
        UsageError: Not a JWT, or without ``iss``/``sub`` (never quoting the token).
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise UsageError(f"the identity token is longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise UsageError("the identity token is not a JWT (header.payload.signature)")
    try:
        if not _BASE64URL.fullmatch(parts[1]):
            raise ValueError
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    except ValueError:
        raise UsageError("the identity token's payload is not base64url") from None
    try:
        claims = json.loads(raw)
    except ValueError:
        raise UsageError("the identity token's payload is not JSON") from None
    if not isinstance(claims, dict):
        raise UsageError("the identity token's payload is not a JSON object")
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer:
        raise UsageError("the identity token has no 'iss' claim")
    if not isinstance(subject, str) or not subject:
        raise UsageError("the identity token has no 'sub' claim")
    email = claims.get("email")
    expires = claims.get("exp")
    return TokenClaims(
        issuer=issuer,
        subject=subject,
        email=email if isinstance(email, str) and email else None,
        expires=expires if isinstance(expires, int) and not isinstance(expires, bool) else None,
    )


# --------------------------------------------------------------------------- CA


def signing_cert_request(
    token: str, key: ec.EllipticCurvePrivateKey, challenge: str
) -> dict[str, Any]:
    """The Fulcio v2 ``publicKeyRequest`` for ``key``, proving possession over ``challenge``."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    proof = key.sign(challenge.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    return {
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": pem.decode("ascii")},
            "proofOfPossession": b64encode(proof),
        },
    }


def parse_issued_chain(document: Any) -> list[x509.Certificate]:
    """The certificates (leaf first) of a ``signingCert`` answer.

    Raises:
        TransportError: The answer is not a chain of PEM certificates.
    """
    try:
        pems = document["signedCertificateEmbeddedSct"]["chain"]["certificates"]
        if not isinstance(pems, list) or not pems or len(pems) > 16:
            raise TypeError
        chain = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in pems]
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeEncodeError):
        raise TransportError(
            "the CA answered without a signedCertificateEmbeddedSct chain of PEM certificates"
        ) from None
    return chain


def check_issued_chain(
    chain: Sequence[x509.Certificate],
    public_key: ec.EllipticCurvePublicKey,
    trusted_root: TrustedRoot,
    now: datetime,
) -> x509.Certificate:
    """Check a fresh chain before signing with its key; returns the leaf.

    The leaf must hold ``public_key``, chain to a CA of the trusted root valid
    at ``now`` (``cryptography``'s path builder with the verifier's Fulcio
    policy), and carry exactly one SCT verified against the root's CT keys.

    Raises:
        VerificationError: ``key.mismatch``, ``cert.chain`` or ``cert.sct``.
    """
    from toolkit.verify import _x509
    from toolkit.verify._trust import TrustMaterial
    from toolkit.verify.verifier import _CA_POLICY, _EE_POLICY

    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(serialization.Encoding.DER, spki) != public_key.public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise VerificationError(
            Check.KEY_MISMATCH, "the CA's certificate does not hold the submitted key"
        )
    trust = TrustMaterial(trusted_root)
    store = trust.store_at(now)
    if store is None:
        raise VerificationError(
            Check.CERT_CHAIN, f"no certificate authority in the trusted root is valid at {now}"
        )
    builder = (
        PolicyBuilder()
        .store(store)
        .time(now)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
    )
    try:
        verified = builder.build_client_verifier().verify(leaf, list(chain[1:])).chain
    except (X509VerificationError, x509.UnsupportedGeneralNameType, ValueError) as exc:
        raise VerificationError(
            Check.CERT_CHAIN, f"the CA's certificate does not chain to the trusted root: {exc}"
        ) from None
    _x509.verify_sct(leaf, verified, trust.ctlogs, trust.key_hashes)
    return leaf


# --------------------------------------------------------------------------- TSA


def timestamp_request(signature: bytes, nonce: int) -> bytes:
    """A DER TimeStampReq: v1, SHA-256 imprint of ``signature``, ``nonce``, certReq TRUE."""
    if nonce < 0:
        raise ValueError("the nonce must not be negative")
    algorithm = _der.tlv(0x30, _SHA256_OID + b"\x05\x00")
    imprint = _der.tlv(0x30, algorithm + _der.tlv(0x04, hashlib.sha256(signature).digest()))
    return _der.tlv(0x30, _der.integer(1) + imprint + _der.integer(nonce) + b"\x01\x01\xff")


def check_timestamp_reply(reply: bytes, signature: bytes, nonce: int) -> datetime:
    """Check a TimeStampResp answers our request; returns its genTime (not yet trusted).

    The trusted-root check of the TSA's signature happens in the bundle's
    self-verification.

    Raises:
        ServiceRefusedError: The TSA rejected the request (status in the reply).
        TransportError: Not a timestamp reply, or one for another request.
    """
    from toolkit.verify._rfc3161 import parse_timestamp_response

    try:
        stamp = parse_timestamp_response(reply)
    except VerificationError as exc:  # a well-formed rejection
        raise ServiceRefusedError("tsa", 200, "rejected", exc.detail) from None
    except FormatError as exc:
        raise TransportError(f"the TSA answered with a malformed reply: {exc.detail}") from None
    if (
        stamp.hash_algorithm != "sha256"
        or stamp.message_imprint != hashlib.sha256(signature).digest()
    ):
        raise TransportError("the TSA's timestamp is for another message imprint")
    if stamp.nonce != nonce:
        raise TransportError("the TSA's timestamp does not echo the request nonce")
    return stamp.gen_time


# --------------------------------------------------------------------------- log


def hashedrekord_request(
    digest: bytes,
    signature: bytes,
    key_details: str,
    *,
    certificate: bytes | None = None,
    public_key: bytes | None = None,
) -> dict[str, Any]:
    """A Rekor v2 ``hashedRekordRequestV002`` (verifier = DER certificate or DER SPKI)."""
    if (certificate is None) == (public_key is None):
        raise ValueError("give exactly one of certificate and public_key")
    verifier: dict[str, Any] = {"keyDetails": key_details}
    if certificate is not None:
        verifier["x509Certificate"] = {"rawBytes": b64encode(certificate)}
    else:
        assert public_key is not None
        verifier["publicKey"] = {"rawBytes": b64encode(public_key)}
    return {
        "hashedRekordRequestV002": {
            "digest": b64encode(digest),
            "signature": {"content": b64encode(signature), "verifier": verifier},
        }
    }


def parse_log_entry(document: Any) -> TransparencyLogEntry:
    """The log's answer as a bundle entry; it must carry an inclusion proof and checkpoint.

    Raises:
        TransportError: Malformed, or without the inclusion proof v0.3 bundles need.
    """
    try:
        entry = TransparencyLogEntry.from_dict(document)
    except FormatError as exc:
        raise TransportError(f"the log answered with a malformed entry: {exc.message}") from None
    if entry.inclusion_proof is None or entry.inclusion_proof.checkpoint is None:
        raise TransportError("the log answered without an inclusion proof and checkpoint")
    return entry


# --------------------------------------------------------------------------- bundle


def in_toto_statement(
    name: str,
    sha256: bytes,
    *,
    predicate_type: str = DEFAULT_PREDICATE_TYPE,
    predicate: Mapping[str, Any] | None = None,
) -> bytes:
    """An in-toto Statement v1 with one subject (``name`` + its SHA-256), as compact JSON."""
    if len(sha256) != 32:
        raise ValueError("sha256 must be 32 bytes")
    statement = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": sha256.hex()}}],
        "predicateType": predicate_type,
        "predicate": dict(predicate or {}),
    }
    return json.dumps(statement, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_payload_type(payload_type: str) -> None:
    """Refuse DSSE payload types the bundle's self-verification cannot check.

    airseal's verifier (like sigstore-python's) accepts in-toto statements
    only, and this client writes no bundle it has not verified.

    Raises:
        UsageError: Any other payload type.
    """
    if payload_type != DEFAULT_PAYLOAD_TYPE:
        raise UsageError(
            f"unsupported DSSE payload type {payload_type[:80]!r}: airseal signs and verifies "
            f"in-toto statements ({DEFAULT_PAYLOAD_TYPE})"
        )


def assemble_bundle(
    *,
    entry: TransparencyLogEntry,
    timestamp: bytes,
    certificate: bytes | None = None,
    key_hint: str | None = None,
    message_signature: MessageSignature | None = None,
    envelope: Envelope | None = None,
) -> Bundle:
    """A v0.3 bundle: one certificate or key hint, one log entry, one RFC 3161 timestamp."""
    if (certificate is None) == (key_hint is None):
        raise ValueError("give exactly one of certificate and key_hint")
    material = VerificationMaterial(
        tlog_entries=(entry,),
        certificate=X509Certificate(certificate) if certificate is not None else None,
        public_key=PublicKeyIdentifier(key_hint) if key_hint is not None else None,
        timestamp_verification_data=TimestampVerificationData((RFC3161SignedTimestamp(timestamp),)),
    )
    return Bundle(
        media_type=BundleMediaType.V0_3,
        verification_material=material,
        message_signature=message_signature,
        dsse_envelope=envelope,
    )


def write_bundle(path: Path, bundle: Bundle) -> None:
    """Write the bundle atomically (temp file, fsync, rename): never a partial file.

    Raises:
        EnvironmentSetupError: The directory cannot be written.
    """
    from toolkit.errors import EnvironmentSetupError

    try:
        write_durably(path, bundle.to_json().encode("utf-8"), 0o644)
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot write the bundle {str(path)!r}: {exc.strerror or exc}"
        ) from None


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class SigningResult:
    """A verified bundle and what the self-verification established.

    Attributes:
        bundle: The bundle.
        verification: The verifier's result (identity, log entry, verified times).
        timings: Seconds spent per step (``certificate``, ``timestamp``, ``log``,
            ``verify``), for progress output and benchmarks.
    """

    bundle: Bundle
    verification: VerificationResult
    timings: Mapping[str, float] = field(default_factory=dict)

    def summary(self, path: Path | None = None) -> dict[str, Any]:
        """The JSON object ``airseal sign --json`` prints."""
        result = self.verification
        entry = self.bundle.verification_material.tlog_entries[0]
        return {
            "ok": True,
            "bundle": str(path) if path is not None else None,
            "mediaType": self.bundle.media_type.value,
            "content": result.content,
            "identity": result.identity,
            "issuer": result.issuer,
            "keyHint": (
                self.bundle.verification_material.public_key.hint
                if self.bundle.verification_material.public_key is not None
                else None
            ),
            "log": {"url": result.log_url, "index": result.log_index, "treeSize": result.tree_size},
            "integratedTime": (
                datetime.fromtimestamp(entry.integrated_time, UTC)
                .isoformat()
                .replace("+00:00", "Z")
                if entry.integrated_time
                else None
            ),
            "timestamps": [t.to_dict() for t in result.times],
        }


Progress = Callable[[str], None]


class SigningClient:
    """Signs artifacts through one CA, TSA and log, and checks every bundle it makes.

    Args:
        trusted_root: What the bundle must verify against (and the CA chain, now).
        endpoints: The services.
        http: An httpx client to reuse (the caller closes it); default: one of
            this client's own, closed by :meth:`close`.
        timeout: Seconds per HTTP request.
        clock: The current time.
        progress: Called with one short line per step (for a terminal).
    """

    def __init__(
        self,
        trusted_root: TrustedRoot,
        endpoints: Endpoints,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Progress | None = None,
    ) -> None:
        import httpx

        from toolkit.verify import Verifier

        self.trusted_root = trusted_root
        self.endpoints = endpoints
        self._own_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._timeout = timeout
        self._clock = clock
        self._progress = progress
        self._verifier = Verifier(trusted_root)

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._own_http:
            self._http.close()

    def __enter__(self) -> SigningClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _say(self, line: str) -> None:
        if self._progress is not None:
            self._progress(line)

    # ------------------------------------------------------------------ HTTP

    def _post(
        self, service: ServiceKind, url: str, *, json_body: Any = None, content: bytes | None = None
    ) -> tuple[int, bytes]:
        import httpx

        headers = {"Accept": "application/json"}
        if content is not None:
            headers = {"Content-Type": "application/timestamp-query"}
        try:
            response = self._http.post(
                url, json=json_body, content=content, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException:
            raise TransportError(
                f"the {_NAMES[service]} at {_origin(url)} did not answer within {self._timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise TransportError(
                f"the {_NAMES[service]} at {_origin(url)} is unreachable ({type(exc).__name__})"
            ) from None
        body = response.content[: MAX_ANSWER_BYTES + 1]
        if len(body) > MAX_ANSWER_BYTES:
            raise TransportError(
                f"the {_NAMES[service]} at {_origin(url)} answered with too much data"
            )
        if 400 <= response.status_code < 500:
            slug, detail = _problem(body)
            raise ServiceRefusedError(service, response.status_code, slug, detail)
        if response.status_code >= 500:
            _, detail = _problem(body)
            raise TransportError(
                f"the {_NAMES[service]} at {_origin(url)} failed ({response.status_code}): {detail}"
            )
        return response.status_code, body

    def _post_json(self, service: ServiceKind, url: str, document: Any) -> Any:
        _, body = self._post(service, url, json_body=document)
        try:
            return load_json(body, what=f"{service} answer")
        except FormatError:
            raise TransportError(
                f"the {_NAMES[service]} at {_origin(url)} answered with non-JSON"
            ) from None

    # ------------------------------------------------------------------ steps

    def request_certificate(
        self, token: str, key: ec.EllipticCurvePrivateKey, challenge: str
    ) -> x509.Certificate:
        """Get a certificate for ``key`` and check it (chain + SCT) against the trusted root."""
        if self.endpoints.ca is None:
            raise UsageError("keyless signing needs a CA URL (--ca or a signing config)")
        document = self._post_json(
            "ca", self.endpoints.ca + SIGNING_CERT_PATH, signing_cert_request(token, key, challenge)
        )
        chain = parse_issued_chain(document)
        return check_issued_chain(chain, key.public_key(), self.trusted_root, self._clock())

    def timestamp(self, signature: bytes) -> bytes:
        """An RFC 3161 TimeStampResp over ``signature`` (status, imprint and nonce checked)."""
        nonce = secrets.randbits(63)
        _, reply = self._post(
            "tsa", self.endpoints.tsa, content=timestamp_request(signature, nonce)
        )
        check_timestamp_reply(reply, signature, nonce)
        return reply

    def log(self, request: Mapping[str, Any]) -> TransparencyLogEntry:
        """Record a hashedrekord entry; returns the entry with its inclusion proof."""
        return parse_log_entry(
            self._post_json("log", self.endpoints.log + LOG_ENTRIES_PATH, request)
        )

    # ------------------------------------------------------------------ flows

    def sign_keyless(
        self,
        artifact: bytes,
        token: str,
        *,
        dsse: bool = False,
        name: str = "artifact",
        payload_type: str = DEFAULT_PAYLOAD_TYPE,
        payload: bytes | None = None,
        challenge: str | None = None,
        expected_identity: str | None = None,
    ) -> SigningResult:
        """Sign with an ephemeral key and a certificate for the token's identity.

        Args:
            artifact: The artifact bytes.
            token: The OIDC identity token (never logged or echoed).
            dsse: Sign an in-toto statement in a DSSE envelope instead of the artifact.
            name: The statement's subject name.
            payload_type: The DSSE payload type.
            payload: A DSSE payload to sign instead of the default statement.
            challenge: The proof-of-possession claim (default: email, else sub).
            expected_identity: The SAN the certificate must name (default: the challenge).

        Returns:
            The self-verified bundle.
        """
        claims = read_token(token)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        key = ec.generate_private_key(ec.SECP256R1())
        self._say(
            f"requesting a certificate for {claims.identity} from {_origin(self.endpoints.ca)}"
        )
        leaf = self.request_certificate(token, key, challenge or claims.challenge)
        timings["certificate"] = time.perf_counter() - started
        cert_der = leaf.public_bytes(serialization.Encoding.DER)
        digest = hashlib.sha256(artifact).digest()
        message: MessageSignature | None = None
        envelope: Envelope | None = None
        if dsse:
            check_payload_type(payload_type)
            body = payload if payload is not None else in_toto_statement(name, digest)
            signed = pae(payload_type, body)
            signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
            envelope = Envelope(body, payload_type, (Signature(signature),))
            logged_digest = hashlib.sha256(signed).digest()
        else:
            signature = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
            message = MessageSignature(signature, HashOutput(HashAlgorithm.SHA2_256, digest))
            logged_digest = digest
        del key  # the ephemeral key is never needed again
        bundle = self._finish(
            signature,
            hashedrekord_request(logged_digest, signature, _P256_DETAILS, certificate=cert_der),
            timings,
            certificate=cert_der,
            message=message,
            envelope=envelope,
        )
        from toolkit.verify import IdentityPolicy

        policy = IdentityPolicy(
            issuer=claims.issuer, identity=expected_identity or challenge or claims.identity
        )
        return self._verified(bundle, artifact, policy, timings)

    def sign_with_key(
        self,
        artifact: bytes,
        signer: Signer,
        *,
        dsse: bool = False,
        name: str = "artifact",
        payload_type: str = DEFAULT_PAYLOAD_TYPE,
        payload: bytes | None = None,
    ) -> SigningResult:
        """Sign with a managed key: ``publicKey`` hint, still logged and timestamped."""
        from toolkit.signing import spki_der
        from toolkit.verify import KeyPolicy

        algorithm = signer.scheme.hash
        if algorithm is None:
            raise UsageError(
                f"a {signer.scheme.value} key cannot sign for a hashedrekord log "
                "(it needs a scheme that hashes the message: ECDSA or RSA)"
            )
        hash_algorithm = _HASH_BY_NAME.get(algorithm.name)
        if hash_algorithm is None:
            raise UsageError(f"unsupported message hash {algorithm.name}")
        hasher = _hashlib(hash_algorithm)
        timings: dict[str, float] = {}
        message: MessageSignature | None = None
        envelope: Envelope | None = None
        if dsse:
            check_payload_type(payload_type)
            sha256 = hashlib.sha256(artifact).digest()
            body = payload if payload is not None else in_toto_statement(name, sha256)
            signed = pae(payload_type, body)
            signature = signer.sign(signed)
            envelope = Envelope(body, payload_type, (Signature(signature),))
            logged_digest = hasher(signed)
        else:
            signature = signer.sign(artifact)
            logged_digest = hasher(artifact)
            message = MessageSignature(signature, HashOutput(hash_algorithm, logged_digest))
        bundle = self._finish(
            signature,
            hashedrekord_request(
                logged_digest,
                signature,
                signer.scheme.value,
                public_key=spki_der(signer.public_key),
            ),
            timings,
            key_hint=signer.key_id,
            message=message,
            envelope=envelope,
        )
        return self._verified(bundle, artifact, KeyPolicy(signer.public_key), timings)

    def _finish(
        self,
        signature: bytes,
        request: Mapping[str, Any],
        timings: dict[str, float],
        *,
        certificate: bytes | None = None,
        key_hint: str | None = None,
        message: MessageSignature | None,
        envelope: Envelope | None,
    ) -> Bundle:
        started = time.perf_counter()
        self._say(f"timestamping the signature at {_origin(self.endpoints.tsa)}")
        stamp = self.timestamp(signature)
        timings["timestamp"] = time.perf_counter() - started
        started = time.perf_counter()
        self._say(f"recording the signature in the log at {_origin(self.endpoints.log)}")
        entry = self.log(request)
        timings["log"] = time.perf_counter() - started
        return assemble_bundle(
            entry=entry,
            timestamp=stamp,
            certificate=certificate,
            key_hint=key_hint,
            message_signature=message,
            envelope=envelope,
        )

    def _verified(
        self, bundle: Bundle, artifact: bytes, policy: Any, timings: dict[str, float]
    ) -> SigningResult:
        from toolkit.verify import Artifact

        started = time.perf_counter()
        self._say("verifying the bundle against the trusted root")
        try:
            result = self._verifier.verify(
                bundle, Artifact.from_bytes(artifact), policy, now=self._clock()
            )
        except VerificationError as exc:
            raise VerificationError(
                exc.check, f"the new bundle does not verify: {exc.detail}"
            ) from None
        timings["verify"] = time.perf_counter() - started
        return SigningResult(bundle=bundle, verification=result, timings=timings)


def _hashlib(algorithm: HashAlgorithm) -> Callable[[bytes], bytes]:
    name = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}[algorithm.value]
    return lambda data: hashlib.new(name, data).digest()


def _origin(url: str | None) -> str:
    if url is None:
        return "?"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _problem(body: bytes) -> tuple[str, str]:
    """(slug, detail) of a problem document; a plain-text answer becomes its first line."""
    try:
        document = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip().splitlines()
        return "error", (text[0][:200] if text else "no detail")
    if not isinstance(document, dict):
        return "error", "no detail"
    type_ = document.get("type")
    slug = type_.rstrip("/").rsplit("/", 1)[-1] if isinstance(type_, str) and type_ else "error"
    detail = document.get("detail") or document.get("message") or document.get("title")
    return slug[:80], (str(detail)[:300] if detail else "no detail")


def fetch_dev_token(
    url: str, identity: str, *, timeout: float = DEFAULT_TIMEOUT, http: httpx.Client | None = None
) -> str:
    """A token for ``identity`` from the development issuer's ``POST /token``.

    Raises:
        TransportError: The issuer is unreachable or answers nonsense.
        ServiceRefusedError: It refused (4xx).
    """
    import httpx

    _check_url(url, "oidc-dev")
    client = http if http is not None else httpx.Client(timeout=timeout)
    try:
        response = client.post(url.rstrip("/") + "/token", json={"identity": identity})
    except httpx.HTTPError as exc:
        raise TransportError(
            f"the oidc-dev issuer at {_origin(url)} is unreachable ({type(exc).__name__})"
        ) from None
    finally:
        if http is None:
            client.close()
    if 400 <= response.status_code < 500:
        slug, detail = _problem(response.content)
        raise ServiceRefusedError("oidc-dev", response.status_code, slug, detail)
    if response.status_code != 200:
        raise TransportError(
            f"the oidc-dev issuer at {_origin(url)} failed ({response.status_code})"
        )
    try:
        token = json.loads(response.content)["id_token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise TransportError(f"the oidc-dev issuer at {_origin(url)} answered without an id_token")
    return token
