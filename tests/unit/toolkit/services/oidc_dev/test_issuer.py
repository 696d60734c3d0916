"""Tests of the development issuer's core: tokens, discovery, JWKS, rotation."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt as pyjwt
import pytest

from toolkit.errors import UsageError
from toolkit.services._jwt import JWKSet, parse_compact, verify_compact
from toolkit.services.oidc_dev import DEV_WARNING, DevIssuer
from toolkit.signing import KeyAlgorithm, Scheme, SoftwareSigner

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
URL = "http://127.0.0.1:3000"


def test_token_claims_and_header() -> None:
    issuer = DevIssuer(URL)
    token = issuer.token("alice@example.com", now=NOW)
    parsed = verify_compact(token, JWKSet.from_dict(issuer.jwks()))
    t = int(NOW.timestamp())
    assert parsed.payload == {
        "iss": URL,
        "sub": "alice@example.com",
        "aud": "sigstore",
        "iat": t,
        "nbf": t,
        "exp": t + 600,
        "email": "alice@example.com",
        "email_verified": True,
    }
    assert parsed.header["kid"] == issuer.kid
    assert parsed.alg.value == "ES256"


def test_pyjwt_accepts_the_tokens() -> None:
    issuer = DevIssuer(URL)
    token = issuer.token("alice@example.com", now=datetime.now(UTC), audience="aud-1")
    key = pyjwt.PyJWKSet.from_dict(issuer.jwks())[issuer.kid]
    claims = pyjwt.decode(token, key, algorithms=["ES256"], audience="aud-1", issuer=URL)
    assert claims["email"] == "alice@example.com"


def test_claims_override_and_remove() -> None:
    issuer = DevIssuer(URL)
    token = issuer.token(
        "alice", now=NOW, lifetime=60, claims={"email_verified": False, "email": None, "x": [1]}
    )
    payload = parse_compact(token).payload
    assert payload["email_verified"] is False
    assert "email" not in payload
    assert payload["x"] == [1]
    assert payload["exp"] - payload["iat"] == 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"identity": ""},
        {"identity": "a\nb"},
        {"identity": "x" * 2000},
        {"lifetime": 0},
        {"lifetime": 86401},
        {"lifetime": True},
        {"audience": ""},
        {"now": datetime(2026, 1, 1)},
    ],
)
def test_bad_requests(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"identity": "a@example.com", "now": NOW, **kwargs}
    with pytest.raises(UsageError):
        DevIssuer(URL).token(**args)  # type: ignore[arg-type]


def test_discovery_is_labelled_development_only() -> None:
    doc = DevIssuer(URL + "/").discovery()
    assert doc["issuer"] == URL + "/"
    assert doc["jwks_uri"] == URL + "/jwks"
    assert doc["token_endpoint"] == URL + "/token"
    assert doc["airseal_development_only"] is True
    assert doc["airseal_warning"] == DEV_WARNING
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]


@pytest.mark.parametrize(
    ("algorithm", "scheme", "alg"),
    [
        (KeyAlgorithm.ED25519, None, "EdDSA"),
        (KeyAlgorithm.ECDSA_P384, None, "ES384"),
        (KeyAlgorithm.RSA_3072, Scheme.RSA_PSS_3072_SHA256, "PS256"),
    ],
)
def test_other_signers(algorithm: KeyAlgorithm, scheme: Scheme | None, alg: str) -> None:
    issuer = DevIssuer(URL, SoftwareSigner.generate(algorithm, scheme))
    token = issuer.token("a@example.com", now=NOW)
    assert verify_compact(token, JWKSet.from_dict(issuer.jwks())).alg.value == alg
    assert issuer.jwks()["keys"][0]["alg"] == alg


def test_rotation_keeps_old_keys_published_until_retired() -> None:
    issuer = DevIssuer(URL)
    old = issuer.kid
    old_token = issuer.token("a@example.com", now=NOW)
    new = issuer.rotate()
    assert new != old and issuer.kid == new
    kids = [key["kid"] for key in issuer.jwks()["keys"]]
    assert kids == [new, old]
    assert verify_compact(old_token, JWKSet.from_dict(issuer.jwks()))
    with pytest.raises(UsageError):
        issuer.retire(new)
    issuer.retire(old)
    assert [key["kid"] for key in issuer.jwks()["keys"]] == [new]


def test_issuer_url_must_be_http() -> None:
    with pytest.raises(UsageError):
        DevIssuer("ftp://x")


def test_sigstore_python_accepts_the_tokens() -> None:
    oidc = pytest.importorskip("sigstore.oidc")
    token = DevIssuer(URL).token("alice@example.com", now=datetime.now(UTC))
    identity = oidc.IdentityToken(token)
    assert identity.identity == "alice@example.com"
    assert identity.issuer == URL
    assert identity.in_validity_period()
