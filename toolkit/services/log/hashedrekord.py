"""Rekor v2 ``hashedrekord`` requests: strict validation and canonical entry bodies.

A client asks the log to record a signature over a digest by POSTing a
``CreateEntryRequest`` in proto3 JSON::

    {"hashedRekordRequestV002": {
        "digest": "<base64>",
        "signature": {
            "content": "<base64>",
            "verifier": {
                "x509Certificate": {"rawBytes": "<base64 DER>"},   # or "publicKey"
                "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}

:func:`parse_request` checks it the way rekor-tiles does -- the verifier must
be a certificate or a DER SubjectPublicKeyInfo matching ``keyDetails``, the
digest length must be the one the scheme's hash produces, and the signature
must verify over the digest -- and returns a :class:`HashedRekordRequest`
whose :meth:`~HashedRekordRequest.body` is the RFC 8785 canonical JSON of the
``hashedrekord`` 0.0.2 entry, byte for byte what Rekor v2 logs and what
:mod:`toolkit.verify` recomputes from a bundle.

A log in v1 mode (``parse_request(data, v1=True)``) takes the same request
but records the Rekor v1 ``hashedrekord`` 0.0.1 body instead (lowercase hex
SHA-256 digest, base64 of the PEM certificate or public key): the only entry
kind to which stock verifiers -- sigstore-python, and :mod:`toolkit.verify` --
let an integrated time and a SET lend a trusted time. 0.0.1 bodies name the
digest algorithm by a lowercase name that this log only writes for SHA-256,
so v1 mode refuses other digests.

Every rejection is a :class:`RequestError` carrying the HTTP status (400
malformed, 413 too large, 422 well formed but unacceptable) and an RFC 9457
problem ``type``; nothing else escapes, whatever the input.

Key schemes: ECDSA P-256/P-384/P-521 with SHA-256/384/512, RSA PKCS#1 v1.5
and PSS with SHA-256 for 2048/3072/4096-bit keys. Ed25519 is refused: pure
Ed25519 cannot sign a digest (rekor-tiles and sigstore-python refuse it for
hashedrekord too), and Ed25519ph, which rekor-tiles accepts, has no
implementation in ``cryptography``, so neither this log nor the airseal
verifier could check it.

Also here: :func:`set_payload`, the bytes a Rekor v1-style signed entry
timestamp covers, for the log's optional v1 mode.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from toolkit import merkle
from toolkit.encoding import b64encode, canonical_json, load_json
from toolkit.errors import Error, FormatError
from toolkit.models._base import Reader
from toolkit.models.common import HashAlgorithm, PublicKeyDetails
from toolkit.services.log.storage import NewEntry
from toolkit.services.log.tiles import MAX_ENTRY_SIZE
from toolkit.verify import _keys

__all__ = [
    "API_VERSION",
    "API_VERSION_V1",
    "KIND",
    "MAX_REQUEST_BYTES",
    "PROBLEM_BASE",
    "PROBLEM_TYPES",
    "SUPPORTED_KEY_DETAILS",
    "HashedRekordRequest",
    "RequestError",
    "parse_request",
    "set_payload",
]

#: Requests larger than this are refused before parsing (a Fulcio chain is < 4 KiB).
MAX_REQUEST_BYTES: Final = 64 * 1024
#: Prefix of every problem ``type`` URI the log answers with.
PROBLEM_BASE: Final = "https://airseal.dev/problems/"

KIND: Final = "hashedrekord"
#: The body version a Rekor v2 log records.
API_VERSION: Final = "0.0.2"
#: The body version a log in v1 mode records (Rekor v1).
API_VERSION_V1: Final = "0.0.1"

VerifierKind = Literal["x509Certificate", "publicKey"]

_P = PublicKeyDetails
#: Scheme -> the hash it applies (the digest algorithm recorded in the body).
_SCHEME_HASH: Final[dict[PublicKeyDetails, HashAlgorithm]] = {
    _P.PKIX_ECDSA_P256_SHA_256: HashAlgorithm.SHA2_256,
    _P.PKIX_ECDSA_P384_SHA_384: HashAlgorithm.SHA2_384,
    _P.PKIX_ECDSA_P521_SHA_512: HashAlgorithm.SHA2_512,
    _P.PKIX_RSA_PKCS1V15_2048_SHA256: HashAlgorithm.SHA2_256,
    _P.PKIX_RSA_PKCS1V15_3072_SHA256: HashAlgorithm.SHA2_256,
    _P.PKIX_RSA_PKCS1V15_4096_SHA256: HashAlgorithm.SHA2_256,
    _P.PKIX_RSA_PSS_2048_SHA256: HashAlgorithm.SHA2_256,
    _P.PKIX_RSA_PSS_3072_SHA256: HashAlgorithm.SHA2_256,
    _P.PKIX_RSA_PSS_4096_SHA256: HashAlgorithm.SHA2_256,
}
#: The key schemes the log accepts.
SUPPORTED_KEY_DETAILS: Final = frozenset(_SCHEME_HASH)

_EC_SCHEMES: Final = {
    "secp256r1": _P.PKIX_ECDSA_P256_SHA_256,
    "secp384r1": _P.PKIX_ECDSA_P384_SHA_384,
    "secp521r1": _P.PKIX_ECDSA_P521_SHA_512,
}
_RSA_SCHEMES: Final = {
    2048: (_P.PKIX_RSA_PKCS1V15_2048_SHA256, _P.PKIX_RSA_PSS_2048_SHA256),
    3072: (_P.PKIX_RSA_PKCS1V15_3072_SHA256, _P.PKIX_RSA_PSS_3072_SHA256),
    4096: (_P.PKIX_RSA_PKCS1V15_4096_SHA256, _P.PKIX_RSA_PSS_4096_SHA256),
}
_ED25519_SCHEMES: Final = frozenset({_P.PKIX_ED25519, _P.PKIX_ED25519_PH})

#: Longest detail a problem document carries (details quote client input).
_MAX_DETAIL: Final = 300


class RequestError(Error):
    """A request the log refuses, as an RFC 9457 problem.

    Attributes:
        status: The HTTP status: 400 malformed, 413 too large, 422 unacceptable.
        type: The problem type URI, ``https://airseal.dev/problems/<slug>``.
        title: A short, fixed summary of the problem type.
        detail: One line about this request (never a secret: requests carry none).
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, status: int, slug: str, title: str, detail: str) -> None:
        detail = " ".join(detail.split())
        if len(detail) > _MAX_DETAIL:
            detail = detail[: _MAX_DETAIL - 1] + "…"
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.type = PROBLEM_BASE + slug
        self.title = title
        self.detail = detail

    @property
    def code(self) -> str:
        """The problem slug, e.g. ``invalid-signature``."""
        return self.slug

    def to_problem(self) -> dict[str, Any]:
        """The ``application/problem+json`` document for this error."""
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }

    def __repr__(self) -> str:
        return f"RequestError({self.status}, {self.slug!r}, {self.detail!r})"


