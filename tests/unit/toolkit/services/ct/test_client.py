"""HttpCTClient against a mock transport: SCTs checked, refusals and failures told apart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.factory import FakeSigstore
from tests.unit.toolkit.services.ct.pki import make_precert
from toolkit.errors import TransportError, UsageError
from toolkit.services.ct.client import ADD_PRE_CHAIN_PATH, CTRefused, HttpCTClient
from toolkit.services.ct.sct import (
    SignedCertificateTimestamp,
    issuer_key_hash,
    precert_signing_input,
    precert_tbs,
)

FAKE = FakeSigstore("ct-client-tests")
CA = FAKE.ca
PRECERT = make_precert(CA)


def _good_sct(timestamp: int = 1_790_000_000_000) -> SignedCertificateTimestamp:
    signed = precert_signing_input(
        timestamp, issuer_key_hash(CA.intermediate), precert_tbs(PRECERT.chain[0])
    )
    signature = FAKE.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    return SignedCertificateTimestamp(FAKE.ct_log_id, timestamp, signature)


def _call(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: object
) -> SignedCertificateTimestamp:
    async def main() -> SignedCertificateTimestamp:
        client = HttpCTClient(
            "http://ct.test/",
            transport=httpx.MockTransport(handler),
            **kwargs,  # type: ignore[arg-type]
        )
        try:
            return await client.add_pre_chain(PRECERT.chain)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_posts_the_rfc_6962_request_and_checks_the_sct() -> None:
    sct = _good_sct()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=sct.to_json())

    assert _call(handler, public_key=FAKE.ct_key.public_key()) == sct
    (request,) = seen
    assert request.url.path == ADD_PRE_CHAIN_PATH
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert set(body) == {"chain"}
    assert len(body["chain"]) == 3


def test_refuses_an_sct_of_another_log() -> None:
    sct = _good_sct()
    with pytest.raises(TransportError, match="SCT of log"):
        _call(lambda r: httpx.Response(200, json=sct.to_json()), log_id=bytes(32))


def test_refuses_an_sct_whose_signature_does_not_cover_the_precert() -> None:
    good = _good_sct()
    bad = SignedCertificateTimestamp(good.log_id, good.timestamp + 1, good.signature)
    with pytest.raises(TransportError, match="does not verify"):
        _call(
            lambda r: httpx.Response(200, json=bad.to_json()), public_key=FAKE.ct_key.public_key()
        )


def test_log_id_only_check_passes_without_a_key() -> None:
    sct = _good_sct()
    assert _call(lambda r: httpx.Response(200, json=sct.to_json()), log_id=FAKE.ct_log_id) == sct


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[]", b'{"sct_version":0}', json.dumps({"x": 1}).encode()],
)
def test_nonsense_answers_are_transport_errors(content: bytes) -> None:
    with pytest.raises(TransportError, match=r"invalid SCT|not valid JSON"):
        _call(lambda r: httpx.Response(200, content=content))


def test_4xx_problem_is_ct_refused_with_its_slug() -> None:
    problem = {
        "type": "https://airseal.dev/problems/unknown-root",
        "title": "Unknown root",
        "status": 400,
        "detail": "no",
    }
    with pytest.raises(CTRefused) as info:
        _call(lambda r: httpx.Response(400, json=problem))
    assert (info.value.status, info.value.slug, info.value.title) == (
        400,
        "unknown-root",
        "Unknown root",
    )


def test_4xx_without_a_problem_is_still_refused() -> None:
    with pytest.raises(CTRefused) as info:
        _call(lambda r: httpx.Response(404, content=b"<html>"))
    assert info.value.status == 404


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_a_transport_error(status: int) -> None:
    with pytest.raises(TransportError, match=f"HTTP {status}") as info:
        _call(lambda r: httpx.Response(status, headers={"retry-after": "2"}, content=b"{}"))
    assert info.value.hint == "retry in 2 s"


def test_connection_failure_is_a_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransportError, match="cannot reach"):
        _call(handler)


def test_bad_parameters() -> None:
    with pytest.raises(UsageError):
        HttpCTClient("ftp://x")
    with pytest.raises(UsageError):
        HttpCTClient("http://x", log_id=b"short")
    with pytest.raises(UsageError):
        HttpCTClient("http://x", public_key=ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(UsageError, match="does not match"):
        HttpCTClient("http://x", log_id=bytes(32), public_key=FAKE.ct_key.public_key())


# --------------------------------------------------------------------------- the HTTP/1.1 pool


Reply = Callable[[int], bytes]


def _with_server(reply: Reply, requests: int, **kwargs: object) -> list[object]:
    """Run ``requests`` add-pre-chain calls against a raw asyncio server answering ``reply(n)``."""
    seen: list[bytes] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                seen.append(head)
                answer = reply(len(seen))
                if not answer:
                    break
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> list[object]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpCTClient(f"http://127.0.0.1:{port}", **kwargs)  # type: ignore[arg-type]
        results: list[object] = []
        try:
            for _ in range(requests):
                try:
                    results.append(await client.add_pre_chain(PRECERT.chain))
                except Exception as exc:
                    results.append(exc)
        finally:
            await client.aclose()
            server.close()
            await server.wait_closed()
        results.append(len(connections))
        return results

    return asyncio.run(main())


def _response(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


SCT_BODY = json.dumps(_good_sct().to_json()).encode()


def test_pool_keeps_connections_alive() -> None:
    *results, connections = _with_server(lambda n: _response(SCT_BODY), 5)
    assert all(isinstance(r, SignedCertificateTimestamp) for r in results)
    assert connections == 1


def test_pool_honours_connection_close() -> None:
    *results, connections = _with_server(
        lambda n: _response(SCT_BODY, extra="connection: close\r\n"), 3
    )
    assert all(isinstance(r, SignedCertificateTimestamp) for r in results)
    assert connections == 3


def test_pool_reads_chunked_answers() -> None:
    half = len(SCT_BODY) // 2
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        + f"{half:x}\r\n".encode()
        + SCT_BODY[:half]
        + b"\r\n"
        + f"{len(SCT_BODY) - half:x};x=y\r\n".encode()
        + SCT_BODY[half:]
        + b"\r\n0\r\n\r\n"
    )
    *results, _ = _with_server(lambda n: chunked, 2)
    assert all(isinstance(r, SignedCertificateTimestamp) for r in results)


def test_pool_retries_once_on_a_connection_the_server_closed() -> None:
    # The server answers the first request, then drops the connection without
    # answering the second: the client retries that one on a fresh connection.
    state = {"dropped": False}

    def reply(n: int) -> bytes:
        if n == 2 and not state["dropped"]:
            state["dropped"] = True
            return b""
        return _response(SCT_BODY)

    *results, connections = _with_server(reply, 3)
    assert all(isinstance(r, SignedCertificateTimestamp) for r in results), results
    assert connections == 2


def test_pool_maps_problems_and_failures() -> None:
    problem = json.dumps(
        {
            "type": "https://airseal.dev/problems/bad-chain",
            "title": "t",
            "status": 400,
            "detail": "d",
        }
    ).encode()
    answers = {
        1: _response(problem, "400 Bad Request"),
        2: _response(b"{}", "503 Service Unavailable", "retry-after: 3\r\n"),
        3: b"garbage\r\n\r\n",
    }
    refused, busy, garbage, _ = _with_server(lambda n: answers.get(n, b""), 3)
    assert isinstance(refused, CTRefused)
    assert refused.slug == "bad-chain"
    assert isinstance(busy, TransportError)
    assert busy.hint == "retry in 3 s"
    assert isinstance(garbage, TransportError)


def test_pool_times_out() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpCTClient(f"http://127.0.0.1:{port}", timeout=0.2)
        try:
            with pytest.raises(TransportError, match="did not answer"):
                await client.add_pre_chain(PRECERT.chain)
        finally:
            await client.aclose()
            server.close()

    asyncio.run(main())


def test_pool_connection_refused() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        client = HttpCTClient(f"http://127.0.0.1:{port}")
        with pytest.raises(TransportError, match="cannot reach"):
            await client.add_pre_chain(PRECERT.chain)
        await client.aclose()

    asyncio.run(main())
