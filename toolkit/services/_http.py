"""What every airseal HTTP service shares: problem documents, binding, serving.

Each service (``ca``, ``ct``, ``log``, ``tsa``, ``oidc_dev``) is a Starlette app
over a pure core. This module holds the edge they have in common:

* :func:`problem` -- an RFC 9457 ``application/problem+json`` response, and
  :class:`ProblemError`, the error a core raises to have one sent;
* (in :mod:`toolkit.services._asgi`: the raw POST path and Starlette's
  problem-document handlers;)
* :func:`listen_address` and :func:`bind` -- the ``--listen HOST:PORT`` socket,
  bound before the server starts so that a taken port is a one-line error;
* :func:`is_loopback` -- for services that must not leave the machine;
* :func:`serve` -- run one or more apps with uvicorn on an existing event
  loop, print one ready line per service, stop cleanly on SIGTERM/SIGINT;
* :func:`run_workers` -- the same in several forked processes that share the
  bound sockets, for stateless services that need more than one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from toolkit.errors import EnvironmentSetupError, Error, UsageError

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_JSON",
    "ProblemError",
    "Service",
    "bind",
    "is_loopback",
    "listen_address",
    "problem",
    "problem_body",
    "run_workers",
    "serve",
    "socket_url",
]


#: Prefix of every problem ``type`` URI airseal services answer with.
PROBLEM_BASE: Final = "https://airseal.dev/problems/"
PROBLEM_JSON: Final = "application/problem+json"
#: Longest detail a problem document carries (details may quote client input).
_MAX_DETAIL: Final = 300

_log = logging.getLogger("airseal.http")


def _clip(detail: str) -> str:
    detail = " ".join(detail.split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return detail


class ProblemError(Error):
    """A request a service refuses, answered as an RFC 9457 problem document.

    Args:
        status: The HTTP status (4xx for the client's fault, 503 when busy).
        slug: The problem type, ``https://airseal.dev/problems/<slug>``.
        title: A short, fixed summary of the problem type.
        detail: One line about this request. Never a secret: a detail may
            name a claim or a field, never quote a token or a key.
        headers: Extra response headers (for example ``Retry-After``).
    """

    exit_code: ClassVar[int] = 2

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        detail = _clip(detail)
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})

    @property
    def code(self) -> str:
        """The problem slug, e.g. ``invalid-token``."""
        return self.slug

    def to_problem(self) -> dict[str, Any]:
        """The ``application/problem+json`` document for this error."""
        return {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }

    def response(self) -> Response:
        """This problem as a Starlette response."""
        return problem(self.status, self.slug, self.title, self.detail, self.headers)


def problem_body(status: int, slug: str, title: str, detail: str) -> bytes:
    """The JSON bytes of a problem document."""
    return json.dumps(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": _clip(detail)},
        ensure_ascii=False,
    ).encode("utf-8")


def problem(
    status: int, slug: str, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An ``application/problem+json`` response."""
    from starlette.responses import Response

    return Response(
        problem_body(status, slug, title, detail),
        status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


def listen_address(listen: str, *, option: str = "--listen") -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6).

    Raises:
        UsageError: Not ``HOST:PORT`` with a port of 0 to 65535.
    """
    host, sep, port_text = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(
            f"{option} {listen!r} is not HOST:PORT",
            hint=f"for example {option} 127.0.0.1:3000 (port 0 picks a free port)",
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address or ``localhost``."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``.

    Raises:
        UsageError: The host does not resolve.
        EnvironmentSetupError: The address is taken or not available.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve listen address {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise EnvironmentSetupError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass
class Service:
    """One app to serve on one socket.

    Attributes:
        name: What the ready line calls it (``ca``, ``log log.example.org``, …).
        app: The ASGI app.
        sock: Its bound socket (see :func:`bind`).
        start: Awaited before the server accepts connections (opens engines).
        stop: Awaited after the server stopped (flushes engines).
    """

    name: str
    app: Any
    sock: socket.socket
    start: Callable[[], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def serve(
    services: Sequence[Service],
    *,
    echo: Callable[[str], None] = print,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve every app until SIGTERM or SIGINT, then stop them all cleanly.

    Each service's ``start`` runs before its server listens; once a server
    accepts connections, one line ``<name> listening on http://HOST:PORT`` is
    printed, and ``on_ready`` is called once all of them do. On a signal every
    server finishes its open requests, then each ``stop`` runs (in reverse
    order).
    """
    import uvicorn

    servers: list[uvicorn.Server] = []
    for service in services:
        config = uvicorn.Config(
            service.app,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
        )
        servers.append(uvicorn.Server(config))

    def stop(signum: int, frame: object) -> None:
        for server in servers:
            server.should_exit = True

    # uvicorn swaps in its own handlers while serving and re-raises the
    # signal afterwards; with these underneath, the re-raise only lands here
    # and the services still get to flush.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started: list[Service] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for service in services:
            if service.start is not None:
                await service.start()
            started.append(service)
        for service, server in zip(services, servers, strict=True):
            task = asyncio.create_task(server.serve(sockets=[service.sock]))
            tasks.append(task)
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            if server.started:
                echo(f"{service.name} listening on {socket_url(service.sock)}")
            else:
                break
        if on_ready is not None and all(server.started for server in servers):
            on_ready()
        if tasks:
            # One server failing to start (or stopping) stops them all.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()
    finally:
        for service in reversed(started):
            if service.stop is not None:
                try:
                    await service.stop()
                except Exception as exc:  # The others must still stop.
                    _log.error("stopping %s failed: %s", service.name, type(exc).__name__)


def run_workers(
    workers: int,
    sockets: Sequence[tuple[str, socket.socket]],
    run_worker: Callable[[Callable[[], None]], None],
    *,
    echo: Callable[[str], None] = print,
) -> int:
    """Serve bound sockets from ``workers`` forked processes; return the exit status.

    The kernel hands each connection of a shared listening socket to one of
    the processes, so a stateless service (CA, TSA) uses as many cores as it
    has workers, with no load balancer in front.

    ``run_worker(ready)`` runs in each child: it must open its own keys there
    -- a PKCS#11 module initialised before a fork is unusable in the child --
    serve the sockets (with :func:`serve`, passing ``ready`` as ``on_ready``
    and a silent ``echo``) and return when stopped. Workers start one after
    the other, each once the previous one is ready: a worker that cannot
    start (a wrong PIN, say) stops the start-up there, so its error is
    printed once and a token sees one failed login, not one per worker. The
    parent prints one ``<name> listening on http://HOST:PORT`` line per
    socket once every worker is ready, forwards SIGTERM and SIGINT to the
    workers, and stops them all when one of them exits by itself.

    Returns:
        0 when every worker stopped cleanly, else the first non-zero status.
    """
    running: set[int] = set()
    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    started = 0
    while started < workers and not stopping:
        pid, ready = _fork_worker(run_worker)
        running.add(pid)
        if not ready:
            break
        started += 1
    if started == workers:
        echo(f"{sockets[0][0]}: {workers} worker processes")
        for name, sock in sockets:
            echo(f"{name} listening on {socket_url(sock)}")
    else:
        forward(signal.SIGTERM, None)
    status = 0
    while running:
        pid, code = os.waitpid(-1, 0)
        if pid not in running:
            continue
        running.discard(pid)
        exited = os.waitstatus_to_exitcode(code)
        if exited != 0 and status == 0:
            status = exited if exited > 0 else 1
        if not stopping:
            # A worker that stops by itself takes the service down with it:
            # half a service would answer some clients and not others.
            forward(signal.SIGTERM, None)
    return status


def _fork_worker(run_worker: Callable[[Callable[[], None]], None]) -> tuple[int, bool]:
    """Fork one worker; return its pid and whether it became ready (False: it exited)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- runs in the child, ends with os._exit.
        os.close(read_fd)
        _die_with_parent(parent)
        status = 1

        def ready() -> None:
            os.write(write_fd, b"r")

        try:
            run_worker(ready)
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            # typer's and click's Exit carry the status as exit_code.
            code = getattr(exc, "exit_code", None)
            status = code if isinstance(code, int) else 1
            if code is None:
                _log.error("worker failed: %s", type(exc).__name__)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        # One byte once the worker listens; end of file if it exits first.
        return pid, pipe.read(1) == b"r"


def _die_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent dies.

    Without it a parent killed with SIGKILL (a crash, ``kill -9``, an OOM
    kill) would leave its workers serving the port on their own, with nobody
    to stop them. Linux only (``PR_SET_PDEATHSIG``); elsewhere the workers
    rely on the parent's clean stop.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(name, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        # The parent died before the request took effect.
        os._exit(1)
