"""Property tests for the JWS module and the token verifier.

Random bytes, random tokens and mutations of valid tokens never raise anything
but the documented errors: :class:`JWSError` from the parser/verifier and
:class:`TokenError` from :class:`TokenVerifier`; a mutated token never
verifies unless it decodes to the same header, payload and signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.errors import UsageError
from toolkit.services._jwt import (
    JWK,
    JWKSet,
    JWSError,
    b64url_decode,
    b64url_encode,
    parse_compact,
    verify_compact,
)
from toolkit.services.ca.oidc import IssuerConfig, IssuerType, TokenError, TokenVerifier
from toolkit.services.oidc_dev import DevIssuer

FAST = settings(max_examples=300, deadline=None)
ISS = "https://issuer.example"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ISSUER = DevIssuer(ISS)
JWKS = JWKSet.from_dict(ISSUER.jwks())
GOOD = ISSUER.token("alice@example.com", now=NOW)
SLUGS = {
    "invalid-token",
    "token-too-large",
    "token-signature",
    "unknown-key",
    "untrusted-issuer",
    "token-expired",
    "token-not-yet-valid",
    "token-audience",
    "email-not-verified",
    "identity-claim",
}

b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
segments = st.text(alphabet=b64_alphabet + "=+/. ", max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["ES256", "RS256", "none", "HS256", "EdDSA", "ES512", "x"]),
        "kid": st.sampled_from([ISSUER.kid, "other", ""]) | st.integers(),
        "typ": st.sampled_from(["JWT", 1]),
        "crit": st.just(["exp"]),
        "jku": st.just("https://evil.example"),
    },
)
claims = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.sampled_from([ISS, ISS + "/", "https://evil.example", 5]),
        "sub": st.sampled_from(["alice@example.com", "", 1]),
        "aud": st.sampled_from(["sigstore", ["sigstore", "x"], ["x"], [], 3]),
        "exp": st.sampled_from([NOW.timestamp() + 60, NOW.timestamp() - 3600, "x", True])
        | st.integers(),
        "nbf": st.sampled_from([NOW.timestamp(), NOW.timestamp() + 3600, None]),
        "iat": st.sampled_from([NOW.timestamp(), float("inf"), NOW.timestamp() + 3600]),
        "email": st.sampled_from(["alice@example.com", "x", "a@b\n"]),
        "email_verified": st.sampled_from([True, False, "true", "false", 1]),
    },
)


def _parse(token: Any) -> None:
    try:
        parse_compact(token)
    except JWSError as exc:
        assert exc.reason in {"invalid-token", "token-too-large"}


@FAST
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    _parse(data.decode("latin-1"))
    with contextlib.suppress(JWSError):
        verify_compact(data.decode("latin-1"), JWKS)


@FAST
@given(st.lists(segments, min_size=1, max_size=6).map(".".join))
def test_random_token_shapes(token: str) -> None:
    _parse(token)


@FAST
@given(st.text(alphabet=b64_alphabet + "=", max_size=40))
def test_b64url_decode(text: str) -> None:
    try:
        decoded = b64url_decode(text)
    except JWSError as exc:
        assert exc.reason == "invalid-token"
    else:
        assert b64url_encode(decoded) == text


@FAST
@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.sampled_from(b64_alphabet + "."))
def test_mutated_good_token_never_verifies_differently(index: int, char: str) -> None:
    mutated = GOOD[:index] + char + GOOD[index + 1 :]
    try:
        parsed = verify_compact(mutated, JWKS)
    except JWSError:
        return
    # Only an identical token can verify (base64url is canonical).
    assert mutated == GOOD
    assert parsed.payload["sub"] == "alice@example.com"


@FAST
@given(headers, claims, st.binary(max_size=80))
def test_random_headers_and_claims_through_the_verifier(
    header: dict[str, Any], payload: dict[str, Any], signature: bytes
) -> None:
    def segment(value: Any) -> str:
        return b64url_encode(json.dumps(value).encode())

    forged = f"{segment(header)}.{segment(payload)}.{b64url_encode(signature)}"
    try:
        signed = ISSUER.token("alice@example.com", now=NOW, claims=payload)
    except UsageError:
        # Infinity is not JSON: the issuer refuses to sign it.
        signed = forged

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json=ISSUER.discovery())
        return httpx.Response(200, json=ISSUER.jwks())

    async def scenario() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        verifier = TokenVerifier([IssuerConfig(ISS, IssuerType.EMAIL)], http=client)
        for token in (forged, signed):
            try:
                principal = await verifier.verify(token, NOW)
            except TokenError as exc:
                assert exc.slug in SLUGS, exc.slug
                assert exc.status == 401
            else:
                # Only a genuinely signed, fully valid token gets through.
                assert token is signed and signed is not forged
                assert principal.san_value == payload.get("email", "alice@example.com")
        await client.aclose()

    asyncio.run(scenario())


@FAST
@given(json_values)
def test_random_jwk_documents(doc: Any) -> None:
    try:
        JWK.from_dict(doc)
    except JWSError as exc:
        assert exc.reason == "unsupported-key"
    try:
        JWKSet.from_dict({"keys": [doc]})
        JWKSet.from_dict(doc)
    except JWSError as exc:
        assert exc.reason == "unsupported-key"


@FAST
@given(
    st.fixed_dictionaries(
        {"kty": st.sampled_from(["RSA", "EC", "OKP"])},
        optional={
            "crv": st.sampled_from(["P-256", "P-384", "P-521", "Ed25519", "X25519"]),
            "x": st.binary(max_size=70).map(b64url_encode),
            "y": st.binary(max_size=70).map(b64url_encode),
            "n": st.binary(max_size=300).map(b64url_encode),
            "e": st.binary(max_size=4).map(b64url_encode),
            "alg": st.sampled_from(["ES256", "RS256", "EdDSA", "HS256"]),
        },
    )
)
def test_random_key_material(doc: dict[str, Any]) -> None:
    try:
        JWK.from_dict(doc)
    except JWSError as exc:
        assert exc.reason == "unsupported-key"
