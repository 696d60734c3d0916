"""TokenVerifier against a real development issuer served over HTTP on 127.0.0.1.

The dev issuer's Starlette app runs under uvicorn in a thread (its own event
loop); the verifier uses its own httpx client. This exercises discovery, the
JWKS fetch, caching, refresh on an unknown kid and the bounded refetch over
real sockets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn

from toolkit.services._http import bind, socket_url
from toolkit.services._jwt import sign_compact
from toolkit.services.ca.oidc import IssuerConfig, IssuerType, TokenError, TokenVerifier
from toolkit.services.oidc_dev import DevIssuer
from toolkit.services.oidc_dev.app import create_app
from toolkit.signing import KeyAlgorithm, SoftwareSigner

NOW = datetime.now(UTC)

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]


class Counting:
    """ASGI wrapper counting requests by path."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)

    def count(self, suffix: str) -> int:
        return sum(1 for path in self.paths if path.endswith(suffix))


class ThreadedIssuer:
    """A DevIssuer app under uvicorn in a background thread."""

    def __init__(self) -> None:
        self.sock = bind("127.0.0.1", 0)
        self.url = socket_url(self.sock)
        self.issuer = DevIssuer(self.url)
        self.app = Counting(create_app(self.issuer))
        config = uvicorn.Config(
            self.app, lifespan="off", log_level="warning", access_log=False, loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True
        )

    def __enter__(self) -> ThreadedIssuer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the issuer did not start")
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def served() -> Iterator[ThreadedIssuer]:
    with ThreadedIssuer() as server:
        yield server


def test_verify_over_http(served: ThreadedIssuer) -> None:
    async def scenario() -> None:
        verifier = TokenVerifier([IssuerConfig(served.url, IssuerType.EMAIL)])
        try:
            token = served.issuer.token("dev@example.com", now=NOW)
            principal = await verifier.verify(token, NOW)
            assert principal.san_value == "dev@example.com"
            assert principal.issuer == served.url
            # Cached: many more tokens, no more fetches.
            await asyncio.gather(*(verifier.verify(token, NOW) for _ in range(10)))
        finally:
            await verifier.aclose()

    asyncio.run(scenario())
    assert served.app.count("/.well-known/openid-configuration") == 1
    assert served.app.count("/jwks") == 1


def test_rotation_and_bounded_refetch_over_http(served: ThreadedIssuer) -> None:
    clock = [0.0]

    async def scenario() -> None:
        verifier = TokenVerifier(
            [IssuerConfig(served.url, IssuerType.EMAIL)],
            refetch_interval=30,
            clock=lambda: clock[0],
        )
        try:
            await verifier.verify(served.issuer.token("a@example.com", now=NOW), NOW)
            clock[0] += 31
            served.issuer.rotate()
            # The new kid is unknown to the cache: one refetch finds it.
            principal = await verifier.verify(served.issuer.token("b@example.com", now=NOW), NOW)
            assert principal.san_value == "b@example.com"
            assert served.app.count("/jwks") == 2
            # Hostile tokens with random kids: no fetch within the interval.
            stranger = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
            claims = {
                "iss": served.url,
                "sub": "x@example.com",
                "aud": "sigstore",
                "exp": NOW.timestamp() + 60,
            }
            for n in range(20):
                token = sign_compact(claims, stranger, kid=f"kid-{n}")
                with pytest.raises(TokenError) as info:
                    await verifier.verify(token, NOW)
                assert info.value.slug == "unknown-key"
            assert served.app.count("/jwks") == 2
            assert verifier.fetch_count(served.url) == 2
            clock[0] += 31
            with pytest.raises(TokenError):
                await verifier.verify(sign_compact(claims, stranger, kid="late"), NOW)
            assert served.app.count("/jwks") == 3
            # The old key is still published, so its tokens still verify.
        finally:
            await verifier.aclose()

    asyncio.run(scenario())
    # Discovery is part of every refresh.
    assert served.app.count("/.well-known/openid-configuration") == 3


def test_issuer_that_went_away_is_issuer_unavailable() -> None:
    with ThreadedIssuer() as server:
        url = server.url
        token = server.issuer.token("a@example.com", now=NOW)

    async def scenario() -> TokenError:
        verifier = TokenVerifier([IssuerConfig(url, IssuerType.EMAIL)], timeout=5)
        try:
            with pytest.raises(TokenError) as info:
                await verifier.verify(token, NOW)
            return info.value
        finally:
            await verifier.aclose()

    error = asyncio.run(scenario())
    assert (error.slug, error.status) == ("issuer-unavailable", 503)


def test_dev_issuer_discovery_must_name_the_iss(served: ThreadedIssuer) -> None:
    # A CA configured with a different spelling of the issuer's URL refuses
    # its tokens: the token says 127.0.0.1, the CA trusts "localhost".
    alias = served.url.replace("127.0.0.1", "localhost")
    token = served.issuer.token("a@example.com", now=NOW, claims={"iss": alias})

    async def scenario() -> TokenError:
        verifier = TokenVerifier([IssuerConfig(alias, IssuerType.EMAIL)])
        try:
            with pytest.raises(TokenError) as info:
                await verifier.verify(token, NOW)
            return info.value
        finally:
            await verifier.aclose()

    assert asyncio.run(scenario()).slug == "issuer-unavailable"
