"""``airseal trust update``'s core: every attack is rejected with its check code."""

from __future__ import annotations

import hashlib
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.toolkit.trust._trust_helpers import NOW, Keys, new_repo, trusted_root_bytes
from toolkit.errors import Check, TransportError, UsageError, VerificationError
from toolkit.signing import KeyAlgorithm, SoftwareSigner
from toolkit.trust.repository import (
    Repository,
    merge_signatures,
    propose_root,
    sign_root,
)
from toolkit.trust.updater import default_cache_dir, update


def _published(tmp_path: Path) -> tuple[Repository, bytes, Keys, Path]:
    keys = Keys()
    repo, root = new_repo(tmp_path / "repo", keys)
    pub = tmp_path / "pub"
    repo.publish(pub)
    return repo, root, keys, pub


def _check(
    tmp_path: Path, mirror: Path, root: bytes, *, state: str = "state", **kw: object
) -> Check:
    with pytest.raises(VerificationError) as info:
        update(str(mirror), root=root, cache_dir=tmp_path / state, now=NOW, **kw)  # type: ignore[arg-type]
    return info.value.check


def test_update_from_a_directory(tmp_path: Path) -> None:
    _, root, _, pub = _published(tmp_path)
    result = update(str(pub), root=root, cache_dir=tmp_path / "state", now=NOW)
    assert result.data == trusted_root_bytes()
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    assert result.custom["airseal"]["mediaType"].startswith("application/vnd.dev.sigstore")
    assert (tmp_path / "state" / "metadata" / "timestamp.json").is_file()
    sc = update(
        str(pub),
        root=root,
        cache_dir=tmp_path / "state",
        now=NOW,
        target="signing_config.v0.2.json",
    )
    assert b"signingconfig" in sc.data


def test_pinned_hash_takes_the_mirrors_first_root(tmp_path: Path) -> None:
    _, root, _, pub = _published(tmp_path)
    good = hashlib.sha256(root).hexdigest()
    result = update(str(pub), root_sha256=good.upper(), cache_dir=tmp_path / "s", now=NOW)
    assert result.initial_root_sha256 == good
    with pytest.raises(VerificationError) as info:
        update(str(pub), root_sha256="0" * 64, cache_dir=tmp_path / "s2", now=NOW)
    assert info.value.check is Check.KIT_ROOT
    with pytest.raises(UsageError):
        update(str(pub), root_sha256="abc", cache_dir=tmp_path / "s3", now=NOW)
    with pytest.raises(UsageError):
        update(str(pub), root=root, root_sha256=good, cache_dir=tmp_path / "s4", now=NOW)


def test_a_pinned_root_that_does_not_verify(tmp_path: Path) -> None:
    _, root, _, pub = _published(tmp_path)
    assert (
        _check(tmp_path, pub, root.replace(b'"threshold": 2', b'"threshold": 3')) is Check.KIT_ROOT
    )


def test_freeze_is_rejected(tmp_path: Path) -> None:
    _, root, _, pub = _published(tmp_path)
    with pytest.raises(VerificationError) as info:
        update(str(pub), root=root, cache_dir=tmp_path / "s", now=NOW + timedelta(days=2))
    assert info.value.check is Check.KIT_EXPIRED


def test_rollback_is_rejected(tmp_path: Path) -> None:
    repo, root, _, pub = _published(tmp_path)
    old = tmp_path / "old"
    shutil.copytree(pub, old)
    repo.refresh(NOW + timedelta(minutes=5), force=True)
    repo.publish(pub)
    update(str(pub), root=root, cache_dir=tmp_path / "state", now=NOW + timedelta(minutes=6))
    # The mirror now serves the older (still unexpired) state.
    assert _check(tmp_path, old, root) is Check.KIT_ROLLBACK


