"""Property tests for add-pre-chain: an SCT or a documented 4xx problem, nothing else."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factory import FakeSigstore
from tests.unit.toolkit.services.ct.pki import make_precert
from toolkit.services._http import PROBLEM_BASE, ProblemError
from toolkit.services.ct.app import CLIENT_PROBLEMS, create_app, parse_chain_request
from toolkit.services.ct.log import REFUSALS, CTLog
from toolkit.services.log.storage import MemoryCoordinator, MemoryTileStore
from toolkit.signing import SoftwareSigner

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FAKE = FakeSigstore("ct-fuzz")
GOOD = make_precert(FAKE.ca).chain
CTLOG = CTLog(
    MemoryCoordinator(), MemoryTileStore(), SoftwareSigner(FAKE.ct_key), "ct.fuzz", [FAKE.ca.root]
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _flip(data: bytes, position: int, mask: int) -> bytes:
    if not data:
        return b"\x00"
    position %= len(data)
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


@st.composite
def mutated_chains(draw: st.DrawFn) -> list[bytes]:
    """The good chain with bytes flipped, cut, dropped, swapped or repeated."""
    chain = list(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["flip", "cut", "drop", "swap", "dup", "junk"]))
        index = draw(st.integers(0, len(chain) - 1)) if chain else 0
        if not chain:
            break
        if action == "flip":
            chain[index] = _flip(
                chain[index], draw(st.integers(0, 1 << 16)), draw(st.integers(1, 255))
            )
        elif action == "cut":
            chain[index] = chain[index][: draw(st.integers(0, len(chain[index])))]
        elif action == "drop":
            del chain[index]
        elif action == "swap":
            other = draw(st.integers(0, len(chain) - 1))
            chain[index], chain[other] = chain[other], chain[index]
        elif action == "dup":
            chain.insert(index, chain[index])
        else:
            chain[index] = draw(st.binary(max_size=64))
    return chain


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.lists(st.text(max_size=12), max_size=10).map(
            lambda c: json.dumps({"chain": c}).encode()
        ),
        st.lists(st.binary(max_size=40), max_size=10).map(
            lambda c: json.dumps({"chain": [_b64(x) for x in c]}).encode()
        ),
        mutated_chains().map(lambda c: json.dumps({"chain": [_b64(x) for x in c]}).encode()),
    )


def _check_only(body: bytes) -> None:
    try:
        chain = parse_chain_request(body)
        CTLOG.check_chain(chain)
    except ProblemError as exc:
        assert 400 <= exc.status < 500
        assert exc.slug in CLIENT_PROBLEMS, exc.slug
        assert exc.detail


@FAST
@given(_bodies())
def test_parse_and_check_raise_only_documented_problems(body: bytes) -> None:
    _check_only(body)


@FAST
@given(mutated_chains())
def test_mutated_chains_are_refused_with_a_reason_or_are_the_good_chain(chain: list[bytes]) -> None:
    try:
        CTLOG.check_chain(chain)
    except ProblemError as exc:
        assert exc.status == 400
        assert exc.slug in REFUSALS, exc.slug
    else:
        # Only an intact precertificate with a valid path gets through.
        assert chain[0] == GOOD[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_bodies(), min_size=1, max_size=5),
    st.sampled_from(["application/json", None, "text/x"]),
)
def test_the_http_edge_answers_sct_or_problem(
    bodies: list[bytes], content_type: str | None
) -> None:
    ctlog = CTLog(
        MemoryCoordinator(),
        MemoryTileStore(),
        SoftwareSigner(FAKE.ct_key),
        "ct.fuzz",
        [FAKE.ca.root],
        max_wait=0.0,
    )
    app = create_app(ctlog)

    async def main() -> list[httpx.Response]:
        await ctlog.start()
        try:
            transport = httpx.ASGITransport(app=app)
            headers = {"content-type": content_type} if content_type else {}
            async with httpx.AsyncClient(transport=transport, base_url="http://ct") as client:
                return [
                    await client.post("/ct/v1/add-pre-chain", content=body, headers=headers)
                    for body in bodies
                ]
        finally:
            await ctlog.stop()

    accepted = 0
    for response in asyncio.run(main()):
        if response.status_code == 200:
            document: Any = response.json()
            assert set(document) == {"sct_version", "id", "timestamp", "extensions", "signature"}
            accepted += 1
            continue
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert 400 <= response.status_code < 500
        slug = problem["type"].removeprefix(PROBLEM_BASE)
        assert slug in CLIENT_PROBLEMS
    assert ctlog.tree_size() <= accepted
