"""The raw ASGI edge the services share: a lean POST path and problem handlers.

Every service has one hot endpoint (``POST /api/v2/signingCert``,
``/ct/v1/add-pre-chain``, ``/api/v1/timestamp``, ``/api/v2/log/entries``) that
runs hundreds to thousands of times a second, so it bypasses Starlette's
routing and middleware (:class:`RawPostApp`), reads its body with the checks
every such endpoint needs (:func:`read_body`) and answers with
:func:`send_reply`; every other route is ordinary Starlette, whose errors
:func:`error_handlers` turns into problem documents. Nothing answers with a
traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response

from toolkit.services._http import PROBLEM_JSON, ProblemError, problem_body

__all__ = [
    "RawPostApp",
    "Receive",
    "Reply",
    "Scope",
    "Send",
    "error_handlers",
    "log_internal",
    "problem_reply",
    "read_body",
    "send_reply",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: A raw answer: status, headers (without content-length), body.
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


def problem_reply(error: ProblemError) -> Reply:
    """``error`` as a raw answer (for :func:`send_reply`)."""
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()
    ]
    return error.status, headers, problem_body(error.status, error.slug, error.title, error.detail)


async def send_reply(send: Send, reply: Reply) -> None:
    """Send a raw answer with its ``content-length``."""
    status, headers, body = reply
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _too_large(size: int, limit: int) -> ProblemError:
    return ProblemError(
        413,
        "request-too-large",
        "Request too large",
        f"request is at least {size} bytes, the limit is {limit}",
    )


async def read_body(
    scope: Scope,
    receive: Receive,
    *,
    media_type: str,
    limit: int,
    what: str | None = None,
) -> bytes:
    """The body of a POST, refused before it is read when it cannot be what we take.

    A request without a ``Content-Type`` is taken as ``media_type`` (curl and
    some clients send none); another media type is refused. A declared
    ``Content-Length`` over ``limit`` is refused before reading, and so is a
    body that grows past it.

    Args:
        scope: The ASGI scope.
        receive: The ASGI receive callable.
        media_type: The one media type accepted.
        limit: Largest body in bytes.
        what: What to send, for the 415 detail (default: ``media_type``).

    Raises:
        ProblemError: 415 ``unsupported-media-type``, 413 ``request-too-large``,
            400 ``client-gone`` (the client went away mid-request).
    """
    content_type: bytes | None = None
    declared: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            declared = value
    if content_type is not None:
        given = content_type.partition(b";")[0].strip().lower()
        if given != media_type.encode():
            shown = given[:60].decode("latin-1")
            raise ProblemError(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"send {what or media_type}, not {shown!r}",
            )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ProblemError(400, "client-gone", "Client went away", "request not received")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def log_internal(logger: logging.Logger, scope: Scope, exc: BaseException) -> None:
    """Log an unexpected exception on one line: its type, never its text or a traceback.

    The text of an exception may quote request data (a token, say); its type
    is enough to find the bug.
    """
    logger.error(
        "internal error on %s %s: %s", scope.get("method"), scope.get("path"), type(exc).__name__
    )


def error_handlers(
    what: str, render: Callable[[ProblemError], Response] | None = None
) -> dict[Any, Callable[..., Any]]:
    """Starlette exception handlers answering problem documents.

    404 and 405 become ``not-found`` / ``method-not-allowed`` problems; any
    other exception a bare 500 ``internal-error`` problem saying ``the <what>
    failed unexpectedly`` (the server log gets one line from
    :class:`RawPostApp`).

    Args:
        what: The service, as the 500 problem names it.
        render: Turns a problem into a response (default:
            :meth:`ProblemError.response`); the CA adds Fulcio's members.
    """
    from starlette.exceptions import HTTPException

    respond = render or ProblemError.response

    async def http_error(request: Any, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        headers = dict(exc.headers or {})
        return respond(ProblemError(exc.status_code, slug, title, str(exc.detail), headers=headers))

    async def internal_error(request: Any, exc: Exception) -> Response:
        return respond(
            ProblemError(500, "internal-error", "Internal error", f"the {what} failed unexpectedly")
        )

    return {HTTPException: http_error, Exception: internal_error}


class RawPostApp(Starlette):
    """A Starlette app with one lean POST endpoint in front and one-line error logs.

    ``POST <post_path>`` goes straight to its raw ASGI endpoint, skipping
    Starlette's middleware and routing, which would cost a fair share of the
    request's time at thousands of requests a second (the endpoint answers
    every error itself). Everything else takes the usual path.

    Starlette's error middleware answers an unexpected exception with the 500
    handler, then re-raises it for the server to log with a traceback (and
    uvicorn drops the connection). Here it is logged on one line instead.

    Args:
        post_path: The path of the raw endpoint (or several that it serves).
        endpoint: The raw ASGI endpoint.
        logger: Where unexpected exceptions are logged.
        **kwargs: Starlette's arguments (routes, exception handlers, lifespan).
    """

    def __init__(
        self,
        post_path: str | Collection[str],
        endpoint: Callable[[Scope, Receive, Send], Awaitable[None]],
        logger: logging.Logger,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._post_paths = frozenset((post_path,) if isinstance(post_path, str) else post_path)
        self._endpoint = endpoint
        self._logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if scope["method"] == "POST" and scope["path"] in self._post_paths:
            await self._endpoint(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:  # already answered with a 500 problem
            log_internal(self._logger, scope, exc)