#: Every problem type the log's request parser answers with: slug -> (status, title).
PROBLEM_TYPES: Final[dict[str, tuple[int, str]]] = {
    "request-too-large": (413, "Request too large"),
    "malformed-json": (400, "Malformed JSON"),
    "invalid-request": (400, "Invalid request"),
    "unsupported-entry-type": (422, "Unsupported entry type"),
    "unsupported-key": (422, "Unsupported key"),
    "key-mismatch": (422, "Key details do not match the key"),
    "invalid-certificate": (422, "Invalid certificate"),
    "invalid-public-key": (422, "Invalid public key"),
    "invalid-digest": (422, "Invalid digest"),
    "unsupported-digest": (422, "Unsupported digest algorithm"),
    "invalid-signature": (422, "Invalid signature"),
}


def _problem(slug: str, detail: str) -> RequestError:
    # One table entry per slug, so each problem type has one status and title.
    status, title = PROBLEM_TYPES[slug]
    return RequestError(status, slug, title, detail)


@dataclass(frozen=True)
class HashedRekordRequest:
    """A validated ``hashedRekordRequestV002`` whose signature verified.

    Attributes:
        digest: The signed digest.
        algorithm: Its hash algorithm (implied by ``key_details``).
        signature: The signature over the digest (DER for ECDSA).
        verifier_kind: ``"x509Certificate"`` or ``"publicKey"``.
        raw_bytes: The certificate (DER) or the public key (DER SPKI), verbatim.
        key_details: The key scheme.
        v1: Record the Rekor v1 ``hashedrekord`` 0.0.1 body instead of the
            0.0.2 one (only for SHA-256 digests).

    Raises:
        ValueError: ``v1`` with a digest other than SHA2_256 (:func:`parse_request`
            answers that with a problem before it gets here).
    """

    digest: bytes
    algorithm: HashAlgorithm
    signature: bytes
    verifier_kind: VerifierKind
    raw_bytes: bytes
    key_details: PublicKeyDetails
    v1: bool = False
    _body: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.v1 and self.algorithm is not HashAlgorithm.SHA2_256:
            # The 0.0.1 body names the algorithm "sha256"; nothing else is written.
            raise ValueError(
                f"a hashedrekord 0.0.1 body needs a SHA2_256 digest, not {self.algorithm.value}"
            )
        # Computed once: the log needs the body for the size check, the
        # identity hash and the entry itself.
        object.__setattr__(self, "_body", self._encode_v1() if self.v1 else self._encode())

    @property
    def api_version(self) -> str:
        """The ``hashedrekord`` version of :meth:`body`: ``0.0.1`` (v1) or ``0.0.2``."""
        return API_VERSION_V1 if self.v1 else API_VERSION

    def body(self) -> bytes:
        """The RFC 8785 canonical JSON of the entry this log records (the leaf data).

        ``hashedrekord`` 0.0.2, or 0.0.1 when :attr:`v1` is set.
        """
        return self._body

    def _encode_v1(self) -> bytes:
        # Rekor v1 records the key material as PEM (a certificate, or a PKIX
        # public key), the digest as lowercase hex: what sigstore-python's
        # _hashedrekord_from_parts and toolkit.verify rebuild from a bundle.
        if self.verifier_kind == "x509Certificate":
            pem = x509.load_der_x509_certificate(self.raw_bytes).public_bytes(
                serialization.Encoding.PEM
            )
        else:
            pem = serialization.load_der_public_key(self.raw_bytes).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return canonical_json(
            {
                "apiVersion": API_VERSION_V1,
                "kind": KIND,
                "spec": {
                    "data": {"hash": {"algorithm": "sha256", "value": self.digest.hex()}},
                    "signature": {
                        "content": b64encode(self.signature),
                        "publicKey": {"content": b64encode(pem)},
                    },
                },
            }
        )

    def _encode(self) -> bytes:
        return canonical_json(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "spec": {
                    "hashedRekordV002": {
                        "data": {
                            "algorithm": self.algorithm.value,
                            "digest": b64encode(self.digest),
                        },
                        "signature": {
                            "content": b64encode(self.signature),
                            "verifier": {
                                "keyDetails": self.key_details.value,
                                self.verifier_kind: {"rawBytes": b64encode(self.raw_bytes)},
                            },
                        },
                    }
                },
            }
        )

    def entry(self) -> NewEntry:
        """The entry to sequence; its identity is the Merkle leaf hash of the body."""
        body = self.body()
        return NewEntry(identity=merkle.leaf_hash(body), body=body)


