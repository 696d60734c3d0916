"""Differential tests: airseal and sigstore-python must reach the same verdict.

Every bundle here is verified twice, in process: by airseal's
:class:`~toolkit.verify.Verifier` and by sigstore-python 4.5 (the reference
oracle), the latter driven exactly like ``shared/tools/sigpy_verify.py``
(``verify_artifact`` for message signatures, ``verify_dsse`` plus an in-toto
subject check for DSSE). Three sources of bundles:

(a) the shared sigstore-python vectors (path and digest modes);
(b) bundles from the synthetic Sigstore instance (:mod:`tests.support.factory`)
    that must verify;
(c) the same bundles broken in one way each, which both must reject; for these
    airseal's failed check code is pinned too.

Factory case ids say what is expected: ``pass/`` verifies, ``fail/`` is rejected,
and ``edge/`` is a corner whose verdict is pinned either way.

Where the two verifiers legitimately disagree, the case is listed in
:data:`DIVERGENCES` with the reason, and the test asserts the divergence exactly
(airseal's verdict and sigstore-python's), so a change on either side shows up.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import EXPECTED_CHECK, VectorCase, load_cases
from tests.support import tsa_tokens
from tests.support.factory import (
    BUNDLE_V01,
    BUNDLE_V02,
    BUNDLE_V03,
    BUNDLE_V03_ALT,
    DEFAULT_EMAIL,
    DEFAULT_ISSUER,
    DEFAULT_TIME,
    IN_TOTO_PAYLOAD_TYPE,
    TRUST_START,
    FakeSigstore,
    LogTweaks,
    SignedBundle,
    in_toto_statement,
)
from toolkit.errors import Check, VerificationError
from toolkit.models.trustroot import TrustedRoot
from toolkit.verify import Artifact, IdentityPolicy, Verifier

pytestmark = pytest.mark.interop

#: airseal's "now" for factory bundles: an hour after the default signing time.
NOW = DEFAULT_TIME + dt.timedelta(hours=1)
#: airseal's "now" for the shared vectors (after every vector was signed).
VECTOR_NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)

ARTIFACT = b"airseal differential test artifact\n"
OTHER_ARTIFACT = b"a different artifact\n"
URI_IDENTITY = "https://github.com/airseal/demo/.github/workflows/release.yml@refs/tags/v1.0.0"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

Mode = Literal["bytes", "digest"]


# --------------------------------------------------------------------------- divergences


@dataclass(frozen=True)
class Divergence:
    """A documented difference between airseal and sigstore-python.

    Attributes:
        airseal: airseal's verdict: the failed check, or None when it verifies.
        sigstore_passes: Whether sigstore-python 4.5.1 verifies the bundle.
        reason: Why the two differ, and which side the design chose.
    """

    airseal: Check | None
    sigstore_passes: bool
    reason: str


#: Every case where airseal and sigstore-python legitimately disagree.
#: Keys are test ids: factory cases by name, shared vectors as ``vector:<case>``.
DIVERGENCES: dict[str, Divergence] = {
    "vector:tsa-local-extra-bad-timestamp": Divergence(
        Check.TIME_TSA,
        sigstore_passes=True,
        reason="one of two RFC 3161 timestamps is over another message; sigstore-python "
        "counts only the timestamps that verify against a threshold of 1, airseal (like "
        "sigstore-js) rejects any unverifiable timestamp (DESIGN.md §4, fail closed)",
    ),
    "fail/tsa-over-other-message+set": Divergence(
        Check.TIME_TSA,
        sigstore_passes=True,
        reason="same rule as the vector tsa-local-extra-bad-timestamp: the SET supplies a "
        "verified time, so sigstore-python ignores the bad timestamp; airseal rejects it",
    ),
    "fail/checkpoint-size-mismatch": Divergence(
        Check.TLOG_CHECKPOINT,
        sigstore_passes=True,
        reason="the signed checkpoint names another tree size than the inclusion proof; "
        "sigstore-python compares only the root hashes, airseal proves inclusion against "
        "the signed size as well",
    ),
    "fail/proof-tree-size-off-by-one": Divergence(
        Check.TLOG_CHECKPOINT,
        sigstore_passes=True,
        reason="inclusionProof.treeSize edited from 43 to 44: leaf 37 has the same audit "
        "path in both trees, so the Merkle check alone passes; sigstore-python never "
        "compares the proof's size with the signed checkpoint's, airseal does",
    ),
    "fail/checkpoint-foreign-origin-v1": Divergence(
        Check.TLOG_CHECKPOINT,
        sigstore_passes=True,
        reason="the log key signed a checkpoint whose origin names another log; "
        "sigstore-python never reads the origin line, airseal requires it to be the "
        "signer's name (Rekor v1 shards: '<name> - <tree id>')",
    ),
    "fail/checkpoint-foreign-origin-v2": Divergence(
        Check.TLOG_CHECKPOINT,
        sigstore_passes=True,
        reason="as for v1: the origin line names another log",
    ),
    "pass/checkpoint-signer-name-part-of-base-url-v2": Divergence(
        None,
        sigstore_passes=False,
        reason="an Ed25519 log signing as 'rekor', part of its base URL: the note key "
        "hint covers that name, so it differs from the trusted root's logId; "
        "sigstore-python looks signatures up by the logId prefix only, airseal (like "
        "sigstore-js) accepts any signer name that is part of the log's base URL and "
        "derives the hint from it",
    ),
    "fail/checkpoint-wrong-signer-name-v1": Divergence(
        Check.TLOG_CHECKPOINT,
        sigstore_passes=True,
        reason="checkpoint signed by the right ECDSA key under another signer name; "
        "sigstore-python matches signature lines on the 4-byte key hint only, airseal "
        "(C2SP signed-note) requires name and key hint to match the log",
    ),
    "fail/checkpoint-extra-bad-signature-line": Divergence(
        Check.TLOG_CHECKPOINT,
        sigstore_passes=True,
        reason="the checkpoint carries a good log signature line and a second, corrupt line "
        "under the same name and key hint; sigstore-python stops at the first line that "
        "verifies, airseal (C2SP signed-note) rejects a note with any bad line from a "
        "known key",
    ),
    "edge/v1-body-uppercase-hex-digest": Divergence(
        None,
        sigstore_passes=False,
        reason="a logged hashedrekord 0.0.1 body spells the artifact digest in upper-case "
        "hex (Rekor always writes lower case); airseal compares the digest value "
        "case-insensitively, sigstore-python compares the strings. Same digest either way",
    ),
    "fail/integrated-time-in-future": Divergence(
        Check.TIME_SET,
        sigstore_passes=True,
        reason="sigstore-python never compares verified times with the clock; airseal "
        "refuses a SET time more than 5 minutes after 'now'",
    ),
    "fail/tsa-time-in-future": Divergence(
        Check.TIME_TSA,
        sigstore_passes=True,
        reason="sigstore-python never compares verified times with the clock; airseal "
        "refuses a TSA genTime more than 5 minutes after 'now'",
    ),
    "edge/tsa-gentime-at-validfor-end": Divergence(
        None,
        sigstore_passes=False,
        reason="genTime equals the TSA's validFor.end; airseal treats validity windows as "
        "closed intervals (NOTES.md), sigstore-python requires genTime < end",
    ),
    "fail/tlog-key-expired-v1": Divergence(
        Check.TLOG_SET,
        sigstore_passes=True,
        reason="the log key's validFor ended before the integrated time; sigstore-python "
        "ignores validFor.end for verification keys (allow_expired), airseal checks every "
        "trusted-root window at the verified time",
    ),
    "fail/tlog-key-expired-v2": Divergence(
        Check.TLOG_CHECKPOINT,
        sigstore_passes=True,
        reason="as tlog-key-expired-v1, for the Rekor v2 checkpoint key at the TSA time",
    ),
    "fail/ctlog-key-expired": Divergence(
        Check.CERT_SCT,
        sigstore_passes=True,
        reason="the CT log's validFor ended before the SCT time; sigstore-python ignores "
        "validFor.end of CT keys, airseal requires the SCT time inside the window",
    ),
    "fail/ca-expired-at-signing": Divergence(
        Check.CERT_CHAIN,
        sigstore_passes=True,
        reason="the CA's validFor ended before the signing time; sigstore-python uses every "
        "CA regardless of validFor, airseal only CAs valid at the verified time",
    ),
    "fail/ca-not-yet-valid-at-signing": Divergence(
        Check.CERT_CHAIN,
        sigstore_passes=True,
        reason="the CA's validFor starts after the signing time (but before the real "
        "clock); sigstore-python checks validFor.start against the wall clock only",
    ),
    "fail/issuer-extensions-disagree": Divergence(
        Check.CERT_PROFILE,
        sigstore_passes=True,
        reason="the leaf names different issuers in .1.1 and .1.8; sigstore-python reads "
        "only .1.1, airseal refuses a certificate that contradicts itself",
    ),
    "pass/issuer-only-in-v2-extension": Divergence(
        None,
        sigstore_passes=False,
        reason="the leaf carries the issuer only in .1.8 (DER UTF8String), as newer "
        "Fulcio profiles may; sigstore-python reads only .1.1, airseal (like sigstore-go "
        "and sigstore-js) reads .1.8 then .1.1",
    ),
}

# --------------------------------------------------------------------------- oracles


@functools.lru_cache(maxsize=64)
def _sigstore_verifier(root_json: str) -> Any:
    from sigstore.models import ClientTrustConfig
    from sigstore.models import TrustedRoot as SigstoreTrustedRoot
    from sigstore.verify import Verifier as SigstoreVerifier
    from sigstore_models.trustroot import v1 as trustroot_v1

    if "clienttrustconfig" in json.loads(root_json).get("mediaType", ""):
        root = ClientTrustConfig.from_json(root_json).trusted_root
    else:
        root = SigstoreTrustedRoot(trustroot_v1.TrustedRoot.from_json(root_json))
    return SigstoreVerifier(trusted_root=root)


def _has_subject(payload: bytes, sha256: bytes) -> bool:
    statement = json.loads(payload)
    want = sha256.hex()
    return any(
        (subject.get("digest") or {}).get("sha256", "").lower() == want
        for subject in statement.get("subject", []) or []
    )


def sigstore_verdict(
    root_json: str,
    bundle_json: bytes,
    artifact: bytes | None,
    sha256: bytes,
    identity: str,
    issuer: str,
) -> tuple[bool, str]:
    """Run sigstore-python; return (verified, message). ``artifact`` None = digest mode."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle as SigstoreBundle
    from sigstore.verify import policy
    from sigstore_models.common.v1 import HashAlgorithm

    try:
        verifier = _sigstore_verifier(root_json)
        bundle = SigstoreBundle.from_json(bundle_json)
        identity_policy = policy.Identity(identity=identity, issuer=issuer)
        if bundle._inner.dsse_envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle=bundle, policy=identity_policy)
            if payload_type != IN_TOTO_PAYLOAD_TYPE:
                return False, f"unexpected DSSE payloadType {payload_type!r}"
            if not _has_subject(payload, sha256):
                return False, "in-toto statement has no subject matching the artifact"
        else:
            input_: bytes | Hashed = (
                artifact
                if artifact is not None
                else Hashed(algorithm=HashAlgorithm.SHA2_256, digest=sha256)
            )
            verifier.verify_artifact(input_=input_, bundle=bundle, policy=identity_policy)
    except (SigstoreError, ValueError) as exc:  # pydantic ValidationError is a ValueError
        return False, f"{type(exc).__name__}: {exc}"
    return True, "verified"


