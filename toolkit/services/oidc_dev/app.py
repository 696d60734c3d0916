"""DEVELOPMENT ONLY: the development OIDC issuer's HTTP edge.

Routes:

* ``GET /.well-known/openid-configuration`` -- the discovery document;
* ``GET /jwks`` -- the JWK Set;
* ``POST /token`` -- a token for the requested identity. JSON body
  ``{"identity": "...", "audience"?: str, "lifetime"?: int, "claims"?: {...}}``,
  or ``application/x-www-form-urlencoded`` with ``identity`` (and optional
  ``audience`` or ``client_id``, ``lifetime``; ``grant_type`` and ``scope``
  are ignored). Answers ``{"access_token", "id_token", "token_type",
  "expires_in"}`` (both tokens are the same ID token).

Every response carries ``X-Airseal-Development-Only: true``; every error is an
``application/problem+json`` document (4xx for bad requests, never a
traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from toolkit.encoding import load_json
from toolkit.errors import FormatError, UsageError
from toolkit.services._http import ProblemError, problem
from toolkit.services.oidc_dev.issuer import DevIssuer

__all__ = ["DEV_HEADER", "MAX_BODY_BYTES", "create_app"]

#: The header every response of the development issuer carries.
DEV_HEADER: Final = "X-Airseal-Development-Only"
#: Largest ``POST /token`` body read.
MAX_BODY_BYTES: Final = 64 * 1024
_JSON_FIELDS: Final = frozenset({"identity", "audience", "lifetime", "claims"})
_FORM_FIELDS: Final = frozenset(
    {"identity", "audience", "client_id", "lifetime", "grant_type", "scope"}
)

_log = logging.getLogger("airseal.oidc_dev")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _bad(detail: str) -> ProblemError:
    return ProblemError(400, "bad-token-request", "The token request is malformed", detail)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise ProblemError(
            413, "request-too-large", "The request is too large", f"over {MAX_BODY_BYTES} bytes"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ProblemError(
                413, "request-too-large", "The request is too large", f"over {MAX_BODY_BYTES} bytes"
            )
    return bytes(body)


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        document = load_json(body, what="token request")
    except FormatError as exc:
        raise _bad(exc.message) from None
    if not isinstance(document, dict):
        raise _bad("the token request must be a JSON object")
    unknown = sorted(set(document) - _JSON_FIELDS)
    if unknown:
        raise _bad(f"unknown field {unknown[0][:40]!r}")
    request: dict[str, Any] = {"identity": document.get("identity")}
    if "audience" in document:
        request["audience"] = document["audience"]
    if "lifetime" in document:
        request["lifetime"] = document["lifetime"]
    if "claims" in document:
        claims = document["claims"]
        if not isinstance(claims, dict):
            raise _bad("claims must be a JSON object")
        request["claims"] = claims
    return request


def _parse_form(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=16,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise _bad("the token request is not a valid form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name not in _FORM_FIELDS:
            raise _bad(f"unknown field {name[:40]!r}")
        if name in fields:
            raise _bad(f"field {name!r} given twice")
        fields[name] = value
    request: dict[str, Any] = {"identity": fields.get("identity")}
    audience = fields.get("audience", fields.get("client_id"))
    if audience is not None:
        request["audience"] = audience
    if "lifetime" in fields:
        text = fields["lifetime"]
        if not text.isdigit() or len(text) > 6:
            raise _bad("lifetime must be a number of seconds")
        request["lifetime"] = int(text)
    return request


def create_app(issuer: DevIssuer) -> Starlette:
    """The development issuer's Starlette app (wrapped to label every response)."""

    async def discovery(request: Request) -> Response:
        return JSONResponse(issuer.discovery(), headers={"Cache-Control": "max-age=60"})

    async def jwks(request: Request) -> Response:
        return JSONResponse(issuer.jwks(), headers={"Cache-Control": "max-age=60"})

    async def token(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in ("application/json", "application/x-www-form-urlencoded"):
            raise ProblemError(
                415,
                "unsupported-media-type",
                "The request's media type is not supported",
                "send application/json or application/x-www-form-urlencoded",
            )
        body = await _read_body(request)
        fields = _parse_json(body) if media_type == "application/json" else _parse_form(body)
        identity = fields.pop("identity")
        if not isinstance(identity, str) or not identity:
            raise _bad("identity is required (a non-empty string)")
        lifetime = fields.get("lifetime", 600)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int):
            raise _bad("lifetime must be an integer number of seconds")
        try:
            # The edge owns the clock: the core takes the time as a parameter.
            jwt = issuer.token(identity, now=datetime.now(UTC), **fields)
        except UsageError as exc:
            raise _bad(exc.message) from None
        return JSONResponse(
            {
                "access_token": jwt,
                "id_token": jwt,
                "token_type": "Bearer",
                "expires_in": lifetime,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def problem_handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return exc.response()

    async def http_handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return problem(
                405, "method-not-allowed", "Method not allowed", f"{request.method} is not allowed"
            )
        return problem(
            exc.status_code, "not-found", "Not found", "no such endpoint on the development issuer"
        )

    async def error_handler(request: Request, exc: Exception) -> Response:
        _log.error("oidc-dev request failed: %s", type(exc).__name__)
        return problem(500, "internal-error", "Internal error", "the request failed")

    app = Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
            Route("/jwks", jwks, methods=["GET"]),
            Route("/token", token, methods=["POST"]),
        ],
        exception_handlers={
            ProblemError: problem_handler,
            HTTPException: http_handler,
            Exception: error_handler,
        },
    )
    app.add_middleware(_DevLabel)
    return app


class _DevLabel:
    """ASGI middleware: adds the development-only header to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((DEV_HEADER.lower().encode("latin-1"), b"true"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, labelled)