def parse_request(data: bytes, *, v1: bool = False) -> HashedRekordRequest:
    """Validate a ``CreateEntryRequest`` holding a ``hashedRekordRequestV002``.

    Proto3 JSON rules as everywhere in airseal (docs/formats/bundle.md):
    duplicate keys and unknown fields are errors, bytes are canonical padded
    base64, lowerCamelCase or snake_case field names, ``null`` means unset.

    Args:
        data: The request body.
        v1: The log is in v1 mode: the entry is a ``hashedrekord`` 0.0.1 body,
            so only SHA-256 digests are accepted.

    Returns:
        The request, with its signature verified.

    Raises:
        RequestError: Why the request is refused (status, problem type, detail).
    """
    if len(data) > MAX_REQUEST_BYTES:
        raise _problem(
            "request-too-large", f"request is {len(data)} bytes, the limit is {MAX_REQUEST_BYTES}"
        )
    try:
        document = load_json(data, what="request")
    except FormatError as exc:
        raise _problem("malformed-json", exc.message) from None
    try:
        digest, content, kind, raw, details_name = _read_fields(document)
    except FormatError as exc:
        raise _problem("invalid-request", exc.message) from None
    details = _key_details(details_name)
    algorithm = _SCHEME_HASH[details]
    if len(digest) != algorithm.digest_size:
        raise _problem(
            "invalid-digest",
            f"digest is {len(digest)} bytes, but {details.value} signs "
            f"{algorithm.value} digests of {algorithm.digest_size} bytes",
        )
    checked = _check_key(_load_key(kind, raw), details)
    if v1 and algorithm is not HashAlgorithm.SHA2_256:
        raise _problem(
            "unsupported-digest",
            f"this log records hashedrekord 0.0.1 entries, which it writes for SHA2_256 "
            f"digests only; {details.value} signs {algorithm.value} digests",
        )
    request = HashedRekordRequest(
        digest=digest,
        algorithm=algorithm,
        signature=content,
        verifier_kind=kind,
        raw_bytes=raw,
        key_details=details,
        v1=v1,
    )
    if len(request.body()) > MAX_ENTRY_SIZE:
        # C2SP entry bundles prefix each entry with a uint16 length.
        raise _problem(
            "request-too-large",
            f"the entry would be {len(request.body())} bytes, the limit is {MAX_ENTRY_SIZE}",
        )
    try:
        ok = _keys.verify_digest(checked, content, digest, algorithm, pss=_keys.is_pss(details))
    except (_keys.KeySchemeError, ValueError):  # pragma: no cover - schemes are pre-checked
        ok = False
    if not ok:
        raise _problem(
            "invalid-signature", f"signature does not verify over the digest with the {kind} key"
        )
    return request


