"""Tests of the CA's token verification with a fake issuer behind httpx.MockTransport.

The fake serves a real :class:`DevIssuer`'s discovery document and JWKS, so the
verifier's own HTTP code (discovery, size caps, status codes, caching) runs;
only the network is replaced. ``test_oidc_http.py`` repeats the important
paths over real HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from toolkit.errors import FormatError
from toolkit.services._jwt import b64url_encode, sign_compact
from toolkit.services.ca.oidc import (
    IssuerConfig,
    IssuerType,
    Principal,
    TokenError,
    TokenVerifier,
)
from toolkit.services.config import ConfigFile
from toolkit.services.oidc_dev import DevIssuer
from toolkit.signing import KeyAlgorithm, SoftwareSigner

ISS = "https://issuer.example"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakeIssuer:
    """An OIDC issuer behind a MockTransport; counts requests, can go down."""

    def __init__(self, url: str = ISS, signer: Any = None) -> None:
        self.dev = DevIssuer(url, signer)
        self.url = url
        self.requests: list[str] = []
        self.down = False
        self.discovery_override: Any = None
        self.jwks_override: bytes | None = None
        self.status = 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.status != 200:
            return httpx.Response(self.status, text="nope")
        if request.url.path.endswith("/.well-known/openid-configuration"):
            doc = self.discovery_override or self.dev.discovery()
            return httpx.Response(200, content=json.dumps(doc).encode())
        if request.url.path.endswith("/jwks"):
            body = self.jwks_override or json.dumps(self.dev.jwks()).encode()
            return httpx.Response(200, content=body)
        return httpx.Response(404)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def token(self, identity: str = "alice@example.com", **kwargs: Any) -> str:
        kwargs.setdefault("now", NOW)
        return self.dev.token(identity, **kwargs)

    @property
    def jwks_fetches(self) -> int:
        return sum(1 for path in self.requests if path.endswith("/jwks"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(
    issuer: FakeIssuer, configs: list[IssuerConfig] | None = None, **kwargs: Any
) -> TokenVerifier:
    configs = configs or [IssuerConfig(issuer.url, IssuerType.EMAIL)]
    return TokenVerifier(configs, http=issuer.client(), **kwargs)


def verify(v: TokenVerifier, token: str, now: datetime = NOW) -> Principal:
    return run(v.verify(token, now))


def refused(v: TokenVerifier, token: str, now: datetime = NOW) -> TokenError:
    with pytest.raises(TokenError) as info:
        verify(v, token, now)
    error = info.value
    # The detail names what was wrong, never the token or a piece of it.
    for part in token.split("."):
        if len(part) > 8:
            assert part not in error.detail
            assert part not in str(error)
    return error


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


# -- the happy path ----------------------------------------------------------


def test_email_token_verifies(issuer: FakeIssuer) -> None:
    principal = verify(verifier(issuer), issuer.token())
    assert principal == Principal(
        ISS, "email", "alice@example.com", "alice@example.com", {}, subject="alice@example.com"
    )


def test_aud_list_and_client_id(issuer: FakeIssuer) -> None:
    token = issuer.token(claims={"aud": ["other", "sigstore"]})
    assert verify(verifier(issuer), token).san_value == "alice@example.com"
    custom = [IssuerConfig(ISS, IssuerType.EMAIL, client_id="airseal")]
    assert verify(verifier(issuer, custom), issuer.token(audience="airseal"))
    error = refused(verifier(issuer, custom), issuer.token())
    assert error.slug == "token-audience"


def test_skew_is_tolerated(issuer: FakeIssuer) -> None:
    token = issuer.token(lifetime=600)
    v = verifier(issuer)
    assert verify(v, token, NOW + timedelta(seconds=659))
    assert verify(v, token, NOW - timedelta(seconds=59))
    assert refused(v, token, NOW + timedelta(seconds=660)).slug == "token-expired"
    strict = verifier(issuer, skew=0)
    assert refused(strict, token, NOW + timedelta(seconds=600)).slug == "token-expired"


def test_naive_now_is_a_usage_error(issuer: FakeIssuer) -> None:
    from toolkit.errors import UsageError

    with pytest.raises(UsageError):
        verify(verifier(issuer), issuer.token(), datetime(2026, 6, 1))


# -- hostile tokens ----------------------------------------------------------


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"x") -> str:
    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url_encode(signature)}"


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISS,
        "sub": "alice@example.com",
        "aud": "sigstore",
        "iat": int(NOW.timestamp()),
        "nbf": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 600,
        "email": "alice@example.com",
        "email_verified": True,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _hs256_with_rsa_public_key(issuer: FakeIssuer) -> str:
    public = issuer.dev.signer.public_key
    secret = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64url_encode(json.dumps({"alg": "HS256", "kid": issuer.dev.kid}).encode())
    body = b64url_encode(json.dumps(_claims()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url_encode(mac)}"


def _tamper_payload(issuer: FakeIssuer) -> str:
    head, _, signature = issuer.token().split(".")
    body = b64url_encode(json.dumps(_claims(email="mallory@example.com")).encode())
    return f"{head}.{body}.{signature}"


def _tamper_signature(issuer: FakeIssuer) -> str:
    head, body, signature = issuer.token().split(".")
    flipped = ("B" if signature[5] == "A" else "A").join((signature[:5], signature[6:]))
    return f"{head}.{body}.{flipped}"


def _other_key(issuer: FakeIssuer) -> str:
    stranger = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    return sign_compact(_claims(), stranger, kid=issuer.dev.kid)


def _unknown_kid(issuer: FakeIssuer) -> str:
    stranger = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    return sign_compact(_claims(), stranger)


HOSTILE: dict[str, tuple[Callable[[FakeIssuer], str], str]] = {
    "alg none": (
        lambda i: _forge({"alg": "none", "kid": i.dev.kid}, _claims(), b""),
        "invalid-token",
    ),
    "alg none with signature": (
        lambda i: _forge({"alg": "none", "kid": i.dev.kid}, _claims()),
        "invalid-token",
    ),
    "HS256 with the RSA public key": (_hs256_with_rsa_public_key, "invalid-token"),
    "wrong aud": (lambda i: i.token(audience="other"), "token-audience"),
    "aud list without sigstore": (
        lambda i: i.token(claims={"aud": ["a", "b"]}),
        "token-audience",
    ),
    "aud missing": (lambda i: i.token(claims={"aud": None}), "token-audience"),
    "aud not a string": (lambda i: i.token(claims={"aud": 5}), "token-audience"),
    "wrong iss": (lambda i: i.token(claims={"iss": "https://evil.example"}), "untrusted-issuer"),
    "iss with trailing slash": (lambda i: i.token(claims={"iss": ISS + "/"}), "untrusted-issuer"),
    "iss missing": (lambda i: i.token(claims={"iss": None}), "invalid-token"),
    "expired": (lambda i: i.token(now=NOW - timedelta(hours=1)), "token-expired"),
    "not yet valid": (
        lambda i: i.token(claims={"nbf": int(NOW.timestamp()) + 3600}),
        "token-not-yet-valid",
    ),
    "issued in the future": (
        lambda i: i.token(now=NOW + timedelta(hours=1)),
        "token-not-yet-valid",
    ),
    "exp missing": (lambda i: i.token(claims={"exp": None}), "invalid-token"),
    "exp a string": (lambda i: i.token(claims={"exp": "2030"}), "invalid-token"),
    "exp a boolean": (lambda i: i.token(claims={"exp": True}), "invalid-token"),
    "exp a huge integer": (lambda i: i.token(claims={"exp": 10**400}), "invalid-token"),
    "nbf a huge integer": (lambda i: i.token(claims={"nbf": -(10**30)}), "invalid-token"),
    "iat a float beyond 2**53": (lambda i: i.token(claims={"iat": 1e300}), "invalid-token"),
    "unknown kid": (_unknown_kid, "unknown-key"),
    "signed by another key": (_other_key, "token-signature"),
    "tampered payload": (_tamper_payload, "token-signature"),
    "tampered signature": (_tamper_signature, "token-signature"),
    "email_verified false": (
        lambda i: i.token(claims={"email_verified": False}),
        "email-not-verified",
    ),
    "email_verified missing": (
        lambda i: i.token(claims={"email_verified": None}),
        "email-not-verified",
    ),
    "email_verified 'false'": (
        lambda i: i.token(claims={"email_verified": "false"}),
        "email-not-verified",
    ),
    "email_verified 1": (lambda i: i.token(claims={"email_verified": 1}), "email-not-verified"),
    "email missing": (lambda i: i.token(claims={"email": None}), "identity-claim"),
    "email not an address": (lambda i: i.token(claims={"email": "alice"}), "identity-claim"),
    "email not ASCII": (lambda i: i.token(claims={"email": "äli@example.com"}), "identity-claim"),
    "email with a newline": (
        lambda i: i.token(claims={"email": "a@example.com\nb@evil.com"}),
        "identity-claim",
    ),
    "sub missing": (lambda i: i.token(claims={"sub": None}), "identity-claim"),
    "oversized": (lambda i: i.token(claims={"pad": "x" * 17000}), "token-too-large"),
    "bad base64": (lambda i: i.token() + "==", "invalid-token"),
    "not a JWS": (lambda i: "not-a-token", "invalid-token"),
    "duplicate keys": (
        lambda i: b64url_encode(b'{"alg":"ES256","alg":"none"}') + "." + i.token().split(".", 1)[1],
        "invalid-token",
    ),
    "crit header": (
        lambda i: sign_compact(_claims(), i.dev.signer, kid=i.dev.kid, headers={"crit": ["exp"]}),
        "invalid-token",
    ),
    "embedded jwk": (
        lambda i: sign_compact(
            _claims(), i.dev.signer, kid=i.dev.kid, headers={"jwk": i.dev.jwks()["keys"][0]}
        ),
        "invalid-token",
    ),
    "jku header": (
        lambda i: sign_compact(
            _claims(), i.dev.signer, kid=i.dev.kid, headers={"jku": "https://evil.example/jwks"}
        ),
        "invalid-token",
    ),
    "payload an array": (
        lambda i: i.token().split(".")[0] + "." + b64url_encode(b"[]") + ".AA",
        "invalid-token",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_tokens(case: str, issuer: FakeIssuer) -> None:
    make, slug = HOSTILE[case]
    error = refused(verifier(issuer), make(issuer))
    assert error.slug == slug, error.detail
    assert error.status == 401
    assert error.to_problem()["type"].endswith("/" + slug)


def test_hs256_against_an_rsa_issuer() -> None:
    issuer = FakeIssuer(signer=SoftwareSigner.generate(KeyAlgorithm.RSA_3072))
    assert verify(verifier(issuer), issuer.token()).san_value == "alice@example.com"
    assert refused(verifier(issuer), _hs256_with_rsa_public_key(issuer)).slug == "invalid-token"


def test_header_alg_must_fit_the_issuers_key() -> None:
    issuer = FakeIssuer(signer=SoftwareSigner.generate(KeyAlgorithm.RSA_3072))
    # An EdDSA token claiming the RSA key's kid.
    stranger = SoftwareSigner.generate(KeyAlgorithm.ED25519)
    token = sign_compact(_claims(), stranger, kid=issuer.dev.kid)
    assert refused(verifier(issuer), token).slug == "token-signature"


def test_untrusted_issuer_is_never_fetched(issuer: FakeIssuer) -> None:
    v = verifier(issuer)
    assert refused(v, issuer.token(claims={"iss": "https://evil.example"})).slug == (
        "untrusted-issuer"
    )
    assert issuer.requests == []


# -- identity mapping --------------------------------------------------------


def test_uri_issuer() -> None:
    issuer = FakeIssuer()
    config = IssuerConfig(ISS, IssuerType.URI, subject_domain="https://ci.example.com")
    v = verifier(issuer, [config])
    sub = "https://ci.example.com/jobs/7"
    principal = verify(v, issuer.token(sub, claims={"email": None, "email_verified": None}))
    assert (principal.san_type, principal.san_value, principal.challenge) == ("uri", sub, sub)
    for bad in (
        "https://evil.com/ci.example.com",
        "https://ci.example.com.evil.com/x",
        "http://ci.example.com/x",
        "https://user@ci.example.com/x",
        "https://ci.example.com:444/x",
        "https://ci.example.com/x#frag",
        "https://ci.example.com/a/../../b",
        "ci.example.com/x",
        "https://ci.example.com/é",
    ):
        assert refused(v, issuer.token(bad)).slug == "identity-claim", bad


def test_uri_issuer_with_path_prefix() -> None:
    issuer = FakeIssuer()
    config = IssuerConfig(ISS, IssuerType.URI, subject_domain="https://example.com/ci/")
    v = verifier(issuer, [config])
    assert verify(v, issuer.token("https://example.com/ci/build/1")).san_value
    assert verify(v, issuer.token("https://example.com/ci")).san_value
    assert refused(v, issuer.token("https://example.com/cidr")).slug == "identity-claim"


def test_spiffe_issuer() -> None:
    issuer = FakeIssuer()
    config = IssuerConfig(ISS, IssuerType.SPIFFE, spiffe_trust_domain="prod.example.org")
    v = verifier(issuer, [config])
    sub = "spiffe://prod.example.org/ns/build/sa/signer"
    principal = verify(v, issuer.token(sub))
    assert (principal.san_type, principal.san_value, principal.challenge) == ("uri", sub, sub)
    for bad in (
        "spiffe://evil.org/ns/x",
        "spiffe://prod.example.org.evil.org/x",
        "spiffe://prod.example.org/",
        "spiffe://prod.example.org//x",
        "spiffe://prod.example.org/a/../b",
        "spiffe://prod.example.org/a?b",
        "https://prod.example.org/x",
    ):
        assert refused(v, issuer.token(bad)).slug == "identity-claim", bad


def test_username_issuer() -> None:
    issuer = FakeIssuer()
    config = IssuerConfig(ISS, IssuerType.USERNAME, subject_domain="example.com")
    v = verifier(issuer, [config])
    principal = verify(v, issuer.token("alice"))
    assert (principal.san_type, principal.san_value, principal.challenge) == (
        "username",
        "alice!example.com",
        "alice",
    )
    for bad in ("alice@evil.com", "a!b", "al ice", "a\x00b"):
        token = issuer.token("x", claims={"sub": bad})
        assert refused(v, token).slug == "identity-claim", repr(bad)


GITHUB_CLAIMS = {
    "sub": "repo:octo/app:ref:refs/heads/main",
    "job_workflow_ref": "octo/app/.github/workflows/release.yml@refs/heads/main",
    "job_workflow_sha": "a" * 40,
    "sha": "b" * 40,
    "event_name": "push",
    "repository": "octo/app",
    "repository_id": "123",
    "repository_owner": "octo",
    "repository_owner_id": "456",
    "workflow": "Release app",
    "workflow_ref": "octo/app/.github/workflows/release.yml@refs/heads/main",
    "workflow_sha": "c" * 40,
    "ref": "refs/heads/main",
    "run_id": "789",
    "run_attempt": "2",
    "runner_environment": "github-hosted",
    "repository_visibility": "public",
    "email": None,
    "email_verified": None,
}


def test_github_workflow_issuer() -> None:
    gh = "https://token.actions.githubusercontent.com"
    issuer = FakeIssuer(gh)
    v = verifier(issuer, [IssuerConfig(gh, IssuerType.GITHUB_WORKFLOW)])
    principal = verify(v, issuer.token("ignored", claims=GITHUB_CLAIMS))
    ref = "https://github.com/octo/app/.github/workflows/release.yml@refs/heads/main"
    assert principal.issuer == gh
    assert principal.san_type == "uri"
    assert principal.san_value == ref
    assert principal.challenge == GITHUB_CLAIMS["sub"]
    p = "1.3.6.1.4.1.57264.1."
    assert dict(principal.extensions) == {
        p + "9": ref,
        p + "10": "a" * 40,
        p + "11": "github-hosted",
        p + "12": "https://github.com/octo/app",
        p + "13": "b" * 40,
        p + "14": "refs/heads/main",
        p + "15": "123",
        p + "16": "https://github.com/octo",
        p + "17": "456",
        p + "18": ref,
        p + "19": "c" * 40,
        p + "20": "push",
        p + "21": "https://github.com/octo/app/actions/runs/789/attempts/2",
        p + "22": "public",
    }
    assert dict(principal.legacy_extensions) == {
        p + "2": "push",
        p + "3": "b" * 40,
        p + "4": "Release app",
        p + "5": "octo/app",
        p + "6": "refs/heads/main",
    }


@pytest.mark.parametrize("claim", [k for k, v in GITHUB_CLAIMS.items() if v is not None])
def test_github_claims_are_required(claim: str) -> None:
    gh = "https://token.actions.githubusercontent.com"
    issuer = FakeIssuer(gh)
    v = verifier(issuer, [IssuerConfig(gh, IssuerType.GITHUB_WORKFLOW)])
    for value in (None, "", 5):
        token = issuer.token("x", claims={**GITHUB_CLAIMS, claim: value})
        assert refused(v, token).slug == "identity-claim"


def test_github_claims_with_spaces_in_uris_are_refused() -> None:
    gh = "https://token.actions.githubusercontent.com"
    issuer = FakeIssuer(gh)
    v = verifier(issuer, [IssuerConfig(gh, IssuerType.GITHUB_WORKFLOW)])
    for claims in ({"repository": "octo/app evil"}, {"job_workflow_ref": "octo/é@x"}):
        token = issuer.token("x", claims={**GITHUB_CLAIMS, **claims})
        assert refused(v, token).slug == "identity-claim"


# -- meta issuers ------------------------------------------------------------

EKS = "https://oidc.eks.*.amazonaws.com/id/*"


@pytest.mark.parametrize(
    ("pattern", "iss"),
    [
        (EKS, "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123"),
        ("https://*.example.com", "https://tenant-1.example.com"),
        ("https://login.example.com/*/v2.0", "https://login.example.com/tenant_9/v2.0"),
    ],
)
def test_meta_issuer_matches(pattern: str, iss: str) -> None:
    assert IssuerConfig(pattern, IssuerType.EMAIL, meta=True).matches(iss)


@pytest.mark.parametrize(
    ("pattern", "iss"),
    [
        ("https://*.example.com", "https://evil.com/x.example.com"),
        ("https://*.example.com", "https://evil.com?.example.com"),
        ("https://*.example.com", "https://evil.com#.example.com"),
        ("https://*.example.com", "https://a.b.example.com"),
        ("https://*.example.com", "https://evil.com\\.example.com"),
        ("https://*.example.com", "https://user@evil.example.com"),
        ("https://*.example.com", "https://example.com"),
        ("https://*.example.com", "https://x.example.com/"),
        ("https://*.example.com", "http://x.example.com"),
        ("https://*.example.com", "https://x.example.com.evil.com"),
        ("https://*.example.com", "https://x.example.com:8443"),
        ("https://*.example.com", "https://x.exampleXcom"),
        (EKS, "https://oidc.eks.eu-west-1.amazonaws.com/id/a/b"),
        (EKS, "https://oidc.eks.evil.com/x.amazonaws.com/id/a"),
        (EKS, "https://oidc.eks..amazonaws.com/id/a"),
        (EKS, "https://oidc.eks.x.amazonaws.com/id/"),
        (EKS, "https://oidc.eks.x.amazonaws.com/id/a\n"),
    ],
)
def test_meta_issuer_hostile(pattern: str, iss: str) -> None:
    assert not IssuerConfig(pattern, IssuerType.EMAIL, meta=True).matches(iss)


def test_meta_issuer_verifies_and_caches_per_concrete_issuer() -> None:
    iss = "https://oidc.eks.eu-west-1.amazonaws.com/id/CLUSTER1"
    issuer = FakeIssuer(iss)
    config = IssuerConfig(EKS, IssuerType.URI, subject_domain="https://oidc.eks.example", meta=True)
    spiffe = IssuerConfig(EKS, IssuerType.SPIFFE, spiffe_trust_domain="cluster.local", meta=True)
    del config
    v = verifier(issuer, [spiffe])
    principal = verify(v, issuer.token("spiffe://cluster.local/ns/a/sa/b"))
    assert principal.issuer == iss
    assert issuer.requests == ["/id/CLUSTER1/.well-known/openid-configuration", "/id/CLUSTER1/jwks"]


def test_exact_issuers_win_over_patterns() -> None:
    exact = IssuerConfig("https://a.example.com", IssuerType.USERNAME, subject_domain="x.org")
    meta = IssuerConfig("https://*.example.com", IssuerType.EMAIL, meta=True)
    v = TokenVerifier([meta, exact])
    assert v.issuer_for("https://a.example.com") is exact
    assert v.issuer_for("https://b.example.com") is meta
    with pytest.raises(TokenError) as info:
        v.issuer_for("https://example.com")
    assert info.value.slug == "untrusted-issuer"


@pytest.mark.parametrize(
    "pattern",
    [
        "https://*",
        "https://*.com",
        "https://example.*",
        "https://x*.example.com",
        "https://example.com/a*b",
        "*://example.com/x",
        "https://*.example.com?x=*",
        "http://*.example.com",
    ],
)
def test_bad_meta_patterns(pattern: str) -> None:
    with pytest.raises(FormatError):
        IssuerConfig(pattern, IssuerType.EMAIL, meta=True)


# -- configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "ftp://x.example"}, "url"),
        ({"url": "http://issuer.example"}, "url"),
        ({"url": "https://u:p@issuer.example"}, "url"),
        ({"url": "https://issuer.example?a=b"}, "url"),
        ({"url": "https://issuer.example/#x"}, "url"),
        ({"url": "https://issuer .example"}, "url"),
        ({"url": "https://*.example.com"}, "url"),
        ({"url": "https://issuer.example", "meta": True}, "url"),
        ({"client_id": ""}, "client_id"),
        ({"type": IssuerType.URI}, "subject_domain"),
        ({"type": IssuerType.URI, "subject_domain": "example.com"}, "subject_domain"),
        ({"type": IssuerType.USERNAME}, "subject_domain"),
        ({"type": IssuerType.USERNAME, "subject_domain": "https://x"}, "subject_domain"),
        ({"subject_domain": "example.com"}, "subject_domain"),
        ({"type": IssuerType.SPIFFE}, "spiffe_trust_domain"),
        ({"type": IssuerType.SPIFFE, "spiffe_trust_domain": "Bad/Domain"}, "spiffe_trust_domain"),
        ({"spiffe_trust_domain": "x.org"}, "spiffe_trust_domain"),
    ],
)
def test_bad_issuer_configs(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"url": ISS, "type": IssuerType.EMAIL, **kwargs}
    with pytest.raises(FormatError) as info:
        IssuerConfig(**args)
    assert info.value.path == field


def test_loopback_http_issuers_are_allowed() -> None:
    for url in ("http://127.0.0.1:3000", "http://localhost:8080/dex", "http://[::1]:1"):
        assert IssuerConfig(url, IssuerType.EMAIL).url == url


def _issuers(tmp_path: Path, body: str) -> list[IssuerConfig]:
    path = tmp_path / "services.toml"
    path.write_text(body, encoding="utf-8")
    config = ConfigFile.load(path)
    table = config.require_section("ca")
    return [IssuerConfig.from_table(t) for t in table.tables("issuers")]


def test_from_table(tmp_path: Path) -> None:
    issuers = _issuers(
        tmp_path,
        """