def test_mix_and_match_is_rejected(tmp_path: Path) -> None:
    repo, root, _, pub = _published(tmp_path)
    older_snapshot = (pub / "metadata" / "2.snapshot.json").read_bytes()
    repo.refresh(NOW + timedelta(minutes=5), force=True)
    repo.publish(pub)
    # The newest snapshot's name now holds another (validly signed) snapshot.
    newest = max(pub.glob("metadata/*.snapshot.json"), key=lambda p: int(p.name.split(".")[0]))
    newest.write_bytes(older_snapshot)
    assert _check(tmp_path, pub, root) is Check.KIT_MIX_AND_MATCH


def test_tampered_target_is_rejected(tmp_path: Path) -> None:
    _, root, _, pub = _published(tmp_path)
    (target,) = pub.glob("targets/*.trusted_root.json")
    target.write_bytes(target.read_bytes().replace(b"airseal", b"evilsea", 1))
    assert _check(tmp_path, pub, root) is Check.KIT_TARGET
    target.write_bytes(target.read_bytes() + b" ")
    assert _check(tmp_path, pub, root, state="s2") is Check.KIT_TARGET


def test_unknown_target(tmp_path: Path) -> None:
    _, root, _, pub = _published(tmp_path)
    assert _check(tmp_path, pub, root, target="nope.json") is Check.KIT_TUF


def test_missing_timestamp_is_a_transport_error(tmp_path: Path) -> None:
    _, root, _, pub = _published(tmp_path)
    (pub / "metadata" / "timestamp.json").unlink()
    with pytest.raises(TransportError, match="404"):
        update(str(pub), root=root, cache_dir=tmp_path / "s", now=NOW)


def test_unreachable_http_mirror_is_a_transport_error(tmp_path: Path) -> None:
    _, root, _, _ = _published(tmp_path)
    with pytest.raises(TransportError):
        update("http://127.0.0.1:9", root=root, cache_dir=tmp_path / "s", now=NOW, timeout=2)


def test_an_under_signed_root_published_anyway_is_rejected(tmp_path: Path) -> None:
    _, root, keys, pub = _published(tmp_path)
    lone = sign_root(propose_root(root, expires=NOW + timedelta(days=300)), keys.custodians[0])
    (pub / "metadata" / "2.root.json").write_bytes(lone)
    assert _check(tmp_path, pub, root) is Check.KIT_TUF


def test_root_chain_walk_with_key_changes(tmp_path: Path) -> None:
    repo, root, keys, pub = _published(tmp_path)
    alice, bob, _carol = keys.custodians
    dave = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    erin = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    online2 = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    # v2: carol -> dave; signed by alice and bob.
    v2 = propose_root(
        root,
        expires=NOW + timedelta(days=300),
        root_keys=[alice.public_key, bob.public_key, dave.public_key],
    )
    v2 = merge_signatures([sign_root(v2, alice), sign_root(v2, bob)])
    repo.commit_root(v2, NOW)
    # v3: bob, dave, erin and a new online key; signed by bob and dave.
    v3 = propose_root(
        v2,
        expires=NOW + timedelta(days=300),
        root_keys=[bob.public_key, dave.public_key, erin.public_key],
        online_keys=[online2.public_key],
    )
    v3 = merge_signatures([sign_root(v3, bob), sign_root(v3, dave)], previous=v2)
    repo = Repository.open(tmp_path / "repo", [keys.online, online2], repo._policy)
    repo.commit_root(v3, NOW)
    repo.publish(pub)
    result = update(str(pub), root=root, cache_dir=tmp_path / "state", now=NOW)
    assert {r.role: r.version for r in result.roles}["root"] == 3
    assert result.data == trusted_root_bytes()
    # The state remembers v3: a mirror that lost 3.root.json rolls nobody back.
    (pub / "metadata" / "3.root.json").unlink()
    again = update(str(pub), root=root, cache_dir=tmp_path / "state", now=NOW)
    assert {r.role: r.version for r in again.roles}["root"] == 3


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    path = default_cache_dir(b"root")
    assert path == tmp_path / "airseal" / "tuf" / hashlib.sha256(b"root").hexdigest()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        default_cache_dir(b"root").parent
        == tmp_path / "home" / ".local" / "share" / "airseal" / "tuf"
    )
