"""Certificates from ``airseal serve ca`` verify with airseal's verifier and sigstore-python.

A real instance on 127.0.0.1 with the rehearsed ceremony's SoftHSM keys:
oidc-dev, the CT log, the CA, the TSA and a Rekor v2 transparency log. A
signer gets a certificate (a CSR with the token as a Bearer header, as
sigstore-python asks), signs an artifact, logs it and timestamps the
signature; the bundle assembled from the services' answers then passes

* airseal's verifier against the ceremony's ``trusted_root.json``: chain,
  SCT, profile, identity, log entry and timestamp;
* sigstore-python's ``Verifier`` with the same trusted root (its chain, SCT,
  identity, tlog and TSA checks), and its own SCT check on the bare
  certificate (the one it runs while signing, against the CT keys valid now).

Last, sigstore-python signs by itself through this instance, unchanged: a
ClientTrustConfig names the CA, TSA and log; its Signer sends a CSR to the
CA, checks the SCT, timestamps and logs the signature; both verifiers accept
the bundle it writes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.interop.test_differential import airseal_verdict, sigstore_verdict
from tests.support.ca import csr_pem, csr_request, public_key_request
from tests.support.instance import RehearsedCeremony
from tests.support.issuance import IssuanceInstance, http_json
from tests.support.log_server import hashedrekord_document, log_bundle, logged_signature
from toolkit.verify import Artifact

pytestmark = pytest.mark.interop

EMAIL = "interop@example.com"
ARTIFACT = b"airseal issuance interop artifact\n"


@pytest.fixture(scope="module")
def instance(
    rehearsed_ceremony: RehearsedCeremony, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IssuanceInstance]:
    work = tmp_path_factory.mktemp("ca-interop")
    with IssuanceInstance(rehearsed_ceremony, work, tsa=True, log=True) as inst:
        yield inst


def _certificate(
    instance: IssuanceInstance, key: ec.EllipticCurvePrivateKey, csr: bool
) -> list[x509.Certificate]:
    token = instance.token(EMAIL)
    if csr:
        body = csr_request(None, csr_pem(key))
        headers = {"Authorization": f"Bearer {token}"}
    else:
        body, headers = public_key_request(token, key, EMAIL), {}
    status, _, document = http_json("POST", instance.signing_cert_url, body, headers=headers)
    assert status == 201, document
    pems = document["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems]


def _timestamp(instance: IssuanceInstance, signature: bytes) -> bytes:
    import urllib.request

    from rfc3161_client import TimestampRequestBuilder

    query = (
        TimestampRequestBuilder()
        .data(signature)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
        .as_bytes()
    )
    assert instance.tsa_url is not None
    request = urllib.request.Request(
        instance.tsa_url + "/api/v1/timestamp",
        data=query,
        method="POST",
        headers={"Content-Type": "application/timestamp-query"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        reply: bytes = response.read()
    # The bundle carries the TimeStampToken inside the reply: sigstore-python
    # and airseal both take the full TimeStampResp.
    return reply


def _bundle(instance: IssuanceInstance, csr: bool) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(instance, key, csr)[0]
    assert instance.log_url is not None
    status, _, entry = http_json(
        "POST", instance.log_url + "/api/v2/log/entries", hashedrekord_document(key, leaf, ARTIFACT)
    )
    assert status == 201, entry
    signature = logged_signature(entry)
    key.public_key().verify(signature, ARTIFACT, ec.ECDSA(hashes.SHA256()))
    bundle = log_bundle(
        leaf.public_bytes(serialization.Encoding.DER),
        entry,
        ARTIFACT,
        signature,
        _timestamp(instance, signature),
    )
    return json.dumps(bundle).encode()


@pytest.mark.parametrize("csr", [True, False], ids=["csr", "public-key"])
def test_bundle_verifies_with_airseal_and_sigstore_python(
    instance: IssuanceInstance, rehearsed_ceremony: RehearsedCeremony, csr: bool
) -> None:
    bundle = _bundle(instance, csr)
    root_json = rehearsed_ceremony.trusted_root.read_text()
    failed, message = airseal_verdict(
        root_json,
        bundle,
        Artifact.from_bytes(ARTIFACT),
        EMAIL,
        instance.oidc_url,
        dt.datetime.now(dt.UTC),
    )
    assert failed is None, message
    ok, message = sigstore_verdict(
        root_json, bundle, ARTIFACT, hashlib.sha256(ARTIFACT).digest(), EMAIL, instance.oidc_url
    )
    assert ok, message
    # The wrong identity or issuer is refused by both (the check is real).
    failed, _ = airseal_verdict(
        root_json,
        bundle,
        Artifact.from_bytes(ARTIFACT),
        "mallory@example.com",
        instance.oidc_url,
        dt.datetime.now(dt.UTC),
    )
    assert failed is not None
    ok, _ = sigstore_verdict(
        root_json,
        bundle,
        ARTIFACT,
        hashlib.sha256(ARTIFACT).digest(),
        EMAIL,
        "https://other.example",
    )
    assert not ok


def test_sigstore_python_sct_check_on_the_bare_certificate(
    instance: IssuanceInstance, rehearsed_ceremony: RehearsedCeremony
) -> None:
    from sigstore._internal.sct import verify_sct
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.models import TrustedRoot

    root = TrustedRoot.from_file(str(rehearsed_ceremony.trusted_root))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf, *chain = _certificate(instance, key, csr=True)
    # What sigstore-python runs right after Fulcio answers, before it signs.
    verify_sct(leaf, chain, root.ct_keyring(KeyringPurpose.SIGN))
    verify_sct(leaf, chain, root.ct_keyring(KeyringPurpose.VERIFY))


def _client_trust_config(instance: IssuanceInstance, ceremony: RehearsedCeremony) -> str:
    """A ClientTrustConfig naming this instance's services (what stock clients read)."""
    start = {"start": "2020-01-01T00:00:00Z"}
    assert instance.log_url is not None and instance.tsa_url is not None

    def service(url: str, version: int) -> dict[str, object]:
        return {"url": url, "majorApiVersion": version, "validFor": start, "operator": "airseal"}

    signing_config = {
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [service(instance.ca_url, 1)],
        "oidcUrls": [service(instance.oidc_url, 1)],
        "rekorTlogUrls": [service(instance.log_url, 2)],
        "tsaUrls": [service(instance.tsa_url + "/api/v1/timestamp", 1)],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    }
    return json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": ceremony.trusted_root_json(),
            "signingConfig": signing_config,
        }
    )