[ca]
[[ca.issuers]]
url = "http://127.0.0.1:3000"
type = "email"

[[ca.issuers]]
url = "https://oidc.eks.*.amazonaws.com/id/*"
type = "spiffe"
spiffe_trust_domain = "cluster.local"
client_id = "airseal"
meta = true

[[ca.issuers]]
url = "https://ci.example.com"
type = "uri"
subject_domain = "https://ci.example.com"
""",
    )
    assert issuers[0] == IssuerConfig("http://127.0.0.1:3000", IssuerType.EMAIL)
    assert issuers[1].meta and issuers[1].client_id == "airseal"
    assert issuers[2].subject_domain == "https://ci.example.com"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('url = "https://x.example"\ntype = "email"\ncolor = "red"', "ca.issuers[0].color"),
        ('url = "https://x.example"\ntype = "emial"', "ca.issuers[0].type"),
        ('type = "email"', "ca.issuers[0].url"),
        ('url = "https://x.example"\ntype = "email"\nmeta = "yes"', "ca.issuers[0].meta"),
        ('url = "https://*.x.example"\ntype = "email"', "ca.issuers[0].url"),
        ('url = "https://x.example"\ntype = "uri"', "ca.issuers[0].subject_domain"),
    ],
)
def test_from_table_errors(tmp_path: Path, body: str, where: str) -> None:
    with pytest.raises(FormatError) as info:
        _issuers(tmp_path, "[ca]\n[[ca.issuers]]\n" + body + "\n")
    assert info.value.path == f"services.toml: {where}"


# -- key fetching and caching ------------------------------------------------


def test_keys_are_cached(issuer: FakeIssuer) -> None:
    clock = Clock()
    v = verifier(issuer, clock=clock, jwks_ttl=600)

    async def scenario() -> None:
        for _ in range(5):
            await v.verify(issuer.token(), NOW)
        await asyncio.gather(*(v.verify(issuer.token(), NOW) for _ in range(20)))

    run(scenario())
    assert issuer.requests == ["/.well-known/openid-configuration", "/jwks"]
    clock.now += 601
    verify(v, issuer.token())
    assert issuer.jwks_fetches == 2


def test_unknown_kid_refetches_at_most_once_per_interval(issuer: FakeIssuer) -> None:
    clock = Clock()
    v = verifier(issuer, clock=clock, refetch_interval=30)
    verify(v, issuer.token())
    assert issuer.jwks_fetches == 1
    clock.now += 31
    # The issuer rotates: the new kid makes the verifier refetch once.
    issuer.dev.rotate()
    assert verify(v, issuer.token()).san_value == "alice@example.com"
    assert issuer.jwks_fetches == 2

    async def storm() -> list[BaseException | Principal]:
        tokens = [_unknown_kid(issuer) for _ in range(50)]
        return await asyncio.gather(*(v.verify(t, NOW) for t in tokens), return_exceptions=True)

    clock.now += 1
    results = run(storm())
    assert all(isinstance(r, TokenError) and r.slug == "unknown-key" for r in results)
    # Hostile kids within the interval cost no fetch at all.
    assert issuer.jwks_fetches == 2
    clock.now += 30
    run(storm())
    assert issuer.jwks_fetches == 3


def test_unreachable_issuer_is_503_and_not_hammered(issuer: FakeIssuer) -> None:
    clock = Clock()
    issuer.down = True
    v = verifier(issuer, clock=clock, refetch_interval=30)
    for _ in range(10):
        error = refused(v, issuer.token())
        assert (error.slug, error.status) == ("issuer-unavailable", 503)
        assert error.headers.get("Retry-After")
    assert len(issuer.requests) == 1
    clock.now += 31
    issuer.down = False
    assert verify(v, issuer.token()).san_value == "alice@example.com"


def test_stale_keys_are_used_while_the_issuer_is_down(issuer: FakeIssuer) -> None:
    clock = Clock()
    v = verifier(issuer, clock=clock, jwks_ttl=600, max_stale=3600)
    verify(v, issuer.token())
    issuer.down = True
    clock.now += 700
    assert verify(v, issuer.token()).san_value == "alice@example.com"
    clock.now += 3600
    assert refused(v, issuer.token()).slug == "issuer-unavailable"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda i: setattr(i, "status", 500),
        lambda i: setattr(i, "status", 302),
        lambda i: setattr(i, "discovery_override", {**i.dev.discovery(), "issuer": "https://x"}),
        lambda i: setattr(i, "discovery_override", {"issuer": ISS}),
        lambda i: setattr(
            i, "discovery_override", {"issuer": ISS, "jwks_uri": "http://evil.example/jwks"}
        ),
        lambda i: setattr(i, "discovery_override", [1]),
        lambda i: setattr(i, "jwks_override", b"{"),
        lambda i: setattr(i, "jwks_override", b'{"keys": 5}'),
        lambda i: setattr(i, "jwks_override", b'{"keys": []' + b" " * 300_000 + b"}"),
    ],
)
def test_broken_issuers_are_issuer_unavailable(
    breakage: Callable[[FakeIssuer], None], issuer: FakeIssuer
) -> None:
    breakage(issuer)
    error = refused(verifier(issuer), issuer.token())
    assert (error.slug, error.status) == ("issuer-unavailable", 503)


def test_jwks_with_only_unusable_keys_is_unknown_key(issuer: FakeIssuer) -> None:
    issuer.jwks_override = json.dumps({"keys": [{"kty": "oct", "k": "AA"}]}).encode()
    assert refused(verifier(issuer), issuer.token()).slug == "unknown-key"


def test_slow_issuer_times_out() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    v = TokenVerifier([IssuerConfig(ISS, IssuerType.EMAIL)], http=client, timeout=0.05)
    token = DevIssuer(ISS).token("a@example.com", now=NOW)
    assert refused(v, token).slug == "issuer-unavailable"


def test_issuer_cache_is_bounded() -> None:
    pattern = "https://*.example.com"
    v = TokenVerifier([IssuerConfig(pattern, IssuerType.EMAIL, meta=True)], max_issuers=4)
    for n in range(10):
        v._state(f"https://t{n}.example.com")
    assert len(v._keys) == 4


def test_own_client_is_closed() -> None:
    v = TokenVerifier([IssuerConfig(ISS, IssuerType.EMAIL)])
    client = v._client()
    run(v.aclose())
    assert client.is_closed


def test_global_fetch_budget_bounds_meta_issuer_storms() -> None:
    """Tokens naming many concrete issuers of a pattern cost a bounded number of fetches."""
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(404)

    clock = Clock()
    v = TokenVerifier(
        [IssuerConfig("https://*.example.com", IssuerType.EMAIL, meta=True)],
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        max_fetches_per_minute=5,
        clock=clock,
    )
    for n in range(30):
        token = DevIssuer(f"https://t{n}.example.com").token("a@example.com", now=NOW)
        assert refused(v, token).slug == "issuer-unavailable"
    assert len(requests) == 5  # one discovery attempt each, then the budget is spent
    clock.now += 61
    token = DevIssuer("https://late.example.com").token("a@example.com", now=NOW)
    assert refused(v, token).slug == "issuer-unavailable"
    assert len(requests) == 6


def test_budget_exhaustion_keeps_cached_keys(issuer: FakeIssuer) -> None:
    clock = Clock()
    v = verifier(issuer, clock=clock, max_fetches_per_minute=1, refetch_interval=0)
    verify(v, issuer.token())
    issuer.dev.rotate()
    # The refetch for the new kid is over budget: the cached keys are kept.
    assert refused(v, issuer.token()).slug == "unknown-key"
    assert issuer.jwks_fetches == 1
