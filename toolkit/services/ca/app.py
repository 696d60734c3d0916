"""The CA's HTTP edge: Fulcio's v2 REST API.

Routes:

* ``POST /api/v2/signingCert`` -- ``{"credentials": {"oidcIdentityToken": JWT},
  "publicKeyRequest": {"publicKey": {"algorithm", "content": PEM},
  "proofOfPossession": base64}}`` or ``{"credentials": …,
  "certificateSigningRequest": base64(PEM)}``; the token may come as
  ``Authorization: Bearer`` instead of ``credentials`` (sigstore-python sends
  it so). Answers 201 ``{"signedCertificateEmbeddedSct": {"chain":
  {"certificates": [leaf, intermediate, root]}}}`` (PEM).
* ``GET /api/v2/trustBundle`` -- ``{"chains": [{"certificates": [PEM…]}]}``.
* ``GET /api/v2/configuration`` -- the accepted issuers, as Fulcio lists them
  (``issuerUrl`` or ``wildcardIssuerUrl``, ``audience``, ``challengeClaim``,
  ``spiffeTrustDomain``).
* ``GET /healthz``.

Requests are read strictly: at most :data:`MAX_REQUEST_BYTES`, JSON without
duplicate keys, no unknown fields (``invalid-request``). Every error is an
``application/problem+json`` document; it also carries Fulcio's ``message``
member, which stock clients print. A refused request never reaches the CT
log. The POST path is a raw ASGI endpoint in front of Starlette, as in the
log, because it runs hundreds of times a second.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from toolkit.encoding import load_json
from toolkit.errors import Error, FormatError, TransportError
from toolkit.services._asgi import (
    RawPostApp,
    Receive,
    Reply,
    Scope,
    Send,
    error_handlers,
    read_body,
    send_reply,
)
from toolkit.services._http import PROBLEM_BASE, PROBLEM_JSON, ProblemError
from toolkit.services.ca.issuance import (
    CertificateAuthority,
    decode_bytes_field,
    load_csr,
    load_public_key,
    verify_proof_of_possession,
)

if TYPE_CHECKING:
    from toolkit.services.ca.oidc import IssuerConfig, Principal

__all__ = [
    "CONFIGURATION_PATH",
    "MAX_REQUEST_BYTES",
    "SIGNING_CERT_PATH",
    "TRUST_BUNDLE_PATH",
    "TokenVerifying",
    "create_app",
    "issuer_configuration",
]

SIGNING_CERT_PATH: Final = "/api/v2/signingCert"
TRUST_BUNDLE_PATH: Final = "/api/v2/trustBundle"
CONFIGURATION_PATH: Final = "/api/v2/configuration"
#: Largest request body: a 16 KiB token plus an RSA-8192 CSR fit well below it.
MAX_REQUEST_BYTES: Final = 64 * 1024

_TOP_FIELDS: Final = frozenset({"credentials", "publicKeyRequest", "certificateSigningRequest"})
_CREDENTIAL_FIELDS: Final = frozenset({"oidcIdentityToken"})
_KEY_REQUEST_FIELDS: Final = frozenset({"publicKey", "proofOfPossession"})
_PUBLIC_KEY_FIELDS: Final = frozenset({"algorithm", "content"})

_log = logging.getLogger("airseal.ca")

_Reply = Reply


class TokenVerifying(Protocol):
    """What the app needs of :class:`~toolkit.services.ca.oidc.TokenVerifier`."""

    async def verify(self, token: str, now: datetime) -> Principal:
        """The principal of a valid token; raises a ProblemError otherwise."""
        ...


def _problem_bytes(status: int, slug: str, title: str, detail: str) -> bytes:
    return json.dumps(
        {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
            # Fulcio's (grpc-gateway) error member; sigstore-python shows it.
            "message": detail,
        },
        ensure_ascii=False,
    ).encode("utf-8")


def _problem_reply(error: ProblemError) -> _Reply:
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()
    ]
    return (
        error.status,
        headers,
        _problem_bytes(error.status, error.slug, error.title, error.detail),
    )


def _problem_response(error: ProblemError) -> Response:
    return Response(
        _problem_bytes(error.status, error.slug, error.title, error.detail),
        error.status,
        headers=error.headers,
        media_type=PROBLEM_JSON,
    )


def _invalid(detail: str) -> ProblemError:
    return ProblemError(400, "invalid-request", "Invalid request", detail)


def _fields(value: object, allowed: frozenset[str], where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _invalid(f"{where} has unknown field {unknown[0][:40]!r}")
    return value


class SigningRequest:
    """A parsed ``signingCert`` request (shape only: nothing verified yet).

    Attributes:
        token: The identity token (from ``credentials`` or the header).
        public_key: ``publicKeyRequest.publicKey.content`` (None for a CSR).
        algorithm: ``publicKeyRequest.publicKey.algorithm``, if given.
        proof: The decoded ``proofOfPossession`` (None for a CSR).
        csr: ``certificateSigningRequest`` as sent (None for a public key).
    """

    __slots__ = ("algorithm", "csr", "proof", "public_key", "token")

    def __init__(self, body: bytes, authorization: str | None) -> None:
        try:
            document = load_json(body, what="request")
        except FormatError as exc:
            raise _invalid(exc.message) from None
        document = _fields(document, _TOP_FIELDS, "request")
        token: str | None = None
        if "credentials" in document:
            credentials = _fields(document["credentials"], _CREDENTIAL_FIELDS, "credentials")
            value = credentials.get("oidcIdentityToken")
            if not isinstance(value, str) or not value:
                raise _invalid("credentials.oidcIdentityToken must be a non-empty string")
            token = value
        bearer = _bearer(authorization)
        if token is not None and bearer is not None and bearer != token:
            raise _invalid("the Authorization header and credentials carry different tokens")
        token = token or bearer
        if token is None:
            raise ProblemError(
                401,
                "missing-token",
                "Missing identity token",
                "send the OIDC identity token in credentials.oidcIdentityToken "
                "or as Authorization: Bearer",
                headers={"WWW-Authenticate": "Bearer"},
            )
        self.token = token
        has_key = "publicKeyRequest" in document
        has_csr = "certificateSigningRequest" in document
        if has_key == has_csr:
            raise _invalid("send exactly one of publicKeyRequest and certificateSigningRequest")
        self.public_key: str | None = None
        self.algorithm: object = None
        self.proof: bytes | None = None
        self.csr: object = None
        if has_csr:
            self.csr = document["certificateSigningRequest"]
            if not isinstance(self.csr, str) or not self.csr:
                raise _invalid("certificateSigningRequest must be a base64 string")
            return
        request = _fields(document["publicKeyRequest"], _KEY_REQUEST_FIELDS, "publicKeyRequest")
        key = _fields(request.get("publicKey"), _PUBLIC_KEY_FIELDS, "publicKeyRequest.publicKey")
        content = key.get("content")
        if not isinstance(content, str) or not content:
            raise _invalid("publicKeyRequest.publicKey.content must be PEM text")
        self.public_key = content
        self.algorithm = key.get("algorithm")
        if "proofOfPossession" not in request:
            raise _invalid("publicKeyRequest.proofOfPossession is required")
        self.proof = decode_bytes_field(
            request["proofOfPossession"], "publicKeyRequest.proofOfPossession", limit=2048
        )


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ProblemError(
            401,
            "invalid-token",
            "Invalid identity token",
            "the Authorization header is not 'Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return value.strip()


def _issued_json(chain: Sequence[str]) -> bytes:
    return json.dumps(
        {"signedCertificateEmbeddedSct": {"chain": {"certificates": list(chain)}}}
    ).encode("ascii")


class _SigningCertEndpoint:
    """``POST /api/v2/signingCert`` as a raw ASGI app."""

    def __init__(
        self,
        ca: CertificateAuthority,
        verifier: TokenVerifying,
        clock: Callable[[], datetime],
        metrics: dict[str, int],
    ) -> None:
        self._ca = ca
        self._verifier = verifier
        self._clock = clock
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, headers, body = await self._handle(scope, receive)
        except ProblemError as exc:
            self._count(exc.slug)
            status, headers, body = _problem_reply(exc)
        except Exception as exc:  # the last line of defence: a bare problem
            _log.error("internal error on signingCert: %s", type(exc).__name__)
            self._count("internal-error")
            status, headers, body = _problem_reply(
                ProblemError(500, "internal-error", "Internal error", "the CA failed unexpectedly")
            )
        await send_reply(send, (status, headers, body))

    def _count(self, slug: str) -> None:
        self._metrics[slug] = self._metrics.get(slug, 0) + 1

    async def _read(self, scope: Scope, receive: Receive) -> tuple[bytes, str | None]:
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        body = await read_body(
            scope, receive, media_type="application/json", limit=MAX_REQUEST_BYTES
        )
        return body, authorization

    async def _handle(self, scope: Scope, receive: Receive) -> _Reply:
        body, authorization = await self._read(scope, receive)
        request = SigningRequest(body, authorization)
        now = self._clock()
        try:
            principal = await self._verifier.verify(request.token, now)
        except TransportError as exc:
            raise ProblemError(
                503,
                "issuer-unavailable",
                "Issuer unavailable",
                f"the token's issuer cannot be reached: {exc.message}",
                headers={"Retry-After": "5"},
            ) from None
        if request.csr is not None:
            key = load_csr(request.csr)
        else:
            assert request.public_key is not None and request.proof is not None
            key = load_public_key(request.public_key, request.algorithm)
            verify_proof_of_possession(key, request.proof, principal.challenge)
        try:
            issued = await self._ca.issue(principal, key, now)
        except ProblemError:
            raise
        except Error as exc:
            _log.error("issuance failed: %s: %s", type(exc).__name__, exc.message)
            raise ProblemError(
                503, "issuance-failed", "Issuance failed", "the CA cannot issue now"
            ) from None
        self._count("issued")
        return 201, [(b"content-type", b"application/json")], _issued_json(issued.pem_chain())


def issuer_configuration(issuers: Sequence[IssuerConfig]) -> dict[str, Any]:
    """``GET /api/v2/configuration``: the issuers as Fulcio's ``OIDCIssuer`` messages."""
    entries: list[dict[str, Any]] = []
    for issuer in issuers:
        entry: dict[str, Any] = {
            "wildcardIssuerUrl" if issuer.meta else "issuerUrl": issuer.url,
            "audience": issuer.client_id,
            "challengeClaim": "email" if str(issuer.type) == "email" else "sub",
        }
        if issuer.spiffe_trust_domain is not None:
            entry["spiffeTrustDomain"] = issuer.spiffe_trust_domain
        entries.append(entry)
    return {"issuers": entries}


