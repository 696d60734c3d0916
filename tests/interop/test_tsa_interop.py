"""The TSA's tokens in the reference verifiers: ``openssl ts -verify``, rfc3161-client
(what sigstore-python uses), and sigstore-python itself on a whole bundle.

Requests come from the reference clients too (``openssl ts -query``,
rfc3161-client's ``TimestampRequestBuilder``), so both directions of the
wire format are exercised. The TSA runs in process over software keys; the
integration test runs the real server with the ceremony's SoftHSM key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from tests.support import tsa_tokens
from tests.support.factory import DEFAULT_EMAIL, DEFAULT_ISSUER, FakeSigstore
from tests.unit.toolkit.services.tsa._tsa import KINDS, NOW, Kind, authority, chain_for, request
from toolkit.services.tsa import TimestampAuthority

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
MESSAGE = b"signature bytes"  # what request() hashes by default


def _pem(certs: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def _openssl_verify(
    tmp_path: Path,
    kind: Kind,
    reply: bytes,
    *,
    intermediate: bool = False,
    digest: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    chain = chain_for(kind, intermediate)
    (tmp_path / "reply.tsr").write_bytes(reply)
    (tmp_path / "root.pem").write_bytes(_pem([chain.root]))
    # The TSA leaf (and any intermediate): what the ceremony's tsa-chain.pem holds minus the root.
    (tmp_path / "untrusted.pem").write_bytes(_pem(chain.certificates[:-1]))
    (tmp_path / "data").write_bytes(MESSAGE)
    source = ["-digest", digest] if digest is not None else ["-data", str(tmp_path / "data")]
    return _openssl(
        "ts", "-verify", "-in", str(tmp_path / "reply.tsr"), *source,
        "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "untrusted.pem"),
    )  # fmt: skip


# --------------------------------------------------------------------------- openssl


#: Both references verify through OpenSSL's PKCS#7 layer (``openssl ts``, and
#: rfc3161-client's ``PKCS7_verify``), which knows neither RSASSA-PSS (it checks
#: PSS signatures as PKCS#1 v1.5) nor Ed25519 (only OpenSSL's CMS layer does).
#: Those kinds verify in airseal's verifier only; strict xfails record the limit.
_PKCS7_ONLY = "OpenSSL's PKCS#7 layer verifies neither RSASSA-PSS nor Ed25519 signers"
REFERENCE_KINDS = [
    pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=_PKCS7_ONLY))
    if k in ("rsa-pss", "ed25519")
    else k
    for k in KINDS
]


@needs_openssl
@pytest.mark.parametrize("kind", REFERENCE_KINDS)
@pytest.mark.parametrize("cert_req", [True, None])
def test_openssl_verifies_tokens(tmp_path: Path, kind: Kind, cert_req: bool | None) -> None:
    reply = authority(kind).respond(request(cert_req=cert_req), NOW)
    result = _openssl_verify(tmp_path, kind, reply)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Verification: OK" in result.stdout


@needs_openssl
@pytest.mark.parametrize("hash_algorithm", ["sha256", "sha384", "sha512"])
def test_openssl_queries_and_digest_mode(tmp_path: Path, hash_algorithm: str) -> None:
    (tmp_path / "data").write_bytes(MESSAGE)
    query = _openssl(
        "ts", "-query", "-data", str(tmp_path / "data"), f"-{hash_algorithm}", "-cert",
        "-tspolicy", "1.3.6.1.4.1.57264.2",
    )  # fmt: skip
    assert query.returncode == 0, query.stderr.decode()
    reply = authority().respond(query.stdout, NOW)
    digest = hashlib.new(hash_algorithm, MESSAGE).hexdigest()
    result = _openssl_verify(tmp_path, "p256", reply, digest=digest)
    assert result.returncode == 0, result.stderr.decode()
    # And against the query itself (imprint, nonce and policy checked by openssl).
    (tmp_path / "query.tsq").write_bytes(query.stdout)
    by_query = _openssl(
        "ts", "-verify", "-in", str(tmp_path / "reply.tsr"),
        "-queryfile", str(tmp_path / "query.tsq"), "-CAfile", str(tmp_path / "root.pem"),
        "-untrusted", str(tmp_path / "untrusted.pem"),
    )  # fmt: skip
    assert by_query.returncode == 0, by_query.stderr.decode()


@needs_openssl
def test_openssl_verifies_with_an_intermediate(tmp_path: Path) -> None:
    reply = authority("p256", intermediate=True).respond(request(), NOW)
    result = _openssl_verify(tmp_path, "p256", reply, intermediate=True)
    assert result.returncode == 0, result.stderr.decode()


@needs_openssl
def test_openssl_rejects_a_token_over_other_data(tmp_path: Path) -> None:
    reply = authority().respond(request(b"something else"), NOW)
    result = _openssl_verify(tmp_path, "p256", reply)
    assert result.returncode != 0
    assert b"message imprint mismatch" in result.stderr


@needs_openssl
@pytest.mark.parametrize(
    ("data", "text"),
    [
        (request(hash_algorithm="sha1"), "unrecognized or unsupported algorithm identifier"),
        (b"junk", "the data submitted has the wrong format"),
        (request(version=3), "transaction not permitted or supported"),
        (request(policy="1.2.3"), "the requested TSA policy is not supported by the TSA"),
        (request(extensions=True), "the requested extension is not supported by the TSA"),
    ],
)
def test_openssl_reads_rejections(tmp_path: Path, data: bytes, text: str) -> None:
    (tmp_path / "reply.tsr").write_bytes(authority().respond(data, NOW))
    result = _openssl("ts", "-reply", "-in", str(tmp_path / "reply.tsr"), "-text")
    assert result.returncode == 0, result.stderr.decode()
    assert b"Status: Rejected." in result.stdout
    assert f"Failure info: {text}".encode() in result.stdout


# --------------------------------------------------------------------------- rfc3161-client


def _client_verifier(kind: Kind, nonce: int | None, intermediate: bool = False):  # type: ignore[no-untyped-def]
    """A verifier configured the way sigstore-python configures one from a trusted root."""
    chain = chain_for(kind, intermediate)
    builder = VerifierBuilder().tsa_certificate(chain.leaf).add_root_certificate(chain.root)
    for certificate in chain.intermediates:
        builder = builder.add_intermediate_certificate(certificate)
    if nonce is not None:
        builder = builder.nonce(nonce)
    return builder.policy_id(x509.ObjectIdentifier("1.3.6.1.4.1.57264.2")).build()


@pytest.mark.parametrize("kind", REFERENCE_KINDS)
@pytest.mark.parametrize(
    "hash_algorithm", [HashAlgorithm.SHA256, HashAlgorithm.SHA512], ids=["sha256", "sha512"]
)
def test_rfc3161_client_verifies_tokens(kind: Kind, hash_algorithm: HashAlgorithm) -> None:
    query = (
        TimestampRequestBuilder()
        .hash_algorithm(hash_algorithm)
        .data(MESSAGE)
        .nonce(nonce=True)
        .build()
    )
    der = authority(kind).respond(query.as_bytes(), NOW)
    response = decode_timestamp_response(der)
    assert response.tst_info.nonce == query.nonce
    assert response.tst_info.gen_time.replace(tzinfo=dt.UTC) == NOW.replace(microsecond=0)
    assert _client_verifier(kind, query.nonce).verify_message(response, MESSAGE)


def test_rfc3161_client_without_embedded_certificates() -> None:
    query = TimestampRequestBuilder().data(MESSAGE).cert_request(cert_request=False).build()
    response = decode_timestamp_response(authority().respond(query.as_bytes(), NOW))
    assert len(response.signed_data.certificates) == 0
    assert _client_verifier("p256", query.nonce).verify_message(response, MESSAGE)


def test_rfc3161_client_with_an_intermediate() -> None:
    query = TimestampRequestBuilder().data(MESSAGE).build()
    response = decode_timestamp_response(authority("p256", True).respond(query.as_bytes(), NOW))
    assert _client_verifier("p256", query.nonce, True).verify_message(response, MESSAGE)


def test_rfc3161_client_rejects_other_messages_and_nonces() -> None:
    query = TimestampRequestBuilder().data(MESSAGE).build()
    response = decode_timestamp_response(authority().respond(query.as_bytes(), NOW))
    with pytest.raises(VerificationError, match="Mismatch between messages"):
        _client_verifier("p256", None).verify_message(response, b"other")
    with pytest.raises(VerificationError, match="Nonce mismatch"):
        _client_verifier("p256", (query.nonce or 0) + 1).verify_message(response, MESSAGE)


def test_rfc3161_client_decodes_rejections() -> None:
    response = decode_timestamp_response(authority().respond(request(hash_algorithm="sha1"), NOW))
    assert response.status == 2


# --------------------------------------------------------------------------- sigstore-python


def test_sigstore_python_verifies_a_bundle_with_our_timestamp() -> None:
    from tests.interop.test_differential import sigstore_verdict

    chain = tsa_tokens.make_chain("p256")
    tsa = TimestampAuthority(tsa_tokens_signer(chain), chain.certificates)

    class OurTsa(FakeSigstore):
        def timestamp(
            self, message: bytes, gen_time: dt.datetime, *, chain: object = None
        ) -> bytes:
            query = TimestampRequestBuilder().data(message).nonce(nonce=True).build()
            return tsa.respond(query.as_bytes(), gen_time)

    instance = OurTsa(seed="tsa-interop")
    instance.__dict__["tsa"] = chain
    signed = instance.sign_blob(b"artifact", rekor="v2", tsa=True)
    verified, message = sigstore_verdict(
        json.dumps(signed.trusted_root),
        json.dumps(signed.bundle).encode(),
        b"artifact",
        hashlib.sha256(b"artifact").digest(),
        DEFAULT_EMAIL,
        DEFAULT_ISSUER,
    )
    assert verified, message


def tsa_tokens_signer(chain: tsa_tokens.TsaChain):  # type: ignore[no-untyped-def]
    from toolkit.signing import SoftwareSigner

    return SoftwareSigner(chain.leaf_key)
