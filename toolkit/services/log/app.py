"""The log's HTTP edge: the Rekor v2 write API and the C2SP tlog-tiles read API.

Routes (Starlette; the POST path is a raw ASGI endpoint in front of it):

* ``POST /api/v2/log/entries`` -- a ``hashedRekordRequestV002``; answers 201
  with a ``TransparencyLogEntry`` once the checkpoint covering the entry is
  durable (a duplicate gets the existing entry, proven against the current
  checkpoint). 503 with ``Retry-After`` when the pool is full. A log in v1
  mode records Rekor v1 ``hashedrekord`` 0.0.1 bodies and adds
  ``integratedTime`` and an inclusion promise (SET) to the answer.
* ``GET /checkpoint``, ``GET /tile/<L>/<N>[.p/<W>]``,
  ``GET /tile/entries/<N>[.p/<W>]`` -- the signed checkpoint and the tiles.
* ``GET /healthz`` and ``GET /metrics`` (Prometheus text format).

Every error is an RFC 9457 ``application/problem+json`` document: malformed
requests get 4xx from :mod:`.hashedrekord`, unknown paths 404, a log that
cannot take entries 503; an unexpected exception gets a bare 500 problem,
never a traceback (the server log gets one line naming the exception type).
The POST path is kept lean -- it bypasses Starlette's routing and middleware,
uses no validation framework and writes the response JSON directly -- because
it runs thousands of times a second on one core.
"""

from __future__ import annotations

import json
import logging
from typing import Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from toolkit.encoding import b64encode
from toolkit.errors import FormatError, UsageError
from toolkit.services._asgi import (
    RawPostApp,
    Receive,
    Reply,
    Scope,
    Send,
    error_handlers,
    log_internal,
    read_body,
    send_reply,
)
from toolkit.services._asgi import problem_reply as asgi_problem_reply
from toolkit.services._http import ProblemError, problem
from toolkit.services.log.engine import (
    Accepted,
    LogEngine,
    LogUnavailableError,
    PoolFullError,
)
from toolkit.services.log.hashedrekord import (
    MAX_REQUEST_BYTES,
    PROBLEM_BASE,
    RequestError,
    parse_request,
)
from toolkit.services.log.storage import StorageError

__all__ = ["ENTRIES_PATH", "create_app", "read_routes"]

#: Where clients POST entries (Rekor v2).
ENTRIES_PATH: Final = "/api/v2/log/entries"

_PROBLEM_JSON: Final = "application/problem+json"
_FULL_TILE_CACHE: Final = "public, max-age=31536000, immutable"
# A partial tile never changes either, but it is superseded quickly; caches
# should not keep it long.
_PARTIAL_TILE_CACHE: Final = "public, max-age=60"
_KIND_VERSION: Final = '{"kind":"hashedrekord","version":"0.0.2"}'
# v1 mode records Rekor v1 bodies: the only kind a SET lends a time to.
_KIND_VERSION_V1: Final = '{"kind":"hashedrekord","version":"0.0.1"}'

_log = logging.getLogger("airseal.log")


