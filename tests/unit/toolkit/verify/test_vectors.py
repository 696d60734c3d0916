"""Every case of the shared sigstore-python vectors, in path and digest mode.

Expected outcomes come from INDEX.json (``expected``); failing cases must fail
with the check code listed here, which is the *reason* the case exists.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import EXPECTED_CHECK, VectorCase, load_cases
from toolkit.errors import Check, VerificationError
from toolkit.verify import Artifact, IdentityPolicy, Verifier

# A distinctive part of the failure message, so the right rule fired.
EXPECTED_DETAIL: dict[str, str] = {
    "cve-2022-36056-inconsistent-entry_fail": "different signature",
    "invalid-media-type_fail": "unsupported bundle media type",
    "no-log-entry_fail": "exactly one tlog entry, found 0",
    "production-v0.1-missing-checkpoint-digest-only_fail": "signed checkpoint",
    "tsa-duplicate-timestamps_fail": "duplicate",
    "tsa-local-extra-bad-timestamp": "timestamp #1: timestamp imprint does not match",
    "tsa-too-many-timestamps_fail": "33 > 32",
    "v0.1-empty-cert-chain_fail": "chain is empty",
    "v0.2-no-checkpoint_fail": "signed checkpoint",
    "v0.3-no-signed-time_fail": "no verifiable time",
}

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def _params() -> list[object]:
    try:
        cases = load_cases()
    except BaseException:  # skipped or failed by load_cases: report it at collection
        return [pytest.param(None, "path", id="vectors-missing")]
    params: list[object] = []
    for case in cases:
        modes = ["digest"] if case.artifact_path is None else ["path", "digest"]
        params.extend(pytest.param(case, mode, id=f"{case.name}-{mode}") for mode in modes)
    return params


def _run(case: VectorCase, mode: str) -> None:
    verifier = Verifier.from_json(case.trusted_root_path.read_bytes())
    if mode == "path":
        assert case.artifact_path is not None
        artifact = Artifact.from_bytes(case.artifact_path.read_bytes())
    else:
        artifact = Artifact.from_digest(case.digest_arg)
    policy = IdentityPolicy(issuer=case.issuer, identity=case.identity)
    verifier.verify(case.bundle_path.read_bytes(), artifact, policy, now=NOW)


@pytest.mark.parametrize(("case", "mode"), _params())
def test_vector(case: VectorCase | None, mode: str) -> None:
    if case is None:
        load_cases()  # skips (or fails under CI) with the reason
        return
    if case.expected == "pass":
        _run(case, mode)
        return
    assert case.expected in ("fail", "policy-dependent")
    with pytest.raises(VerificationError) as info:
        _run(case, mode)
    assert info.value.check is EXPECTED_CHECK[case.name], info.value.detail
    assert EXPECTED_DETAIL[case.name] in info.value.detail


def test_every_failing_case_has_a_reason() -> None:
    names = {c.name for c in load_cases() if c.expected != "pass"}
    assert names == set(EXPECTED_CHECK) == set(EXPECTED_DETAIL)


def test_happy_results_name_identity_log_and_time() -> None:
    for case in load_cases():
        if case.expected != "pass":
            continue
        verifier = Verifier.from_json(case.trusted_root_path.read_bytes())
        result = verifier.verify(
            case.bundle_path.read_bytes(),
            Artifact.from_digest(case.digest_arg),
            IdentityPolicy(issuer=case.issuer, identity=case.identity),
            now=NOW,
        )
        assert result.identity == case.identity
        assert result.issuer == case.issuer
        assert result.times, case.name
        assert result.log_url.startswith("https://")
        info = case.raw["bundle_info"]
        assert result.content == info["content"]
        expected_source = "tsa" if info["rfc3161_timestamps"] else "tlog"
        assert {t.source for t in result.times} == {expected_source}


def test_wrong_identity_and_issuer_are_named() -> None:
    case = next(c for c in load_cases() if c.name == "staging-v0.3-happy")
    verifier = Verifier.from_json(case.trusted_root_path.read_bytes())
    artifact = Artifact.from_digest(case.digest_arg)
    bundle = case.bundle_path.read_bytes()
    with pytest.raises(VerificationError) as info:
        verifier.verify(
            bundle, artifact, IdentityPolicy(issuer=case.issuer, identity="x@y.z"), now=NOW
        )
    assert info.value.check is Check.IDENTITY_SAN
    with pytest.raises(VerificationError) as info:
        verifier.verify(
            bundle,
            artifact,
            IdentityPolicy(issuer="https://evil.example", identity=case.identity),
            now=NOW,
        )
    assert info.value.check is Check.IDENTITY_ISSUER
    with pytest.raises(VerificationError) as info:
        verifier.verify(
            bundle,
            Artifact.from_bytes(b"other"),
            IdentityPolicy(issuer=case.issuer, identity=case.identity),
            now=NOW,
        )
    assert info.value.check is Check.TLOG_BODY


def test_verified_time_in_the_future_is_refused() -> None:
    case = next(c for c in load_cases() if c.name == "staging-v0.3-happy")
    verifier = Verifier.from_json(case.trusted_root_path.read_bytes())
    with pytest.raises(VerificationError) as info:
        verifier.verify(
            case.bundle_path.read_bytes(),
            Artifact.from_digest(case.digest_arg),
            IdentityPolicy(issuer=case.issuer, identity=case.identity),
            now=datetime(2020, 1, 1, tzinfo=UTC),
        )
    assert info.value.check is Check.TIME_SET
    assert "future" in info.value.detail


def test_set_payload_is_rfc8785() -> None:
    import base64

    from toolkit.encoding import canonical_json
    from toolkit.models import Bundle
    from toolkit.verify.verifier import _set_payload

    case = next(c for c in load_cases() if c.name == "staging-v0.1-happy")
    entry = Bundle.from_json(case.bundle_path.read_bytes()).verification_material.tlog_entries[0]
    assert _set_payload(entry) == canonical_json(
        {
            "body": base64.b64encode(entry.canonicalized_body).decode(),
            "integratedTime": entry.integrated_time,
            "logID": entry.log_id.key_id.hex(),
            "logIndex": entry.log_index,
        }
    )


@pytest.mark.parametrize(
    ("value", "check", "detail"),
    [
        (str(2**63 - 1), Check.TIME_SET, "out of range"),
        (str(2**40), Check.TIME_SET, "out of range"),
        ("1682468470", Check.TLOG_SET, "does not verify"),
    ],
)
def test_integrated_time_is_signed_and_bounded(value: str, check: Check, detail: str) -> None:
    import json

    case = next(c for c in load_cases() if c.name == "staging-v0.1-happy")
    bundle = json.loads(case.bundle_path.read_text())
    bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = value
    verifier = Verifier.from_json(case.trusted_root_path.read_bytes())
    with pytest.raises(VerificationError) as info:
        verifier.verify(
            json.dumps(bundle),
            Artifact.from_digest(case.digest_arg),
            IdentityPolicy(issuer=case.issuer, identity=case.identity),
            now=NOW,
        )
    assert info.value.check is check
    assert detail in info.value.detail
