"""``airseal kit export`` and ``airseal verify --kit``: exit codes 0/1/2 and reports.

These run the real ``airseal`` console script (a subprocess per call) against
a mirror directory written by ``tests/support/tuf_repo.py``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgpack
import pytest

from tests.support.tuf_repo import Published, TufRepo, material
from toolkit.trust.kit import Kit

AIRSEAL = str(Path(sys.executable).parent / "airseal")
# The CLI checks against the real clock: build metadata around it.
NOW = datetime.now(UTC).replace(microsecond=0)


def _repo() -> TufRepo:
    repo = TufRepo(material().target_files, now=NOW)
    repo.rotate_root()
    repo.rotate_root(replace_root_key=0, root_key_type="ed25519", rotate=("snapshot", "timestamp"))
    return repo


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIRSEAL, *args], capture_output=True, text=True, check=False, env=env)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    m = material()
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(m.artifact)
    bundle = tmp_path / "artifact.sigstore.json"
    bundle.write_bytes(m.bundle)
    return artifact, bundle


def _export(state: Published, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    mirror = state.write_mirror(tmp_path / "mirror")
    _, bundle = _files(tmp_path)
    return _run(
        "kit",
        "export",
        "--mirror",
        str(mirror),
        "--bundle",
        str(bundle),
        "-o",
        str(tmp_path / "kit.airseal"),
        *extra,
    )


def _verify(
    tmp_path: Path, kit: Path, root_sha: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    artifact, _ = _files(tmp_path)
    m = material()
    return _run(
        "verify",
        str(artifact),
        "--kit",
        str(kit),
        "--root-sha256",
        root_sha,
        "--identity",
        m.identity,
        "--issuer",
        m.issuer,
        "--state",
        str(tmp_path / "state"),
        *extra,
    )


def test_export_then_verify(tmp_path: Path) -> None:
    state = _repo().publish()
    root_sha = hashlib.sha256(state.roots[0]).hexdigest()
    done = _export(state, tmp_path, "--root-sha256", root_sha, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["roots"] == 3 and summary["bundles"] == 1 and summary["rootSha256"] == root_sha
    kit = Kit.decode((tmp_path / "kit.airseal").read_bytes())
    # Byte-exact members: what the mirror published, unchanged.
    assert kit.roots == state.roots
    assert (kit.timestamp, kit.snapshot, kit.targets) == (
        state.timestamp,
        state.snapshot,
        state.targets,
    )
    assert dict(kit.target_files) == dict(state.target_files)
    assert kit.bundles == (material().bundle,)
    assert kit.meta["pinned"] is True

    done = _verify(tmp_path, tmp_path / "kit.airseal", root_sha)
    assert done.returncode == 0, done.stderr
    assert f"identity: {material().identity}" in done.stdout
    assert "kit:      root v3, timestamp v3, snapshot v3, targets v3 (bundle 1 of 1)" in done.stdout
    assert "expiry:   strict" in done.stdout

    done = _verify(tmp_path, tmp_path / "kit.airseal", root_sha, "--json", "--expiry", "grace=2")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and doc["kit"]["expiryPolicy"] == "grace=2"
    assert doc["kit"]["rootVersion"] == 3


def test_verify_with_root_file(tmp_path: Path) -> None:
    state = _repo().publish()
    assert _export(state, tmp_path).returncode == 0
    root = tmp_path / "1.root.json"
    root.write_bytes(state.roots[0])
    artifact, _ = _files(tmp_path)
    m = material()
    done = _run(
        "verify",
        str(artifact),
        "--kit",
        str(tmp_path / "kit.airseal"),
        "--root",
        str(root),
        "--identity",
        m.identity,
        "--issuer",
        m.issuer,
        "--state",
        str(tmp_path / "s"),
    )
    assert done.returncode == 0, done.stderr


def test_export_without_pin_warns(tmp_path: Path) -> None:
    done = _export(_repo().publish(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trusting the mirror's 1.root.json on first use" in done.stderr


def test_export_refuses_wrong_pin_and_writes_nothing(tmp_path: Path) -> None:
    done = _export(_repo().publish(), tmp_path, "--root-sha256", "11" * 32)
    assert done.returncode == 1
    assert "error[kit.root]" in done.stderr
    assert not (tmp_path / "kit.airseal").exists()
    assert not list(tmp_path.glob(".kit.airseal.*"))


def test_export_refuses_expired_mirror(tmp_path: Path) -> None:
    repo = _repo()
    repo.new_timestamp(expires=NOW - timedelta(hours=1))
    done = _export(repo.publish(), tmp_path)
    assert done.returncode == 1 and "error[kit.expired]" in done.stderr
    assert not (tmp_path / "kit.airseal").exists()
    assert _export(repo.publish(), tmp_path, "--expiry", "grace=1").returncode == 0


def test_export_of_a_missing_mirror_or_bundle(tmp_path: Path) -> None:
    _, bundle = _files(tmp_path)
    done = _run(
        "kit",
        "export",
        "--mirror",
        str(tmp_path / "nope"),
        "--bundle",
        str(bundle),
        "-o",
        str(tmp_path / "k"),
    )
    assert done.returncode == 2, done.stderr
    (tmp_path / "empty" / "metadata").mkdir(parents=True)
    done = _run(
        "kit",
        "export",
        "--mirror",
        str(tmp_path / "empty"),
        "--bundle",
        str(bundle),
        "-o",
        str(tmp_path / "k"),
    )
    assert done.returncode == 3 and "1.root.json" in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    state = _repo().publish()
    mirror = state.write_mirror(tmp_path / "mirror")
    done = _run(
        "kit", "export", "--mirror", str(mirror), "--bundle", str(bad), "-o", str(tmp_path / "k")
    )
    assert done.returncode == 2 and "error" in done.stderr
    assert not (tmp_path / "k").exists()


def _write_kit(tmp_path: Path, kit: Kit, name: str = "attack.airseal") -> Path:
    path = tmp_path / name
    path.write_bytes(kit.encode())
    return path


def test_verify_failures_exit_1_with_check_codes(tmp_path: Path) -> None:
    repo = _repo()
    old = repo.publish()
    root_sha = hashlib.sha256(old.roots[0]).hexdigest()
    repo.new_timestamp()
    new = repo.publish()
    m = material()
    good = _write_kit(tmp_path, new.kit([m.bundle]), "new.airseal")
    assert _verify(tmp_path, good, root_sha).returncode == 0
    # rollback: the older timestamp after the newer one was seen (same --state)
    done = _verify(tmp_path, _write_kit(tmp_path, old.kit([m.bundle]), "old.airseal"), root_sha)
    assert done.returncode == 1 and "error[kit.rollback]" in done.stderr, done.stderr
    # wrong pinned hash
    done = _verify(tmp_path, good, "22" * 32, "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["check"] == "kit.root"
    # tampered target
    files = dict(new.target_files, **{"trusted_root.json": m.trusted_root + b" "})
    done = _verify(
        tmp_path, _write_kit(tmp_path, new.but(target_files=files).kit([m.bundle])), root_sha
    )
    assert done.returncode == 1 and "error[kit.target]" in done.stderr
    # truncated and padded kits
    data = good.read_bytes()
    for name, blob in [("short", data[:-7]), ("long", data + b"\x00")]:
        path = tmp_path / f"{name}.airseal"
        path.write_bytes(blob)
        done = _verify(tmp_path, path, root_sha)
        assert done.returncode == 1 and "error[kit.parse]" in done.stderr, done.stderr
    # duplicate key
    doc = new.kit([m.bundle]).to_dict()
    body = b"".join(msgpack.packb(k) + msgpack.packb(v, use_bin_type=True) for k, v in doc.items())
    dup = tmp_path / "dup.airseal"
    dup.write_bytes(bytes([0x80 | 6]) + msgpack.packb("v") + msgpack.packb(1) + body)
    done = _verify(tmp_path, dup, root_sha)
    assert done.returncode == 1 and "error[kit.parse]" in done.stderr
    # the bundle's identity
    artifact, _ = _files(tmp_path)
    done = _run(
        "verify",
        str(artifact),
        "--kit",
        str(good),
        "--root-sha256",
        root_sha,
        "--identity",
        "mallory@example.test",
        "--issuer",
        m.issuer,
        "--state",
        str(tmp_path / "state"),
    )
    assert done.returncode == 1 and "error[identity.san]" in done.stderr


def test_verify_usage_errors_exit_2(tmp_path: Path) -> None:
    state = _repo().publish()
    kit = _write_kit(tmp_path, state.kit([material().bundle]))
    artifact, bundle = _files(tmp_path)
    m = material()
    base = ["verify", str(artifact), "--identity", m.identity, "--issuer", m.issuer]
    cases = [
        [*base, "--kit", str(kit)],  # no pinned root
        [*base, "--kit", str(kit), "--root-sha256", "xyz"],
        [*base, "--kit", str(kit), "--root-sha256", "00" * 32, "--expiry", "lenient"],
        [*base, "--kit", str(kit), "--root-sha256", "00" * 32, "--bundle", str(bundle)],
        [*base, "--kit", str(tmp_path / "missing.airseal"), "--root-sha256", "00" * 32],
        [*base, "--bundle", str(bundle), "--root-sha256", "00" * 32],
        [*base],
    ]
    for args in cases:
        done = _run(*args)
        assert done.returncode == 2, (args, done.stderr)


def test_attested_time_bundle_through_the_cli(tmp_path: Path) -> None:
    """An old kit whose timestamp expired verifies at the bundle's attested time."""
    then = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)  # material() was signed then
    repo = TufRepo(material().target_files, now=then)
    state = repo.publish()
    kit = _write_kit(tmp_path, state.kit([material().bundle]))
    root_sha = hashlib.sha256(state.roots[0]).hexdigest()
    done = _verify(tmp_path, kit, root_sha)
    assert done.returncode == 1 and "error[kit.expired]" in done.stderr
    done = _verify(tmp_path, kit, root_sha, "--expiry", "attested-time=bundle")
    assert done.returncode == 0, done.stderr
    assert (
        "expiry:   attested-time=bundle (reference time 2025-06-01T12:00:20+00:00)" in done.stdout
    )
    assert "expired now, accepted by the policy" in done.stdout


@pytest.mark.parametrize("spec", ["attested-time=bundle"])
def test_export_refuses_bundle_time(tmp_path: Path, spec: str) -> None:
    done = _export(_repo().publish(), tmp_path, "--expiry", spec)
    assert done.returncode == 2