@functools.lru_cache(maxsize=64)
def _airseal_verifier(root_json: str) -> Verifier:
    return Verifier.from_json(root_json)


def airseal_verdict(
    root_json: str,
    bundle_json: bytes,
    artifact: Artifact,
    identity: str,
    issuer: str,
    now: dt.datetime,
) -> tuple[Check | None, str]:
    """Run airseal; return (failed check or None, message)."""
    policy = IdentityPolicy(issuer=issuer, identity=identity)
    try:
        _airseal_verifier(root_json).verify(bundle_json, artifact, policy, now=now)
    except VerificationError as exc:
        return exc.check, exc.detail
    return None, "verified"


# --------------------------------------------------------------------------- (a) shared vectors


def _vector_params() -> list[Any]:
    try:
        cases = load_cases()
    except BaseException:  # skipped (or failed under CI) by load_cases: report it at run time
        return [pytest.param(None, "digest", id="vectors-missing")]
    params: list[Any] = []
    for vector in cases:
        modes = ["digest"] if vector.artifact_path is None else ["path", "digest"]
        params.extend(pytest.param(vector, mode, id=f"{vector.name}-{mode}") for mode in modes)
    return params


@pytest.mark.parametrize(("vector", "mode"), _vector_params())
def test_shared_vector(vector: VectorCase | None, mode: str) -> None:
    if vector is None:
        load_cases()
        return
    root_json = vector.trusted_root_path.read_text()
    bundle_json = vector.bundle_path.read_bytes()
    sha256 = bytes.fromhex(vector.artifact_sha256)
    data: bytes | None = None
    if mode == "path":
        assert vector.artifact_path is not None
        data = vector.artifact_path.read_bytes()
        artifact = Artifact.from_bytes(data)
    else:
        artifact = Artifact.from_digest(vector.digest_arg)

    got, detail = airseal_verdict(
        root_json, bundle_json, artifact, vector.identity, vector.issuer, VECTOR_NOW
    )
    ok, message = sigstore_verdict(
        root_json, bundle_json, data, sha256, vector.identity, vector.issuer
    )

    # The in-process oracle agrees with the verdict recorded in INDEX.json.
    observed = vector.raw["observed"]["sigstore-python"]
    recorded = observed.get("path" if mode == "path" else "digest")
    if recorded is not None:
        assert ok == (recorded["outcome"] == "pass"), (recorded, message)

    assert got == EXPECTED_CHECK.get(vector.name), detail
    divergence = DIVERGENCES.get(f"vector:{vector.name}")
    if divergence is not None:
        assert (got, ok) == (divergence.airseal, divergence.sigstore_passes), (detail, message)
    else:
        assert ok == (got is None), (detail, message)


