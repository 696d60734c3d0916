"""Hostile requests against real ``airseal serve oidc-dev|ct|ca`` processes (SoftHSM keys).

Every row is refused with a 4xx problem document naming its reason, and no
certificate is issued: the CT log's tree size (``GET /ct/v1/get-sth``) does
not move. One good request first shows that the same instance does issue.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt  # PyJWT: a test oracle for forging tokens, never used by toolkit/
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa

from tests.support.ca import csr_pem, csr_request, proof_of_possession, public_key_request
from tests.support.instance import RehearsedCeremony
from tests.support.issuance import IssuanceInstance, http_json

EMAIL = "alice@example.com"


@pytest.fixture(scope="module")
def instance(
    rehearsed_ceremony: RehearsedCeremony, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IssuanceInstance]:
    with IssuanceInstance(rehearsed_ceremony, tmp_path_factory.mktemp("ca-security")) as inst:
        yield inst


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")

    def pad(text: str) -> str:
        return text + "=" * (-len(text) % 4)

    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _claims(inst: IssuanceInstance, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": inst.oidc_url,
        "sub": EMAIL,
        "aud": "sigstore",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "email": EMAIL,
        "email_verified": True,
    }
    claims.update(changes)
    return claims


def _kid(inst: IssuanceInstance) -> str:
    kid: str = inst.jwks()["keys"][0]["kid"]
    return kid


def _alg_none(inst: IssuanceInstance) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": _kid(inst)}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(inst)).encode())}."


def _hs256_with_public_key(inst: IssuanceInstance) -> str:
    # The classic key-confusion attack: HMAC keyed with the issuer's public key.
    public = inst.oidc_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": _kid(inst)}
    signing_input = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(inst)).encode())}"
    )
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _signed(
    inst: IssuanceInstance, claims: dict[str, Any], *, key: Any = None, kid: str | None = None
) -> str:
    token: str = jwt.encode(
        claims,
        key if key is not None else inst.oidc_key,
        algorithm="RS256",
        headers={"kid": kid if kid is not None else _kid(inst)},
    )
    return token


def _tampered(inst: IssuanceInstance) -> str:
    token = inst.token("mallory@example.com")
    header, _, signature = token.split(".")
    claims = _parts(token)[1]
    claims["email"] = claims["sub"] = EMAIL
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


HOSTILE_TOKENS: dict[str, tuple[Callable[[IssuanceInstance], str], int, str]] = {
    "alg none": (_alg_none, 401, "invalid-token"),
    "HS256 keyed with the RSA public key": (_hs256_with_public_key, 401, "invalid-token"),
    "wrong audience": (lambda i: i.token(EMAIL, audience="not-sigstore"), 401, "token-audience"),
    "wrong issuer": (
        lambda i: _signed(i, _claims(i, iss="https://evil.example")),
        401,
        "untrusted-issuer",
    ),
    "expired": (
        lambda i: i.token(
            EMAIL,
            claims={
                "exp": int(time.time()) - 3600,
                "iat": int(time.time()) - 4200,
                "nbf": int(time.time()) - 4200,
            },
        ),
        401,
        "token-expired",
    ),
    "not yet valid": (
        lambda i: i.token(EMAIL, claims={"nbf": int(time.time()) + 3600}),
        401,
        "token-not-yet-valid",
    ),
    "unknown kid": (
        lambda i: _signed(i, _claims(i), key=rsa.generate_private_key(65537, 2048), kid="nope"),
        401,
        "unknown-key",
    ),
    "known kid, other key": (
        lambda i: _signed(i, _claims(i), key=rsa.generate_private_key(65537, 2048)),
        401,
        "token-signature",
    ),
    "tampered payload": (_tampered, 401, "token-signature"),
    "email_verified false": (
        lambda i: i.token(EMAIL, claims={"email_verified": False}),
        401,
        "email-not-verified",
    ),
    "no email": (lambda i: i.token(EMAIL, claims={"email": None}), 401, "identity-claim"),
    "oversized": (
        lambda i: i.token(EMAIL, claims={"padding": "x" * 20000}),
        401,
        "token-too-large",
    ),
    "not a JWT": (lambda i: "not-a-jwt", 401, "invalid-token"),
}


def _assert_refused(
    inst: IssuanceInstance, response: tuple[int, dict[str, str], Any], status: int, slug: str
) -> None:
    got, headers, document = response
    assert got == status, document
    assert headers["content-type"] == "application/problem+json"
    assert isinstance(document, dict), document
    assert document["type"] == f"https://airseal.dev/problems/{slug}"
    assert document["status"] == status
    assert "BEGIN CERTIFICATE" not in json.dumps(document)


@pytest.fixture(scope="module")
def baseline(instance: IssuanceInstance) -> int:
    """Issue one certificate (the instance works), then return the CT tree size."""
    before = instance.ct_tree_size()
    key = ec.generate_private_key(ec.SECP256R1())
    status, _, document = http_json(
        "POST", instance.signing_cert_url, public_key_request(instance.token(EMAIL), key, EMAIL)
    )
    assert status == 201, document
    deadline = time.monotonic() + 10
    while instance.ct_tree_size() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    size = instance.ct_tree_size()
    assert size == before + 1
    return size


@pytest.mark.parametrize("case", sorted(HOSTILE_TOKENS))
def test_hostile_tokens_are_refused(instance: IssuanceInstance, baseline: int, case: str) -> None:
    make, status, slug = HOSTILE_TOKENS[case]
    token = make(instance)
    key = ec.generate_private_key(ec.SECP256R1())
    for body, headers in (
        (public_key_request(token, key, EMAIL), {}),
        (csr_request(None, csr_pem(key)), {"Authorization": f"Bearer {token}"}),
    ):
        response = http_json("POST", instance.signing_cert_url, body, headers=headers)
        _assert_refused(instance, response, status, slug)
    assert instance.ct_tree_size() == baseline


def _pem(public: Any) -> str:
    text: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return text.decode()


def _with_key(token: str, public_pem: str, proof: bytes) -> dict[str, Any]:
    return {
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {
            "publicKey": {"content": public_pem},
            "proofOfPossession": base64.b64encode(proof).decode(),
        },
    }


def _bad_requests(token: str) -> dict[str, tuple[dict[str, Any], int, str]]:
    p256 = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    weak_rsa = rsa.generate_private_key(65537, 1024)
    good_proof = proof_of_possession(p256, EMAIL)
    return {
        "proof over another identity": (
            public_key_request(
                token, p256, EMAIL, proof=proof_of_possession(p256, "bob@example.com")
            ),
            400,
            "invalid-proof-of-possession",
        ),
        "proof by another key": (
            public_key_request(token, p256, EMAIL, proof=proof_of_possession(other, EMAIL)),
            400,
            "invalid-proof-of-possession",
        ),
        "truncated proof": (
            public_key_request(token, p256, EMAIL, proof=good_proof[:-3]),
            400,
            "invalid-proof-of-possession",
        ),
        "RSA proof with SHA-1": (
            public_key_request(
                token, rsa_key, EMAIL, proof=proof_of_possession(rsa_key, EMAIL, hash_name="sha1")
            ),
            400,
            "invalid-proof-of-possession",
        ),
        "proof not base64": (
            {
                "credentials": {"oidcIdentityToken": token},
                "publicKeyRequest": {
                    "publicKey": {"content": _pem(p256.public_key())},
                    "proofOfPossession": "%%%",
                },
            },
            400,
            "invalid-request",
        ),
        "CSR with a bad signature": (
            csr_request(token, csr_pem(p256, tamper=True)),
            400,
            "invalid-proof-of-possession",
        ),
        "CSR garbage": (
            csr_request(token, b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"),
            400,
            "invalid-csr",
        ),
        "CSR with a weak key": (csr_request(token, csr_pem(weak_rsa)), 400, "weak-key"),
        "RSA-1024": (public_key_request(token, weak_rsa, EMAIL), 400, "weak-key"),
        "RSA e=3": (
            _with_key(token, _pem(rsa.generate_private_key(3, 2048).public_key()), b"x"),
            400,
            "weak-key",
        ),
        "P-224": (
            public_key_request(token, ec.generate_private_key(ec.SECP224R1()), EMAIL),
            400,
            "weak-key",
        ),
        "secp256k1": (
            public_key_request(token, ec.generate_private_key(ec.SECP256K1()), EMAIL),
            400,
            "unsupported-key",
        ),
        "Ed448": (
            _with_key(token, _pem(ed448.Ed448PrivateKey.generate().public_key()), b"x"),
            400,
            "unsupported-key",
        ),
        "not a public key": (
            _with_key(token, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", b"x"),
            400,
            "invalid-public-key",
        ),
        "unknown field": (
            {**public_key_request(token, p256, EMAIL), "x": 1},
            400,
            "invalid-request",
        ),
    }


BAD_REQUEST_CASES = sorted(_bad_requests("t"))


@pytest.mark.parametrize("case", BAD_REQUEST_CASES)
def test_bad_keys_and_proofs_are_refused(
    instance: IssuanceInstance, baseline: int, case: str
) -> None:
    body, status, slug = _bad_requests(instance.token(EMAIL))[case]
    response = http_json("POST", instance.signing_cert_url, body)
    _assert_refused(instance, response, status, slug)
    assert instance.ct_tree_size() == baseline


def test_malformed_bodies_are_refused(instance: IssuanceInstance, baseline: int) -> None:
    token = instance.token(EMAIL)
    cases: list[tuple[bytes, int, str]] = [
        (b"{", 400, "invalid-request"),
        (
            b'{"credentials":{"oidcIdentityToken":"a"},"credentials":{"oidcIdentityToken":"b"}}',
            400,
            "invalid-request",
        ),
        (b"{}", 401, "missing-token"),
        (
            json.dumps({"credentials": {"oidcIdentityToken": token}}).encode(),
            400,
            "invalid-request",
        ),
        (b'{"x":"' + b"a" * 70000 + b'"}', 413, "request-too-large"),
    ]
    for body, status, slug in cases:
        _assert_refused(
            instance, http_json("POST", instance.signing_cert_url, body=body), status, slug
        )
    assert instance.ct_tree_size() == baseline


def test_nothing_refused_reached_the_log(
    instance: IssuanceInstance, baseline: int, tmp_path: Path
) -> None:
    # After the whole table (this module's tests run in file order), still no new entry.
    assert instance.ct_tree_size() == baseline
