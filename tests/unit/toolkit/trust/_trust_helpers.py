"""Software-key repositories for the trust unit tests (no token needed)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ceremony.tufroot import build_root, sign_root
from toolkit.signing import KeyAlgorithm, SoftwareSigner
from toolkit.signing.tuf import TufSigner
from toolkit.trust.repository import (
    SIGNING_CONFIG_TARGET,
    TRUSTED_ROOT_TARGET,
    Lifetime,
    Repository,
    RepositoryPolicy,
    derive_signing_config,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@functools.cache
def trusted_root_bytes(tsa: bool = True) -> bytes:
    """A valid trusted_root.json (from the synthetic Sigstore factory)."""
    from tests.support.factory import FakeSigstore

    return json.dumps(FakeSigstore().trusted_root(tsa=tsa), indent=2).encode()


@dataclass
class Keys:
    custodians: list[SoftwareSigner] = field(
        default_factory=lambda: [SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256) for _ in range(3)]
    )
    online: SoftwareSigner = field(
        default_factory=lambda: SoftwareSigner.generate(KeyAlgorithm.ED25519)
    )


def first_root(
    keys: Keys, *, signers: Sequence[SoftwareSigner] | None = None, days: int = 365
) -> bytes:
    md = build_root(
        root_keys=[c.public_key for c in keys.custodians],
        root_threshold=2,
        targets_keys=[keys.online.public_key],
        targets_threshold=1,
        snapshot_keys=[keys.online.public_key],
        snapshot_threshold=1,
        timestamp_keys=[keys.online.public_key],
        timestamp_threshold=1,
        expires=NOW + timedelta(days=days),
        consistent_snapshot=True,
    )
    chosen = keys.custodians[:2] if signers is None else signers
    return sign_root(md, [TufSigner(s) for s in chosen])


OFFLINE_POLICY = RepositoryPolicy(offline=Lifetime.days(90, 30))


def new_repo(
    directory: Path, keys: Keys, *, policy: RepositoryPolicy = OFFLINE_POLICY, now: datetime = NOW
) -> tuple[Repository, bytes]:
    root = first_root(keys)
    trusted = trusted_root_bytes()
    repo = Repository.create(
        directory,
        root,
        {TRUSTED_ROOT_TARGET: trusted, SIGNING_CONFIG_TARGET: derive_signing_config(trusted)},
        [keys.online],
        policy,
        now,
    )
    return repo, root
