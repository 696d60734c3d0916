"""The TSA's HTTP edge (the paths of sigstore's timestamp-authority).

* ``POST /api/v1/timestamp`` -- body: a DER TimeStampReq
  (``Content-Type: application/timestamp-query``, what sigstore-python,
  cosign and ``curl --data-binary @req.tsq -H …`` send; a request without a
  Content-Type is taken as one too). Answer: ``200`` with an
  ``application/timestamp-reply`` TimeStampResp -- granted, or an RFC 3161
  rejection for a request that is not acceptable (RFC 3161 section 3.4: the
  refusal travels inside the reply). HTTP-level problems get a 4xx
  ``application/problem+json`` instead: another Content-Type (415), an empty
  body (400), a body over the request cap (413).
* ``GET /api/v1/timestamp/certchain`` -- the chain as PEM, TSA certificate
  first (``application/pem-certificate-chain``).
* ``GET /healthz``.

The POST path is a raw ASGI endpoint in front of Starlette (no routing or
middleware): it runs over a thousand times a second. Signing happens on the
event loop thread: the key is one device behind one lock, so a thread hop
would only add latency; a software key signs in tens of microseconds.
Nothing escapes as a 500 with a traceback: an unexpected exception is logged
on one line (its type only) and answered with a bare 500 problem.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from toolkit.services._http import PROBLEM_JSON, problem, problem_body
from toolkit.services.tsa.core import MAX_REQUEST_BYTES, TimestampAuthority

__all__ = ["CERTCHAIN_PATH", "QUERY_TYPE", "REPLY_TYPE", "TIMESTAMP_PATH", "create_app"]

TIMESTAMP_PATH: Final = "/api/v1/timestamp"
CERTCHAIN_PATH: Final = "/api/v1/timestamp/certchain"
QUERY_TYPE: Final = "application/timestamp-query"
REPLY_TYPE: Final = "application/timestamp-reply"

_log = logging.getLogger("airseal.tsa")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_Reply = tuple[int, bytes, bytes]  # status, content type, body

_QUERY: Final = QUERY_TYPE.encode()
_REPLY: Final = REPLY_TYPE.encode()
_PROBLEM: Final = PROBLEM_JSON.encode()


def _problem_reply(status: int, slug: str, title: str, detail: str) -> _Reply:
    return status, _PROBLEM, problem_body(status, slug, title, detail)


def _too_large(size: int) -> _Reply:
    return _problem_reply(
        413,
        "request-too-large",
        "Request too large",
        f"request is at least {size} bytes, a TimeStampReq is at most {MAX_REQUEST_BYTES}",
    )


class _TimestampEndpoint:
    """``POST /api/v1/timestamp`` as a raw ASGI app."""

    def __init__(self, tsa: TimestampAuthority, clock: Callable[[], datetime]) -> None:
        self._tsa = tsa
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, content_type, body = await self._handle(scope, receive)
        except Exception as exc:  # the last line of defence: a bare 500 problem
            _log_internal(scope, exc)
            status, content_type, body = _problem_reply(
                500, "internal-error", "Internal error", "the TSA failed unexpectedly"
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive) -> _Reply:
        content_type: bytes | None = None
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
        if content_type is not None:
            media_type = content_type.partition(b";")[0].strip().lower()
            if media_type != _QUERY:
                shown = media_type[:60].decode("latin-1")
                return _problem_reply(
                    415,
                    "unsupported-media-type",
                    "Unsupported media type",
                    f"send a DER TimeStampReq as {QUERY_TYPE}, not {shown!r}",
                )
        if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
            return _too_large(int(declared))
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return 400, _PROBLEM, b""  # the client went away; nobody reads this
            body += message.get("body", b"")
            if len(body) > MAX_REQUEST_BYTES:
                return _too_large(len(body))
            if not message.get("more_body", False):
                break
        if not body:
            return _problem_reply(
                400, "empty-request", "Empty request", f"POST a DER TimeStampReq as {QUERY_TYPE}"
            )
        return 200, _REPLY, self._tsa.respond(body, self._clock())


class _TsaApp(Starlette):
    """Starlette with the POST path in front and one-line logging of surprises."""

    def __init__(self, endpoint: _TimestampEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == TIMESTAMP_PATH or path == TIMESTAMP_PATH + "/":
                await self._endpoint(scope, receive, send)
                return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:  # already answered with a 500 problem
            _log_internal(scope, exc)


def _log_internal(scope: Scope, exc: BaseException) -> None:
    _log.error(
        "internal error on %s %s: %s", scope.get("method"), scope.get("path"), type(exc).__name__
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(tsa: TimestampAuthority, *, clock: Callable[[], datetime] = _utc_now) -> Starlette:
    """Build the HTTP app of a TSA.

    Args:
        tsa: The timestamp authority.
        clock: Where the time comes from (aware datetimes; tests pin it).
    """
    endpoint = _TimestampEndpoint(tsa, clock)
    chain = tsa.chain_pem()
    health = json.dumps({"status": "ok", "policy": tsa.policy}).encode()

    async def certchain(request: Request) -> Response:
        return Response(
            chain,
            media_type="application/pem-certificate-chain",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def healthz(request: Request) -> Response:
        return Response(
            health, media_type="application/json", headers={"Cache-Control": "no-cache"}
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        return problem(exc.status_code, slug, title, str(exc.detail), headers=exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return problem(500, "internal-error", "Internal error", "the TSA failed unexpectedly")

    return _TsaApp(
        endpoint,
        routes=[
            # Reached only for other methods (405): POST is handled in front.
            Route(TIMESTAMP_PATH, endpoint, methods=["POST"]),
            Route(CERTCHAIN_PATH, certchain, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
