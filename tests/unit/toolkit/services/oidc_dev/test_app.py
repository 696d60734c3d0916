"""Tests of the development issuer's HTTP edge (Starlette TestClient)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from toolkit.services._jwt import JWKSet, verify_compact
from toolkit.services.oidc_dev import DevIssuer
from toolkit.services.oidc_dev.app import DEV_HEADER, MAX_BODY_BYTES, create_app

URL = "http://127.0.0.1:3000"


@pytest.fixture
def issuer() -> DevIssuer:
    return DevIssuer(URL)


@pytest.fixture
def client(issuer: DevIssuer) -> TestClient:
    return TestClient(create_app(issuer), raise_server_exceptions=False)


def test_discovery_and_jwks(client: TestClient, issuer: DevIssuer) -> None:
    doc = client.get("/.well-known/openid-configuration")
    assert doc.status_code == 200
    assert doc.headers[DEV_HEADER] == "true"
    assert doc.json() == issuer.discovery()
    jwks = client.get("/jwks")
    assert jwks.json() == issuer.jwks()
    assert jwks.headers[DEV_HEADER] == "true"


def test_json_token_request(client: TestClient, issuer: DevIssuer) -> None:
    response = client.post(
        "/token",
        json={"identity": "a@example.com", "audience": "x", "lifetime": 30, "claims": {"k": 1}},
    )
    assert response.status_code == 200, response.text
    assert response.headers[DEV_HEADER] == "true"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 30
    assert body["access_token"] == body["id_token"]
    payload = verify_compact(body["id_token"], JWKSet.from_dict(issuer.jwks())).payload
    assert payload["sub"] == "a@example.com" and payload["aud"] == "x" and payload["k"] == 1
    now = datetime.now(UTC).timestamp()
    assert abs(payload["iat"] - now) < 60 and payload["exp"] - payload["iat"] == 30


def test_form_token_request(client: TestClient, issuer: DevIssuer) -> None:
    response = client.post(
        "/token",
        data={"identity": "b@example.com", "client_id": "sigstore", "grant_type": "x"},
    )
    assert response.status_code == 200, response.text
    payload = verify_compact(response.json()["id_token"], JWKSet.from_dict(issuer.jwks())).payload
    assert payload["email"] == "b@example.com" and payload["aud"] == "sigstore"


@pytest.mark.parametrize(
    ("kwargs", "status", "slug"),
    [
        ({"json": {}}, 400, "bad-token-request"),
        ({"json": {"identity": ""}}, 400, "bad-token-request"),
        ({"json": {"identity": 5}}, 400, "bad-token-request"),
        ({"json": {"identity": "a", "lifetime": "60"}}, 400, "bad-token-request"),
        ({"json": {"identity": "a", "lifetime": 10**9}}, 400, "bad-token-request"),
        ({"json": {"identity": "a", "lifetime": True}}, 400, "bad-token-request"),
        ({"json": {"identity": "a", "audience": 3}}, 400, "bad-token-request"),
        ({"json": {"identity": "a", "claims": []}}, 400, "bad-token-request"),
        ({"json": {"identity": "a", "extra": 1}}, 400, "bad-token-request"),
        ({"json": [1]}, 400, "bad-token-request"),
        (
            {
                "content": b'{"identity":"a","identity":"b"}',
                "headers": {"content-type": "application/json"},
            },
            400,
            "bad-token-request",
        ),
        (
            {"content": b"\xff", "headers": {"content-type": "application/json"}},
            400,
            "bad-token-request",
        ),
        ({"data": {"identity": "a", "lifetime": "x"}}, 400, "bad-token-request"),
        ({"data": {"identity": "a", "evil": "1"}}, 400, "bad-token-request"),
        (
            {
                "content": b"identity=a&identity=b",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            400,
            "bad-token-request",
        ),
        (
            {
                "content": b"identity=%ff",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            400,
            "bad-token-request",
        ),
        ({"content": b"identity=a", "headers": {"content-type": "text/plain"}}, 415, None),
        (
            {
                "content": b"x" * (MAX_BODY_BYTES + 1),
                "headers": {"content-type": "application/json"},
            },
            413,
            None,
        ),
    ],
)
def test_bad_token_requests(
    client: TestClient, kwargs: dict[str, object], status: int, slug: str | None
) -> None:
    response = client.post("/token", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers[DEV_HEADER] == "true"
    if slug is not None:
        assert response.json()["type"].endswith("/" + slug)


def test_unknown_paths_and_methods(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers[DEV_HEADER] == "true"
    wrong = client.get("/token")
    assert wrong.status_code == 405
    assert wrong.json()["type"].endswith("/method-not-allowed")
