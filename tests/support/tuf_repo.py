"""A generator of small TUF repositories for tests, on python-tuf's Metadata API.

:class:`TufRepo` holds software keys (Ed25519 and ECDSA P-256) for every role
and the current metadata; each change (new timestamp, snapshot, targets, a root
rotation with key changes, an under-signed rotation) signs new versions and
keeps their exact bytes. :meth:`TufRepo.publish` freezes the current state as
a :class:`Published` set of bytes, which can become an offline kit or a
mirror directory (the layout of ``toolkit/trust/_fetchers.py``)::

    repo = TufRepo({"trusted_root.json": root_json}, now=NOW)
    repo.rotate_root()              # v2: one root key and the timestamp key change
    repo.rotate_root()              # v3
    state = repo.publish()
    kit = state.kit([bundle_json])

Old states stay valid objects, so a test can mix them (a snapshot from another
state, an older timestamp after a newer one) to build attacks.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from toolkit.trust.kit import Kit

__all__ = [
    "DEFAULT_NOW",
    "Material",
    "Published",
    "TufRepo",
    "material",
    "new_signer",
    "three_root_repo",
]

DEFAULT_NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
KeyType = Literal["ed25519", "ecdsa"]

_SERIALIZER = JSONSerializer(compact=False)


def new_signer(kind: KeyType = "ed25519") -> CryptoSigner:
    """A fresh software signer (securesystemslib)."""
    if kind == "ed25519":
        return CryptoSigner.generate_ed25519()
    return CryptoSigner.generate_ecdsa()


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


@dataclass(frozen=True)
class Published:
    """One repository state, as exact bytes.

    Attributes:
        roots: Root versions 1..N.
        timestamp: ``timestamp.json``.
        snapshot: The snapshot the timestamp names.
        targets: The top-level targets.
        delegated: Delegated targets by role name.
        target_files: Target files by path.
        versions: Version of each role (``root``, ``timestamp``, …).
    """

    roots: tuple[bytes, ...]
    timestamp: bytes
    snapshot: bytes
    targets: bytes
    delegated: Mapping[str, bytes]
    target_files: Mapping[str, bytes]
    versions: Mapping[str, int]

    def kit(self, bundles: Sequence[bytes] = (), meta: Mapping[str, Any] | None = None) -> Kit:
        """This state as an offline kit."""
        return Kit(
            roots=self.roots,
            timestamp=self.timestamp,
            snapshot=self.snapshot,
            targets=self.targets,
            delegated=dict(self.delegated),
            target_files=dict(self.target_files),
            bundles=tuple(bundles),
            meta=dict(meta or {}),
        )

    def but(self, **changes: Any) -> Published:
        """A copy with some members replaced (to build attacks)."""
        return replace(self, **changes)

    def write_mirror(self, directory: Path) -> Path:
        """Write a published tree (consistent snapshots) and return ``directory``."""
        meta = directory / "metadata"
        targets = directory / "targets"
        meta.mkdir(parents=True, exist_ok=True)
        targets.mkdir(parents=True, exist_ok=True)
        for version, data in enumerate(self.roots, start=1):
            (meta / f"{version}.root.json").write_bytes(data)
        (meta / "timestamp.json").write_bytes(self.timestamp)
        (meta / f"{self.versions['snapshot']}.snapshot.json").write_bytes(self.snapshot)
        (meta / f"{self.versions['targets']}.targets.json").write_bytes(self.targets)
        for name, data in self.delegated.items():
            version = self.versions[name]
            (meta / f"{version}.{name}.json").write_bytes(data)
        for name, data in self.target_files.items():
            digest = hashlib.sha256(data).hexdigest()
            (targets / f"{digest}.{name}").write_bytes(data)
        return directory


@dataclass
class _Role:
    signers: list[Signer]
    threshold: int


@dataclass
class TufRepo:
    """A TUF repository under test control.

    Args:
        target_files: Target path -> bytes (listed in the top-level targets,
            or in the delegated role when ``delegate`` is given).
        now: Base time of the default expiries.
        consistent_snapshot: The root's flag.
        delegate: Name of a delegated targets role that holds the target files.
    """

    target_files: dict[str, bytes]
    now: datetime = DEFAULT_NOW
    consistent_snapshot: bool = True
    delegate: str | None = None
    roles: dict[str, _Role] = field(init=False)
    roots: list[bytes] = field(init=False, default_factory=list)
    root_md: Metadata[Root] = field(init=False)
    timestamp_md: Metadata[Timestamp] = field(init=False)
    snapshot_md: Metadata[Snapshot] = field(init=False)
    targets_md: Metadata[Targets] = field(init=False)
    delegated_md: dict[str, Metadata[Targets]] = field(init=False, default_factory=dict)
    _bytes: dict[str, bytes] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.target_files = dict(self.target_files)
        self.roles = {
            "root": _Role([new_signer("ed25519"), new_signer("ecdsa"), new_signer("ed25519")], 2),
            "targets": _Role([new_signer("ed25519")], 1),
            "snapshot": _Role([new_signer("ecdsa")], 1),
            "timestamp": _Role([new_signer("ed25519")], 1),
        }
        if self.delegate:
            self.roles[self.delegate] = _Role([new_signer("ecdsa")], 1)
        root = Root(
            version=1,
            expires=self._in(days=365),
            consistent_snapshot=self.consistent_snapshot,
        )
        for name in ("root", "targets", "snapshot", "timestamp"):
            self._set_role_keys(root, name)
        self.root_md = Metadata(root)
        self._sign_root(self.root_md, self.roles["root"].signers)
        self.timestamp_md = Metadata(Timestamp(version=1, expires=self._in(days=1)))
        self.snapshot_md = Metadata(Snapshot(version=1, expires=self._in(days=7)))
        self.targets_md = Metadata(Targets(version=1, expires=self._in(days=90)))
        if self.delegate:
            self.delegated_md[self.delegate] = Metadata(
                Targets(version=1, expires=self._in(days=90))
            )
        self.new_targets()

    # -- helpers ---------------------------------------------------------------

    def _in(self, **delta: float) -> datetime:
        return _whole_seconds(self.now + timedelta(**delta))

    def _set_role_keys(self, root: Root, name: str) -> None:
        role = self.roles[name]
        for keyid in list(root.roles[name].keyids):
            root.revoke_key(keyid, name)
        for signer in role.signers:
            root.add_key(signer.public_key, name)
        root.roles[name].threshold = role.threshold

    def _sign(self, md: Metadata[Any], signers: Iterable[Signer]) -> bytes:
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        data = md.to_bytes(_SERIALIZER)
        return data

    def _sign_root(self, md: Metadata[Root], signers: Iterable[Signer]) -> None:
        data = self._sign(md, signers)
        self.roots.append(data)

    # -- changes -----------------------------------------------------------------

    def new_timestamp(
        self,
        *,
        expires: datetime | None = None,
        snapshot_hashes: bool = True,
        naming: tuple[int, bytes] | None = None,
    ) -> None:
        """Sign a new timestamp version naming the current snapshot.

        Args:
            expires: Its expiry (default: a day after ``now``).
            snapshot_hashes: List the snapshot's length and hash (not only its version).
            naming: Name this (version, bytes) snapshot instead (a compromised
                timestamp key rolling the snapshot back).
        """
        ts = self.timestamp_md.signed
        ts.version += "timestamp" in self._bytes
        ts.expires = _whole_seconds(expires) if expires else self._in(days=1)
        version, data = naming or (self.snapshot_md.signed.version, self._bytes["snapshot"])
        meta = MetaFile.from_data(version, data, ["sha256"])
        if not snapshot_hashes:
            meta = MetaFile(version=version)
        ts.snapshot_meta = meta
        self._bytes["timestamp"] = self._sign(self.timestamp_md, self.roles["timestamp"].signers)

    def new_snapshot(
        self,
        *,
        expires: datetime | None = None,
        timestamp: bool = True,
        timestamp_expires: datetime | None = None,
        targets: tuple[int, bytes] | None = None,
    ) -> None:
        """Sign a new snapshot version (and, by default, a timestamp naming it).

        Args:
            expires: Its expiry (default: a week after ``now``).
            timestamp: Also sign a new timestamp naming it.
            timestamp_expires: That timestamp's expiry.
            targets: Name this (version, bytes) targets metadata instead (a
                compromised snapshot key rolling targets back).
        """
        snap = self.snapshot_md.signed
        snap.version += "snapshot" in self._bytes
        snap.expires = _whole_seconds(expires) if expires else self._in(days=7)
        version, data = targets or (self.targets_md.signed.version, self._bytes["targets"])
        snap.meta["targets.json"] = MetaFile.from_data(version, data, ["sha256"])
        for name, md in self.delegated_md.items():
            snap.meta[f"{name}.json"] = MetaFile.from_data(
                md.signed.version, self._bytes[name], ["sha256"]
            )
        self._bytes["snapshot"] = self._sign(self.snapshot_md, self.roles["snapshot"].signers)
        if timestamp:
            self.new_timestamp(expires=timestamp_expires)

    def new_targets(
        self,
        files: Mapping[str, bytes] | None = None,
        *,
        expires: datetime | None = None,
        snapshot_expires: datetime | None = None,
        timestamp_expires: datetime | None = None,
    ) -> None:
        """Sign new targets (and delegated) versions, then snapshot and timestamp."""
        if files is not None:
            self.target_files = dict(files)
        listed = {
            name: TargetFile.from_data(name, data, ["sha256", "sha512"])
            for name, data in self.target_files.items()
        }
        top = self.targets_md.signed
        top.version += "targets" in self._bytes
        top.expires = _whole_seconds(expires) if expires else self._in(days=90)
        if self.delegate:
            role = self.roles[self.delegate]
            top.targets = {}
            top.delegations = Delegations(
                keys={s.public_key.keyid: s.public_key for s in role.signers},
                roles={
                    self.delegate: DelegatedRole(
                        name=self.delegate,
                        keyids=[s.public_key.keyid for s in role.signers],
                        threshold=role.threshold,
                        terminating=True,
                        paths=["*"],
                    )
                },
            )
            sub = self.delegated_md[self.delegate].signed
            sub.version += self.delegate in self._bytes
            sub.expires = top.expires
            sub.targets = listed
            self._bytes[self.delegate] = self._sign(self.delegated_md[self.delegate], role.signers)
        else:
            top.targets = listed
        self._bytes["targets"] = self._sign(self.targets_md, self.roles["targets"].signers)
        self.new_snapshot(expires=snapshot_expires, timestamp_expires=timestamp_expires)

    def rotate_root(
        self,
        *,
        replace_root_key: int | None = 2,
        root_key_type: KeyType = "ecdsa",
        rotate: Sequence[str] = ("timestamp",),
        threshold: int | None = None,
        old_signers: int | None = None,
        new_signers: int | None = None,
        expires: datetime | None = None,
        resign: bool = True,
    ) -> None:
        """Sign root version N+1 with key changes.

        Args:
            replace_root_key: Index of the root key to replace with a new one (None: keep all).
            root_key_type: Type of the new root key.
            rotate: Online roles that get a new key.
            threshold: New root threshold (default: unchanged).
            old_signers: How many of the old root keys sign (default: the old threshold).
            new_signers: How many of the new root keys sign (default: the new threshold).
            expires: The new root's expiry.
            resign: Re-sign targets, snapshot and timestamp afterwards (needed
                when an online key changed).
        """
        old = self.roles["root"]
        old_list = list(old.signers)
        new_list = list(old_list)
        if replace_root_key is not None:
            new_list[replace_root_key] = new_signer(root_key_type)
        new_threshold = threshold or old.threshold
        self.roles["root"] = _Role(new_list, new_threshold)
        for name in rotate:
            kind: KeyType = "ecdsa" if name == "snapshot" else "ed25519"
            self.roles[name] = _Role([new_signer(kind)], self.roles[name].threshold)
        root = self.root_md.signed
        root.version += 1
        root.expires = _whole_seconds(expires) if expires else self._in(days=365)
        for name in ("root", *rotate):
            self._set_role_keys(root, name)
        # Old keys first, then new ones not already counted (a key kept
        # across the rotation signs once and counts for both).
        chosen: list[Signer] = old_list[: old.threshold if old_signers is None else old_signers]
        # New keys first, so that old_signers really bounds the old keys signing.
        kept = [s for s in new_list if s not in old_list]
        kept += [s for s in new_list if s in old_list and s not in chosen]
        wanted = new_threshold if new_signers is None else new_signers
        have = sum(1 for s in chosen if s in new_list)
        chosen += kept[: max(0, wanted - have)]
        self._sign_root(self.root_md, chosen)
        if resign:
            self.new_targets()

    # -- output --------------------------------------------------------------------

    def versions(self) -> dict[str, int]:
        """Current version of every role."""
        out = {
            "root": self.root_md.signed.version,
            "timestamp": self.timestamp_md.signed.version,
            "snapshot": self.snapshot_md.signed.version,
            "targets": self.targets_md.signed.version,
        }
        out |= {name: md.signed.version for name, md in self.delegated_md.items()}
        return out

    def publish(self) -> Published:
        """The current state as exact bytes."""
        return Published(
            roots=tuple(self.roots),
            timestamp=self._bytes["timestamp"],
            snapshot=self._bytes["snapshot"],
            targets=self._bytes["targets"],
            delegated={name: self._bytes[name] for name in self.delegated_md},
            target_files=copy.copy(self.target_files),
            versions=self.versions(),
        )


# --------------------------------------------------------------------------- Sigstore material


@dataclass(frozen=True)
class Material:
    """A valid bundle and the trusted root (and signing config) that verify it."""

    bundle: bytes
    trusted_root: bytes
    signing_config: bytes
    artifact: bytes
    identity: str
    issuer: str

    @property
    def target_files(self) -> dict[str, bytes]:
        """The two targets of a Sigstore TUF repository."""
        return {
            "trusted_root.json": self.trusted_root,
            "signing_config.v0.2.json": self.signing_config,
        }


_MATERIAL: list[Material] = []


def material() -> Material:
    """One FakeSigstore bundle (Rekor v2 + TSA, signed at ``DEFAULT_NOW``), built once."""
    if not _MATERIAL:
        import json

        from tests.support.factory import FakeSigstore

        sigstore = FakeSigstore()
        artifact = b"airseal offline kit artifact\n"
        signed = sigstore.sign_blob(artifact, rekor="v2", at=DEFAULT_NOW)
        config = {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [],
            "oidcUrls": [],
            "rekorTlogUrls": [],
            "tsaUrls": [],
        }
        _MATERIAL.append(
            Material(
                bundle=signed.json(),
                trusted_root=json.dumps(sigstore.trusted_root(), indent=2).encode(),
                signing_config=json.dumps(config).encode(),
                artifact=artifact,
                identity=signed.identity,
                issuer=signed.issuer,
            )
        )
    return _MATERIAL[0]


def three_root_repo(**kwargs: Any) -> TufRepo:
    """A repository with roots v1..v3 and key changes at each rotation.

    v2 replaces one root key (ECDSA) and the timestamp key; v3 replaces another
    root key (Ed25519), raises nothing, and rotates snapshot and timestamp keys.
    """
    repo = TufRepo(material().target_files, **kwargs)
    repo.rotate_root(replace_root_key=2, root_key_type="ecdsa", rotate=("timestamp",))
    repo.rotate_root(replace_root_key=0, root_key_type="ed25519", rotate=("snapshot", "timestamp"))
    return repo
