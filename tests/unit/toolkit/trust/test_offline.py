"""Offline kit verification: every attack is refused with its check code.

Repositories come from ``tests/support/tuf_repo.py`` (python-tuf's Metadata
API, software keys); the bundle and its trusted root from FakeSigstore.
"""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.tuf_repo import (
    DEFAULT_NOW,
    Published,
    TufRepo,
    material,
    three_root_repo,
)
from toolkit.errors import Check, UsageError, VerificationError
from toolkit.trust.kit import Kit
from toolkit.trust.offline import (
    ExpiryPolicy,
    KitVerification,
    PinnedRoot,
    default_state_dir,
    verify_kit,
    verify_trust,
)
from toolkit.verify import Artifact, IdentityPolicy

NOW = DEFAULT_NOW + timedelta(hours=1)


def _pin(state: Published) -> PinnedRoot:
    return PinnedRoot.from_hex(hashlib.sha256(state.roots[0]).hexdigest())


def _verify(
    state: Published | Kit,
    state_dir: Path,
    *,
    expiry: str = "strict",
    now: datetime = NOW,
    pin: PinnedRoot | None = None,
    identity: str | None = None,
) -> KitVerification:
    m = material()
    kit = state if isinstance(state, Kit) else state.kit([m.bundle])
    kit = Kit.decode(kit.encode())  # always through the codec
    return verify_kit(
        kit,
        Artifact.from_bytes(m.artifact),
        IdentityPolicy(issuer=m.issuer, identity=identity or m.identity),
        pin or PinnedRoot.from_hex(hashlib.sha256(kit.roots[0]).hexdigest()),
        state_dir=state_dir,
        expiry=ExpiryPolicy.parse(expiry),
        now=now,
    )


def _fails(check: Check, *args: object, **kwargs: object) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        _verify(*args, **kwargs)  # type: ignore[arg-type]
    assert info.value.check is check, info.value
    return info.value


@pytest.fixture(scope="module")
def repo3() -> TufRepo:
    return three_root_repo()


# --------------------------------------------------------------------------- the good path


