"""Shared pytest fixtures: where the shared Sigstore vectors live, and what they expect."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.hsm import softhsm  # noqa: F401 -- the session SoftHSM fixture
from tests.support.instance import rehearsed_ceremony  # noqa: F401 -- a rehearsed ceremony
from tests.support.postgres import fresh_postgres_dsn, postgres_cluster, postgres_dsn  # noqa: F401
from toolkit.errors import Check

_DEFAULT_VECTORS = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors"


#: Why each failing shared vector fails: the check airseal names. The one
#: "policy-dependent" case is decided by airseal's strict policy: an
#: unverifiable timestamp rejects the bundle (docs/formats/bundle.md).
EXPECTED_CHECK: dict[str, Check] = {
    "cve-2022-36056-inconsistent-entry_fail": Check.TLOG_BODY,
    "invalid-media-type_fail": Check.BUNDLE_MEDIA_TYPE,
    "no-log-entry_fail": Check.BUNDLE_STRUCTURE,
    "production-v0.1-missing-checkpoint-digest-only_fail": Check.BUNDLE_STRUCTURE,
    "tsa-duplicate-timestamps_fail": Check.TIME_TSA,
    "tsa-local-extra-bad-timestamp": Check.TIME_TSA,
    "tsa-too-many-timestamps_fail": Check.TIME_TSA,
    "v0.1-empty-cert-chain_fail": Check.BUNDLE_STRUCTURE,
    "v0.2-no-checkpoint_fail": Check.BUNDLE_STRUCTURE,
    "v0.3-no-signed-time_fail": Check.TIME_NONE,
}


def vectors_root() -> Path:
    """Return the vectors folder (``AIRSEAL_VECTORS`` or ``../shared/vectors``)."""
    return Path(os.environ.get("AIRSEAL_VECTORS", str(_DEFAULT_VECTORS)))


def require_vectors() -> Path:
    """Return ``vectors/sigstore-python``; skip when absent, fail when ``CI`` is set."""
    folder = vectors_root() / "sigstore-python"
    if not (folder / "INDEX.json").is_file():
        reason = (
            f"shared Sigstore vectors not found at {folder} "
            "(set AIRSEAL_VECTORS to the shared/vectors folder)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return folder


@dataclass(frozen=True)
class VectorCase:
    """One case of ``vectors/sigstore-python/INDEX.json``."""

    name: str
    folder: Path
    expected: str
    digest_only: bool
    artifact_sha256: str
    identity: str
    issuer: str
    raw: dict[str, Any]

    @property
    def bundle_path(self) -> Path:
        return self.folder / "bundle.sigstore.json"

    @property
    def trusted_root_path(self) -> Path:
        return self.folder / "trusted_root.json"

    @property
    def artifact_path(self) -> Path | None:
        path = self.folder / "artifact"
        return path if path.is_file() else None

    @property
    def digest_arg(self) -> str:
        return f"sha256:{self.artifact_sha256}"


def load_cases() -> list[VectorCase]:
    """Load every case listed in INDEX.json (skips or fails if absent)."""
    folder = require_vectors()
    index = json.loads((folder / "INDEX.json").read_text())
    cases = []
    for entry in index["cases"]:
        cases.append(
            VectorCase(
                name=entry["case"],
                folder=folder / entry["dir"],
                expected=entry["expected"],
                digest_only=bool(entry["digest_only"]),
                artifact_sha256=entry["artifact_sha256"],
                identity=entry["identity"],
                issuer=entry["issuer"],
                raw=entry,
            )
        )
    return cases


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The ``vectors/sigstore-python`` folder."""
    return require_vectors()