def _read_fields(document: Any) -> tuple[bytes, bytes, VerifierKind, bytes, str]:
    """Pull the fields out of the request, rejecting anything else (FormatError)."""
    top = Reader(document, "")
    request = top.opt_message("hashedRekordRequestV002", lambda value, path: value)
    dsse = top.opt_message("dsseRequestV002", lambda value, path: value)
    top.finish()
    if dsse is not None:
        if request is not None:
            raise FormatError("set exactly one of hashedRekordRequestV002 and dsseRequestV002")
        raise _problem(
            "unsupported-entry-type", "this log records hashedRekordRequestV002 entries only"
        )
    if request is None:
        raise FormatError("hashedRekordRequestV002 is missing")
    r = Reader(request, "hashedRekordRequestV002")
    digest = r.bytes_("digest", required=True)
    signature = r.message("signature", _Signature.read)
    r.finish()
    if not digest:
        raise FormatError("is empty", path=r.sub("digest"))
    return digest, signature.content, signature.kind, signature.raw, signature.details


@dataclass(frozen=True)
class _Signature:
    content: bytes
    kind: VerifierKind
    raw: bytes
    details: str

    @classmethod
    def read(cls, value: Any, path: str) -> _Signature:
        r = Reader(value, path)
        content = r.bytes_("content", required=True)
        if not content:
            raise FormatError("is empty", path=r.sub("content"))
        kind, raw, details = r.message("verifier", _read_verifier)
        r.finish()
        return cls(content, kind, raw, details)


def _read_verifier(value: Any, path: str) -> tuple[VerifierKind, bytes, str]:
    r = Reader(value, path)
    cert = r.opt_message("x509Certificate", _raw_bytes)
    key = r.opt_message("publicKey", _raw_bytes)
    details = r.string("keyDetails")
    r.finish()
    if cert is not None and key is not None:
        raise FormatError("set exactly one of x509Certificate and publicKey, not both", path=path)
    if not details:
        raise FormatError("required field is missing", path=r.sub("keyDetails"))
    if cert is not None:
        return "x509Certificate", cert, details
    if key is not None:
        return "publicKey", key, details
    raise FormatError("set one of x509Certificate and publicKey", path=path)


def _raw_bytes(value: Any, path: str) -> bytes:
    r = Reader(value, path)
    raw = r.bytes_("rawBytes", required=True)
    r.finish()
    if not raw:
        raise FormatError("is empty", path=r.sub("rawBytes"))
    return raw