class _Metrics:
    """HTTP-level counters; the engine keeps its own."""

    def __init__(self) -> None:
        self.rejections: dict[str, int] = {}

    def reject(self, reason: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1


_ENGINE_METRICS: Final = (
    ("submissions", "counter", "submissions_total", "Entries submitted to the sequencer."),
    ("duplicates", "counter", "duplicates_total", "Submissions answered with an existing entry."),
    ("integrated", "counter", "integrated_total", "Entries integrated into the tree."),
    ("rounds", "counter", "rounds_total", "Sequencing rounds completed."),
    ("round_errors", "counter", "round_errors_total", "Sequencing rounds that failed."),
    (
        "partials_deleted",
        "counter",
        "partials_deleted_total",
        "Completed tiles and bundles whose partial versions were deleted.",
    ),
    (
        "partials_gc_failures",
        "counter",
        "partials_gc_failures_total",
        "Failed deletions of partial tiles (harmless: they stay in storage).",
    ),
    ("tree_size", "gauge", "tree_size", "Size of the current checkpoint."),
    ("pending", "gauge", "pending", "Submissions not yet answered (waiting or in a round)."),
    ("halted", "gauge", "halted", "1 when the log stopped after an integrity fault."),
)


def _prometheus(engine: LogEngine, metrics: _Metrics) -> str:
    values = engine.metrics()
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> str:
        full = f"airseal_log_{name}"
        lines.append(f"# HELP {full} {help_text}")
        lines.append(f"# TYPE {full} {kind}")
        return full

    for key, kind, name, help_text in _ENGINE_METRICS:
        full = family(name, kind, help_text)
        lines.append(f"{full} {values[key]:g}")
    full = family("round_seconds", "summary", "Duration of sequencing rounds.")
    lines.append(f"{full}_sum {values['round_seconds_sum']:.6f}")
    lines.append(f"{full}_count {values['round_seconds_count']:g}")
    full = family("batch_entries", "summary", "Entries per sequencing round.")
    lines.append(f"{full}_sum {values['batch_entries_sum']:g}")
    lines.append(f"{full}_count {values['round_seconds_count']:g}")
    full = family("rejections_total", "counter", "Submissions refused, by reason.")
    rejections = dict(metrics.rejections)
    rejections.setdefault("pool-full", 0)
    for reason in sorted(rejections):
        lines.append(f'{full}{{reason="{reason}"}} {rejections[reason]}')
    return "\n".join(lines) + "\n"


_Reply = Reply
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
_PROBLEM_HEADERS: Final = [(b"content-type", _PROBLEM_JSON.encode())]


def _problem_reply(
    status: int, slug: str, title: str, detail: str, retry_after: int | None = None
) -> _Reply:
    body = json.dumps(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail},
        ensure_ascii=False,
    ).encode("utf-8")
    headers = list(_PROBLEM_HEADERS)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return status, headers, body


