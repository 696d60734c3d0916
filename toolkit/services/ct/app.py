"""The CT log's HTTP edge: RFC 6962 write API, and the C2SP read API of its log.

Routes:

* ``POST /ct/v1/add-pre-chain`` -- ``{"chain": [base64 DER, …]}``, the
  precertificate first; answers 200 with the SCT JSON once the entry is in a
  durable checkpoint. A raw ASGI endpoint in front of Starlette (it runs on
  every certificate issuance).
* ``POST /ct/v1/add-chain`` -- always 400 ``precertificates-only``: this log
  takes precertificates only (final certificates carry their SCT already).
* ``GET /ct/v1/get-sth`` -- the RFC 6962 signed tree head of the checkpoint.
* ``GET /ct/v1/get-roots`` -- the accepted roots.
* ``GET /checkpoint``, ``GET /tile/<L>/<N>[.p/<W>]``,
  ``GET /tile/entries/<N>[.p/<W>]`` -- the underlying log, as C2SP
  tlog-tiles (each entry is an RFC 6962 ``MerkleTreeLeaf``).
* ``GET /healthz``, ``GET /metrics``.

Every error is an ``application/problem+json`` document: 4xx for a client's
fault, 503 (with Retry-After) when the log pushes back, and a bare 500
problem -- never a traceback -- for a bug.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from toolkit.encoding import b64decode, b64encode, load_json
from toolkit.errors import FormatError
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
from toolkit.services._http import ProblemError, problem
from toolkit.services.ct.client import ADD_PRE_CHAIN_PATH
from toolkit.services.ct.log import MAX_CERT_BYTES, MAX_CHAIN, REFUSALS, CTLog
from toolkit.services.log.app import read_routes

__all__ = [
    "ADD_CHAIN_PATH",
    "CLIENT_PROBLEMS",
    "MAX_REQUEST_BYTES",
    "create_app",
    "parse_chain_request",
]

#: RFC 6962 add-chain: refused here (precertificates only).
ADD_CHAIN_PATH: Final = "/ct/v1/add-chain"
#: Largest add-pre-chain body: a full chain of the largest certificates, in base64.
MAX_REQUEST_BYTES: Final = MAX_CHAIN * (MAX_CERT_BYTES * 4 // 3 + 8) + 1024

#: Every 4xx slug add-pre-chain answers: the core's refusals and the edge's own.
CLIENT_PROBLEMS: Final = REFUSALS | {
    "bad-request",
    "unsupported-media-type",
    "request-too-large",
}


_log = logging.getLogger("airseal.ct")

_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


def _bad_request(detail: str) -> ProblemError:
    return ProblemError(400, "bad-request", "Bad request", detail)


def parse_chain_request(body: bytes) -> list[bytes]:
    """The DER certificates of an RFC 6962 ``add-pre-chain`` body.

    Strict: a JSON object with exactly one member ``chain``, a non-empty list
    of at most :data:`~.log.MAX_CHAIN` canonical base64 strings.

    Raises:
        ProblemError: 400 ``bad-request`` naming the fault.
    """
    try:
        document = load_json(body, what="request")
    except FormatError as exc:
        raise _bad_request(exc.message) from None
    if not isinstance(document, dict):
        raise _bad_request('the request must be a JSON object {"chain": [...]}')
    if set(document) != {"chain"}:
        raise _bad_request('the request must have exactly one member, "chain"')
    chain = document["chain"]
    if not isinstance(chain, list):
        raise _bad_request('"chain" must be a list of base64 DER certificates')
    if not chain:
        raise ProblemError(
            400, "bad-chain", "Bad certificate chain", "the chain is empty: send the precertificate"
        )
    if len(chain) > MAX_CHAIN:
        raise ProblemError(
            400,
            "bad-chain",
            "Bad certificate chain",
            f"the chain has {len(chain)} certificates, at most {MAX_CHAIN}",
        )
    out: list[bytes] = []
    for index, item in enumerate(chain):
        try:
            der = b64decode(item, path=f"chain[{index}]")
        except FormatError as exc:
            raise _bad_request(exc.message) from None
        out.append(der)
    return out


class _AddPreChain:
    """``POST /ct/v1/add-pre-chain`` as a raw ASGI app: read, parse, log, answer."""

    def __init__(self, ctlog: CTLog, rejections: dict[str, int]) -> None:
        self._ctlog = ctlog
        self._rejections = rejections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reply = await self._handle(scope, receive)
        except ProblemError as exc:
            self._rejections[exc.slug] = self._rejections.get(exc.slug, 0) + 1
            reply = problem_reply(exc)
        except Exception as exc:  # the last line of defence: a bare 500 problem
            log_internal(_log, scope, exc)
            reply = problem_reply(
                ProblemError(500, "internal-error", "Internal error", "the CT log failed")
            )
        await send_reply(send, reply)

    async def _handle(self, scope: Scope, receive: Receive) -> Reply:
        body = await read_body(
            scope, receive, media_type="application/json", limit=MAX_REQUEST_BYTES
        )
        chain = parse_chain_request(body)
        sct = await self._ctlog.add_pre_chain(chain)
        return 200, list(_JSON_HEADERS), json.dumps(sct.to_json()).encode("ascii")


def _metrics_text(ctlog: CTLog, rejections: dict[str, int]) -> str:
    lines: list[str] = []
    for name, value in sorted(ctlog.metrics().items()):
        lines.append(f"airseal_ct_{name} {value:g}")
    for slug, count in sorted(rejections.items()):
        lines.append(f'airseal_ct_rejections_total{{reason="{slug}"}} {count}')
    return "\n".join(lines) + "\n"


def create_app(ctlog: CTLog, *, lifespan: bool = False) -> Starlette:
    """Build the HTTP app of a CT log.

    Args:
        ctlog: The CT log core.
        lifespan: Start and stop ``ctlog`` with the ASGI lifespan (tests);
            ``airseal serve ct`` starts it itself.
    """
    rejections: dict[str, int] = {}
    add_pre_chain = _AddPreChain(ctlog, rejections)
    roots_body = json.dumps(
        {"certificates": [b64encode(_der(root)) for root in ctlog.roots]}
    ).encode("ascii")

    async def add_chain(request: Request) -> Response:
        return problem(
            400,
            "precertificates-only",
            "Precertificates only",
            "this log accepts only precertificates: use /ct/v1/add-pre-chain",
        )

    async def get_sth(request: Request) -> Response:
        try:
            sth = ctlog.sth()
        except ProblemError as exc:
            return exc.response()
        return Response(
            json.dumps(sth.to_json()),
            media_type="application/json",
            headers={"Cache-Control": "no-cache"},
        )

    async def get_roots(request: Request) -> Response:
        return Response(roots_body, media_type="application/json")

    async def healthz(request: Request) -> Response:
        halted = ctlog.engine.halted
        if halted is not None:
            return problem(503, "log-halted", "Log halted", halted.message)
        body = json.dumps(
            {
                "status": "ok",
                "origin": ctlog.origin,
                "logId": b64encode(ctlog.log_id),
                "treeSize": ctlog.tree_size(),
            }
        )
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})

    async def metrics(request: Request) -> Response:
        return Response(
            _metrics_text(ctlog, rejections),
            media_type="text/plain; version=0.0.4; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @contextlib.asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        await ctlog.start()
        try:
            yield
        finally:
            await ctlog.stop()

    return RawPostApp(
        ADD_PRE_CHAIN_PATH,
        add_pre_chain,
        _log,
        routes=[
            # Only reached for other methods (405): POST is routed before Starlette.
            Route(ADD_PRE_CHAIN_PATH, add_pre_chain, methods=["POST"]),
            Route(ADD_CHAIN_PATH, add_chain, methods=["POST"]),
            Route("/ct/v1/get-sth", get_sth, methods=["GET"]),
            Route("/ct/v1/get-roots", get_roots, methods=["GET"]),
            *read_routes(ctlog.engine),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers=error_handlers("CT log"),
        lifespan=run if lifespan else None,
    )


def _der(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    der: bytes = cert.public_bytes(serialization.Encoding.DER)
    return der
