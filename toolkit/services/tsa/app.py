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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from toolkit.services._asgi import (
    RawPostApp,
    Receive,
    Reply,
    Scope,
    Send,
    error_handlers,
    log_internal,
    problem_reply,
    read_body,
    send_reply,
)
from toolkit.services._http import ProblemError
from toolkit.services.tsa.core import MAX_REQUEST_BYTES, TimestampAuthority

__all__ = ["CERTCHAIN_PATH", "QUERY_TYPE", "REPLY_TYPE", "TIMESTAMP_PATH", "create_app"]

TIMESTAMP_PATH: Final = "/api/v1/timestamp"
CERTCHAIN_PATH: Final = "/api/v1/timestamp/certchain"
QUERY_TYPE: Final = "application/timestamp-query"
REPLY_TYPE: Final = "application/timestamp-reply"

_log = logging.getLogger("airseal.tsa")

_REPLY: Final = REPLY_TYPE.encode()


class _TimestampEndpoint:
    """``POST /api/v1/timestamp`` as a raw ASGI app."""

    def __init__(self, tsa: TimestampAuthority, clock: Callable[[], datetime]) -> None:
        self._tsa = tsa
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reply = await self._handle(scope, receive)
        except ProblemError as exc:
            reply = problem_reply(exc)
        except Exception as exc:  # the last line of defence: a bare 500 problem
            log_internal(_log, scope, exc)
            reply = problem_reply(
                ProblemError(500, "internal-error", "Internal error", "the TSA failed unexpectedly")
            )
        await send_reply(send, reply)

    async def _handle(self, scope: Scope, receive: Receive) -> Reply:
        body = await read_body(
            scope,
            receive,
            media_type=QUERY_TYPE,
            limit=MAX_REQUEST_BYTES,
            what=f"a DER TimeStampReq as {QUERY_TYPE}",
        )
        if not body:
            raise ProblemError(
                400, "empty-request", "Empty request", f"POST a DER TimeStampReq as {QUERY_TYPE}"
            )
        return 200, [(b"content-type", _REPLY)], self._tsa.respond(body, self._clock())


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

    return RawPostApp(
        (TIMESTAMP_PATH, TIMESTAMP_PATH + "/"),
        endpoint,
        _log,
        routes=[
            # Reached only for other methods (405): POST is handled in front.
            Route(TIMESTAMP_PATH, endpoint, methods=["POST"]),
            Route(CERTCHAIN_PATH, certchain, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers=error_handlers("TSA"),
    )
