"""The distributor's repository: init, refresh, targets, publish, root rotation."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata

from ceremony.tufroot import build_root, sign_root
from tests.unit.toolkit.trust._trust_helpers import (
    NOW,
    OFFLINE_POLICY,
    Keys,
    first_root,
    new_repo,
    trusted_root_bytes,
)
from toolkit.errors import Check, FormatError, UsageError, VerificationError
from toolkit.signing import KeyAlgorithm, SoftwareSigner
from toolkit.signing.tuf import TufSigner, tuf_key
from toolkit.trust.repository import (
    TRUSTED_ROOT_TARGET,
    Lifetime,
    Repository,
    RepositoryConfig,
    RepositoryPolicy,
    derive_signing_config,
    merge_signatures,
    propose_root,
    root_signature_status,
)
from toolkit.trust.repository import (
    sign_root as add_signature,
)
from toolkit.trust.updater import update


def _versions(repo: Repository) -> dict[tuple[str, str], int]:
    return {(s.channel, s.role): s.version for s in repo.status()}


def _signed(report_signed: object) -> list[tuple[str, str]]:
    return [(s.channel, s.role) for s in report_signed]  # type: ignore[attr-defined]


# --- init -------------------------------------------------------------------------


def test_init_layout_and_byte_exact_root(tmp_path: Path) -> None:
    repo, root = new_repo(tmp_path / "repo", Keys())
    meta = tmp_path / "repo" / "metadata"
    assert (meta / "1.root.json").read_bytes() == root
    assert sorted(p.name for p in meta.iterdir()) == [
        "1.root.json",
        "1.targets.json",
        "2.snapshot.json",
        "timestamp.json",
    ]
    offline = tmp_path / "repo" / "offline" / "metadata"
    assert sorted(p.name for p in offline.iterdir()) == ["1.snapshot.json", "timestamp.json"]
    targets = sorted(p.name for p in (tmp_path / "repo" / "targets").iterdir())
    # Sorted by name: the hash prefixes order the files at random.
    assert sorted(t.split(".", 1)[1] for t in targets) == [
        "signing_config.v0.2.json",
        "trusted_root.json",
    ]
    info = repo.targets.targets[TRUSTED_ROOT_TARGET]
    assert info.unrecognized_fields["custom"]["airseal"]["mediaType"].startswith(
        "application/vnd.dev.sigstore.trustedroot+json"
    )
    assert repo.target_bytes(TRUSTED_ROOT_TARGET) == trusted_root_bytes()
    # Online versions are above the offline ones (module docs: the online
    # channel always overtakes the offline one).
    v = _versions(repo)
    assert v[("online", "timestamp")] > v[("offline", "timestamp")]
    assert v[("online", "snapshot")] > v[("offline", "snapshot")]


def test_init_refuses_a_used_directory(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "x").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        new_repo(tmp_path / "repo", Keys())


def test_init_refuses_an_under_signed_root(tmp_path: Path) -> None:
    keys = Keys()
    root = first_root(keys, signers=keys.custodians[:1])
    with pytest.raises(FormatError, match="threshold"):
        Repository.create(
            tmp_path / "r",
            root,
            {"trusted_root.json": trusted_root_bytes()},
            [keys.online],
            OFFLINE_POLICY,
            NOW,
        )
    assert not (tmp_path / "r").exists()


def test_init_refuses_an_expired_root(tmp_path: Path) -> None:
    keys = Keys()
    root = first_root(keys, days=1)
    with pytest.raises(UsageError, match="expired"):
        Repository.create(
            tmp_path / "r",
            root,
            {"trusted_root.json": trusted_root_bytes()},
            [keys.online],
            OFFLINE_POLICY,
            NOW + timedelta(days=2),
        )


def test_init_refuses_non_consistent_snapshots(tmp_path: Path) -> None:
    keys = Keys()
    pub = [keys.online.public_key]
    md = build_root(
        root_keys=[c.public_key for c in keys.custodians],
        root_threshold=2,
        targets_keys=pub,
        targets_threshold=1,
        snapshot_keys=pub,
        snapshot_threshold=1,
        timestamp_keys=pub,
        timestamp_threshold=1,
        expires=NOW + timedelta(days=30),
        consistent_snapshot=False,
    )
    root = sign_root(md, [TufSigner(c) for c in keys.custodians])
    with pytest.raises(FormatError, match="consistent_snapshot"):
        Repository.create(
            tmp_path / "r",
            root,
            {"trusted_root.json": trusted_root_bytes()},
            [keys.online],
            OFFLINE_POLICY,
            NOW,
        )


def test_init_needs_the_online_keys(tmp_path: Path) -> None:
    keys = Keys()
    stranger = SoftwareSigner.generate(KeyAlgorithm.ED25519)
    with pytest.raises(UsageError, match="targets role needs 1 signature"):
        Repository.create(
            tmp_path / "r",
            first_root(keys),
            {"trusted_root.json": trusted_root_bytes()},
            [stranger],
            OFFLINE_POLICY,
            NOW,
        )


def test_init_refuses_a_malformed_trusted_root(tmp_path: Path) -> None:
    keys = Keys()
    with pytest.raises(FormatError) as info:
        Repository.create(
            tmp_path / "r",
            first_root(keys),
            {"trusted_root.json": b'{"mediaType": "x"}'},
            [keys.online],
            OFFLINE_POLICY,
            NOW,
        )
    assert info.value.code == Check.TRUST_ROOT_PARSE


def test_derived_signing_config_lists_the_services() -> None:
    doc = json.loads(derive_signing_config(trusted_root_bytes()))
    assert doc["mediaType"] == "application/vnd.dev.sigstore.signingconfig.v0.2+json"
    assert doc["caUrls"][0]["url"].startswith("https://fulcio.")
    assert doc["tsaUrls"][0]["url"].endswith("/api/v1/timestamp")
    assert {s["majorApiVersion"] for s in doc["rekorTlogUrls"]} == {2}


# --- refresh ----------------------------------------------------------------------


def test_refresh_renews_only_what_is_due(tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "repo", Keys())
    assert repo.refresh(NOW + timedelta(hours=1)).signed == ()
    # The timestamp (1 day, renewed in its last 12 hours).
    assert _signed(repo.refresh(NOW + timedelta(hours=13)).signed) == [("online", "timestamp")]
    # The snapshot (7 days, renewed in its last 3) brings a timestamp.
    assert _signed(repo.refresh(NOW + timedelta(days=4, hours=1)).signed) == [
        ("online", "snapshot"),
        ("online", "timestamp"),
    ]
    # The offline channel (90 days, renewed in its last 30) re-signs online too.
    assert _signed(repo.refresh(NOW + timedelta(days=61)).signed) == [
        ("offline", "snapshot"),
        ("offline", "timestamp"),
        ("online", "snapshot"),
        ("online", "timestamp"),
    ]
    v = _versions(repo)
    assert v[("online", "timestamp")] > v[("offline", "timestamp")]


def test_refresh_renews_targets_before_an_offline_cut_outlives_them(tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "repo", Keys())
    # At day 290 a 90-day offline cut would outlive the 365-day targets.
    report = repo.refresh(NOW + timedelta(days=290))
    assert _signed(report.signed)[0] == ("online", "targets")
    assert repo.targets.version == 2
    assert repo.targets.expires > NOW + timedelta(days=290 + 90)


def test_refresh_renews_targets_near_expiry(tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "repo", Keys(), policy=RepositoryPolicy())
    report = repo.refresh(NOW + timedelta(days=336))
    assert _signed(report.signed) == [
        ("online", "targets"),
        ("online", "snapshot"),
        ("online", "timestamp"),
    ]


def test_refresh_refuses_an_expired_root(tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "repo", Keys())
    with pytest.raises(UsageError, match="expired") as info:
        repo.refresh(NOW + timedelta(days=366))
    assert "rotate-root" in (info.value.hint or "")


def test_reopened_repository_continues(tmp_path: Path) -> None:
    keys = Keys()
    repo, _ = new_repo(tmp_path / "repo", keys)
    before = _versions(repo)
    again = Repository.open(tmp_path / "repo", [keys.online], OFFLINE_POLICY)
    assert _versions(again) == before
    again.refresh(NOW + timedelta(hours=1), force=True)
    after = _versions(Repository.open(tmp_path / "repo", [], OFFLINE_POLICY))
    assert after[("online", "timestamp")] > before[("online", "timestamp")]


def test_enabling_the_offline_channel_later(tmp_path: Path) -> None:
    keys = Keys()
    repo, root = new_repo(tmp_path / "repo", keys, policy=RepositoryPolicy())
    assert not (tmp_path / "repo" / "offline").exists()
    repo = Repository.open(tmp_path / "repo", [keys.online], OFFLINE_POLICY)
    assert ("offline", "timestamp") in _signed(repo.refresh(NOW + timedelta(hours=1)).signed)
    v = _versions(repo)
    assert v[("online", "timestamp")] > v[("offline", "timestamp")]
    repo.publish(tmp_path / "pub")
    update(
        str(tmp_path / "pub" / "offline"),
        root=root,
        cache_dir=tmp_path / "c",
        now=NOW + timedelta(days=30),
    )


def test_lifetime_validation() -> None:
    with pytest.raises(UsageError):
        Lifetime.days(1, 1)
    with pytest.raises(UsageError, match="offline"):
        RepositoryPolicy(offline=Lifetime.days(400, 30))


# --- targets and publish ----------------------------------------------------------------


def test_add_target_and_update_client(tmp_path: Path) -> None:
    repo, root = new_repo(tmp_path / "repo", Keys())
    repo.publish(tmp_path / "pub")
    first = update(str(tmp_path / "pub"), root=root, cache_dir=tmp_path / "c", now=NOW)
    assert first.data == trusted_root_bytes()

    newer = trusted_root_bytes(tsa=False)
    report = repo.add_target(TRUSTED_ROOT_TARGET, newer, NOW + timedelta(hours=1))
    assert ("online", "targets") in _signed(report.signed)
    assert ("offline", "timestamp") in _signed(report.signed)
    with pytest.raises(UsageError, match="exact bytes"):
        repo.add_target(TRUSTED_ROOT_TARGET, newer, NOW + timedelta(hours=1))
    with pytest.raises(FormatError, match="target name"):
        repo.add_target("../evil", b"x", NOW)
    written = repo.publish(tmp_path / "pub")
    assert any(p.name.endswith(".trusted_root.json") for p in written)
    second = update(str(tmp_path / "pub"), root=root, cache_dir=tmp_path / "c", now=NOW)
    assert second.data == newer
    offline = update(
        str(tmp_path / "pub" / "offline"),
        root=root,
        cache_dir=tmp_path / "o",
        now=NOW + timedelta(days=80),
    )
    assert offline.data == newer


def test_publish_is_incremental_and_refuses_foreign_trees(tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "repo", Keys())
    assert repo.publish(tmp_path / "pub")
    assert repo.publish(tmp_path / "pub") == []
    other, _ = new_repo(tmp_path / "other", Keys())
    with pytest.raises(UsageError, match="other bytes"):
        other.publish(tmp_path / "pub")


def test_offline_channel_outlives_the_online_one(tmp_path: Path) -> None:
    repo, root = new_repo(tmp_path / "repo", Keys())
    repo.publish(tmp_path / "pub")
    late = NOW + timedelta(days=60)
    with pytest.raises(VerificationError) as info:
        update(str(tmp_path / "pub"), root=root, cache_dir=tmp_path / "a", now=late)
    assert info.value.check is Check.KIT_EXPIRED
    result = update(
        str(tmp_path / "pub" / "offline"), root=root, cache_dir=tmp_path / "b", now=late
    )
    assert result.data == trusted_root_bytes()


def test_a_client_moves_from_the_offline_to_the_online_channel(tmp_path: Path) -> None:
    repo, root = new_repo(tmp_path / "repo", Keys())
    repo.refresh(NOW + timedelta(days=61))  # an offline cut (and online re-sign)
    repo.publish(tmp_path / "pub")
    state = tmp_path / "state"
    at = NOW + timedelta(days=61, hours=1)
    update(str(tmp_path / "pub" / "offline"), root=root, cache_dir=state, now=at)
    update(str(tmp_path / "pub"), root=root, cache_dir=state, now=at)


# --- root rotation -------------------------------------------------------------------------


def test_rotation_in_separate_sessions(tmp_path: Path) -> None:
    keys = Keys()
    repo, root = new_repo(tmp_path / "repo", keys)
    dave = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    new_custodians = [keys.custodians[0].public_key, keys.custodians[1].public_key, dave.public_key]
    proposal = propose_root(root, expires=NOW + timedelta(days=400), root_keys=new_custodians)
    status = root_signature_status(proposal, root)
    assert (status.version, len(status.signed), len(status.previous_signed)) == (2, 0, 0)

    alice = add_signature(proposal, keys.custodians[0])
    bob = add_signature(proposal, keys.custodians[1])
    with pytest.raises(UsageError, match="already signed"):
        add_signature(alice, keys.custodians[0])
    with pytest.raises(UsageError, match="not a root key"):
        add_signature(proposal, keys.online)

    # One custodian is not enough: refused, naming both thresholds.
    with pytest.raises(VerificationError) as info:
        repo.commit_root(alice, NOW)
    assert info.value.check is Check.KIT_TUF
    assert "1 of 2 required signatures of root v1" in info.value.message
    assert "1 of 2 required signatures of root v2" in info.value.message

    merged = merge_signatures([alice, bob], previous=root)
    assert root_signature_status(merged, root).verified
    report = repo.commit_root(merged, NOW + timedelta(hours=1))
    assert _signed(report.signed)[:2] == [("online", "root"), ("online", "targets")]
    assert (tmp_path / "repo" / "metadata" / "2.root.json").read_bytes() == merged
    repo.publish(tmp_path / "pub")
    result = update(str(tmp_path / "pub"), root=root, cache_dir=tmp_path / "c", now=NOW)
    assert [r.version for r in result.roles if r.role == "root"] == [2]


def test_a_dropped_custodian_signs_with_the_previous_root(tmp_path: Path) -> None:
    keys = Keys()
    repo, root = new_repo(tmp_path / "repo", keys)
    dave = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    erin = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    # v2 drops alice and carol: bob + dave + erin, threshold 2.
    proposal = propose_root(
        root,
        expires=NOW + timedelta(days=400),
        root_keys=[keys.custodians[1].public_key, dave.public_key, erin.public_key],
    )
    with pytest.raises(UsageError, match="not a root key") as info:
        add_signature(proposal, keys.custodians[0])
    assert "--previous" in (info.value.hint or "")
    signed = add_signature(proposal, keys.custodians[0], previous=root)  # alice (old only)
    signed = add_signature(signed, keys.custodians[1])  # bob (both)
    status = root_signature_status(signed, root)
    assert (len(status.previous_signed), len(status.signed)) == (2, 1)
    with pytest.raises(VerificationError, match="1 of 2 required signatures of root v2") as short:
        repo.commit_root(signed, NOW)
    assert "1 more of root v2" in (short.value.hint or "")
    signed = add_signature(signed, dave)
    repo.commit_root(signed, NOW)
    assert repo.root.version == 2


def test_online_key_rotation_needs_the_new_key(tmp_path: Path) -> None:
    keys = Keys()
    repo, root = new_repo(tmp_path / "repo", keys)
    new_online = SoftwareSigner.generate(KeyAlgorithm.ED25519)
    proposal = propose_root(
        root, expires=NOW + timedelta(days=400), online_keys=[new_online.public_key]
    )
    signed = add_signature(add_signature(proposal, keys.custodians[0]), keys.custodians[2])
    with pytest.raises(UsageError, match="online keys provide 0"):
        repo.commit_root(signed, NOW)
    assert not (tmp_path / "repo" / "metadata" / "2.root.json").exists()
    repo = Repository.open(tmp_path / "repo", [keys.online, new_online], OFFLINE_POLICY)
    repo.commit_root(signed, NOW)
    ts = Metadata.from_file(str(tmp_path / "repo" / "metadata" / "timestamp.json"))
    assert list(ts.signatures) == [tuf_key(new_online.public_key).keyid]


def test_merge_refuses_different_proposals(tmp_path: Path) -> None:
    keys = Keys()
    root = first_root(keys)
    a = add_signature(propose_root(root, expires=NOW + timedelta(days=100)), keys.custodians[0])
    b = add_signature(propose_root(root, expires=NOW + timedelta(days=101)), keys.custodians[1])
    with pytest.raises(UsageError, match="not the same root proposal"):
        merge_signatures([a, b])
    with pytest.raises(UsageError, match="at least two"):
        merge_signatures([a])


def test_merge_rejects_a_forged_signature(tmp_path: Path) -> None:
    keys = Keys()
    root = first_root(keys)
    proposal = propose_root(root, expires=NOW + timedelta(days=100))
    a = add_signature(proposal, keys.custodians[0])
    doc = json.loads(add_signature(proposal, keys.custodians[1]))
    doc["signatures"][0]["sig"] = json.loads(a)["signatures"][0]["sig"]  # alice's sig as bob's
    with pytest.raises(VerificationError) as info:
        merge_signatures([a, json.dumps(doc).encode()], previous=root)
    assert info.value.check is Check.KIT_TUF


def test_commit_refuses_the_wrong_version(tmp_path: Path) -> None:
    keys = Keys()
    repo, root = new_repo(tmp_path / "repo", keys)
    with pytest.raises(FormatError, match="does not follow"):
        repo.commit_root(root, NOW)


# --- config ------------------------------------------------------------------------------


def test_config_is_strict(tmp_path: Path) -> None:
    key = tmp_path / "online.pem"
    key.write_bytes(SoftwareSigner.generate(KeyAlgorithm.ED25519).to_pem())
    path = tmp_path / "trust.toml"
    path.write_text(
        '[trust]\nrepository = "repo"\nonline_keys = ["file:online.pem"]\n'
        "[trust.timestamp]\nexpiry_days = 2\n[trust.offline]\nexpiry_days = 60\nrenew_days = 20\n"
    )
    config = RepositoryConfig.load(path)
    assert config.directory == tmp_path / "repo"
    assert config.key_uris == (f"file:{key}",)
    assert config.policy.timestamp == Lifetime.days(2, 0.5)
    assert config.policy.offline == Lifetime.days(60, 20)
    assert len(config.open_signers()) == 1

    path.write_text('[trust]\nrepository = "repo"\nonline_keys = ["file:k"]\nexpiry = 3\n')
    with pytest.raises(FormatError, match=r"trust\.expiry: unknown field"):
        RepositoryConfig.load(path)
    path.write_text('[trust]\nrepository = "repo"\nonline_keys = ["x"]\n')
    with pytest.raises(FormatError, match="not a URI"):
        RepositoryConfig.load(path)
    path.write_text(
        '[trust]\nrepository = "r"\nonline_keys = ["file:k"]\n[trust.snapshot]\n'
        "expiry_days = 2\nrenew_days = 2\n"
    )
    with pytest.raises(FormatError, match=r"trust\.snapshot\.renew_days"):
        RepositoryConfig.load(path)
    path.write_text('[trust]\nrepository = "r"\nonline_keys = ["file:k"]\n[trust.offline]\n')
    with pytest.raises(FormatError, match=r"trust\.offline\.expiry_days: missing"):
        RepositoryConfig.load(path)
