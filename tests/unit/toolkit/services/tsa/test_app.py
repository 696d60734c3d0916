"""The TSA's HTTP edge: media types, size caps, problem documents, no 500s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.unit.toolkit.services.tsa._tsa import NOW, authority, chain_for, decode, request
from toolkit.services.tsa import MAX_REQUEST_BYTES
from toolkit.services.tsa.app import CERTCHAIN_PATH, TIMESTAMP_PATH, create_app
from toolkit.verify._rfc3161 import TimestampVerifier, parse_timestamp_response

QUERY = {"Content-Type": "application/timestamp-query"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(authority(), clock=lambda: NOW), raise_server_exceptions=False)


def _problem(response: object, status: int, slug: str) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    document = response.json()  # type: ignore[attr-defined]
    assert document["type"] == f"https://airseal.dev/problems/{slug}"
    assert document["status"] == status


def test_timestamp(client: TestClient) -> None:
    response = client.post(TIMESTAMP_PATH, content=request(b"sig"), headers=QUERY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    token = parse_timestamp_response(response.content)
    TimestampVerifier([chain_for("p256").authority()]).verify(token, b"sig")
    assert token.gen_time == NOW.replace(microsecond=0)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/timestamp-query; charset=binary"},
        {"Content-Type": "Application/Timestamp-Query"},
        {},  # no Content-Type at all: taken as a query
    ],
)
def test_media_type_variants_are_accepted(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(TIMESTAMP_PATH, content=request(), headers=headers)
    assert response.status_code == 200
    assert decode(response.content).status == 0


def test_trailing_slash(client: TestClient) -> None:
    response = client.post(TIMESTAMP_PATH + "/", content=request(), headers=QUERY)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"]
)
def test_other_media_types_are_415(client: TestClient, content_type: str) -> None:
    response = client.post(
        TIMESTAMP_PATH, content=request(), headers={"Content-Type": content_type}
    )
    _problem(response, 415, "unsupported-media-type")
    assert content_type in response.json()["detail"]


def test_empty_body_is_400(client: TestClient) -> None:
    _problem(client.post(TIMESTAMP_PATH, content=b"", headers=QUERY), 400, "empty-request")


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post(TIMESTAMP_PATH, content=bytes(MAX_REQUEST_BYTES + 1), headers=QUERY)
    _problem(response, 413, "request-too-large")


def test_oversized_chunked_body_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield bytes(1000)

    response = client.post(TIMESTAMP_PATH, content=chunks(), headers=QUERY)
    _problem(response, 413, "request-too-large")


def test_bad_request_gets_an_rfc3161_rejection(client: TestClient) -> None:
    response = client.post(TIMESTAMP_PATH, content=request(hash_algorithm="sha1"), headers=QUERY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    reply = decode(response.content)
    assert reply.status == 2 and reply.failures == {"bad_alg"}


def test_certchain(client: TestClient) -> None:
    response = client.get(CERTCHAIN_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pem-certificate-chain"
    assert response.content == authority().chain_pem()


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "policy": "1.3.6.1.4.1.57264.2"}


def test_wrong_method_and_path(client: TestClient) -> None:
    _problem(client.get(TIMESTAMP_PATH), 405, "method-not-allowed")
    _problem(client.get("/api/v1/nope"), 404, "not-found")
    _problem(client.post(CERTCHAIN_PATH, content=b"x"), 405, "method-not-allowed")


def test_internal_error_is_a_bare_500_problem(caplog: pytest.LogCaptureFixture) -> None:
    # A clock that breaks the core's contract (naive time): the one way to
    # make respond() raise.
    broken = TestClient(
        create_app(authority(), clock=lambda: dt.datetime(2025, 6, 1)),
        raise_server_exceptions=False,
    )
    response = broken.post(TIMESTAMP_PATH, content=request(), headers=QUERY)
    _problem(response, 500, "internal-error")
    assert "Traceback" not in response.text
    assert "UsageError" in caplog.text