class _EntriesEndpoint:
    """``POST /api/v2/log/entries`` as a raw ASGI app: parse, submit, answer.

    Args:
        engine: The log engine.
        metrics: Where rejections are counted.
        v1_mode: Record ``hashedrekord`` 0.0.1 bodies and answer
            ``integratedTime`` and the SET too.
    """

    def __init__(self, engine: LogEngine, metrics: _Metrics, v1_mode: bool) -> None:
        self._engine = engine
        self._metrics = metrics
        self._v1_mode = v1_mode
        self._log_id = b64encode(engine.log_id)
        self._kind_version = _KIND_VERSION_V1 if v1_mode else _KIND_VERSION
        self._envelope: tuple[bytes, str] = (b"", "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reply = await self._handle(scope, receive)
        except ProblemError as exc:
            self._metrics.reject(exc.slug)
            reply = asgi_problem_reply(exc)
        except Exception as exc:  # the last line of defence: a bare 500 problem
            log_internal(_log, scope, exc)
            reply = _problem_reply(
                500, "internal-error", "Internal error", "the log failed unexpectedly"
            )
        await send_reply(send, reply)

    def _reject(
        self, status: int, slug: str, title: str, detail: str, retry_after: int | None = None
    ) -> _Reply:
        self._metrics.reject(slug)
        return _problem_reply(status, slug, title, detail, retry_after)

    async def _handle(self, scope: Scope, receive: Receive) -> _Reply:
        body = await read_body(
            scope, receive, media_type="application/json", limit=MAX_REQUEST_BYTES
        )
        try:
            entry = parse_request(body, v1=self._v1_mode).entry()
        except RequestError as exc:
            self._metrics.reject(exc.slug)
            body = json.dumps(exc.to_problem(), ensure_ascii=False).encode("utf-8")
            return exc.status, list(_PROBLEM_HEADERS), body
        try:
            accepted = await self._engine.submit(entry)
        except PoolFullError as exc:
            return self._reject(503, "pool-full", "Log is busy", exc.message, exc.retry_after)
        except FormatError as exc:
            return self._reject(413, "entry-too-large", "Entry too large", exc.message)
        except (LogUnavailableError, StorageError) as exc:
            _log.warning("submission failed: %s", exc)
            return self._reject(
                503,
                "log-unavailable",
                "Log unavailable",
                "the log cannot record entries right now; retry later",
                5,
            )
        return 201, list(_JSON_HEADERS), self._entry_json(accepted)

    def _envelope_json(self, checkpoint: bytes) -> str:
        # Every entry of a round carries the same checkpoint: escape it once.
        cached, text = self._envelope
        if cached != checkpoint:
            text = json.dumps(checkpoint.decode("utf-8"))
            self._envelope = (checkpoint, text)
        return text

    def _entry_json(self, accepted: Accepted) -> bytes:
        """The TransparencyLogEntry, written directly in the models' field order."""
        index = accepted.index
        hashes = ",".join(f'"{b64encode(h)}"' for h in accepted.proof)
        promise = ""
        if self._v1_mode and accepted.signed_entry_timestamp is not None:
            promise = (
                f',"integratedTime":"{accepted.integrated_time}","inclusionPromise":'
                f'{{"signedEntryTimestamp":"{b64encode(accepted.signed_entry_timestamp)}"}}'
            )
        envelope = self._envelope_json(accepted.checkpoint)
        return (
            f'{{"logIndex":"{index}","logId":{{"keyId":"{self._log_id}"}},'
            f'"kindVersion":{self._kind_version}{promise},'
            f'"inclusionProof":{{"logIndex":"{index}",'
            f'"rootHash":"{b64encode(accepted.root_hash)}","treeSize":"{accepted.tree_size}",'
            f'"hashes":[{hashes}],"checkpoint":{{"envelope":{envelope}}}}},'
            f'"canonicalizedBody":"{b64encode(accepted.body)}"}}'
        ).encode("ascii")


def read_routes(engine: LogEngine) -> list[Route]:
    """The C2SP tlog-tiles read API of ``engine``: ``GET /checkpoint`` and ``/tile/…``.

    Shared by the transparency log and the CT log (whose entries live in a
    log engine of their own). ``/checkpoint`` serves the newest checkpoint in
    storage, whichever front-end signed it; full tiles are immutable for a
    year, partial ones cached briefly; storage failures are 503 problems.
    """

    async def checkpoint(request: Request) -> Response:
        # From storage, not memory: with several front-ends, another one may
        # have signed a newer checkpoint than this one's last round.
        try:
            note = await run_in_threadpool(engine.latest_checkpoint)
        except LogUnavailableError as exc:
            return problem(503, "log-unavailable", "Log unavailable", exc.message)
        except StorageError as exc:
            _log.warning("checkpoint read failed: %s", exc)
            return problem(503, "log-unavailable", "Log unavailable", "checkpoint storage failed")
        return Response(
            note,
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def tile(request: Request) -> Response:
        path = request.url.path.lstrip("/")
        try:
            data = await run_in_threadpool(engine.read, path)
        except StorageError as exc:
            _log.warning("tile read failed: %s", exc)
            return problem(503, "log-unavailable", "Log unavailable", "tile storage failed")
        if data is None:
            return problem(404, "not-found", "Not found", f"no tile {path[:120]!r} in this log")
        full = ".p/" not in path
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Cache-Control": _FULL_TILE_CACHE if full else _PARTIAL_TILE_CACHE},
        )

    return [
        Route("/checkpoint", checkpoint, methods=["GET"]),
        Route("/tile/{rest:path}", tile, methods=["GET"]),
    ]


def create_app(engine: LogEngine, *, v1_mode: bool = False) -> Starlette:
    """Build the HTTP app of a log. The caller starts and stops the engine.

    Args:
        engine: The log engine.
        v1_mode: Record Rekor v1 ``hashedrekord`` 0.0.1 bodies and also answer
            ``integratedTime`` and an inclusion promise (SET); the engine must
            sign SETs.

    Raises:
        UsageError: ``v1_mode`` with an engine that does not sign SETs.
    """
    if v1_mode and not engine.v1_set:
        raise UsageError("v1 mode needs a log engine that signs SETs")
    metrics = _Metrics()
    entries = _EntriesEndpoint(engine, metrics, v1_mode)

    async def healthz(request: Request) -> Response:
        halted = engine.halted
        if halted is not None:
            return problem(503, "log-halted", "Log halted", halted.message)
        body = json.dumps({"status": "ok", "origin": engine.origin, "treeSize": engine.tree_size()})
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})

    async def prometheus(request: Request) -> Response:
        return Response(
            _prometheus(engine, metrics),
            media_type="text/plain; version=0.0.4; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    return RawPostApp(
        ENTRIES_PATH,
        entries,
        _log,
        routes=[
            # Only reached for other methods (405): POST never gets this far.
            Route(ENTRIES_PATH, entries, methods=["POST"]),
            *read_routes(engine),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        exception_handlers=error_handlers("log"),
    )