def test_vector_tables_are_consistent() -> None:
    names = {c.name for c in load_cases()}
    assert set(EXPECTED_CHECK) <= names
    for key in DIVERGENCES:
        if key.startswith("vector:"):
            assert key.removeprefix("vector:") in names, key


# --------------------------------------------------------------------------- (b, c) factory cases


@dataclass(frozen=True)
class Built:
    """One bundle to verify and what to verify it against."""

    bundle: dict[str, Any]
    root: dict[str, Any]
    artifact: bytes
    identity: str
    issuer: str


@dataclass
class World:
    """What one case is built from.

    Each case gets a fresh trusted instance (same seed, so the same CA, CT and
    log keys), so log indices are the same whichever cases run: the first entry
    is leaf 37 of a 43-leaf tree. The rogue instance and TSA are shared.
    """

    trusted: FakeSigstore
    rogue: FakeSigstore
    rogue_tsa: tsa_tokens.TsaChain

    def blob(self, **kwargs: Any) -> SignedBundle:
        kwargs.setdefault("artifact", ARTIFACT)
        artifact = kwargs.pop("artifact")
        return self.trusted.sign_blob(artifact, **kwargs)

    def dsse(self, subject: bytes = ARTIFACT, **kwargs: Any) -> SignedBundle:
        statement = in_toto_statement({"artifact.bin": subject})
        return self.trusted.sign_dsse(statement, artifact=ARTIFACT, **kwargs)


def built(
    signed: SignedBundle,
    *,
    bundle: dict[str, Any] | None = None,
    root: dict[str, Any] | None = None,
    artifact: bytes | None = None,
    identity: str | None = None,
    issuer: str | None = None,
) -> Built:
    """A case from a factory bundle, with optional replacements."""
    return Built(
        bundle=signed.bundle if bundle is None else bundle,
        root=signed.trusted_root if root is None else root,
        artifact=signed.artifact if artifact is None else artifact,
        identity=signed.identity if identity is None else identity,
        issuer=signed.issuer if issuer is None else issuer,
    )


def _flip(value: str, index: int = -1) -> str:
    """Flip one bit of a base64 field's decoded bytes."""
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _material(bundle: dict[str, Any]) -> dict[str, Any]:
    material: dict[str, Any] = bundle["verificationMaterial"]
    return material


