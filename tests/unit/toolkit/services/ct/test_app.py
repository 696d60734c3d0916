"""The CT log's HTTP edge over an ASGI transport: routes, problems, limits."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.factory import FakeSigstore
from tests.unit.toolkit.services.ct.pki import der, make_precert
from toolkit.services._http import ProblemError
from toolkit.services.ct.app import MAX_REQUEST_BYTES, create_app, parse_chain_request
from toolkit.services.ct.log import CTLog
from toolkit.services.ct.sct import SignedCertificateTimestamp, tree_head_signing_input
from toolkit.services.log import tiles
from toolkit.services.log.storage import MemoryCoordinator, MemoryTileStore
from toolkit.signing import SoftwareSigner

FAKE = FakeSigstore("ct-app-tests")
CA = FAKE.ca
ORIGIN = "ctfe.airseal.test"
T = TypeVar("T")


def _serve(body: Callable[[httpx.AsyncClient, CTLog], Awaitable[T]], **kwargs: Any) -> T:
    ctlog = CTLog(
        MemoryCoordinator(),
        MemoryTileStore(),
        SoftwareSigner(FAKE.ct_key),
        ORIGIN,
        [CA.root],
        max_wait=0.0,
        **kwargs,
    )
    app = create_app(ctlog)

    async def main() -> T:
        await ctlog.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ct.test") as client:
                return await body(client, ctlog)
        finally:
            await ctlog.stop()

    return asyncio.run(main())


def _chain_body(chain: list[bytes]) -> dict[str, Any]:
    return {"chain": [base64.b64encode(c).decode() for c in chain]}


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["type"] == f"https://airseal.dev/problems/{slug}"
    assert document["status"] == status
    return document


def test_add_pre_chain_answers_the_sct_json() -> None:
    precert = make_precert(CA)

    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> tuple[httpx.Response, int]:
        response = await client.post("/ct/v1/add-pre-chain", json=_chain_body(precert.chain))
        return response, ctlog.tree_size()

    response, size = _serve(body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    sct = SignedCertificateTimestamp.from_json(response.json())
    assert sct.log_id == FAKE.ct_log_id
    assert size == 1


@pytest.mark.parametrize(
    ("chain_of", "slug"),
    [
        (lambda: make_precert(CA, poison=False).chain, "not-a-precertificate"),
        (lambda: make_precert(FakeSigstore("elsewhere").ca).chain, "unknown-root"),
        (lambda: [], "bad-chain"),
        (lambda: [b"\x01\x02"], "bad-chain"),
    ],
)
def test_refusals_are_problems_and_log_nothing(
    chain_of: Callable[[], list[bytes]], slug: str
) -> None:
    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> tuple[httpx.Response, int]:
        response = await client.post("/ct/v1/add-pre-chain", json=_chain_body(chain_of()))
        return response, ctlog.tree_size()

    response, size = _serve(body)
    _problem(response, 400, slug)
    assert size == 0


@pytest.mark.parametrize(
    ("content", "slug"),
    [
        (b"", "bad-request"),
        (b"{", "bad-request"),
        (b"[]", "bad-request"),
        (b'{"chain":"x"}', "bad-request"),
        (b'{"chain":["@@@"]}', "bad-request"),
        (b'{"chain":[1]}', "bad-request"),
        (b'{"chain":[],"x":1}', "bad-request"),
        (b'{"chain":[], "chain":[]}', "bad-request"),
        (b'{"chain":[]}', "bad-chain"),
        (b"\xff\xfe", "bad-request"),
        (json.dumps({"chain": ["AAAA"] * 9}).encode(), "bad-chain"),
    ],
)
def test_malformed_requests(content: bytes, slug: str) -> None:
    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> httpx.Response:
        return await client.post(
            "/ct/v1/add-pre-chain", content=content, headers={"content-type": "application/json"}
        )

    _problem(_serve(body), 400, slug)


def test_wrong_media_type_is_415() -> None:
    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> httpx.Response:
        return await client.post(
            "/ct/v1/add-pre-chain", content=b"{}", headers={"content-type": "text/plain"}
        )

    _problem(_serve(body), 415, "unsupported-media-type")


def test_oversized_request_is_413() -> None:
    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> httpx.Response:
        return await client.post(
            "/ct/v1/add-pre-chain",
            content=b" " * (MAX_REQUEST_BYTES + 1),
            headers={"content-type": "application/json"},
        )

    _problem(_serve(body), 413, "request-too-large")


def test_pushback_is_503_with_retry_after() -> None:
    chains = [make_precert(CA).chain for _ in range(4)]

    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> list[httpx.Response]:
        return list(
            await asyncio.gather(
                *(client.post("/ct/v1/add-pre-chain", json=_chain_body(c)) for c in chains)
            )
        )

    responses = _serve(body, max_pending=1)
    busy = [r for r in responses if r.status_code == 503]
    assert busy
    for response in busy:
        _problem(response, 503, "pool-full")
        assert response.headers["retry-after"].isdigit()
    assert all(r.status_code in (200, 503) for r in responses)


def test_add_chain_is_refused_with_a_reason() -> None:
    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> httpx.Response:
        return await client.post("/ct/v1/add-chain", json=_chain_body([der(CA.root)]))

    document = _problem(_serve(body), 400, "precertificates-only")
    assert "add-pre-chain" in document["detail"]


def test_get_sth_and_roots_and_read_api() -> None:
    precert = make_precert(CA)

    async def body(client: httpx.AsyncClient, ctlog: CTLog) -> dict[str, httpx.Response]:
        await client.post("/ct/v1/add-pre-chain", json=_chain_body(precert.chain))
        paths = {
            "sth": "/ct/v1/get-sth",
            "roots": "/ct/v1/get-roots",
            "checkpoint": "/checkpoint",
            "entries": "/tile/entries/000.p/1",
            "tile": "/tile/0/000.p/1",
            "missing": "/tile/0/001",
            "health": "/healthz",
            "metrics": "/metrics",
            "unknown": "/nope",
        }
        out = {name: await client.get(path) for name, path in paths.items()}
        out["get-add"] = await client.get("/ct/v1/add-pre-chain")
        return out

    r = _serve(body)
    sth = r["sth"].json()
    assert sth["tree_size"] == 1
    signature = base64.b64decode(sth["tree_head_signature"])[4:]
    FAKE.ct_key.public_key().verify(
        signature,
        tree_head_signing_input(sth["timestamp"], 1, base64.b64decode(sth["sha256_root_hash"])),
        ec.ECDSA(hashes.SHA256()),
    )
    assert r["roots"].json() == {"certificates": [base64.b64encode(der(CA.root)).decode()]}
    assert r["checkpoint"].text.startswith(f"{ORIGIN}\n1\n")
    assert len(tiles.decode_bundle(r["entries"].content)) == 1
    assert len(r["tile"].content) == 32
    _problem(r["missing"], 404, "not-found")
    assert r["health"].json()["treeSize"] == 1
    assert "airseal_ct_accepted 1" in r["metrics"].text
    _problem(r["unknown"], 404, "not-found")
    _problem(r["get-add"], 405, "method-not-allowed")


def test_parse_chain_request() -> None:
    assert parse_chain_request(b'{"chain":["AAEC"]}') == [b"\x00\x01\x02"]
    with pytest.raises(ProblemError) as info:
        parse_chain_request(b'{"chain":["AAF="]}')  # non-canonical padding bits
    assert info.value.slug == "bad-request"