def _key_details(name: str) -> PublicKeyDetails:
    try:
        details = PublicKeyDetails(name)
    except ValueError:
        raise _problem(
            "invalid-request",
            f"signature.verifier.keyDetails: unknown PublicKeyDetails value {name[:60]!r}",
        ) from None
    if details in _ED25519_SCHEMES:
        raise _problem(
            "unsupported-key",
            f"{details.value} cannot be logged as hashedrekord: pure Ed25519 does not sign "
            "digests and Ed25519ph is not supported; use ECDSA or RSA",
        )
    if details not in _SCHEME_HASH:
        raise _problem("unsupported-key", f"key scheme {details.value} is not accepted by this log")
    return details


def _load_key(kind: VerifierKind, raw: bytes) -> PublicKeyTypes:
    if kind == "x509Certificate":
        try:
            cert = x509.load_der_x509_certificate(raw)
            # Only a certificate that re-encodes to the same bytes is logged:
            # the verifier compares the body with the bundle's DER.
            if cert.public_bytes(serialization.Encoding.DER) != raw:
                raise _problem("invalid-certificate", "certificate is not in canonical DER")
            return cert.public_key()
        except RequestError:
            raise
        except UnsupportedAlgorithm as exc:
            raise _problem("unsupported-key", f"certificate key: {exc}") from None
        except (ValueError, TypeError) as exc:
            raise _problem(
                "invalid-certificate", f"x509Certificate is not a DER certificate: {exc}"
            ) from None
    try:
        key = serialization.load_der_public_key(raw)
    except UnsupportedAlgorithm as exc:
        raise _problem("unsupported-key", f"public key: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise _problem(
            "invalid-public-key", f"publicKey is not a DER SubjectPublicKeyInfo: {exc}"
        ) from None
    if _keys.spki_der(key) != raw:
        raise _problem(
            "invalid-public-key", "publicKey is not a canonical DER SubjectPublicKeyInfo"
        )
    return key


def _check_key(key: PublicKeyTypes, details: PublicKeyDetails) -> _keys.VerifyingKey:
    """Check that the key is one the log accepts and that ``details`` describes it."""
    allowed: tuple[PublicKeyDetails, ...]
    checked: _keys.VerifyingKey
    if isinstance(key, ec.EllipticCurvePublicKey):
        scheme = _EC_SCHEMES.get(key.curve.name)
        if scheme is None:
            raise _problem("unsupported-key", f"ECDSA curve {key.curve.name} is not accepted")
        allowed, checked = (scheme,), key
        described = f"an ECDSA {key.curve.name} key"
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _keys.MIN_RSA_BITS:
            raise _problem(
                "unsupported-key",
                f"RSA key of {key.key_size} bits is too small (at least {_keys.MIN_RSA_BITS})",
            )
        schemes = _RSA_SCHEMES.get(key.key_size)
        if schemes is None:
            raise _problem("unsupported-key", f"RSA keys of {key.key_size} bits have no key scheme")
        allowed, checked = schemes, key
        described = f"an RSA-{key.key_size} key"
    else:
        raise _problem(
            "unsupported-key", f"{type(key).__name__.removeprefix('_')} keys are not accepted"
        )
    if details not in allowed:
        raise _problem("key-mismatch", f"keyDetails is {details.value}, but the key is {described}")
    return checked


def set_payload(body: bytes, integrated_time: int, log_id: bytes, log_index: int) -> bytes:
    """The bytes a Rekor v1-style signed entry timestamp (SET) signs.

    RFC 8785 JSON of ``{"body": base64(body), "integratedTime": seconds,
    "logID": lowercase hex, "logIndex": index}``, exactly what
    :mod:`toolkit.verify` and sigstore-python check; the log signs it with
    ECDSA-SHA256.

    Args:
        body: The canonicalized entry body.
        integrated_time: Seconds since the epoch.
        log_id: The 32-byte log id.
        log_index: The entry's index.

    Raises:
        ValueError: A negative number, or one beyond 2^53 (not exact in RFC 8785).
    """
    if not 0 <= integrated_time <= 2**53 or not 0 <= log_index <= 2**53:
        raise ValueError("integrated time and log index must lie in [0, 2^53]")
    return canonical_json(
        {
            "body": binascii.b2a_base64(body, newline=False).decode("ascii"),
            "integratedTime": integrated_time,
            "logID": log_id.hex(),
            "logIndex": log_index,
        }
    )
