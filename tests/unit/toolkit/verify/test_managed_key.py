"""Managed-key bundles: a ``publicKey`` hint, verified with a key the caller gives."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from tests.support.factory import FakeSigstore, SignedBundle
from toolkit.cli import app
from toolkit.errors import Check, VerificationError
from toolkit.models import TrustedRoot
from toolkit.verify import Artifact, IdentityPolicy, KeyPolicy, Verifier

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ARTIFACT = b"release-1.0.tar.gz contents\n"


@pytest.fixture(scope="module")
def instance() -> FakeSigstore:
    return FakeSigstore(seed="managed-key")


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _verify(
    signed: SignedBundle, policy: KeyPolicy | IdentityPolicy, data: bytes = ARTIFACT
) -> None:
    verifier = Verifier(TrustedRoot.from_dict(signed.trusted_root))
    verifier.verify(json.dumps(signed.bundle), Artifact.from_bytes(data), policy, now=NOW)


@pytest.mark.parametrize("rekor", ["v1", "v2"])
def test_managed_p256_key_verifies(
    instance: FakeSigstore, p256: ec.EllipticCurvePrivateKey, rekor: Literal["v1", "v2"]
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, p256, hint="release-key", rekor=rekor)
    verifier = Verifier(TrustedRoot.from_dict(signed.trusted_root))
    result = verifier.verify(
        json.dumps(signed.bundle),
        Artifact.from_bytes(ARTIFACT),
        KeyPolicy(p256.public_key()),
        now=NOW,
    )
    assert result.identity is None and result.issuer is None
    assert result.times[0].source == ("tlog" if rekor == "v1" else "tsa")


@pytest.mark.parametrize("kind", ["p384", "rsa3072"])
def test_other_key_types(instance: FakeSigstore, kind: str) -> None:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        ec.generate_private_key(ec.SECP384R1())
        if kind == "p384"
        else rsa.generate_private_key(65537, 3072)
    )
    signed = instance.sign_blob_with_key(ARTIFACT, key)
    _verify(signed, KeyPolicy(key.public_key()))


def test_another_key_is_refused_by_the_log_body(
    instance: FakeSigstore, p256: ec.EllipticCurvePrivateKey
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, p256)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(other))
    assert info.value.check is Check.TLOG_BODY
    assert "different certificate or key" in info.value.detail


def test_bad_signature_and_other_artifact(
    instance: FakeSigstore, p256: ec.EllipticCurvePrivateKey
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, p256, sign_over=b"something else")
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(p256.public_key()))
    assert info.value.check is Check.SIGNATURE
    good = instance.sign_blob_with_key(ARTIFACT, p256)
    with pytest.raises(VerificationError) as info:
        _verify(good, KeyPolicy(p256.public_key()), data=b"tampered")
    assert info.value.check is Check.TLOG_BODY


def test_policy_must_fit_the_key_material(
    instance: FakeSigstore, p256: ec.EllipticCurvePrivateKey
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, p256)
    with pytest.raises(VerificationError) as info:
        _verify(signed, IdentityPolicy(issuer="https://issuer", identity="a@b.c"))
    assert info.value.check is Check.KEY_MISMATCH
    keyless = instance.sign_blob(ARTIFACT)
    with pytest.raises(VerificationError) as info:
        _verify(keyless, KeyPolicy(p256.public_key()))
    assert info.value.check is Check.KEY_MISMATCH


def test_managed_key_still_needs_a_trusted_time(
    instance: FakeSigstore, p256: ec.EllipticCurvePrivateKey
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, p256, rekor="v2", tsa=False)
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(p256.public_key()))
    assert info.value.check is Check.TIME_NONE


def test_cli_key_flag(
    tmp_path: Path, instance: FakeSigstore, p256: ec.EllipticCurvePrivateKey
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, p256, hint="release-key")
    (tmp_path / "artifact").write_bytes(ARTIFACT)
    (tmp_path / "bundle.json").write_text(json.dumps(signed.bundle))
    (tmp_path / "root.json").write_text(json.dumps(signed.trusted_root))
    (tmp_path / "key.pem").write_bytes(
        p256.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    common = ["--bundle", str(tmp_path / "bundle.json"), "--key", str(tmp_path / "key.pem")]
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "verify",
            str(tmp_path / "artifact"),
            *common,
            "--trusted-root",
            str(tmp_path / "root.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "key:      the given public key" in result.output
    conformance = runner.invoke(
        app,
        [
            "verify-bundle",
            *common,
            "--trusted-root",
            str(tmp_path / "root.json"),
            str(tmp_path / "artifact"),
        ],
    )
    assert conformance.exit_code == 0, conformance.output
    tampered = copy.deepcopy(signed.bundle)
    tampered["messageSignature"]["messageDigest"]["digest"] = "A" * 43 + "="
    (tmp_path / "bundle.json").write_text(json.dumps(tampered))
    result = runner.invoke(
        app,
        [
            "verify",
            str(tmp_path / "artifact"),
            *common,
            "--trusted-root",
            str(tmp_path / "root.json"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("error[signature.digest]")


# -- RSA-PSS: the scheme a Rekor v2 entry's keyDetails names ------------------------------


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_rsa_pss_entry_verifies(instance: FakeSigstore, rsa2048: rsa.RSAPrivateKey) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, rsa2048, pss=True)
    entry = signed.bundle["verificationMaterial"]["tlogEntries"][0]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    _verify(signed, KeyPolicy(rsa2048.public_key()))


def test_rsa_pss_entry_with_a_pkcs1_signature_fails_the_signature(
    instance: FakeSigstore, rsa2048: rsa.RSAPrivateKey
) -> None:
    # The log binds PSS, so a PKCS#1 v1.5 signature is checked as PSS and fails.
    signed = instance.sign_blob_with_key(
        ARTIFACT, rsa2048, logged_details="PKIX_RSA_PSS_2048_SHA256"
    )
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(rsa2048.public_key()))
    assert info.value.check is Check.SIGNATURE


def test_pss_signature_logged_as_pkcs1_fails_the_signature(
    instance: FakeSigstore, rsa2048: rsa.RSAPrivateKey
) -> None:
    # The other direction: the logged PKCS#1 v1.5 name wins, and the PSS
    # signature does not verify under it (no fallback between paddings).
    signed = instance.sign_blob_with_key(
        ARTIFACT, rsa2048, pss=True, logged_details="PKIX_RSA_PKCS1V15_2048_SHA256"
    )
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(rsa2048.public_key()))
    assert info.value.check is Check.SIGNATURE


@pytest.mark.parametrize(
    "logged",
    [
        "PKIX_RSA_PSS_3072_SHA256",  # PSS, but another modulus size
        "PKIX_RSA_PSS_4096_SHA256",
        "PKIX_RSA_PKCS1V15_3072_SHA256",
        "PKIX_RSA_PKCS1V5",  # deprecated unsized alias: not what Rekor v2 records
        "PKIX_ECDSA_P256_SHA_256",
        "PKIX_RSA_PSS_2048_SHA512",  # no such registry entry
    ],
)
def test_rsa_entry_naming_another_scheme_fails_the_body(
    instance: FakeSigstore, rsa2048: rsa.RSAPrivateKey, logged: str
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, rsa2048, pss=True, logged_details=logged)
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(rsa2048.public_key()))
    assert info.value.check is Check.TLOG_BODY
    assert "does not fit" in info.value.detail


def test_ec_entry_naming_rsa_pss_fails_the_body(
    instance: FakeSigstore, p256: ec.EllipticCurvePrivateKey
) -> None:
    signed = instance.sign_blob_with_key(ARTIFACT, p256, logged_details="PKIX_RSA_PSS_2048_SHA256")
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(p256.public_key()))
    assert info.value.check is Check.TLOG_BODY


def test_rsa_pss_needs_a_rekor_v2_entry(instance: FakeSigstore, rsa2048: rsa.RSAPrivateKey) -> None:
    # A hashedrekord 0.0.1 body names no scheme, so RSA means PKCS#1 v1.5 there.
    signed = instance.sign_blob_with_key(ARTIFACT, rsa2048, pss=True, rekor="v1")
    with pytest.raises(VerificationError) as info:
        _verify(signed, KeyPolicy(rsa2048.public_key()))
    assert info.value.check is Check.SIGNATURE