def test_sigstore_python_signs_through_this_instance(
    instance: IssuanceInstance, rehearsed_ceremony: RehearsedCeremony
) -> None:
    """sigstore-python, unchanged, gets its certificate here (CSR + Bearer), then verifies."""
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    config = ClientTrustConfig.from_json(_client_trust_config(instance, rehearsed_ceremony))
    context = SigningContext.from_trust_config(config)
    before = instance.ct_tree_size()
    with context.signer(IdentityToken(instance.token(EMAIL))) as signer:
        bundle = signer.sign_artifact(ARTIFACT)
    bundle_json = bundle.to_json().encode()
    material = json.loads(bundle_json)["verificationMaterial"]
    leaf = x509.load_der_x509_certificate(base64.b64decode(material["certificate"]["rawBytes"]))
    assert (
        leaf.issuer
        == x509.load_pem_x509_certificate(rehearsed_ceremony.intermediate_ca.read_bytes()).subject
    )
    root_json = rehearsed_ceremony.trusted_root.read_text()
    ok, message = sigstore_verdict(
        root_json,
        bundle_json,
        ARTIFACT,
        hashlib.sha256(ARTIFACT).digest(),
        EMAIL,
        instance.oidc_url,
    )
    assert ok, message
    failed, message = airseal_verdict(
        root_json,
        bundle_json,
        Artifact.from_bytes(ARTIFACT),
        EMAIL,
        instance.oidc_url,
        dt.datetime.now(dt.UTC),
    )
    assert failed is None, message
    deadline = time.monotonic() + 10
    while instance.ct_tree_size() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.ct_tree_size() == before + 1
