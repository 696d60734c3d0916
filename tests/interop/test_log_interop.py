"""Bundles built from a real airseal log's responses verify with airseal and sigstore-python.

The certificate, SCT and RFC 3161 timestamp come from the synthetic instance
of ``tests/support/factory.py``; the transparency-log entry (inclusion proof,
signed checkpoint, canonical body) comes from ``airseal serve log`` running on
127.0.0.1. The trusted root names that log by its public key and log id, so
both verifiers check the log's own proof and checkpoint signature.

A second log runs in v1 mode (``--v1``): its hashedrekord 0.0.1 entries carry
an integrated time and a SET, and bundles with no RFC 3161 timestamp at all --
the SET is their only trusted time -- verify with both verifiers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.interop.test_differential import airseal_verdict, sigstore_verdict
from tests.support.factory import DEFAULT_ISSUER, DEFAULT_TIME, FakeSigstore, Leaf
from tests.support.log_server import LogServer, hashedrekord_request, log_bundle, logged_signature
from toolkit.encoding import b64encode
from toolkit.services.log.hashedrekord import set_payload
from toolkit.verify import Artifact, IdentityPolicy, Verifier

ORIGIN = "log.airseal.test"
IDENTITY = "signer@airseal.test"

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def fake() -> FakeSigstore:
    return FakeSigstore("log-interop")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogServer]:
    with LogServer(tmp_path_factory.mktemp("log") / "data", ORIGIN) as running:
        yield running


def _log_key(server: LogServer) -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_private_key((server.data / "log-key.pem").read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.public_key()


def _trusted_root(fake: FakeSigstore, server: LogServer) -> str:
    public = _log_key(server)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = fake.trusted_root(tlogs=())
    root["tlogs"] = [
        {
            "baseUrl": f"https://{ORIGIN}",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64encode(spki),
                "keyDetails": "PKIX_ED25519",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            # Rekor v2: the checkpoint key id, SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ key).
            "logId": {
                "keyId": b64encode(hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest())
            },
        }
    ]
    return json.dumps(root)


def _bundle(fake: FakeSigstore, server: LogServer, artifact: bytes) -> bytes:
    leaf = fake.issue_leaf(IDENTITY, DEFAULT_ISSUER, not_before=DEFAULT_TIME)
    status, entry = server.post(hashedrekord_request(leaf.key, leaf.cert, artifact))
    assert status == 201, entry
    signature = logged_signature(entry)
    token = fake.timestamp(signature, DEFAULT_TIME + dt.timedelta(seconds=20))
    return json.dumps(log_bundle(leaf.der, entry, artifact, signature, token)).encode()


@pytest.mark.parametrize("count", [1, 3])
def test_log_entries_verify_with_airseal_and_sigstore_python(
    fake: FakeSigstore, server: LogServer, count: int
) -> None:
    root = _trusted_root(fake, server)
    for n in range(count):
        artifact = f"interop artifact {count}-{n}".encode()
        bundle = _bundle(fake, server, artifact)
        check, message = airseal_verdict(
            root,
            bundle,
            Artifact.from_bytes(artifact),
            IDENTITY,
            DEFAULT_ISSUER,
            dt.datetime.now(dt.UTC),
        )
        assert check is None, message
        ok, message = sigstore_verdict(
            root, bundle, artifact, hashlib.sha256(artifact).digest(), IDENTITY, DEFAULT_ISSUER
        )
        assert ok, message


def test_a_forged_checkpoint_fails_in_both(fake: FakeSigstore, server: LogServer) -> None:
    root = _trusted_root(fake, server)
    artifact = b"interop artifact forged"
    bundle = json.loads(_bundle(fake, server, artifact))
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    envelope: str = proof["checkpoint"]["envelope"]
    signature_line = envelope.rstrip("\n").split("\n")[-1]
    forged_sig = signature_line[:-8] + (
        "AAAAAAA=" if not signature_line.endswith("AAAAAAA=") else "BBBBBBB="
    )
    proof["checkpoint"]["envelope"] = envelope.replace(signature_line, forged_sig)
    data = json.dumps(bundle).encode()
    check, _message = airseal_verdict(
        root, data, Artifact.from_bytes(artifact), IDENTITY, DEFAULT_ISSUER, dt.datetime.now(dt.UTC)
    )
    assert check is not None and check.value == "tlog.checkpoint"
    ok, _message = sigstore_verdict(
        root, data, artifact, hashlib.sha256(artifact).digest(), IDENTITY, DEFAULT_ISSUER
    )
    assert not ok


# -- v1 mode: hashedrekord 0.0.1 entries whose SET is the only time --------------------------


@pytest.fixture(scope="module")
def v1_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogServer]:
    with LogServer(tmp_path_factory.mktemp("log-v1") / "data", ORIGIN, extra=("--v1",)) as running:
        yield running


def _v1_trusted_root(fake: FakeSigstore, server: LogServer) -> str:
    key = serialization.load_pem_private_key((server.data / "log-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # No TSA at all: the SET is the only source of time.
    root = fake.trusted_root(tlogs=(), tsa=False)
    root["tlogs"] = [
        {
            "baseUrl": f"https://{ORIGIN}",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64encode(spki),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            # Rekor v1: the log id is SHA-256 of the key's DER SPKI.
            "logId": {"keyId": b64encode(hashlib.sha256(spki).digest())},
        }
    ]
    return json.dumps(root)


def _fresh_leaf(fake: FakeSigstore) -> Leaf:
    # The SET's integrated time is the moment the log takes the entry, so the
    # short-lived leaf must be valid now, not at the factory's fixed date.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return fake.issue_leaf(IDENTITY, DEFAULT_ISSUER, not_before=now - dt.timedelta(minutes=1))


def _v1_bundle(fake: FakeSigstore, server: LogServer, artifact: bytes) -> dict[str, Any]:
    leaf = _fresh_leaf(fake)
    status, entry = server.post(hashedrekord_request(leaf.key, leaf.cert, artifact))
    assert status == 201, entry
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    assert int(entry["integratedTime"]) > 0
    assert entry["inclusionPromise"]["signedEntryTimestamp"]
    assert entry["inclusionProof"]["checkpoint"]["envelope"]
    body: dict[str, Any] = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    assert body["apiVersion"] == "0.0.1"
    # No timestamp: the SET is the only source of time.
    return log_bundle(leaf.der, entry, artifact, logged_signature(entry))


def _both(root: str, bundle: dict[str, Any], artifact: bytes) -> tuple[tuple[Any, str], bool, str]:
    data = json.dumps(bundle).encode()
    verdict = airseal_verdict(
        root, data, Artifact.from_bytes(artifact), IDENTITY, DEFAULT_ISSUER, dt.datetime.now(dt.UTC)
    )
    ok, message = sigstore_verdict(
        root, data, artifact, hashlib.sha256(artifact).digest(), IDENTITY, DEFAULT_ISSUER
    )
    return verdict, ok, message


@pytest.mark.parametrize("count", [1, 3])
def test_v1_entries_verify_with_their_set_as_the_only_time(
    fake: FakeSigstore, v1_server: LogServer, count: int
) -> None:
    root = _v1_trusted_root(fake, v1_server)
    for n in range(count):
        artifact = f"v1 interop artifact {count}-{n}".encode()
        bundle = _v1_bundle(fake, v1_server, artifact)
        assert "timestampVerificationData" not in bundle["verificationMaterial"]
        (check, message), ok, sigstore_message = _both(root, bundle, artifact)
        assert check is None, message
        assert ok, sigstore_message
        # airseal's verdict rests on the SET alone.
        result = Verifier.from_json(root).verify(
            json.dumps(bundle),
            Artifact.from_bytes(artifact),
            IdentityPolicy(issuer=DEFAULT_ISSUER, identity=IDENTITY),
            now=dt.datetime.now(dt.UTC),
        )
        entry = bundle["verificationMaterial"]["tlogEntries"][0]
        assert [(t.source, int(t.time.timestamp())) for t in result.times] == [
            ("tlog", int(entry["integratedTime"]))
        ]
        assert result.log_index == int(entry["logIndex"])


@pytest.mark.parametrize("tamper", ["signature", "integrated-time"])
def test_a_tampered_set_fails_in_both(
    fake: FakeSigstore, v1_server: LogServer, tamper: str
) -> None:
    root = _v1_trusted_root(fake, v1_server)
    artifact = f"v1 interop artifact, tampered {tamper}".encode()
    bundle = _v1_bundle(fake, v1_server, artifact)
    (check, _), ok, _ = _both(root, bundle, artifact)
    assert check is None and ok
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    if tamper == "signature":
        # A valid DER signature, made by another key over the right bytes.
        other = ec.generate_private_key(ec.SECP256R1())
        payload = set_payload(
            base64.b64decode(entry["canonicalizedBody"]),
            int(entry["integratedTime"]),
            base64.b64decode(entry["logId"]["keyId"]),
            int(entry["logIndex"]),
        )
        entry["inclusionPromise"]["signedEntryTimestamp"] = b64encode(
            other.sign(payload, ec.ECDSA(hashes.SHA256()))
        )
    else:
        # The SET covers the time: one second earlier no longer verifies.
        entry["integratedTime"] = str(int(entry["integratedTime"]) - 1)
    (check, message), ok, sigstore_message = _both(root, bundle, artifact)
    assert check is not None and check.value == "tlog.set", (check, message)
    assert "inclusion promise (SET) does not verify" in message
    assert not ok
    assert "SET: invalid inclusion promise" in sigstore_message, sigstore_message
