"""Unit tests of the signing client (toolkit.sign) with in-memory fakes of the services.

The fakes answer over ``httpx.MockTransport`` with real cores where cheap:
the CA checks the proof of possession with the CA's own code and issues a
FakeSigstore leaf (one SCT); the TSA is airseal's ``TimestampAuthority`` with
FakeSigstore's TSA chain; the log parses the request with the log's own
``hashedrekord`` parser and logs the body in FakeSigstore's Rekor v2 log.
Every bundle the client returns has passed the airseal verifier.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.factory import DEFAULT_TIME, FakeSigstore, LogTweaks
from toolkit.errors import Check, TransportError, UsageError, VerificationError
from toolkit.models.common import TimeRange
from toolkit.models.signing_config import Service, SigningConfig
from toolkit.models.trustroot import TrustedRoot
from toolkit.sign import (
    Endpoints,
    ServiceRefusedError,
    SigningClient,
    check_issued_chain,
    check_payload_type,
    check_timestamp_reply,
    endpoints_from_signing_config,
    hashedrekord_request,
    in_toto_statement,
    load_trust_config,
    parse_issued_chain,
    parse_log_entry,
    read_token,
    signing_cert_request,
    timestamp_request,
    tsa_endpoint,
    write_bundle,
)
from toolkit.signing import KeyAlgorithm, SoftwareSigner
from toolkit.verify import Artifact, KeyPolicy, Verifier

NOW = DEFAULT_TIME + dt.timedelta(minutes=2)
EMAIL = "signer@airseal.test"
ISSUER = "https://oidc.airseal.test"
ARTIFACT = b"unit-test artifact\n"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(claims: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(b'signature')}"


TOKEN = make_token({"iss": ISSUER, "sub": "user-1", "email": EMAIL, "exp": 2_000_000_000})


class _PublicOnly:
    """What FakeSigstore.issue_leaf needs of a key: its public half."""

    def __init__(self, public: ec.EllipticCurvePublicKey) -> None:
        self._public = public

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public


class FakeServices:
    """CA, TSA and log behind one MockTransport; ``mode`` switches faults on."""

    def __init__(self) -> None:
        from toolkit.services.tsa.core import TimestampAuthority

        self.fake = FakeSigstore()
        self.rogue = FakeSigstore(seed="rogue")
        self.root = TrustedRoot.from_dict(self.fake.trusted_root(tlogs=("v2",)))
        self.tsa = TimestampAuthority(
            SoftwareSigner(cast(Any, self.fake.tsa.leaf_key)), self.fake.tsa.certificates
        )
        self.mode: dict[str, str] = {}
        self.requests: list[tuple[str, bytes]] = []
        self.endpoints = Endpoints.explicit("http://ca.fake", "http://tsa.fake", "http://log.fake")

    def handler(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        body = request.content
        self.requests.append((host, body))
        mode = self.mode.get(host.split(".")[0], "")
        if mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if mode == "503":
            return httpx.Response(503, json={"type": "x/log-unavailable", "detail": "busy"})
        if host == "ca.fake":
            return self._ca(body, mode)
        if host == "tsa.fake":
            return httpx.Response(200, content=self.tsa.respond(body, NOW))
        return self._log(body)

    def _ca(self, body: bytes, mode: str) -> httpx.Response:
        from toolkit.services.ca.issuance import load_public_key, verify_proof_of_possession

        if mode == "refuse":
            return httpx.Response(
                401,
                json={
                    "type": "https://airseal.dev/problems/token-expired",
                    "title": "Token expired",
                    "status": 401,
                    "detail": "the identity token expired",
                },
            )
        document = json.loads(body)
        key_request = document["publicKeyRequest"]
        public = load_public_key(key_request["publicKey"]["content"], "ECDSA")
        verify_proof_of_possession(
            public, base64.b64decode(key_request["proofOfPossession"]), EMAIL
        )
        assert isinstance(public, ec.EllipticCurvePublicKey)
        if mode == "wrong-key":
            public = ec.generate_private_key(ec.SECP256R1()).public_key()
        issuer = self.rogue if mode == "rogue" else self.fake
        leaf = issuer.issue_leaf(EMAIL, ISSUER, key=cast(Any, _PublicOnly(public)))
        chain = [leaf.cert, *issuer.ca.chain]
        pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in chain]
        return httpx.Response(
            201, json={"signedCertificateEmbeddedSct": {"chain": {"certificates": pems}}}
        )

    def _log(self, body: bytes) -> httpx.Response:
        from toolkit.services.log.hashedrekord import RequestError, parse_request

        try:
            entry = parse_request(body).entry()
        except RequestError as exc:
            return httpx.Response(exc.status, json=exc.to_problem())
        answer = self.fake.rekor_v2.entry(
            entry.body,
            kind="hashedrekord",
            version="0.0.2",
            integrated_time=NOW,
            tweaks=LogTweaks(),
        )
        return httpx.Response(201, json=answer)

    def client(self) -> SigningClient:
        http = httpx.Client(transport=httpx.MockTransport(self.handler))
        return SigningClient(self.root, self.endpoints, http=http, clock=lambda: NOW)


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


# --------------------------------------------------------------------------- flows


def test_keyless_message_signature(services: FakeServices) -> None:
    lines: list[str] = []
    client = services.client()
    client._progress = lines.append
    result = client.sign_keyless(ARTIFACT, TOKEN)
    bundle = result.bundle
    assert bundle.media_type.value == "application/vnd.dev.sigstore.bundle.v0.3+json"
    material = bundle.verification_material
    assert material.certificate is not None and material.public_key is None
    assert len(material.tlog_entries) == 1 and len(material.timestamps) == 1
    assert result.verification.identity == EMAIL
    assert result.verification.issuer == ISSUER
    assert bundle.message_signature is not None
    assert bundle.message_signature.message_digest is not None
    assert bundle.message_signature.message_digest.digest == hashlib.sha256(ARTIFACT).digest()
    # The request order is the documented flow; the token goes to the CA only.
    assert [host for host, _ in services.requests] == ["ca.fake", "tsa.fake", "log.fake"]
    assert all(TOKEN.encode() not in body for host, body in services.requests if host != "ca.fake")
    assert len(lines) == 4 and all(TOKEN not in line for line in lines)
    summary = result.summary(Path("out.json"))
    assert summary["identity"] == EMAIL and summary["log"]["index"] >= 0
    assert summary["integratedTime"] is None and summary["timestamps"][0]["source"] == "tsa"
    # Independent check with a fresh verifier.
    Verifier(services.root).verify(
        bundle.to_json(),
        Artifact.from_bytes(ARTIFACT),
        _identity_policy(),
        now=NOW,
    )


def _identity_policy() -> Any:
    from toolkit.verify import IdentityPolicy

    return IdentityPolicy(issuer=ISSUER, identity=EMAIL)


def test_keyless_dsse(services: FakeServices) -> None:
    result = services.client().sign_keyless(ARTIFACT, TOKEN, dsse=True, name="app.tar")
    envelope = result.bundle.dsse_envelope
    assert envelope is not None and envelope.payload_type == "application/vnd.in-toto+json"
    statement = json.loads(envelope.payload)
    assert statement["subject"] == [
        {"name": "app.tar", "digest": {"sha256": hashlib.sha256(ARTIFACT).hexdigest()}}
    ]
    # The log recorded SHA-256 of the PAE (Rekor v2 DSSE as hashedrekord).
    body = json.loads(result.bundle.verification_material.tlog_entries[0].canonicalized_body)
    digest = body["spec"]["hashedRekordV002"]["data"]["digest"]
    assert base64.b64decode(digest) == hashlib.sha256(envelope.pae()).digest()
    assert result.verification.content == "dsseEnvelope"


@pytest.mark.parametrize("dsse", [False, True])
def test_managed_key(services: FakeServices, dsse: bool) -> None:
    signer = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P384)
    result = services.client().sign_with_key(ARTIFACT, signer, dsse=dsse)
    material = result.bundle.verification_material
    assert material.public_key is not None and material.public_key.hint == signer.key_id
    assert material.certificate is None and len(material.timestamps) == 1
    assert result.verification.identity is None
    assert [host for host, _ in services.requests] == ["tsa.fake", "log.fake"]
    body = json.loads(material.tlog_entries[0].canonicalized_body)
    data = body["spec"]["hashedRekordV002"]["data"]
    assert data["algorithm"] == "SHA2_384"
    Verifier(services.root).verify(
        result.bundle, Artifact.from_bytes(ARTIFACT), KeyPolicy(signer.public_key), now=NOW
    )


def test_managed_ed25519_key_is_refused_before_any_request(services: FakeServices) -> None:
    signer = SoftwareSigner.generate(KeyAlgorithm.ED25519)
    with pytest.raises(UsageError, match="hashedrekord"):
        services.client().sign_with_key(ARTIFACT, signer)
    assert services.requests == []


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("service", ["ca", "tsa", "log"])
def test_unreachable_service_is_a_transport_error(services: FakeServices, service: str) -> None:
    services.mode[service] = "down"
    with pytest.raises(TransportError) as caught:
        services.client().sign_keyless(ARTIFACT, TOKEN)
    assert caught.value.exit_code == 3
    name = {"ca": "CA", "tsa": "TSA", "log": "log"}[service]
    assert str(caught.value) == f"the {name} at http://{service}.fake is unreachable (ConnectError)"
    assert TOKEN not in str(caught.value)


def test_server_error_is_a_transport_error_with_the_detail(services: FakeServices) -> None:
    services.mode["log"] = "503"
    with pytest.raises(TransportError, match=r"failed \(503\): busy"):
        services.client().sign_keyless(ARTIFACT, TOKEN)


def test_ca_refusal_names_the_problem_slug(services: FakeServices) -> None:
    services.mode["ca"] = "refuse"
    with pytest.raises(ServiceRefusedError) as caught:
        services.client().sign_keyless(ARTIFACT, TOKEN)
    error = caught.value
    assert (error.service, error.status, error.slug) == ("ca", 401, "token-expired")
    assert error.exit_code == 2
    assert str(error) == (
        "the CA refused the request (401 token-expired): the identity token expired"
    )


def test_certificate_for_another_key_is_refused(services: FakeServices) -> None:
    services.mode["ca"] = "wrong-key"
    with pytest.raises(VerificationError) as caught:
        services.client().sign_keyless(ARTIFACT, TOKEN)
    assert caught.value.check is Check.KEY_MISMATCH
    assert [host for host, _ in services.requests] == ["ca.fake"]


def test_certificate_from_an_untrusted_ca_is_refused(services: FakeServices) -> None:
    services.mode["ca"] = "rogue"
    with pytest.raises(VerificationError) as caught:
        services.client().sign_keyless(ARTIFACT, TOKEN)
    assert caught.value.check is Check.CERT_CHAIN
    # Nothing was signed with the key, let alone logged.
    assert [host for host, _ in services.requests] == ["ca.fake"]


def test_untrusted_sct_is_refused(services: FakeServices) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = services.fake.issue_leaf(EMAIL, ISSUER, key=key, tamper_sct=True)
    with pytest.raises(VerificationError) as caught:
        check_issued_chain(
            [leaf.cert, *services.fake.ca.chain], key.public_key(), services.root, NOW
        )
    assert caught.value.check is Check.CERT_SCT


def test_check_issued_chain_accepts_a_good_chain(services: FakeServices) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = services.fake.issue_leaf(EMAIL, ISSUER, key=key)
    chain = [leaf.cert, *services.fake.ca.chain]
    assert check_issued_chain(chain, key.public_key(), services.root, NOW) == leaf.cert
    # The chain must be valid now: after the leaf expired it is refused.
    with pytest.raises(VerificationError) as caught:
        check_issued_chain(chain, key.public_key(), services.root, NOW + dt.timedelta(hours=1))
    assert caught.value.check is Check.CERT_CHAIN


# --------------------------------------------------------------------------- pure steps


def test_read_token() -> None:
    claims = read_token(TOKEN)
    assert (claims.issuer, claims.subject, claims.email) == (ISSUER, "user-1", EMAIL)
    assert claims.challenge == EMAIL and claims.expires == 2_000_000_000
    no_email = read_token(make_token({"iss": ISSUER, "sub": "repo:org/x"}))
    assert no_email.challenge == "repo:org/x" and no_email.email is None


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc", "not a JWT"),
        ("a.b", "not a JWT"),
        ("a..c", "not a JWT"),
        ("a.!!!.c", "base64url"),
        (f"a.{_b64url(b'not json')}.c", "not JSON"),
        (f"a.{_b64url(b'[1]')}.c", "JSON object"),
        (make_token({"sub": "x"}), "'iss'"),
        (make_token({"iss": ISSUER}), "'sub'"),
        ("a." + "b" * 20000 + ".c", "longer"),
    ],
)
def test_read_token_refusals_never_quote_the_token(token: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        read_token(token)
    assert token not in str(caught.value)


def test_signing_cert_request_proof_verifies_with_the_ca_code() -> None:
    from toolkit.services.ca.issuance import load_public_key, verify_proof_of_possession

    key = ec.generate_private_key(ec.SECP256R1())
    document = signing_cert_request(TOKEN, key, EMAIL)
    assert document["credentials"] == {"oidcIdentityToken": TOKEN}
    request = document["publicKeyRequest"]
    public = load_public_key(request["publicKey"]["content"], request["publicKey"]["algorithm"])
    verify_proof_of_possession(public, base64.b64decode(request["proofOfPossession"]), EMAIL)


def test_parse_issued_chain_refuses_nonsense() -> None:
    documents: list[Any] = [
        {},
        {"signedCertificateEmbeddedSct": {"chain": {"certificates": []}}},
        [],
    ]
    for document in documents:
        with pytest.raises(TransportError, match="signedCertificateEmbeddedSct"):
            parse_issued_chain(document)
    with pytest.raises(TransportError):
        parse_issued_chain(
            {"signedCertificateEmbeddedSct": {"chain": {"certificates": ["not pem"]}}}
        )


def test_timestamp_request_is_accepted_by_the_tsa_parser() -> None:
    from toolkit.services.tsa.core import parse_request

    signature = b"\x30\x45" + b"s" * 70
    for nonce in (0, 1, 127, 128, 255, 2**63 - 1):
        request = parse_request(timestamp_request(signature, nonce))
        assert request.hash_algorithm == "sha256"
        assert request.hashed_message == hashlib.sha256(signature).digest()
        assert request.nonce == nonce and request.cert_req and request.policy is None
    with pytest.raises(ValueError, match="negative"):
        timestamp_request(signature, -1)


def test_check_timestamp_reply(services: FakeServices) -> None:
    signature = b"a signature"
    reply = services.tsa.respond(timestamp_request(signature, 42), NOW)
    assert check_timestamp_reply(reply, signature, 42) == NOW.replace(microsecond=0)
    with pytest.raises(TransportError, match="nonce"):
        check_timestamp_reply(reply, signature, 43)
    with pytest.raises(TransportError, match="imprint"):
        check_timestamp_reply(reply, b"another signature", 42)
    with pytest.raises(TransportError, match="malformed"):
        check_timestamp_reply(b"\x30\x00", signature, 42)
    # A rejection travels inside a well-formed reply.
    rejected = services.tsa.respond(b"\x30\x03\x02\x01\x07", NOW)
    with pytest.raises(ServiceRefusedError) as caught:
        check_timestamp_reply(rejected, signature, 42)
    assert caught.value.service == "tsa"


def test_hashedrekord_request_is_accepted_by_the_log_parser() -> None:
    from toolkit.services.log.hashedrekord import parse_request

    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(ARTIFACT).digest()
    signature = key.sign(ARTIFACT, ec.ECDSA(hashes.SHA256()))
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    document = hashedrekord_request(digest, signature, "PKIX_ECDSA_P256_SHA_256", public_key=spki)
    parse_request(json.dumps(document).encode())
    with pytest.raises(ValueError, match="exactly one"):
        hashedrekord_request(digest, signature, "PKIX_ECDSA_P256_SHA_256")


def test_parse_log_entry_requires_an_inclusion_proof_with_checkpoint() -> None:
    fake = FakeSigstore()
    entry = fake.rekor_v2.entry(
        b"{}", kind="hashedrekord", version="0.0.2", integrated_time=NOW, tweaks=LogTweaks()
    )
    assert parse_log_entry(entry).log_index == int(entry["logIndex"])
    del entry["inclusionProof"]["checkpoint"]
    with pytest.raises(TransportError, match="checkpoint"):
        parse_log_entry(entry)
    with pytest.raises(TransportError, match="malformed"):
        parse_log_entry({"logIndex": "x"})


def test_in_toto_statement_and_payload_type() -> None:
    digest = hashlib.sha256(b"x").digest()
    statement = json.loads(in_toto_statement("x.bin", digest))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "x.bin", "digest": {"sha256": digest.hex()}}]
    assert statement["predicate"] == {}
    check_payload_type("application/vnd.in-toto+json")
    with pytest.raises(UsageError, match="payload type"):
        check_payload_type("text/plain")


def _service(url: str, version: int, start: str, end: str | None = None) -> Service:
    valid = TimeRange.from_dict({"start": start, **({"end": end} if end else {})})
    return Service(url=url, major_api_version=version, valid_for=valid, operator="t")


def test_endpoints_from_signing_config_picks_the_first_valid_service() -> None:
    config = SigningConfig(
        ca_urls=(
            _service("https://old-ca", 1, "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
            _service("https://ca/", 1, "2020-01-01T00:00:00Z"),
        ),
        rekor_tlog_urls=(
            _service("https://rekor-v1", 1, "2020-01-01T00:00:00Z"),
            _service("https://future-log", 2, "2030-01-01T00:00:00Z"),
            _service("https://log", 2, "2020-01-01T00:00:00Z"),
        ),
        tsa_urls=(_service("https://tsa/api/v1/timestamp", 1, "2020-01-01T00:00:00Z"),),
    )
    endpoints = endpoints_from_signing_config(config, NOW)
    assert endpoints == Endpoints(
        ca="https://ca", tsa="https://tsa/api/v1/timestamp", log="https://log"
    )
    assert endpoints.replace(log="http://other/").log == "http://other"
    with pytest.raises(UsageError, match="CA"):
        endpoints_from_signing_config(SigningConfig(rekor_tlog_urls=config.rekor_tlog_urls), NOW)
    managed = endpoints_from_signing_config(
        SigningConfig(rekor_tlog_urls=config.rekor_tlog_urls, tsa_urls=config.tsa_urls),
        NOW,
        need_ca=False,
    )
    assert managed.ca is None


def test_tsa_endpoint_and_url_checks() -> None:
    assert tsa_endpoint("http://127.0.0.1:3004") == "http://127.0.0.1:3004/api/v1/timestamp"
    assert tsa_endpoint("http://t/api/v1/timestamp/") == "http://t/api/v1/timestamp"
    assert tsa_endpoint("http://t/custom") == "http://t/custom"
    with pytest.raises(UsageError, match="not an http"):
        Endpoints.explicit("ftp://ca", "http://tsa", "http://log")


def test_load_trust_config(services: FakeServices) -> None:
    signing_config = {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json"}
    root, config = load_trust_config(json.dumps(signing_config).encode())
    assert root is None and config.ca_urls == ()
    document = {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": services.fake.trusted_root(tlogs=("v2",)),
        "signingConfig": signing_config,
    }
    root, _ = load_trust_config(json.dumps(document).encode())
    assert root == services.root


def test_write_bundle_is_atomic(services: FakeServices, tmp_path: Path) -> None:
    result = services.client().sign_keyless(ARTIFACT, TOKEN)
    path = tmp_path / "b.sigstore.json"
    path.write_text("old")
    write_bundle(path, result.bundle)
    assert json.loads(path.read_bytes())["mediaType"].endswith("v0.3+json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.sigstore.json"]
    from toolkit.errors import EnvironmentSetupError

    with pytest.raises(EnvironmentSetupError):
        write_bundle(tmp_path / "missing-dir" / "b.json", result.bundle)