def _entry(bundle: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = _material(bundle)["tlogEntries"][0]
    return entry


def _validity(
    entry: dict[str, Any], end: dt.datetime | None = None, start: dt.datetime | None = None
) -> None:
    valid_for = entry.setdefault("validFor", {})
    if start is not None:
        valid_for["start"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    if end is not None:
        valid_for["end"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")


Scenario = Callable[[World], Built]
#: name -> (airseal's expected verdict, builder). None = verifies.
CASES: dict[str, tuple[Check | None, Scenario]] = {}


def case(name: str, expected: Check | None) -> Callable[[Scenario], Scenario]:
    """Register a factory case with airseal's expected verdict."""

    def register(build: Scenario) -> Scenario:
        assert name not in CASES, name
        CASES[name] = (expected, build)
        return build

    return register


# ---- (b) bundles that must verify


@case("pass/v1-blob-v0.1", None)
def _(w: World) -> Built:
    return built(w.blob(media_type=BUNDLE_V01))


@case("pass/v1-blob-v0.2", None)
def _(w: World) -> Built:
    return built(w.blob(media_type=BUNDLE_V02))


@case("pass/v1-blob-v0.3", None)
def _(w: World) -> Built:
    return built(w.blob(media_type=BUNDLE_V03))


@case("pass/v1-blob-v0.3-alt-media-type", None)
def _(w: World) -> Built:
    return built(w.blob(media_type=BUNDLE_V03_ALT))


@case("pass/v1-blob+tsa", None)
def _(w: World) -> Built:
    return built(w.blob(tsa=True))


@case("pass/v2-blob+tsa", None)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2"))


@case("pass/v2-blob+tsa-v0.2", None)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", media_type=BUNDLE_V02))


@case("pass/dsse-v2", None)
def _(w: World) -> Built:
    return built(w.dsse(rekor="v2"))


@case("pass/dsse-v1-log", None)
def _(w: World) -> Built:
    return built(w.dsse(rekor="v1"))


@case("pass/email-identity-v2", None)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", identity="alice@example.org"))


@case("pass/uri-identity-v1", None)
def _(w: World) -> Built:
    return built(w.blob(identity=URI_IDENTITY, issuer=GITHUB_ISSUER))


@case("pass/uri-identity-v2", None)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", identity=URI_IDENTITY, issuer=GITHUB_ISSUER))


@case("pass/uri-identity-dsse-v2", None)
def _(w: World) -> Built:
    return built(w.dsse(identity=URI_IDENTITY, issuer=GITHUB_ISSUER))


@case("pass/issuer-only-in-v2-extension", None)
def _(w: World) -> Built:
    leaf = w.trusted.issue_leaf(DEFAULT_EMAIL, DEFAULT_ISSUER, issuer_v1="")
    return built(w.blob(leaf=leaf))


@case("pass/v0.1-with-full-chain-in-bundle", None)
def _(w: World) -> Built:
    # Old clients put the intermediate and root in the bundle; both verifiers
    # ignore them and use the trusted root's CA.
    signed = w.blob(media_type=BUNDLE_V01)
    bundle = signed.copy()
    certificates = _material(bundle)["x509CertificateChain"]["certificates"]
    certificates.extend({"rawBytes": _der_b64(c)} for c in w.trusted.ca.chain)
    return built(signed, bundle=bundle)


@case("pass/v2-two-timestamps", None)
def _(w: World) -> Built:
    signed = w.blob(rekor="v2")
    bundle = signed.copy()
    token = w.trusted.timestamp(signed.signature, DEFAULT_TIME + dt.timedelta(seconds=40))
    stamps = _material(bundle)["timestampVerificationData"]["rfc3161Timestamps"]
    stamps.append({"signedTimestamp": base64.b64encode(token).decode()})
    return built(signed, bundle=bundle)


@case("pass/v1-log-tsa-without-set", None)
def _(w: World) -> Built:
    # v0.2+ may replace the SET by a timestamp; the unsigned integratedTime is ignored.
    signed = w.blob(tsa=True)
    bundle = signed.copy()
    del _entry(bundle)["inclusionPromise"]
    return built(signed, bundle=bundle)


@case("pass/checkpoint-with-witness-cosignature", None)
def _(w: World) -> Built:
    # Signature lines from unknown keys (witnesses) are ignored by both.
    signed = w.blob(rekor="v2")
    bundle = signed.copy()
    checkpoint = _entry(bundle)["inclusionProof"]["checkpoint"]
    cosignature = base64.b64encode(bytes(range(4)) + bytes(72)).decode()
    checkpoint["envelope"] += f"\u2014 witness.example.org {cosignature}\n"
    return built(signed, bundle=bundle)


@case("fail/checkpoint-foreign-origin-v2", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    # The log's key signed a checkpoint whose origin names another log.
    return built(w.blob(rekor="v2", tweaks=LogTweaks(checkpoint_origin="rekor.elsewhere.example")))


@case("fail/checkpoint-foreign-origin-v1", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    return built(w.blob(tweaks=LogTweaks(checkpoint_origin="rekor.elsewhere.example - 1")))


@case("pass/checkpoint-signer-name-part-of-base-url-v1", None)
def _(w: World) -> Built:
    # A log named after part of its base URL (as local Rekor instances are).
    return built(w.blob(tweaks=LogTweaks(checkpoint_name="rekor", checkpoint_origin="rekor - 7")))


@case("pass/checkpoint-signer-name-part-of-base-url-v2", None)
def _(w: World) -> Built:
    return built(
        w.blob(rekor="v2", tweaks=LogTweaks(checkpoint_name="rekor", checkpoint_origin="rekor"))
    )


@case("edge/v1-body-uppercase-hex-digest", None)
def _(w: World) -> Built:
    def upper(body: dict[str, Any]) -> None:
        digest = body["spec"]["data"]["hash"]
        digest["value"] = digest["value"].upper()

    return built(w.blob(body_hook=upper))


@case("fail/v2-body-unknown-inner-field", Check.TLOG_BODY)
def _(w: World) -> Built:
    def extra(body: dict[str, Any]) -> None:
        body["spec"]["hashedRekordV002"]["note"] = "not part of hashedrekord 0.0.2"

    return built(w.blob(rekor="v2", body_hook=extra))


# ---- (c) constructed failures: transparency log


@case("fail/inclusion-proof-hash-tampered", Check.TLOG_INCLUSION)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    proof = _entry(bundle)["inclusionProof"]
    proof["hashes"][1] = _flip(proof["hashes"][1])
    return built(signed, bundle=bundle)


@case("fail/inclusion-proof-hash-tampered-v2", Check.TLOG_INCLUSION)
def _(w: World) -> Built:
    signed = w.blob(rekor="v2")
    bundle = signed.copy()
    proof = _entry(bundle)["inclusionProof"]
    proof["hashes"][0] = _flip(proof["hashes"][0])
    return built(signed, bundle=bundle)


@case("fail/proof-tree-size-wrong", Check.TLOG_INCLUSION)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    proof = _entry(bundle)["inclusionProof"]
    # Leaf 37 as the last leaf of a tree of 38: the audit path has another length.
    proof["treeSize"] = str(int(proof["logIndex"]) + 1)
    return built(signed, bundle=bundle)


@case("fail/proof-tree-size-off-by-one", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    proof = _entry(bundle)["inclusionProof"]
    # Leaf 37 has the same audit path in trees of 43 and 44 leaves, so the proof
    # still "verifies" for 44; only the signed checkpoint (size 43) exposes it.
    assert (proof["logIndex"], proof["treeSize"]) == ("37", "43")
    proof["treeSize"] = "44"
    return built(signed, bundle=bundle)


@case("fail/checkpoint-size-mismatch", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    # The proof is right for its size and root; the *signed* checkpoint claims
    # the same root for a larger tree.
    return built(w.blob(tweaks=LogTweaks(checkpoint_size=44)))


@case("fail/checkpoint-unknown-key", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    return built(w.blob(tweaks=LogTweaks(checkpoint_key=w.rogue.rekor_v1.key)))


@case("fail/checkpoint-unknown-key-v2", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", tweaks=LogTweaks(checkpoint_key=w.rogue.rekor_v2.key)))


@case("fail/checkpoint-wrong-signer-name-v1", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    return built(w.blob(tweaks=LogTweaks(checkpoint_name="rekor.evil.example")))


@case("fail/checkpoint-wrong-signer-name-v2", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    # Ed25519 note key hashes cover the name, so sigstore-python rejects too.
    return built(w.blob(rekor="v2", tweaks=LogTweaks(checkpoint_name="rekor.evil.example")))


@case("fail/checkpoint-root-mismatch", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    return built(w.blob(tweaks=LogTweaks(checkpoint_root=hashlib.sha256(b"x").digest())))


@case("fail/checkpoint-root-mismatch-v2", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    root = hashlib.sha256(b"x").digest()
    return built(w.blob(rekor="v2", tweaks=LogTweaks(checkpoint_root=root)))


@case("fail/checkpoint-extra-bad-signature-line", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    signed = w.blob(rekor="v2")
    bundle = signed.copy()
    checkpoint = _entry(bundle)["inclusionProof"]["checkpoint"]
    text, line = checkpoint["envelope"].split("\n\n")
    prefix, _, encoded = line.rstrip("\n").rpartition(" ")
    checkpoint["envelope"] = f"{text}\n\n{line}{prefix} {_flip(encoded)}\n"
    return built(signed, bundle=bundle)


@case("fail/inclusion-proof-without-checkpoint-v0.1", Check.BUNDLE_STRUCTURE)
def _(w: World) -> Built:
    signed = w.blob(media_type=BUNDLE_V01)
    bundle = signed.copy()
    del _entry(bundle)["inclusionProof"]["checkpoint"]
    return built(signed, bundle=bundle)


@case("fail/inclusion-proof-without-checkpoint-v0.3", Check.BUNDLE_STRUCTURE)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    del _entry(bundle)["inclusionProof"]["checkpoint"]
    return built(signed, bundle=bundle)


@case("fail/set-tampered", Check.TLOG_SET)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    promise = _entry(bundle)["inclusionPromise"]
    promise["signedEntryTimestamp"] = _flip(promise["signedEntryTimestamp"])
    return built(signed, bundle=bundle)


@case("fail/set-from-another-log-key", Check.TLOG_SET)
def _(w: World) -> Built:
    return built(w.blob(tweaks=LogTweaks(set_key=w.rogue.rekor_v1.key)))


@case("fail/two-tlog-entries", Check.BUNDLE_STRUCTURE)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    entries = _material(bundle)["tlogEntries"]
    entries.append(copy.deepcopy(entries[0]))
    return built(signed, bundle=bundle)


@case("fail/no-tlog-entries", Check.BUNDLE_STRUCTURE)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    _material(bundle)["tlogEntries"] = []
    return built(signed, bundle=bundle)


@case("fail/body-mismatch-cve-2022-36056", Check.TLOG_BODY)
def _(w: World) -> Built:
    # A genuine, verifiable log entry, but for another signing of the artifact.
    signed, other = w.blob(), w.blob()
    bundle = signed.copy()
    _material(bundle)["tlogEntries"] = [copy.deepcopy(other.entry)]
    return built(signed, bundle=bundle)


@case("fail/body-mismatch-cve-2022-36056-v2", Check.TLOG_BODY)
def _(w: World) -> Built:
    signed, other = w.blob(rekor="v2"), w.blob(rekor="v2")
    bundle = signed.copy()
    _material(bundle)["tlogEntries"] = [copy.deepcopy(other.entry)]
    return built(signed, bundle=bundle)


@case("fail/integrated-time-in-future", Check.TIME_SET)
def _(w: World) -> Built:
    return built(w.blob(at=NOW + dt.timedelta(days=1)))


@case("fail/tlog-key-expired-v1", Check.TLOG_SET)
def _(w: World) -> Built:
    signed = w.blob()
    root = copy.deepcopy(signed.trusted_root)
    _validity(root["tlogs"][0]["publicKey"], end=DEFAULT_TIME - dt.timedelta(days=30))
    return built(signed, root=root)


@case("fail/tlog-key-expired-v2", Check.TLOG_CHECKPOINT)
def _(w: World) -> Built:
    signed = w.blob(rekor="v2")
    root = copy.deepcopy(signed.trusted_root)
    _validity(root["tlogs"][1]["publicKey"], end=DEFAULT_TIME - dt.timedelta(days=30))
    return built(signed, root=root)


@case("fail/v2-entry-without-timestamp", Check.TIME_NONE)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", tsa=False))


@case("fail/v0.1-bundle-without-set", Check.BUNDLE_STRUCTURE)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", media_type=BUNDLE_V01))


# ---- (c) constructed failures: bundle structure


@case("fail/unknown-media-type", Check.BUNDLE_MEDIA_TYPE)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json"
    return built(signed, bundle=bundle)


@case("fail/v0.3-with-x509-certificate-chain", Check.BUNDLE_STRUCTURE)
def _(w: World) -> Built:
    signed = w.blob()
    bundle = signed.copy()
    material = _material(bundle)
    material["x509CertificateChain"] = {"certificates": [material.pop("certificate")]}
    return built(signed, bundle=bundle)


@case("fail/empty-certificate-chain", Check.BUNDLE_STRUCTURE)
def _(w: World) -> Built:
    signed = w.blob(media_type=BUNDLE_V01)
    bundle = signed.copy()
    _material(bundle)["x509CertificateChain"] = {"certificates": []}
    return built(signed, bundle=bundle)


# ---- (c) constructed failures: signature, artifact, identity


@case("fail/leaf-swapped", Check.TLOG_BODY)
def _(w: World) -> Built:
    signed, other = w.blob(), w.blob()
    bundle = signed.copy()
    _material(bundle)["certificate"] = copy.deepcopy(_material(other.bundle)["certificate"])
    return built(signed, bundle=bundle)


@case("fail/leaf-swapped-v2", Check.TLOG_BODY)
def _(w: World) -> Built:
    signed, other = w.blob(rekor="v2"), w.blob(rekor="v2")
    bundle = signed.copy()
    _material(bundle)["certificate"] = copy.deepcopy(_material(other.bundle)["certificate"])
    return built(signed, bundle=bundle)


@case("fail/signature-over-other-artifact", Check.SIGNATURE)
def _(w: World) -> Built:
    return built(w.blob(sign_over=OTHER_ARTIFACT))


@case("fail/signature-over-other-artifact-v2", Check.SIGNATURE)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", sign_over=OTHER_ARTIFACT))


@case("fail/verified-against-other-artifact", Check.TLOG_BODY)
def _(w: World) -> Built:
    return built(w.blob(), artifact=OTHER_ARTIFACT)


@case("fail/verified-against-other-artifact-v2", Check.TLOG_BODY)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2"), artifact=OTHER_ARTIFACT)


@case("fail/message-digest-mismatch", Check.SIGNATURE_DIGEST)
def _(w: World) -> Built:
    signed = w.blob(rekor="v2")
    bundle = signed.copy()
    digest = bundle["messageSignature"]["messageDigest"]
    digest["digest"] = _flip(digest["digest"])
    return built(signed, bundle=bundle)


@case("fail/wrong-identity", Check.IDENTITY_SAN)
def _(w: World) -> Built:
    return built(w.blob(), identity="mallory@airseal.test")


@case("fail/wrong-identity-uri", Check.IDENTITY_SAN)
def _(w: World) -> Built:
    signed = w.blob(rekor="v2", identity=URI_IDENTITY, issuer=GITHUB_ISSUER)
    return built(signed, identity=URI_IDENTITY.replace("v1.0.0", "v1.0.1"))


@case("fail/wrong-issuer", Check.IDENTITY_ISSUER)
def _(w: World) -> Built:
    return built(w.blob(), issuer="https://accounts.example.org")


@case("fail/issuer-extensions-disagree", Check.CERT_PROFILE)
def _(w: World) -> Built:
    leaf = w.trusted.issue_leaf(DEFAULT_EMAIL, DEFAULT_ISSUER, issuer_v2="https://evil.example")
    return built(w.blob(leaf=leaf))


# ---- (c) constructed failures: certificates


@case("fail/leaf-expired-at-integrated-time", Check.TIME_VALIDITY)
def _(w: World) -> Built:
    return built(w.blob(integrated_time=DEFAULT_TIME + dt.timedelta(minutes=11)))


@case("fail/leaf-expired-at-tsa-time", Check.TIME_VALIDITY)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", tsa_time=DEFAULT_TIME + dt.timedelta(minutes=11)))


@case("fail/sct-from-untrusted-ct-log", Check.CERT_SCT)
def _(w: World) -> Built:
    leaf = w.trusted.issue_leaf(ct_key=w.rogue.ct_key)
    return built(w.blob(leaf=leaf))


@case("fail/sct-tampered", Check.CERT_SCT)
def _(w: World) -> Built:
    return built(w.blob(leaf=w.trusted.issue_leaf(tamper_sct=True)))


@case("fail/ctlog-key-expired", Check.CERT_SCT)
def _(w: World) -> Built:
    signed = w.blob()
    root = copy.deepcopy(signed.trusted_root)
    _validity(root["ctlogs"][0]["publicKey"], end=DEFAULT_TIME - dt.timedelta(days=30))
    return built(signed, root=root)


@case("fail/leaf-not-from-trusted-ca", Check.CERT_CHAIN)
def _(w: World) -> Built:
    return built(w.blob(leaf=w.rogue.issue_leaf()))


@case("fail/leaf-not-from-trusted-ca-v2", Check.CERT_CHAIN)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", leaf=w.rogue.issue_leaf()))


@case("fail/ca-expired-at-signing", Check.CERT_CHAIN)
def _(w: World) -> Built:
    signed = w.blob()
    root = copy.deepcopy(signed.trusted_root)
    _validity(root["certificateAuthorities"][0], end=DEFAULT_TIME - dt.timedelta(days=30))
    return built(signed, root=root)


@case("fail/ca-not-yet-valid-at-signing", Check.CERT_CHAIN)
def _(w: World) -> Built:
    signed = w.blob()
    root = copy.deepcopy(signed.trusted_root)
    _validity(root["certificateAuthorities"][0], start=DEFAULT_TIME + dt.timedelta(days=30))
    return built(signed, root=root)


# ---- (c) constructed failures: timestamps


@case("fail/tsa-over-other-message", Check.TIME_TSA)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", tsa_message=b"not the signature"))


@case("fail/tsa-over-other-message+set", Check.TIME_TSA)
def _(w: World) -> Built:
    return built(w.blob(tsa=True, tsa_message=b"not the signature"))


@case("fail/tsa-untrusted-chain", Check.TIME_TSA)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", tsa_chain=w.rogue_tsa))


@case("fail/tsa-gentime-after-validfor", Check.TIME_TSA)
def _(w: World) -> Built:
    end = DEFAULT_TIME - dt.timedelta(days=1)
    return built(w.blob(rekor="v2"), root=w.trusted.trusted_root(tsa_valid_for=(TRUST_START, end)))


@case("fail/tsa-gentime-before-validfor", Check.TIME_TSA)
def _(w: World) -> Built:
    start = DEFAULT_TIME + dt.timedelta(days=1)
    return built(w.blob(rekor="v2"), root=w.trusted.trusted_root(tsa_valid_for=(start, None)))


@case("edge/tsa-gentime-at-validfor-end", None)
def _(w: World) -> Built:
    gen_time = DEFAULT_TIME + dt.timedelta(seconds=20)
    return built(
        w.blob(rekor="v2", tsa_time=gen_time),
        root=w.trusted.trusted_root(tsa_valid_for=(TRUST_START, gen_time)),
    )


@case("fail/tsa-time-in-future", Check.TIME_TSA)
def _(w: World) -> Built:
    return built(w.blob(rekor="v2", at=NOW + dt.timedelta(days=1)))


# ---- (c) constructed failures: DSSE


@case("fail/dsse-subject-mismatch", Check.DSSE_SUBJECT)
def _(w: World) -> Built:
    return built(w.dsse(subject=OTHER_ARTIFACT))


@case("fail/dsse-subject-mismatch-v1-log", Check.DSSE_SUBJECT)
def _(w: World) -> Built:
    return built(w.dsse(subject=OTHER_ARTIFACT, rekor="v1"))


@case("fail/dsse-payload-tampered", Check.TLOG_BODY)
def _(w: World) -> Built:
    signed = w.dsse()
    bundle = signed.copy()
    statement = in_toto_statement({"artifact.bin": ARTIFACT, "extra.bin": b"extra"})
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return built(signed, bundle=bundle)


@case("fail/dsse-payload-tampered-v1-log", Check.TLOG_BODY)
def _(w: World) -> Built:
    signed = w.dsse(rekor="v1")
    bundle = signed.copy()
    statement = in_toto_statement({"artifact.bin": ARTIFACT, "extra.bin": b"extra"})
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return built(signed, bundle=bundle)


@case("fail/dsse-wrong-payload-type", Check.DSSE_PAYLOAD_TYPE)
def _(w: World) -> Built:
    signed = w.trusted.sign_dsse(
        in_toto_statement({"artifact.bin": ARTIFACT}),
        artifact=ARTIFACT,
        payload_type="application/json",
    )
    return built(signed)


# ---- running them


@dataclass
class _Strangers:
    rogue: FakeSigstore
    rogue_tsa: tsa_tokens.TsaChain
    built: dict[str, Built] = field(default_factory=dict)


@pytest.fixture(scope="module")
def strangers() -> _Strangers:
    return _Strangers(FakeSigstore(seed="rogue"), tsa_tokens.make_chain("p256"))


@pytest.fixture
def world(strangers: _Strangers) -> World:
    return World(FakeSigstore(), strangers.rogue, strangers.rogue_tsa)


def _factory_params() -> list[Any]:
    params: list[Any] = []
    for name in CASES:
        for mode in ("bytes", "digest"):
            params.append(pytest.param(name, mode, id=f"{name}-{mode}"))
    return params


@pytest.mark.parametrize(("name", "mode"), _factory_params())
def test_factory_case(strangers: _Strangers, world: World, name: str, mode: Mode) -> None:
    expected, build = CASES[name]
    if name not in strangers.built:  # both modes verify the same bundle
        strangers.built[name] = build(world)
    b = strangers.built[name]
    root_json = json.dumps(b.root)
    bundle_json = json.dumps(b.bundle).encode()
    sha256 = hashlib.sha256(b.artifact).digest()
    if mode == "bytes":
        artifact, data = Artifact.from_bytes(b.artifact), b.artifact
    else:
        artifact, data = Artifact(sha256=sha256), None

    got, detail = airseal_verdict(root_json, bundle_json, artifact, b.identity, b.issuer, NOW)
    ok, message = sigstore_verdict(root_json, bundle_json, data, sha256, b.identity, b.issuer)

    assert got == expected, f"airseal: {got} ({detail}); sigstore-python: {message}"
    divergence = DIVERGENCES.get(name)
    if divergence is None:
        assert ok == (expected is None), f"sigstore-python: {message}; airseal: {detail}"
    else:
        assert divergence.airseal == expected
        assert ok == divergence.sigstore_passes, f"sigstore-python: {message}"


def test_divergence_table_is_exact() -> None:
    """Each divergence names a real case, and really is one (different verdicts)."""
    for key, divergence in DIVERGENCES.items():
        if not key.startswith("vector:"):
            assert key in CASES, key
            assert CASES[key][0] == divergence.airseal, key
        assert (divergence.airseal is None) != divergence.sigstore_passes, key
        assert divergence.reason


def test_rekor_v2_index_must_be_the_proven_one(world: World) -> None:
    """A Rekor v2 entry's logIndex is not signed; it must equal the proven index."""
    signed = world.blob(rekor="v2")
    verifier = Verifier(TrustedRoot.from_dict(signed.trusted_root))
    policy = IdentityPolicy(issuer=signed.issuer, identity=signed.identity)
    artifact = Artifact.from_bytes(signed.artifact)
    proof_index = int(_entry(signed.bundle)["inclusionProof"]["logIndex"])
    result = verifier.verify(json.dumps(signed.bundle), artifact, policy, now=NOW)
    assert result.log_index == proof_index
    bundle = signed.copy()
    _entry(bundle)["logIndex"] = "5"
    with pytest.raises(VerificationError) as info:
        verifier.verify(json.dumps(bundle), artifact, policy, now=NOW)
    assert info.value.check is Check.TLOG_INCLUSION
    assert f"differs from the proven index {proof_index}" in info.value.detail


# --------------------------------------------------------------------------- factory self-checks


def test_factory_leaf_profile(world: World) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    leaf = world.trusted.issue_leaf(URI_IDENTITY, GITHUB_ISSUER)
    cert = leaf.cert
    # The SCT was signed over exactly the TBS verifiers rebuild.
    assert cert.tbs_precertificate_bytes == leaf.precert_tbs
    assert cert.subject == x509.Name([])
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(minutes=10)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [URI_IDENTITY]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CODE_SIGNING]
    scts = cert.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    assert len(scts) == 1 and scts[0].log_id == world.trusted.ct_log_id
    raw_v1 = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"))
    assert raw_v1.value.public_bytes() == GITHUB_ISSUER.encode()
    raw_v2 = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"))
    assert (
        raw_v2.value.public_bytes()
        == b"\x0c" + bytes([len(GITHUB_ISSUER)]) + GITHUB_ISSUER.encode()
    )
    inter = world.trusted.ca.intermediate
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    root = world.trusted.ca.root
    assert root.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_factory_logs_follow_the_recipes(world: World) -> None:
    trusted = world.trusted
    v1 = trusted.rekor_v1
    spki = v1.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert v1.log_id == hashlib.sha256(spki).digest()
    v2 = trusted.rekor_v2
    raw = v2.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert v2.log_id == hashlib.sha256(v2.host.encode() + b"\n\x01" + raw).digest()

    signed = trusted.sign_blob(ARTIFACT)
    proof = signed.entry["inclusionProof"]
    assert int(proof["logIndex"]) > 0 and int(proof["treeSize"]) > int(proof["logIndex"]) + 1
    assert len(proof["hashes"]) >= 3
    envelope = proof["checkpoint"]["envelope"]
    assert envelope.startswith(f"{v1.host} - {v1.tree_id}\n{proof['treeSize']}\n")
    signature_line = envelope.rsplit("\n\n", 1)[1]
    assert signature_line.startswith(f"\u2014 {v1.host} ")
    assert base64.b64decode(signature_line.split(" ")[2])[:4] == v1.log_id[:4]

    signed2 = trusted.sign_blob(ARTIFACT, rekor="v2")
    body = json.loads(signed2.body)
    assert body["apiVersion"] == "0.0.2" and "hashedRekordV002" in body["spec"]
    assert "integratedTime" not in signed2.entry and "inclusionPromise" not in signed2.entry
    assert signed2.entry["inclusionProof"]["checkpoint"]["envelope"].startswith(f"{v2.host}\n")

    root = TrustedRoot.from_dict(signed.trusted_root)
    assert root.to_dict()["tlogs"][1]["logId"]["keyId"] == base64.b64encode(v2.log_id).decode()


def test_same_seed_same_keys() -> None:
    a, b = FakeSigstore(seed="s"), FakeSigstore(seed="s")
    assert a.rekor_v1.log_id == b.rekor_v1.log_id
    assert a.rekor_v2.log_id == b.rekor_v2.log_id
    assert a.ct_log_id == b.ct_log_id
    assert a.ca.intermediate.public_key() == b.ca.intermediate.public_key()
    assert FakeSigstore(seed="t").ct_log_id != a.ct_log_id
