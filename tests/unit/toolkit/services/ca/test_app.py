"""The CA's HTTP edge: Fulcio v2 shapes, strict parsing, problem documents."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.support.ca import (
    CA_NOT_BEFORE,
    FakeCT,
    SoftwareChain,
    csr_pem,
    csr_request,
    principal,
    proof_of_possession,
    public_key_request,
    software_chain,
)
from toolkit.errors import TransportError
from toolkit.services.ca.app import MAX_REQUEST_BYTES, create_app, issuer_configuration
from toolkit.services.ca.issuance import CertificateAuthority, ct_logs_from_keys
from toolkit.services.ca.oidc import IssuerConfig, IssuerType, Principal, TokenError

NOW = dt.datetime(2026, 12, 3, 12, 0, 0, tzinfo=dt.UTC)
PATH = "/api/v2/signingCert"
EMAIL = "alice@example.com"


class FakeVerifier:
    """Tokens are names of principals; anything else is refused like the real verifier."""

    def __init__(self) -> None:
        self.principals: dict[str, Principal] = {
            "good": principal("email", EMAIL),
            "uri": principal("uri", "https://ci.example.com/job/1", challenge="job-1"),
        }
        self.calls: list[str] = []

    async def verify(self, token: str, now: dt.datetime) -> Principal:
        self.calls.append(token)
        if token == "down":
            raise TransportError("issuer unreachable")
        if token == "expired":
            raise TokenError("token-expired", "token expired (exp)")
        try:
            return self.principals[token]
        except KeyError:
            raise TokenError("invalid-token", "not a JWT") from None


ISSUERS = [
    IssuerConfig("https://oidc.example.com", IssuerType.EMAIL),
    IssuerConfig(
        "https://*.oidc.example.net",
        IssuerType.URI,
        subject_domain="https://ci.example.com",
        meta=True,
    ),
    IssuerConfig(
        "https://spiffe.example.org",
        IssuerType.SPIFFE,
        client_id="other",
        spiffe_trust_domain="example.org",
    ),
]


@pytest.fixture(scope="module")
def chain() -> SoftwareChain:
    return software_chain()


@pytest.fixture
def ct() -> FakeCT:
    return FakeCT()


@pytest.fixture
def client(chain: SoftwareChain, ct: FakeCT) -> TestClient:
    logs = ct_logs_from_keys([ct.public_key], start=CA_NOT_BEFORE)
    ca = CertificateAuthority(chain.signer, chain.chain, ct, logs)
    app = create_app(ca, FakeVerifier(), ISSUERS, clock=lambda: NOW)
    return TestClient(app, raise_server_exceptions=False)


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["type"] == f"https://airseal.dev/problems/{slug}"
    assert document["status"] == status
    assert document["message"] == document["detail"]
    assert "Traceback" not in response.text
    return document


def test_public_key_request_answers_fulcio_shape(
    client: TestClient, ct: FakeCT, chain: SoftwareChain
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    response = client.post(PATH, json=public_key_request("good", key, EMAIL, algorithm="ECDSA"))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert list(document) == ["signedCertificateEmbeddedSct"]
    pems = document["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    certs = [x509.load_pem_x509_certificate(p.encode()) for p in pems]
    assert certs[1:] == chain.chain
    assert certs[0].public_key() == key.public_key()
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.RFC822Name(EMAIL)]
    assert len(ct.chains) == 1


def test_csr_with_bearer_token_as_sigstore_python_sends_it(client: TestClient, ct: FakeCT) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    response = client.post(
        PATH,
        content=json.dumps(csr_request(None, csr_pem(key))),
        headers={
            "Authorization": "Bearer good",
            "Content-Type": "application/json",
            "Accept": "application/pem-certificate-chain",
        },
    )
    assert response.status_code == 201, response.text
    pems = response.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    assert x509.load_pem_x509_certificate(pems[0].encode()).public_key() == key.public_key()


def test_uri_principal_signs_its_subject(client: TestClient) -> None:
    key = rsa.generate_private_key(65537, 2048)
    response = client.post(PATH, json=public_key_request("uri", key, "job-1"))
    assert response.status_code == 201, response.text
    # The email would be the wrong challenge for a URI principal.
    response = client.post(
        PATH, json=public_key_request("uri", key, "https://ci.example.com/job/1")
    )
    problem(response, 400, "invalid-proof-of-possession")


def test_same_token_in_header_and_body_is_fine(client: TestClient) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = public_key_request("good", key, EMAIL)
    response = client.post(PATH, json=body, headers={"Authorization": "Bearer good"})
    assert response.status_code == 201
    response = client.post(PATH, json=body, headers={"Authorization": "Bearer uri"})
    problem(response, 400, "invalid-request")


def _body(**changes: Any) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    document = public_key_request("good", key, EMAIL)
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("content", "status", "slug"),
    [
        (b"", 400, "invalid-request"),
        (b"[]", 400, "invalid-request"),
        (b"{", 400, "invalid-request"),
        (b'{"credentials":{"oidcIdentityToken":"good"},"credentials":{}}', 400, "invalid-request"),
        (b"\xff\xfe", 400, "invalid-request"),
        (b'{"a":NaN}', 400, "invalid-request"),
        (b"{}", 401, "missing-token"),
        (b'{"credentials":{}}', 400, "invalid-request"),
        (b'{"credentials":{"oidcIdentityToken":5}}', 400, "invalid-request"),
        (b'{"credentials":{"oidcIdentityToken":"good","x":1}}', 400, "invalid-request"),
        (b'{"credentials":{"oidcIdentityToken":"good"}}', 400, "invalid-request"),
        (
            b'{"credentials":{"oidcIdentityToken":"good"},"publicKeyRequest":[]}',
            400,
            "invalid-request",
        ),
        (
            b'{"credentials":{"oidcIdentityToken":"good"},"publicKeyRequest":{"publicKey":{}}}',
            400,
            "invalid-request",
        ),
        (
            b'{"credentials":{"oidcIdentityToken":"good"},"certificateSigningRequest":7}',
            400,
            "invalid-request",
        ),
    ],
)
def test_malformed_requests(
    client: TestClient, ct: FakeCT, content: bytes, status: int, slug: str
) -> None:
    response = client.post(PATH, content=content, headers={"Content-Type": "application/json"})
    problem(response, status, slug)
    assert ct.chains == []


def test_unknown_and_conflicting_fields(client: TestClient, ct: FakeCT) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    both = _body(certificateSigningRequest=base64.b64encode(csr_pem(key)).decode())
    problem(client.post(PATH, json=both), 400, "invalid-request")
    problem(client.post(PATH, json=_body(extra=1)), 400, "invalid-request")
    nested = _body()
    nested["publicKeyRequest"]["extra"] = True
    problem(client.post(PATH, json=nested), 400, "invalid-request")
    nested = _body()
    nested["publicKeyRequest"]["publicKey"]["extra"] = True
    problem(client.post(PATH, json=nested), 400, "invalid-request")
    nested = _body()
    del nested["publicKeyRequest"]["proofOfPossession"]
    problem(client.post(PATH, json=nested), 400, "invalid-request")
    nested = _body()
    nested["publicKeyRequest"]["proofOfPossession"] = "***"
    problem(client.post(PATH, json=nested), 400, "invalid-request")
    assert ct.chains == []


def test_size_cap_and_media_type(client: TestClient, ct: FakeCT) -> None:
    big = b'{"x":"' + b"a" * MAX_REQUEST_BYTES + b'"}'
    problem(
        client.post(PATH, content=big, headers={"Content-Type": "application/json"}),
        413,
        "request-too-large",
    )
    problem(
        client.post(PATH, content=b"{}", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported-media-type",
    )
    assert ct.chains == []


@pytest.mark.parametrize(
    ("token", "headers", "status", "slug"),
    [
        ("nonsense", {}, 401, "invalid-token"),
        ("expired", {}, 401, "token-expired"),
        ("down", {}, 503, "issuer-unavailable"),
        (None, {"Authorization": "Basic Zm9vOmJhcg=="}, 401, "invalid-token"),
        (None, {"Authorization": "Bearer"}, 401, "invalid-token"),
    ],
)
def test_token_refusals(
    client: TestClient,
    ct: FakeCT,
    token: str | None,
    headers: dict[str, str],
    status: int,
    slug: str,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    response = client.post(PATH, json=public_key_request(token, key, EMAIL), headers=headers)
    problem(response, status, slug)
    assert ct.chains == []


def test_key_refusals(client: TestClient, ct: FakeCT) -> None:
    weak = rsa.generate_private_key(65537, 1024)
    problem(client.post(PATH, json=public_key_request("good", weak, EMAIL)), 400, "weak-key")
    key = ec.generate_private_key(ec.SECP256R1())
    wrong = public_key_request(
        "good", key, EMAIL, proof=proof_of_possession(key, "bob@example.com")
    )
    problem(client.post(PATH, json=wrong), 400, "invalid-proof-of-possession")
    problem(
        client.post(PATH, json=csr_request("good", csr_pem(key, tamper=True))),
        400,
        "invalid-proof-of-possession",
    )
    problem(client.post(PATH, json=csr_request("good", b"junk")), 400, "invalid-csr")
    problem(client.post(PATH, json=csr_request("good", csr_pem(weak))), 400, "weak-key")
    bad_pem = public_key_request("good", key, EMAIL)
    bad_pem["publicKeyRequest"]["publicKey"]["content"] = (
        "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"
    )
    problem(client.post(PATH, json=bad_pem), 400, "invalid-public-key")
    assert ct.chains == []


@pytest.mark.parametrize(
    ("fail", "status", "slug"),
    [
        ("down", 503, "ct-unavailable"),
        ("refuse", 502, "ct-refused"),
        ("tamper", 502, "ct-invalid-sct"),
    ],
)
def test_ct_failures(client: TestClient, ct: FakeCT, fail: Any, status: int, slug: str) -> None:
    ct.fail = fail
    key = ec.generate_private_key(ec.SECP256R1())
    response = client.post(PATH, json=public_key_request("good", key, EMAIL))
    problem(response, status, slug)
    assert "BEGIN CERTIFICATE" not in response.text


def test_trust_bundle(client: TestClient, chain: SoftwareChain) -> None:
    response = client.get("/api/v2/trustBundle")
    assert response.status_code == 200
    (only,) = response.json()["chains"]
    assert [x509.load_pem_x509_certificate(p.encode()) for p in only["certificates"]] == chain.chain


def test_configuration(client: TestClient) -> None:
    response = client.get("/api/v2/configuration")
    assert response.status_code == 200
    assert response.json() == {
        "issuers": [
            {
                "issuerUrl": "https://oidc.example.com",
                "audience": "sigstore",
                "challengeClaim": "email",
            },
            {
                "wildcardIssuerUrl": "https://*.oidc.example.net",
                "audience": "sigstore",
                "challengeClaim": "sub",
            },
            {
                "issuerUrl": "https://spiffe.example.org",
                "audience": "other",
                "challengeClaim": "sub",
                "spiffeTrustDomain": "example.org",
            },
        ]
    }
    assert issuer_configuration([]) == {"issuers": []}


def test_healthz_and_unknown_paths(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    problem(client.get("/nope"), 404, "not-found")
    problem(client.get(PATH), 405, "method-not-allowed")
    problem(client.post("/api/v2/trustBundle"), 405, "method-not-allowed")


def test_unexpected_errors_are_bare_problems(chain: SoftwareChain) -> None:
    class Broken:
        async def verify(self, token: str, now: dt.datetime) -> Principal:
            raise RuntimeError("secret detail")

    ct = FakeCT()
    ca = CertificateAuthority(
        chain.signer, chain.chain, ct, ct_logs_from_keys([ct.public_key], start=CA_NOT_BEFORE)
    )
    client = TestClient(create_app(ca, Broken(), []), raise_server_exceptions=False)
    key = ec.generate_private_key(ec.SECP256R1())
    response = client.post(PATH, json=public_key_request("good", key, EMAIL))
    document = problem(response, 500, "internal-error")
    assert "secret" not in json.dumps(document)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "credentials",
                    "oidcIdentityToken",
                    "publicKeyRequest",
                    "publicKey",
                    "content",
                    "algorithm",
                    "proofOfPossession",
                    "certificateSigningRequest",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_json_values, raw=st.binary(max_size=64), use_raw=st.booleans())
def test_arbitrary_bodies_get_a_4xx_problem(
    client: TestClient, ct: FakeCT, document: Any, raw: bytes, use_raw: bool
) -> None:
    body = raw if use_raw else json.dumps(document).encode()
    response = client.post(PATH, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert ct.chains == []