def create_app(
    ca: CertificateAuthority,
    verifier: TokenVerifying,
    issuers: Sequence[IssuerConfig],
    *,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """Build the CA's HTTP app.

    Args:
        ca: The issuing core.
        verifier: Verifies identity tokens (a
            :class:`~toolkit.services.ca.oidc.TokenVerifier`).
        issuers: The configured issuers, for ``/api/v2/configuration``.
        clock: The issuance time (default: the system clock, UTC).
    """
    metrics: dict[str, int] = {}
    signing = _SigningCertEndpoint(ca, verifier, clock or (lambda: datetime.now(UTC)), metrics)
    bundle = json.dumps({"chains": [{"certificates": ca.chain_pem()}]}).encode("ascii")
    configuration = json.dumps(issuer_configuration(issuers)).encode("utf-8")

    async def trust_bundle(request: Request) -> Response:
        return Response(bundle, media_type="application/json")

    async def config(request: Request) -> Response:
        return Response(configuration, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(
            json.dumps({"status": "ok", "issued": metrics.get("issued", 0)}),
            media_type="application/json",
            headers={"Cache-Control": "no-cache"},
        )

    return RawPostApp(
        SIGNING_CERT_PATH,
        signing,
        _log,
        routes=[
            # Only reached for other methods (405): POST never gets this far.
            Route(SIGNING_CERT_PATH, signing, methods=["POST"]),
            Route(TRUST_BUNDLE_PATH, trust_bundle, methods=["GET"]),
            Route(CONFIGURATION_PATH, config, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers=error_handlers("CA", _problem_response),
    )