def test_root_chain_v1_to_v3_with_key_changes_is_accepted(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    assert state.versions["root"] == 3
    done = _verify(state, tmp_path)
    assert done.result.identity == material().identity
    assert done.trust.roles[0].role == "root" and done.trust.roles[0].version == 3
    assert done.trust.trusted_root == material().trusted_root
    assert set(done.trust.target_files) == {"trusted_root.json", "signing_config.v0.2.json"}
    doc = done.to_dict()
    assert doc["ok"] is True
    assert doc["kit"]["expiryPolicy"] == "strict"
    assert doc["kit"]["rootVersion"] == 3
    # State keeps what was verified: the root history and the top-level roles.
    assert (tmp_path / "root_history" / "3.root.json").read_bytes() == state.roots[2]
    assert (tmp_path / "timestamp.json").read_bytes() == state.timestamp
    # A second verification of the same kit from the same state works.
    _verify(state, tmp_path)


def test_pinning_root_bytes_works_for_v1_and_later_versions(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    _verify(state, tmp_path / "a", pin=PinnedRoot.from_bytes(state.roots[0]))
    _verify(state, tmp_path / "b", pin=PinnedRoot.from_bytes(state.roots[1]))


def test_delegated_role_and_plain_snapshots(tmp_path: Path) -> None:
    repo = TufRepo(material().target_files, delegate="sigstore", consistent_snapshot=False)
    repo.rotate_root()
    state = repo.publish()
    assert set(state.delegated) == {"sigstore"}
    done = _verify(state, tmp_path)
    assert [r.role for r in done.trust.roles] == [
        "root",
        "timestamp",
        "snapshot",
        "targets",
        "sigstore",
    ]


def test_state_directory_is_private_and_default_follows_xdg(
    repo3: TufRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "new" / "state"
    _verify(repo3.publish(), state_dir)
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    pin = _pin(repo3.publish())
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_state_dir(pin) == tmp_path / "xdg" / "airseal" / "kit-state" / pin.hex
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir(pin).is_relative_to(tmp_path / "home" / ".local" / "share")


def test_forged_state_is_never_trusted(repo3: TufRepo, tmp_path: Path) -> None:
    """A state file is only ever used after TUF verified it against the trusted root."""
    state = repo3.publish()
    rogue = TufRepo(material().target_files)
    for _ in range(5):
        rogue.new_timestamp()
    (tmp_path / "root_history").mkdir(parents=True)
    (tmp_path / "root_history" / "2.root.json").write_bytes(rogue.publish().roots[0])
    (tmp_path / "timestamp.json").write_bytes(rogue.publish().timestamp)
    (tmp_path / "snapshot.json").write_bytes(b"not json")
    (tmp_path / "trusted_root.json").write_bytes(b"{}")
    done = _verify(state, tmp_path)
    assert done.trust.trusted_root == material().trusted_root
    assert done.trust.roles[1].version == state.versions["timestamp"]


# --------------------------------------------------------------------------- pinned root


def test_wrong_pinned_hash(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    error = _fails(Check.KIT_ROOT, state, tmp_path, pin=PinnedRoot.from_hex("00" * 32))
    assert "not the pinned" in error.message
    # The hash of a later root is not the hash of the kit's 1.root.json.
    other = PinnedRoot.from_hex(hashlib.sha256(state.roots[1]).hexdigest())
    _fails(Check.KIT_ROOT, state, tmp_path, pin=other)


def test_pinned_root_that_does_not_verify(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    _fails(Check.KIT_ROOT, state, tmp_path, pin=PinnedRoot.from_bytes(b"{}"))
    forged = state.roots[0].replace(b'"version": 1', b'"version": 7')
    _fails(Check.KIT_ROOT, state, tmp_path, pin=PinnedRoot.from_bytes(forged))


def test_root_of_another_repository(repo3: TufRepo, tmp_path: Path) -> None:
    stranger = TufRepo(material().target_files).publish()
    _fails(Check.KIT_TUF, repo3.publish(), tmp_path, pin=PinnedRoot.from_bytes(stranger.roots[0]))


def test_pin_hex_parsing() -> None:
    digest = "ab" * 32
    assert PinnedRoot.from_hex(f"sha256:{digest.upper()}").hex == digest
    with pytest.raises(UsageError):
        PinnedRoot.from_hex("abc")


# --------------------------------------------------------------------------- root rotation


def test_under_signed_root_rotation_by_old_keys(tmp_path: Path) -> None:
    repo = TufRepo(material().target_files)
    repo.rotate_root(old_signers=1)  # v1 needs 2 of 3
    error = _fails(Check.KIT_TUF, repo.publish(), tmp_path)
    assert "root" in error.message


def test_under_signed_root_rotation_by_new_keys(tmp_path: Path) -> None:
    repo = TufRepo(material().target_files)
    # Replace two root keys and raise the threshold to 3: the old keys' two
    # signatures do not make three signatures of the new root's keys.
    repo.rotate_root(threshold=3, new_signers=0)
    _fails(Check.KIT_TUF, repo.publish(), tmp_path)


def test_root_chain_with_a_gap_or_out_of_order(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    _fails(Check.KIT_TUF, state.but(roots=(state.roots[0], state.roots[2])), tmp_path / "a")
    _fails(
        Check.KIT_TUF,
        state.but(roots=(state.roots[0], state.roots[2], state.roots[1])),
        tmp_path / "b",
    )


def test_truncated_root_chain_is_not_enough(repo3: TufRepo, tmp_path: Path) -> None:
    """Dropping the newest root leaves metadata signed by keys v2 does not trust."""
    state = repo3.publish()
    _fails(Check.KIT_TUF, state.but(roots=state.roots[:2]), tmp_path)


# --------------------------------------------------------------------------- rollback


def test_timestamp_rollback_after_newer_seen(tmp_path: Path) -> None:
    repo = three_root_repo()
    old = repo.publish()
    repo.new_timestamp()
    repo.new_timestamp()
    _verify(repo.publish(), tmp_path)
    error = _fails(Check.KIT_ROLLBACK, old, tmp_path)
    assert "timestamp" in error.message
    # Without that state the old kit is fine: rollback protection is the state's job.
    _verify(old, tmp_path / "fresh")


def test_snapshot_rollback_after_newer_seen(tmp_path: Path) -> None:
    repo = three_root_repo()
    old = repo.publish()
    repo.new_snapshot()
    _verify(repo.publish(), tmp_path)
    # A new timestamp (compromised timestamp key) naming the older snapshot.
    repo.new_timestamp(naming=(old.versions["snapshot"], old.snapshot))
    attack = repo.publish().but(snapshot=old.snapshot)
    _fails(Check.KIT_ROLLBACK, attack, tmp_path)


def test_targets_rollback_after_newer_seen(tmp_path: Path) -> None:
    repo = three_root_repo()
    old = repo.publish()
    repo.new_targets()
    _verify(repo.publish(), tmp_path)
    # A new snapshot (compromised snapshot key) naming the older targets.
    repo.new_snapshot(targets=(old.versions["targets"], old.targets))
    attack = repo.publish().but(targets=old.targets)
    error = _fails(Check.KIT_ROLLBACK, attack, tmp_path)
    assert "targets" in error.message


# --------------------------------------------------------------------------- freeze / expiry


def _expired_timestamp_repo(ago: timedelta) -> Published:
    repo = three_root_repo()
    repo.new_timestamp(expires=NOW - ago)
    return repo.publish()


def test_freeze_strict_rejects_expired_timestamp(tmp_path: Path) -> None:
    error = _fails(Check.KIT_EXPIRED, _expired_timestamp_repo(timedelta(hours=1)), tmp_path)
    assert "timestamp" in error.message and "strict" in error.message


def test_freeze_grace_within_and_beyond(tmp_path: Path) -> None:
    state = _expired_timestamp_repo(timedelta(days=2))
    done = _verify(state, tmp_path / "a", expiry="grace=3")
    assert done.to_dict()["kit"]["expiryPolicy"] == "grace=3"
    assert done.trust.roles[1].expired_now is True
    assert done.trust.tuf_reference_time == NOW - timedelta(days=3)
    _fails(Check.KIT_EXPIRED, state, tmp_path / "b", expiry="grace=1")
    _fails(Check.KIT_EXPIRED, state, tmp_path / "c", expiry="grace=0")


def test_grace_covers_snapshot_but_never_targets_or_root(tmp_path: Path) -> None:
    repo = three_root_repo()
    repo.new_snapshot(expires=NOW - timedelta(hours=2))
    _verify(repo.publish(), tmp_path / "snap", expiry="grace=1")
    repo = three_root_repo()
    repo.new_targets(expires=NOW - timedelta(hours=2))
    error = _fails(Check.KIT_EXPIRED, repo.publish(), tmp_path / "targets", expiry="grace=30")
    assert "targets" in error.message
    repo = three_root_repo()
    repo.rotate_root(expires=NOW - timedelta(hours=2))
    error = _fails(Check.KIT_EXPIRED, repo.publish(), tmp_path / "root", expiry="grace=30")
    assert "root" in error.message


def test_attested_time_explicit(tmp_path: Path) -> None:
    state = _expired_timestamp_repo(timedelta(days=10))  # expired at NOW - 10 days
    before = (NOW - timedelta(days=11)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = (NOW - timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = _verify(state, tmp_path / "a", expiry=f"attested-time={before}")
    assert done.trust.reference_time == NOW - timedelta(days=11)
    assert done.to_dict()["kit"]["expiryPolicy"] == f"attested-time={before}"
    _fails(Check.KIT_EXPIRED, state, tmp_path / "b", expiry=f"attested-time={after}")


def test_attested_time_from_the_bundle(tmp_path: Path) -> None:
    # The bundle was timestamped at DEFAULT_NOW + 20 s; the kit is checked a
    # month later, when its timestamp (1 day) and snapshot (7 days) have expired.
    later = DEFAULT_NOW + timedelta(days=30)
    state = three_root_repo().publish()
    _fails(Check.KIT_EXPIRED, state, tmp_path / "strict", now=later)
    done = _verify(state, tmp_path / "bundle", expiry="attested-time=bundle", now=later)
    assert done.trust.reference_time == DEFAULT_NOW + timedelta(seconds=20)
    assert done.to_dict()["kit"]["expiryPolicy"] == "attested-time=bundle"
    assert done.to_dict()["kit"]["referenceTime"] == "2025-06-01T12:00:20Z"
    # Metadata that had already expired when the bundle was made is refused.
    repo = three_root_repo()
    repo.new_timestamp(expires=DEFAULT_NOW + timedelta(seconds=10))
    _fails(
        Check.KIT_EXPIRED,
        repo.publish(),
        tmp_path / "stale",
        expiry="attested-time=bundle",
        now=later,
    )


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "lenient",
        "grace",
        "grace=-1",
        "grace=x",
        "grace=99999",
        "attested-time",
        "attested-time=yesterday",
        "strict=1",
    ],
)
def test_bad_expiry_specs(spec: str) -> None:
    with pytest.raises(UsageError):
        ExpiryPolicy.parse(spec)


def test_expiry_spec_round_trip() -> None:
    for spec in [
        "strict",
        "grace=7",
        "grace=0.5",
        "attested-time=bundle",
        "attested-time=2025-06-01T12:00:00Z",
    ]:
        assert str(ExpiryPolicy.parse(spec)) == spec


# --------------------------------------------------------------------------- mix and match


def test_snapshot_from_another_state(tmp_path: Path) -> None:
    repo = three_root_repo()
    old = repo.publish()
    repo.new_snapshot()
    error = _fails(Check.KIT_MIX_AND_MATCH, repo.publish().but(snapshot=old.snapshot), tmp_path)
    assert "snapshot" in error.message


def test_snapshot_from_another_state_without_hashes(tmp_path: Path) -> None:
    repo = three_root_repo()
    old = repo.publish()
    repo.new_snapshot(timestamp=False)
    repo.new_timestamp(snapshot_hashes=False)
    _verify(repo.publish(), tmp_path / "ok")
    _fails(Check.KIT_MIX_AND_MATCH, repo.publish().but(snapshot=old.snapshot), tmp_path / "bad")


def test_targets_from_another_state(tmp_path: Path) -> None:
    repo = three_root_repo()
    old = repo.publish()
    repo.new_targets()
    error = _fails(Check.KIT_MIX_AND_MATCH, repo.publish().but(targets=old.targets), tmp_path)
    assert "targets" in error.message


def test_delegated_role_from_another_state(tmp_path: Path) -> None:
    repo = TufRepo(material().target_files, delegate="sigstore")
    old = repo.publish()
    repo.new_targets()
    _fails(Check.KIT_MIX_AND_MATCH, repo.publish().but(delegated=old.delegated), tmp_path / "a")
    _fails(Check.KIT_TUF, repo.publish().but(delegated={}), tmp_path / "b")


# ----------------------------------------------------------------- targets and metadata bytes


def test_tampered_target_bytes(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    root = json.loads(material().trusted_root)
    root["tlogs"] = root["tlogs"][:1]
    forged = json.dumps(root, indent=2).encode()
    files = dict(state.target_files, **{"trusted_root.json": forged})
    error = _fails(Check.KIT_TARGET, state.but(target_files=files), tmp_path)
    assert "trusted_root.json" in error.message
    files = dict(state.target_files, **{"signing_config.v0.2.json": b"{}"})
    _fails(Check.KIT_TARGET, state.but(target_files=files), tmp_path)


def test_target_file_the_metadata_does_not_list(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    files = dict(state.target_files, **{"extra.json": b"{}"})
    _fails(Check.KIT_TUF, state.but(target_files=files), tmp_path)


@pytest.mark.parametrize("member", ["timestamp", "snapshot", "targets"])
def test_tampered_metadata_bytes(repo3: TufRepo, tmp_path: Path, member: str) -> None:
    state = repo3.publish()
    data: bytes = getattr(state, member)
    # Still valid JSON, but the signed part changed. The timestamp's signature
    # fails; snapshot and targets are first refused for not being the bytes
    # (hash) the metadata above them names.
    forged = data.replace(b'"expires": "2025-', b'"expires": "2026-', 1)
    assert forged != data
    check = Check.KIT_TUF if member == "timestamp" else Check.KIT_MIX_AND_MATCH
    _fails(check, state.but(**{member: forged}), tmp_path / "a")
    _fails(check, state.but(**{member: b"{not json"}), tmp_path / "b")


@pytest.mark.parametrize("member", ["snapshot", "targets"])
def test_tampered_metadata_bytes_with_a_warm_state(
    repo3: TufRepo, tmp_path: Path, member: str
) -> None:
    # The state already holds this version: python-tuf reads its own copy and
    # never asks the kit for it, so the kit's copy is compared with the
    # verified one instead of slipping through unread.
    state = repo3.publish()
    _verify(state, tmp_path)
    data: bytes = getattr(state, member)
    forged = data.replace(b'"expires": "2025-', b'"expires": "2026-', 1)
    assert forged != data
    error = _fails(Check.KIT_MIX_AND_MATCH, state.but(**{member: forged}), tmp_path)
    assert f"the kit's {member} metadata is not the {member} metadata verified" in error.message
    _verify(state, tmp_path)  # the intact kit still verifies with that state


def test_tampered_snapshot_when_the_timestamp_lists_no_hash(tmp_path: Path) -> None:
    repo = three_root_repo()
    repo.new_timestamp(snapshot_hashes=False)
    state = repo.publish()
    forged = state.snapshot.replace(b'"expires": "2025-', b'"expires": "2026-', 1)
    error = _fails(Check.KIT_TUF, state.but(snapshot=forged), tmp_path)
    assert "signed by 0/1" in error.message


def test_timestamp_signed_by_a_rotated_out_key(tmp_path: Path) -> None:
    repo = three_root_repo()
    old_ts = repo.publish()
    repo.rotate_root(rotate=("timestamp",))  # v4 rotates the timestamp key again
    new = repo.publish()
    # The old timestamp (v1-era key) no longer verifies under root v4.
    _fails(Check.KIT_TUF, new.but(timestamp=old_ts.timestamp), tmp_path)


# --------------------------------------------------------------------------- bundles


def test_bundle_failures_keep_their_own_codes(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    _fails(Check.IDENTITY_SAN, state, tmp_path, identity="someone@else.test")
    _fails(Check.KIT_BUNDLE, state.kit([]), tmp_path)


def test_first_verifying_bundle_wins(repo3: TufRepo, tmp_path: Path) -> None:
    from tests.support.factory import FakeSigstore

    stranger = FakeSigstore(seed="rogue").sign_blob(b"other").json()
    kit = repo3.publish().kit([stranger, material().bundle])
    done = _verify(kit, tmp_path)
    assert done.bundle_index == 1 and done.to_dict()["kit"]["bundles"] == 2


def test_verify_trust_alone(repo3: TufRepo, tmp_path: Path) -> None:
    state = repo3.publish()
    trust = verify_trust(Kit.decode(state.kit().encode()), _pin(state), state_dir=tmp_path, now=NOW)
    assert trust.trusted_root == material().trusted_root
    assert trust.to_dict()["trustedRootSha256"] == hashlib.sha256(trust.trusted_root).hexdigest()


def test_python_tuf_still_has_the_hooks_the_state_updater_overrides() -> None:
    """offline.py skips rewriting unchanged state files by overriding these."""
    from tuf.ngclient import Updater

    assert callable(Updater._persist_file)
    assert callable(Updater._update_root_symlink)


def test_unchanged_state_files_are_not_rewritten(tmp_path: Path) -> None:
    repo3 = three_root_repo()
    state = repo3.publish()
    _verify(state, tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    inode = (tmp_path / "timestamp.json").stat().st_ino
    _verify(state, tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")} == stamps
    assert (tmp_path / "timestamp.json").stat().st_ino == inode
    repo3.new_timestamp()
    _verify(repo3.publish(), tmp_path)
    assert (tmp_path / "timestamp.json").read_bytes() == repo3.publish().timestamp
