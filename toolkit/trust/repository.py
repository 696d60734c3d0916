"""The distributor's TUF repository: publish, refresh and rotate the trust root.

Built on python-tuf's Metadata API. The repository starts from the ceremony's
``1.root.json`` (kept byte for byte), and serves two targets by default,
``trusted_root.json`` and ``signing_config.v0.2.json``, each with
``custom.airseal`` fields. The online roles (targets, snapshot, timestamp)
are signed by the online keys the root names, through
:class:`~toolkit.signing.tuf.TufSigner` (software or PKCS#11 keys).

On disk, the working directory has the layout of a published tree, plus the
offline channel's own snapshot and timestamp::

    DIR/metadata/1.root.json … N.root.json     every root version, byte-exact
    DIR/metadata/N.targets.json  N.snapshot.json  timestamp.json
    DIR/targets/<sha256>.trusted_root.json …   every target version
    DIR/offline/metadata/N.snapshot.json  timestamp.json   (offline channel)

Versioned files are written once and never rewritten (consistent snapshots);
``timestamp.json`` is replaced atomically, last, so that a crash leaves the
previous state published. Every file is kept as the bytes that were signed:
``Metadata.to_bytes()`` is not byte-stable, so nothing is ever re-serialised.

**Offline channel.** TUF clients reject an expired timestamp, so a kit carried
across an air gap lives only as long as the timestamp in it. The offline
channel is a second published tree (``OUT/offline/``, or any other mirror
directory) that shares the root and targets metadata and target files of the
online tree but has its own snapshot and timestamp, signed with a longer
expiry. Both channels draw versions from one counter, and each time the
offline channel is cut the online channel is re-signed with higher versions
in the same step: a client that follows the offline channel can always move
on to the online one, and rollback protection still holds within each.

**Root rotation** (:func:`propose_root`, :func:`sign_root`,
:func:`merge_signatures`, :meth:`Repository.commit_root`): version N+1 must be
signed by a threshold of the keys of root N *and* of root N+1, as TUF clients
check. Custodians sign the proposal in separate sessions, each adding one
signature; the copies are merged; the commit refuses anything short of both
thresholds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Key, Signature, SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError, SerializationError
from tuf.api.serialization.json import JSONSerializer

from toolkit._fs import fsync_dir, write_durably
from toolkit.errors import EnvironmentSetupError, FormatError, UsageError
from toolkit.signing.tuf import TufSigner, tuf_key
from toolkit.trust._fetchers import METADATA_DIR, TARGETS_DIR

if TYPE_CHECKING:
    from toolkit.errors import Check
    from toolkit.services.config import ConfigFile, Table
    from toolkit.signing import PublicKey, Signer

__all__ = [
    "DEFAULT_POLICY",
    "OFFLINE_DIR",
    "ONLINE_ROLES",
    "SIGNING_CONFIG_TARGET",
    "TRUSTED_ROOT_TARGET",
    "Lifetime",
    "RefreshReport",
    "Repository",
    "RepositoryConfig",
    "RepositoryPolicy",
    "RoleState",
    "RootSignatureStatus",
    "derive_signing_config",
    "merge_signatures",
    "propose_root",
    "root_signature_status",
    "sign_root",
]

#: The targets airseal publishes.
TRUSTED_ROOT_TARGET: Final = "trusted_root.json"
SIGNING_CONFIG_TARGET: Final = "signing_config.v0.2.json"
#: Sub-directory of the working and published trees that holds the offline channel.
OFFLINE_DIR: Final = "offline"
#: The roles the online keys sign.
ONLINE_ROLES: Final = ("targets", "snapshot", "timestamp")

_LOCK_FILE: Final = ".airseal-repository.lock"
_SERIALIZER: Final = JSONSerializer(compact=False)
_VERSIONED: Final = re.compile(r"([1-9][0-9]{0,9})\.(root|targets|snapshot)\.json")
_TARGET_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Largest metadata or target file read back from a repository directory.
_MAX_FILE: Final = 16 << 20
_FILE_MODE: Final = 0o644
_S = TypeVar("_S", Root, Targets, Snapshot, Timestamp)


# --- Policy and config --------------------------------------------------------


@dataclass(frozen=True)
class Lifetime:
    """How long one role's metadata lives, and when to renew it.

    Attributes:
        expiry: Lifetime of a newly signed version.
        renew_before: ``refresh`` re-signs once less than this is left.
    """

    expiry: timedelta
    renew_before: timedelta

    def __post_init__(self) -> None:
        if self.expiry <= timedelta(0):
            raise UsageError("a metadata lifetime must be positive")
        if not timedelta(0) <= self.renew_before < self.expiry:
            raise UsageError("renew_before must be at least 0 and shorter than the lifetime")

    @classmethod
    def days(cls, expiry: float, renew_before: float) -> Lifetime:
        """A lifetime given in (fractional) days."""
        return cls(timedelta(days=expiry), timedelta(days=renew_before))


@dataclass(frozen=True)
class RepositoryPolicy:
    """Expiries per role, and the offline channel.

    Attributes:
        targets: Lifetime of targets metadata.
        snapshot: Lifetime of the online snapshot.
        timestamp: Lifetime of the online timestamp.
        offline: Lifetime of the offline channel's snapshot and timestamp;
            None: no offline channel.
    """

    targets: Lifetime = field(default_factory=lambda: Lifetime.days(365, 30))
    snapshot: Lifetime = field(default_factory=lambda: Lifetime.days(7, 3))
    timestamp: Lifetime = field(default_factory=lambda: Lifetime.days(1, 0.5))
    offline: Lifetime | None = None

    def __post_init__(self) -> None:
        if self.offline is not None and self.offline.expiry > self.targets.expiry:
            raise UsageError(
                "the offline channel cannot outlive the targets metadata",
                hint="make trust.offline.expiry_days at most trust.targets.expiry_days",
            )

    def lifetime(self, role: str) -> Lifetime:
        """The lifetime of an online role."""
        value: Lifetime = getattr(self, role)
        return value


#: The defaults: targets a year, snapshot a week, timestamp a day; no offline channel.
DEFAULT_POLICY: Final = RepositoryPolicy()


@dataclass(frozen=True)
class RepositoryConfig:
    """The ``[trust]`` table of a config file.

    Example::

        [instance]
        keys = "ceremony/keys.toml"

        [trust]
        repository = "repo"               # the working directory
        online_keys = ["tuf-online"]      # keys.toml names or pkcs11:/file: URIs
                                          # (default: every tuf-online key)
        [trust.targets]
        expiry_days = 365
        renew_days = 30
        [trust.snapshot]
        expiry_days = 7
        renew_days = 3
        [trust.timestamp]
        expiry_days = 1
        renew_days = 0.5
        [trust.offline]                   # optional: the offline channel
        expiry_days = 90
        renew_days = 30

    Attributes:
        directory: The working repository directory.
        key_uris: URIs of the online keys.
        policy: Lifetimes per role.
        config: The parsed file (opens keys).
    """

    directory: Path
    key_uris: tuple[str, ...]
    policy: RepositoryPolicy
    config: ConfigFile

    @classmethod
    def load(cls, path: Path) -> RepositoryConfig:
        """Read the ``[trust]`` table of ``path``.

        Raises:
            FormatError: Unknown or malformed fields (dotted path in the message).
            UsageError: The file has no ``[trust]`` table.
        """
        from toolkit.services.config import ConfigFile

        return cls.from_config(ConfigFile.load(path))

    @classmethod
    def from_config(cls, config: ConfigFile) -> RepositoryConfig:
        """Parse the ``[trust]`` table of a loaded config file."""
        table = config.require_section("trust")
        directory = table.path_value("repository")
        uris = _key_uris(config, table)
        lifetimes: dict[str, Lifetime] = {}
        for role in ONLINE_ROLES:
            sub = table.table(role, required=False)
            default = DEFAULT_POLICY.lifetime(role)
            lifetimes[role] = _lifetime(sub, default)
        offline_table = table.table("offline", required=False)
        offline = (
            None
            if offline_table is None
            else _lifetime(offline_table, Lifetime.days(90, 30), required=True)
        )
        table.done()
        try:
            policy = RepositoryPolicy(offline=offline, **lifetimes)
        except UsageError as exc:
            raise table.error("offline", exc.message, hint=exc.hint) from None
        return cls(directory=directory, key_uris=uris, policy=policy, config=config)

    def open_signers(self) -> list[Signer]:
        """Open every online key (token keys ask for their PIN as configured)."""
        return [self.config.open_key(uri) for uri in self.key_uris]

    def open(self) -> Repository:
        """Open the repository with the online keys."""
        return Repository.open(self.directory, self.open_signers(), self.policy)


def _lifetime(sub: Table | None, default: Lifetime, *, required: bool = False) -> Lifetime:
    if sub is None:
        return default
    if required:
        expiry = sub.number("expiry_days", minimum=1 / 24)
    else:
        expiry = sub.number("expiry_days", default.expiry / timedelta(days=1), minimum=1 / 24)
    # The default margin, unless it would not fit a shorter lifetime.
    default_renew = min(default.renew_before, timedelta(days=expiry) / 2) / timedelta(days=1)
    renew = sub.number("renew_days", default_renew, minimum=0)
    sub.done()
    try:
        return Lifetime.days(expiry, renew)
    except UsageError as exc:
        raise sub.error("renew_days", exc.message) from None


def _key_uris(config: ConfigFile, table: Table) -> tuple[str, ...]:
    names = table.strings("online_keys", None)
    ring = config.keyring()
    if names is None:
        if ring is None:
            raise table.error(
                "online_keys",
                "missing (required without [instance] keys)",
                hint="name the online TUF keys, or give keys.toml in [instance] keys",
            )
        uris = tuple(k.uri for k in ring.keys.values() if k.purpose == "tuf-online")
        if not uris:
            raise table.error("online_keys", "keys.toml has no key with purpose 'tuf-online'")
        return uris
    out: list[str] = []
    for index, name in enumerate(names):
        where = f"online_keys[{index}]"
        if "pin-value" in name.lower():
            raise table.error(where, "must not carry a PIN (pin-value)")
        scheme = name.partition(":")[0].lower()
        if scheme == "pkcs11":
            out.append(name)
        elif scheme == "file":
            rest = name[len("file:") :]
            out.append(name if rest.startswith("//") else "file:" + str(config.resolve(rest)))
        elif ring is None:
            raise table.error(where, f"{name!r} is not a URI and no keys.toml is given")
        elif name not in ring.keys:
            raise table.error(where, f"keys.toml has no key {name!r}")
        else:
            out.append(ring.keys[name].uri)
    return tuple(out)


# --- State -------------------------------------------------------------------


@dataclass(frozen=True)
class RoleState:
    """One role's current metadata.

    Attributes:
        role: ``root``, ``targets``, ``snapshot`` or ``timestamp``.
        version: Its version.
        expires: When it expires.
        channel: ``online`` or ``offline``.
    """

    role: str
    version: int
    expires: datetime
    channel: str = "online"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "role": self.role,
            "channel": self.channel,
            "version": self.version,
            "expires": _iso(self.expires),
        }


@dataclass(frozen=True)
class RefreshReport:
    """What a repository operation signed.

    Attributes:
        signed: The new versions, in the order written.
        root_expires: When the current root expires (it cannot be renewed online).
    """

    signed: tuple[RoleState, ...]
    root_expires: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "signed": [s.to_dict() for s in self.signed],
            "root_expires": _iso(self.root_expires),
        }


@dataclass
class _Loaded:
    """Bytes and parsed metadata of one file."""

    data: bytes
    md: Metadata[Any]


@dataclass
class _Channel:
    snapshot: _Loaded
    timestamp: _Loaded


class Repository:
    """A TUF repository directory and the online keys that sign it.

    Use :meth:`create` or :meth:`open`; every method that signs takes the
    current time as a parameter.
    """

    def __init__(
        self,
        directory: Path,
        signers: Sequence[Signer],
        policy: RepositoryPolicy,
        roots: list[bytes],
        targets: _Loaded,
        online: _Channel,
        offline: _Channel | None,
    ) -> None:
        self._dir = directory
        self._signers = list(signers)
        self._policy = policy
        self._roots = roots
        self._root: Root = Metadata[Root].from_bytes(roots[-1]).signed
        self._targets = targets
        self._online = online
        self._offline = offline

    # -- construction --

    @classmethod
    def create(
        cls,
        directory: Path,
        root: bytes,
        targets: Mapping[str, bytes],
        signers: Sequence[Signer],
        policy: RepositoryPolicy,
        now: datetime,
    ) -> Repository:
        """Initialise a repository from the ceremony's ``1.root.json``.

        Args:
            directory: Must not exist, or be empty.
            root: The exact bytes of ``1.root.json`` (shipped unchanged).
            targets: Target names and bytes (``trusted_root.json`` …).
            signers: The online keys (they must satisfy the root's online roles).
            policy: Lifetimes per role.
            now: The current time.

        Raises:
            FormatError: The root is not a valid, self-signed version 1 with
                consistent snapshots, or a target is malformed.
            UsageError: The directory is in use, the root has expired, or the
                signers do not cover the online roles.
        """
        _aware(now)
        md = _load(root, "1.root.json", Root)
        if md.signed.version != 1:
            raise FormatError(f"1.root.json: version {md.signed.version}, expected 1")
        _check_root_shape(md.signed, "1.root.json")
        try:
            md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
        except UnsignedMetadataError as exc:
            raise FormatError(f"1.root.json: not signed by its root threshold: {exc}") from None
        if md.signed.is_expired(now):
            raise UsageError(f"1.root.json expired at {_iso(md.signed.expires)}")
        if not targets:
            raise UsageError("a repository needs at least one target")
        for name, data in targets.items():
            _check_target(name, data)
        _role_signers(md.signed, signers)
        if directory.exists() and any(directory.iterdir()):
            raise UsageError(f"repository directory {str(directory)!r} is not empty")
        (directory / METADATA_DIR).mkdir(parents=True, exist_ok=True)
        (directory / TARGETS_DIR).mkdir(exist_ok=True)
        if policy.offline is not None:
            (directory / OFFLINE_DIR / METADATA_DIR).mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            _write_new(directory / METADATA_DIR / "1.root.json", root)
            files = {}
            target_files: dict[str, TargetFile] = {}
            for name, data in targets.items():
                info = _target_file(name, data, now)
                target_files[name] = info
                files[_target_path(info)] = data
            targets_signed = Targets(
                version=1,
                expires=_expiry(now, policy.targets),
                targets=target_files,
            )
            targets_bytes = _sign(targets_signed, "targets", md.signed, signers)
            for path, data in files.items():
                _write_new(directory / TARGETS_DIR / path, data)
            _write_new(directory / METADATA_DIR / "1.targets.json", targets_bytes)
            repo = cls._assemble(directory, signers, policy, [root], targets_bytes, now)
        return repo

    @classmethod
    def _assemble(
        cls,
        directory: Path,
        signers: Sequence[Signer],
        policy: RepositoryPolicy,
        roots: list[bytes],
        targets_bytes: bytes,
        now: datetime,
    ) -> Repository:
        """First snapshot and timestamp(s) of a new repository."""
        root = Metadata[Root].from_bytes(roots[-1]).signed
        targets = _Loaded(targets_bytes, Metadata[Targets].from_bytes(targets_bytes))
        offline: _Channel | None = None
        version = 1
        if policy.offline is not None:
            offline = _new_channel(
                root, targets, version, policy.offline, policy.offline, signers, now
            )
            version += 1
        online = _new_channel(
            root, targets, version, policy.snapshot, policy.timestamp, signers, now
        )
        repo = cls(directory, signers, policy, roots, targets, online, offline)
        repo._write_channels(snapshot=True)
        return repo

    @classmethod
    def open(
        cls, directory: Path, signers: Sequence[Signer], policy: RepositoryPolicy
    ) -> Repository:
        """Open an existing repository directory.

        Raises:
            UsageError: Not a repository directory.
            FormatError: Its files are inconsistent or malformed.
        """
        meta = directory / METADATA_DIR
        if not (meta / "1.root.json").is_file():
            raise UsageError(
                f"{str(directory)!r} is not a TUF repository (no {METADATA_DIR}/1.root.json)",
                hint="create one with `airseal trust init`",
            )
        roots: list[bytes] = []
        while (meta / f"{len(roots) + 1}.root.json").is_file():
            roots.append(_read(meta / f"{len(roots) + 1}.root.json"))
        online = _read_channel(meta, "online")
        if online is None:
            raise FormatError(f"{meta}: no timestamp.json")
        snapshot: Snapshot = online.snapshot.md.signed
        targets_meta = snapshot.meta.get("targets.json")
        if targets_meta is None:
            raise FormatError(f"{meta}: the snapshot lists no targets.json")
        name = f"{targets_meta.version}.targets.json"
        data = _read(meta / name)
        targets = _Loaded(data, _load(data, name, Targets))
        offline: _Channel | None = None
        if policy.offline is not None:
            offline = _read_channel(directory / OFFLINE_DIR / METADATA_DIR, "offline")
        return cls(directory, signers, policy, roots, targets, online, offline)

    # -- reading --

    @property
    def directory(self) -> Path:
        """The working directory."""
        return self._dir

    @property
    def root(self) -> Root:
        """The current root (parsed)."""
        return self._root

    @property
    def roots(self) -> tuple[bytes, ...]:
        """Every root version's bytes, version 1 first."""
        return tuple(self._roots)

    @property
    def targets(self) -> Targets:
        """The current targets metadata (parsed)."""
        signed: Targets = self._targets.md.signed
        return signed

    def target_bytes(self, name: str) -> bytes:
        """The current bytes of a target.

        Raises:
            UsageError: No such target.
        """
        info = self.targets.targets.get(name)
        if info is None:
            raise UsageError(f"the repository has no target {name!r}")
        return _read(self._dir / TARGETS_DIR / _target_path(info))

    def status(self) -> tuple[RoleState, ...]:
        """Version and expiry of every role, online channel first."""
        out = [
            RoleState("root", self._root.version, self._root.expires),
            _state("targets", self._targets),
            _state("snapshot", self._online.snapshot),
            _state("timestamp", self._online.timestamp),
        ]
        if self._offline is not None:
            out.append(_state("snapshot", self._offline.snapshot, "offline"))
            out.append(_state("timestamp", self._offline.timestamp, "offline"))
        return tuple(out)

    # -- operations --

    def refresh(self, now: datetime, *, force: bool = False) -> RefreshReport:
        """Re-sign whatever expires within its renewal margin.

        Targets are re-signed when near expiry (and when the offline channel
        is cut and would outlive them); a new targets version re-signs both
        snapshots and timestamps. With ``force``, the timestamp and snapshot
        of each channel are re-signed regardless.

        Raises:
            UsageError: The online keys do not cover the roles to sign, or
                the root has expired (only the custodians can renew it).
        """
        _aware(now)
        self._check_root_alive(now)
        policy = self._policy
        # A channel the config has just enabled is cut now.
        offline_due = policy.offline is not None and (
            self._offline is None
            or force
            or _due(self._offline.timestamp, policy.offline, now)
            or _due(self._offline.snapshot, policy.offline, now)
        )
        targets_due = _due(self._targets, policy.targets, now)
        if offline_due and policy.offline is not None:
            targets_due |= self.targets.expires < _expiry(now, policy.offline)
        with _locked(self._dir):
            signed: list[RoleState] = []
            if targets_due:
                signed.append(self._resign_targets(now))
            signed += self._cut(
                now,
                snapshot=force or targets_due or _due(self._online.snapshot, policy.snapshot, now),
                timestamp=force or _due(self._online.timestamp, policy.timestamp, now),
                offline=offline_due or targets_due,
            )
        return RefreshReport(tuple(signed), self._root.expires)

    def add_target(
        self,
        name: str,
        data: bytes,
        now: datetime,
        *,
        custom: Mapping[str, Any] | None = None,
    ) -> RefreshReport:
        """Add or replace a target (new targets version; both channels re-cut).

        Args:
            name: The target name (``trusted_root.json`` …).
            data: Its bytes (``trusted_root.json`` and the signing config are
                parsed and refused when malformed).
            now: The current time.
            custom: Extra ``custom.airseal`` fields.

        Raises:
            FormatError: Malformed name or content.
            UsageError: Same bytes as the current target, or the keys do not
                cover the roles.
        """
        _aware(now)
        self._check_root_alive(now)
        _check_target(name, data)
        current = self.targets.targets.get(name)
        info = _target_file(name, data, now, custom)
        if current is not None and current.hashes == info.hashes:
            raise UsageError(f"target {name!r} already has these exact bytes")
        with _locked(self._dir):
            _write_once(self._dir / TARGETS_DIR / _target_path(info), data)
            targets = dict(self.targets.targets)
            targets[name] = info
            signed = [self._resign_targets(now, targets)]
            signed += self._cut(now, snapshot=True, timestamp=True, offline=True)
        return RefreshReport(tuple(signed), self._root.expires)

    def commit_root(self, data: bytes, now: datetime) -> RefreshReport:
        """Install root version N+1 and re-sign every online role with its keys.

        Args:
            data: The signed proposal (written byte for byte as ``N+1.root.json``).
            now: The current time.

        Raises:
            VerificationError: Not signed by the thresholds of both root N
                and root N+1 (see :func:`root_signature_status`).
            FormatError: Not the next root version, or malformed.
            UsageError: Expired, or the online keys do not cover the new root's
                online roles.
        """
        _aware(now)
        version = self._root.version + 1
        name = f"{version}.root.json"
        status = root_signature_status(data, self._roots[-1], name=name)
        if status.version != version:
            raise FormatError(f"{name}: version {status.version}, expected {version}")
        status.require()
        new_root = _load(data, name, Root).signed
        if new_root.is_expired(now):
            raise UsageError(f"{name} expired at {_iso(new_root.expires)}")
        for role in ONLINE_ROLES:
            _role_signers(new_root, self._signers, role)
        with _locked(self._dir):
            _write_new(self._dir / METADATA_DIR / name, data)
            self._roots.append(data)
            self._root = new_root
            signed = [RoleState("root", version, new_root.expires)]
            signed.append(self._resign_targets(now))
            signed += self._cut(now, snapshot=True, timestamp=True, offline=True)
        return RefreshReport(tuple(signed), self._root.expires)

    def publish(self, out: Path, *, offline_out: Path | None = None) -> list[Path]:
        """Write the servable tree(s): ``OUT/metadata``, ``OUT/targets`` (+ offline).

        Versioned files already present with the same bytes are kept; one
        with other bytes is an error (``OUT`` belongs to another repository).
        ``timestamp.json`` is written last in each tree, atomically.

        Args:
            out: The online mirror's root (what a static HTTP server serves).
            offline_out: Where the offline channel's tree goes (default
                ``OUT/offline``); ignored without an offline channel.

        Returns:
            The files written (unchanged ones are not listed).

        Raises:
            UsageError: ``out`` holds different bytes under a versioned name.
            EnvironmentSetupError: A file cannot be written.
        """
        written: list[Path] = []
        shared = self._shared_files()
        written += _sync_tree(
            out,
            {**shared, **self._channel_files(self._online)},
            self._online.timestamp.data,
        )
        if self._offline is not None:
            target = offline_out if offline_out is not None else out / OFFLINE_DIR
            written += _sync_tree(
                target,
                {**shared, **self._channel_files(self._offline)},
                self._offline.timestamp.data,
            )
        return written

    def channel_files(self, channel: str = "online") -> dict[str, bytes]:
        """Every file of one published tree, by path (``metadata/…``, ``targets/…``)."""
        chosen = self._online if channel == "online" else self._offline
        if chosen is None:
            raise UsageError("the repository has no offline channel")
        files = {**self._shared_files(), **self._channel_files(chosen)}
        files[f"{METADATA_DIR}/timestamp.json"] = chosen.timestamp.data
        return files

    # -- internals --

    def _check_root_alive(self, now: datetime) -> None:
        if self._root.is_expired(now):
            raise UsageError(
                f"root version {self._root.version} expired at {_iso(self._root.expires)}",
                hint="the custodians must sign a new root (airseal trust rotate-root)",
            )

    def _resign_targets(
        self, now: datetime, targets: Mapping[str, TargetFile] | None = None
    ) -> RoleState:
        version = _next_version(self._dir, "targets")
        signed = Targets(
            version=version,
            expires=_expiry(now, self._policy.targets),
            targets=dict(self.targets.targets if targets is None else targets),
        )
        data = _sign(signed, "targets", self._root, self._signers)
        _write_new(self._dir / METADATA_DIR / f"{version}.targets.json", data)
        self._targets = _Loaded(data, Metadata[Targets].from_bytes(data))
        return _state("targets", self._targets)

    def _cut(
        self, now: datetime, *, snapshot: bool, timestamp: bool, offline: bool
    ) -> list[RoleState]:
        """New snapshot/timestamp versions; offline first so that online gets the higher ones."""
        out: list[RoleState] = []
        policy = self._policy
        snapshot_version = _next_version(self._dir, "snapshot")
        if offline and policy.offline is not None:
            (self._dir / OFFLINE_DIR / METADATA_DIR).mkdir(parents=True, exist_ok=True)
            self._offline = _new_channel(
                self._root,
                self._targets,
                snapshot_version,
                policy.offline,
                policy.offline,
                self._signers,
                now,
                timestamp_version=self._next_timestamp(),
            )
            out += [
                _state("snapshot", self._offline.snapshot, "offline"),
                _state("timestamp", self._offline.timestamp, "offline"),
            ]
            # The online channel must overtake the offline one (see module docs).
            snapshot = timestamp = True
            snapshot_version += 1
        if snapshot:
            self._online = _new_channel(
                self._root,
                self._targets,
                snapshot_version,
                policy.snapshot,
                policy.timestamp,
                self._signers,
                now,
                timestamp_version=self._next_timestamp(),
            )
            out += [
                _state("snapshot", self._online.snapshot),
                _state("timestamp", self._online.timestamp),
            ]
        elif timestamp:
            snap = self._online.snapshot
            ts = _timestamp(
                self._root, snap, self._next_timestamp(), policy.timestamp, self._signers, now
            )
            self._online = _Channel(snap, ts)
            out.append(_state("timestamp", ts))
        if out:
            self._write_channels(snapshot=snapshot or offline)
        return out

    def _next_timestamp(self) -> int:
        versions = [self._online.timestamp.md.signed.version]
        if self._offline is not None:
            versions.append(self._offline.timestamp.md.signed.version)
        return max(versions, default=0) + 1

    def _write_channels(self, *, snapshot: bool) -> None:
        """Snapshots first, then the offline timestamp, the online timestamp last."""
        channels = [(self._dir / METADATA_DIR, self._online)]
        if self._offline is not None:
            channels.insert(0, (self._dir / OFFLINE_DIR / METADATA_DIR, self._offline))
        if snapshot:
            for folder, channel in channels:
                version = channel.snapshot.md.signed.version
                _write_once(folder / f"{version}.snapshot.json", channel.snapshot.data)
        for folder, channel in channels:
            _replace(folder / "timestamp.json", channel.timestamp.data)

    def _shared_files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for index, data in enumerate(self._roots, start=1):
            files[f"{METADATA_DIR}/{index}.root.json"] = data
        meta = self._dir / METADATA_DIR
        for path in sorted(meta.glob("*.targets.json")):
            files[f"{METADATA_DIR}/{path.name}"] = _read(path)
        for path in sorted((self._dir / TARGETS_DIR).iterdir()):
            if path.is_file() and not path.name.startswith("."):
                files[f"{TARGETS_DIR}/{path.name}"] = _read(path)
        return files

    def _channel_files(self, channel: _Channel) -> dict[str, bytes]:
        folder = (
            self._dir / METADATA_DIR
            if channel is self._online
            else self._dir / OFFLINE_DIR / METADATA_DIR
        )
        return {
            f"{METADATA_DIR}/{path.name}": _read(path)
            for path in sorted(folder.glob("*.snapshot.json"))
        }


# --- Signing helpers ------------------------------------------------------------


def _role_signers(
    root: Root, signers: Sequence[Signer], role: str | None = None
) -> list[TufSigner]:
    """The TufSigners of ``role`` (every online role when None), enough for its threshold."""
    roles = ONLINE_ROLES if role is None else (role,)
    chosen: list[TufSigner] = []
    for name in roles:
        delegation = root.roles[name]
        found: list[TufSigner] = []
        for signer in signers:
            own = tuf_key(signer.public_key, signer.scheme)
            for keyid in delegation.keyids:
                key = root.keys[keyid]
                if isinstance(key, SSlibKey) and _same_key(key, own):
                    found.append(TufSigner(signer, key))
                    break
        if len(found) < delegation.threshold:
            ids = ", ".join(k[:16] + "…" for k in delegation.keyids)
            raise UsageError(
                f"the {name} role needs {delegation.threshold} signature(s) by keys {ids}; "
                f"the configured online keys provide {len(found)}",
                hint="list the online keys of the root in trust.online_keys",
            )
        if role is not None:
            return found
        chosen += found
    return chosen


def _same_key(a: Key, b: Key) -> bool:
    return (a.keytype, a.scheme, a.keyval) == (b.keytype, b.scheme, b.keyval)


def _sign(signed: _S, role: str, root: Root, signers: Sequence[Signer]) -> bytes:
    md: Metadata[_S] = Metadata(signed)
    for signer in _role_signers(root, signers, role):
        md.sign(signer, append=True)
    # Check what the keys returned before anything is written: the same check
    # the clients will make.
    try:
        root.verify_delegate(role, md.signed_bytes, md.signatures)
    except UnsignedMetadataError as exc:
        raise EnvironmentSetupError(f"the {role} signatures do not verify: {exc}") from None
    return md.to_bytes(_SERIALIZER)


def _meta_file(loaded: _Loaded) -> MetaFile:
    return MetaFile(
        version=loaded.md.signed.version,
        length=len(loaded.data),
        hashes={"sha256": hashlib.sha256(loaded.data).hexdigest()},
    )


def _timestamp(
    root: Root,
    snapshot: _Loaded,
    version: int,
    lifetime: Lifetime,
    signers: Sequence[Signer],
    now: datetime,
) -> _Loaded:
    signed = Timestamp(
        version=version, expires=_expiry(now, lifetime), snapshot_meta=_meta_file(snapshot)
    )
    data = _sign(signed, "timestamp", root, signers)
    return _Loaded(data, Metadata[Timestamp].from_bytes(data))


def _new_channel(
    root: Root,
    targets: _Loaded,
    snapshot_version: int,
    snapshot_life: Lifetime,
    timestamp_life: Lifetime,
    signers: Sequence[Signer],
    now: datetime,
    *,
    timestamp_version: int | None = None,
) -> _Channel:
    snap_signed = Snapshot(
        version=snapshot_version,
        expires=_expiry(now, snapshot_life),
        meta={"targets.json": _meta_file(targets)},
    )
    data = _sign(snap_signed, "snapshot", root, signers)
    snapshot = _Loaded(data, Metadata[Snapshot].from_bytes(data))
    ts_version = snapshot_version if timestamp_version is None else timestamp_version
    return _Channel(snapshot, _timestamp(root, snapshot, ts_version, timestamp_life, signers, now))


# --- Targets ---------------------------------------------------------------------


def _check_target(name: str, data: bytes) -> None:
    if not _TARGET_NAME.fullmatch(name):
        raise FormatError(
            f"target name {name[:80]!r} must be 1-128 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    if len(data) > _MAX_FILE:
        raise FormatError(f"target {name}: larger than {_MAX_FILE} bytes")
    if name == TRUSTED_ROOT_TARGET:
        from toolkit.models.trustroot import TrustedRoot

        TrustedRoot.from_json(data)
    elif name == SIGNING_CONFIG_TARGET:
        from toolkit.models.signing_config import SigningConfig

        try:
            SigningConfig.from_json(data)
        except FormatError as exc:
            raise FormatError(f"{name}: {exc.message}") from None


def _media_type(name: str, data: bytes) -> str | None:
    if name in (TRUSTED_ROOT_TARGET, SIGNING_CONFIG_TARGET):
        import json

        value = json.loads(data).get("mediaType")
        return value if isinstance(value, str) else None
    return None


def _target_file(
    name: str, data: bytes, now: datetime, custom: Mapping[str, Any] | None = None
) -> TargetFile:
    info = TargetFile.from_data(name, data, ["sha256"])
    airseal: dict[str, Any] = {"added": _iso(now)}
    media_type = _media_type(name, data)
    if media_type is not None:
        airseal["mediaType"] = media_type
    airseal.update(custom or {})
    info.unrecognized_fields["custom"] = {"airseal": airseal}
    return info


def _target_path(info: TargetFile) -> str:
    return f"{info.hashes['sha256']}.{info.path}"


def derive_signing_config(trusted_root: bytes) -> bytes:
    """A SigningConfig v0.2 pointing at the services a trusted root lists.

    CA URLs come from the certificate authorities' ``uri``, Rekor URLs from
    the tlogs' ``baseUrl`` (API v2), TSA URLs from the timestamp authorities'
    ``uri`` + ``/api/v1/timestamp``, each valid from its entry's start. The
    OIDC issuer is not in a trusted root: give a signing config to list one.

    Raises:
        FormatError: ``trusted_root`` does not parse (check ``trust-root.parse``).
    """
    from urllib.parse import urlsplit

    from toolkit.models.signing_config import (
        Service,
        ServiceConfiguration,
        ServiceSelector,
        SigningConfig,
    )
    from toolkit.models.trustroot import TrustedRoot

    root = TrustedRoot.from_json(trusted_root)

    def service(url: str, version: int, valid_for: Any) -> Service:
        return Service(url, version, valid_for, urlsplit(url).hostname or url)

    config = SigningConfig(
        ca_urls=tuple(
            service(ca.uri, 1, ca.valid_for) for ca in root.certificate_authorities if ca.uri
        ),
        rekor_tlog_urls=tuple(service(t.base_url, 2, t.public_key.valid_for) for t in root.tlogs),
        rekor_tlog_config=ServiceConfiguration(ServiceSelector.ANY) if root.tlogs else None,
        tsa_urls=tuple(
            service(tsa.uri.rstrip("/") + "/api/v1/timestamp", 1, tsa.valid_for)
            for tsa in root.timestamp_authorities
            if tsa.uri
        ),
        tsa_config=(
            ServiceConfiguration(ServiceSelector.ANY) if root.timestamp_authorities else None
        ),
    )
    return config.to_json().encode()


# --- Root rotation ------------------------------------------------------------------


@dataclass(frozen=True)
class RootSignatureStatus:
    """How far a root proposal is signed.

    Attributes:
        name: File name used in messages (``2.root.json``).
        version: The proposal's version.
        previous_version: The version of the root it must also satisfy
            (None when unknown: only the new root's threshold was counted).
        previous_threshold: Threshold of the previous root.
        previous_signed: Previous-root keys whose signatures verify.
        threshold: Threshold of the proposal's own root role.
        signed: The proposal's root keys whose signatures verify.
        unknown: Key ids of signatures that are by no root key of either.
        invalid: Key ids of root keys whose signatures do not verify.
    """

    name: str
    version: int
    previous_version: int | None
    previous_threshold: int
    previous_signed: tuple[str, ...]
    threshold: int
    signed: tuple[str, ...]
    unknown: tuple[str, ...]
    invalid: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """Both thresholds met and no bad signature."""
        return (
            self.previous_version is not None
            and len(self.previous_signed) >= self.previous_threshold
            and len(self.signed) >= self.threshold
            and not self.unknown
            and not self.invalid
        )

    def summary(self) -> str:
        """One line: ``2.root.json: 1 of 2 signatures of root v1, 2 of 2 of root v2``."""
        parts = []
        if self.previous_version is not None:
            parts.append(
                f"{len(self.previous_signed)} of {self.previous_threshold} required signatures "
                f"of root v{self.previous_version}"
            )
        parts.append(
            f"{len(self.signed)} of {self.threshold} required signatures of root v{self.version}"
        )
        return f"{self.name}: " + ", ".join(parts)

    def require(self) -> None:
        """Raise unless the proposal may be committed.

        Raises:
            VerificationError: Check ``kit.tuf``, naming the missing signatures.
        """
        from toolkit.errors import VerificationError

        check = _tuf_check()
        if self.invalid:
            raise VerificationError(
                check,
                f"{self.name}: the signature by root key {self.invalid[0][:16]}… does not verify",
            )
        if self.unknown:
            raise VerificationError(
                check,
                f"{self.name}: signature by {self.unknown[0][:16]}…, which is a key of neither "
                "the previous nor the new root",
            )
        if self.previous_version is None:
            raise UsageError(f"{self.name}: the previous root is needed to check the rotation")
        if not self.verified:
            missing_old = max(0, self.previous_threshold - len(self.previous_signed))
            missing_new = max(0, self.threshold - len(self.signed))
            need = []
            if missing_old:
                need.append(f"{missing_old} more of root v{self.previous_version}'s keys")
            if missing_new:
                need.append(f"{missing_new} more of root v{self.version}'s keys")
            raise VerificationError(
                check,
                f"refusing to commit: {self.summary()}",
                hint="collect " + " and ".join(need) + " (airseal trust sign-root), "
                "then merge the copies (airseal trust merge-signatures)",
            )


def _tuf_check() -> Check:
    from toolkit.errors import Check

    return Check.KIT_TUF


def root_signature_status(
    data: bytes, previous: bytes | None, *, name: str | None = None
) -> RootSignatureStatus:
    """Count the signatures of a root proposal against both root versions.

    Args:
        data: The proposal (``N+1.root.json``).
        previous: Root N's bytes (None: count the proposal's own keys only).
        name: File name for messages (default ``<version>.root.json``).

    Raises:
        FormatError: Malformed root, or ``previous`` is not version N.
    """
    md = _load(data, name or "root proposal", Root)
    root = md.signed
    label = name or f"{root.version}.root.json"
    prev_root: Root | None = None
    if previous is not None:
        prev_root = _load(previous, "previous root", Root).signed
        if root.version != prev_root.version + 1:
            raise FormatError(
                f"{label}: version {root.version} does not follow the previous root "
                f"(version {prev_root.version})"
            )
    payload = md.signed_bytes
    result = root.get_root_verification_result(prev_root, payload, md.signatures)
    known = set(root.roles["root"].keyids)
    if prev_root is not None:
        known |= set(prev_root.roles["root"].keyids)
    unknown = tuple(k for k in md.signatures if k not in known)
    signed = set(result.signed)
    invalid = tuple(k for k in md.signatures if k in known and k not in signed)
    if prev_root is None:
        # Keys only the previous root has cannot be checked without it.
        invalid = tuple(k for k in invalid if k in root.roles["root"].keyids)
        unknown = ()
    return RootSignatureStatus(
        name=label,
        version=root.version,
        previous_version=None if prev_root is None else prev_root.version,
        previous_threshold=result.first.threshold if prev_root is not None else 0,
        previous_signed=tuple(result.first.signed) if prev_root is not None else (),
        threshold=result.second.threshold,
        signed=tuple(result.second.signed),
        unknown=unknown,
        invalid=invalid,
    )


def propose_root(
    current: bytes,
    *,
    expires: datetime,
    root_keys: Sequence[PublicKey | Key] | None = None,
    root_threshold: int | None = None,
    online_keys: Sequence[PublicKey | Key] | None = None,
    online_threshold: int | None = None,
) -> bytes:
    """Root version N+1, unsigned: the current root with the given changes.

    Args:
        current: Root N's bytes.
        expires: The new root's expiry (timezone-aware).
        root_keys: The custodians' keys of the new root (default: unchanged).
        root_threshold: The new root threshold (default: unchanged, capped
            at the number of keys).
        online_keys: The keys of targets, snapshot and timestamp (default:
            unchanged).
        online_threshold: Their threshold (default: unchanged, capped).

    Raises:
        UsageError: A threshold that cannot be met, a key listed twice.
        FormatError: ``current`` is not a root.
    """
    _aware(expires)
    old = _load(current, "current root", Root).signed
    root = Root(
        version=old.version + 1,
        expires=expires.astimezone(UTC).replace(microsecond=0),
        consistent_snapshot=old.consistent_snapshot,
    )

    def keys_of(role: str) -> list[Key]:
        return [old.keys[k] for k in old.roles[role].keyids]

    roles: dict[str, tuple[list[Key], int]] = {}
    new_root = [_as_key(k) for k in root_keys] if root_keys else keys_of("root")
    roles["root"] = (
        new_root,
        root_threshold or min(old.roles["root"].threshold, len(new_root)),
    )
    for role in ONLINE_ROLES:
        keys = [_as_key(k) for k in online_keys] if online_keys else keys_of(role)
        roles[role] = (keys, online_threshold or min(old.roles[role].threshold, len(keys)))
    for role, (keys, threshold) in roles.items():
        ids = [k.keyid for k in keys]
        if len(set(ids)) != len(ids):
            raise UsageError(f"role {role} lists the same key more than once")
        if not 1 <= threshold <= len(keys):
            raise UsageError(
                f"role {role}: threshold {threshold} cannot be met by {len(keys)} key(s)"
            )
        for key in keys:
            root.add_key(key, role)
        root.roles[role].threshold = threshold
    return Metadata(root).to_bytes(_SERIALIZER)


def _as_key(key: PublicKey | Key) -> Key:
    if isinstance(key, Key):
        return key
    return tuf_key(key)


def sign_root(data: bytes, signer: Signer, *, previous: bytes | None = None) -> bytes:
    """Add one custodian's signature to a root proposal.

    The signer's key must be a root key of the proposal, or of the previous
    root when ``previous`` is given (a custodian being replaced signs with the
    old key). The new signature is verified before it is kept.

    Returns:
        The proposal with the signature added (serialised anew; the signed
        part, which is what signatures cover, is unchanged).

    Raises:
        UsageError: The key is not a root key of either version, or it has
            already signed.
        HSMError: The token failed.
        EnvironmentSetupError: The token returned a bad signature.
    """
    md = _load(data, "root proposal", Root)
    candidates = _root_keys(md.signed)
    if previous is not None:
        candidates.update(_root_keys(_load(previous, "previous root", Root).signed))
    own = tuf_key(signer.public_key, signer.scheme)
    match = next((k for k in candidates.values() if _same_key(k, own)), None)
    if match is None:
        hint = (
            "give the current root with --previous to sign with a key the new root drops"
            if previous is None
            else None
        )
        raise UsageError(
            f"key {own.keyid[:16]}… is not a root key of version {md.signed.version}"
            + ("" if previous is None else " or of the previous root"),
            hint=hint,
        )
    if match.keyid in md.signatures:
        raise UsageError(f"key {match.keyid[:16]}… has already signed this root")
    signature = md.sign(TufSigner(signer, match), append=True)
    try:
        match.verify_signature(signature, md.signed_bytes)
    except UnverifiedSignatureError:
        raise EnvironmentSetupError(
            f"key {match.keyid[:16]}… returned a root signature that does not verify",
            hint="the token or its PKCS#11 module returned a bad signature",
        ) from None
    return _serialise(md)


def _root_keys(root: Root) -> dict[str, SSlibKey]:
    return {k: key for k in root.roles["root"].keyids if isinstance(key := root.keys[k], SSlibKey)}


def merge_signatures(documents: Sequence[bytes], *, previous: bytes | None = None) -> bytes:
    """One root proposal with the signatures of every copy.

    Args:
        documents: Copies of the same proposal (identical signed parts).
        previous: Root N, to check signatures by keys only it has.

    Raises:
        UsageError: Fewer than two copies, or copies of different proposals.
        VerificationError: A signature does not verify (check ``kit.tuf``).
    """
    from toolkit.errors import VerificationError

    if len(documents) < 2:
        raise UsageError("give at least two copies of the proposal to merge")
    first = _load(documents[0], "copy 1", Root)
    payload = first.signed_bytes
    keys = _root_keys(first.signed)
    if previous is not None:
        keys.update(_root_keys(_load(previous, "previous root", Root).signed))
    merged: dict[str, Signature] = {}
    for index, data in enumerate(documents, start=1):
        md = first if index == 1 else _load(data, f"copy {index}", Root)
        if md.signed_bytes != payload:
            raise UsageError(
                f"copy {index} is not the same root proposal as copy 1 (its signed part differs)"
            )
        for keyid, signature in md.signatures.items():
            if keyid in merged:
                continue
            key = keys.get(keyid)
            if key is None:
                if previous is None:
                    # Checked at commit time against the previous root.
                    merged[keyid] = signature
                    continue
                raise VerificationError(
                    _tuf_check(),
                    f"copy {index}: signature by {keyid[:16]}…, a key of neither root version",
                )
            try:
                key.verify_signature(signature, payload)
            except UnverifiedSignatureError:
                raise VerificationError(
                    _tuf_check(),
                    f"copy {index}: the signature by root key {keyid[:16]}… does not verify",
                ) from None
            merged[keyid] = signature
    first.signatures.clear()
    first.signatures.update(merged)
    return _serialise(first)


def _serialise(md: Metadata[Any]) -> bytes:
    try:
        return md.to_bytes(_SERIALIZER)
    except SerializationError as exc:
        raise FormatError(f"cannot serialise the root: {exc}") from None


# --- Files ----------------------------------------------------------------------------


def _load(data: bytes, name: str, kind: type[_S]) -> Metadata[_S]:
    try:
        md: Metadata[Any] = Metadata.from_bytes(data)
    except DeserializationError as exc:
        raise FormatError(f"{name}: not valid TUF metadata: {_short(exc)}") from None
    if not isinstance(md.signed, kind):
        raise FormatError(f"{name}: is {md.signed.type} metadata, not {kind.type}")
    return md


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def _check_root_shape(root: Root, name: str) -> None:
    if not root.consistent_snapshot:
        raise FormatError(
            f"{name}: consistent_snapshot is false; airseal repositories use consistent snapshots"
        )
    for role, delegation in root.roles.items():
        if delegation.threshold > len(delegation.keyids):
            raise FormatError(f"{name}: role {role}'s threshold cannot be met")


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE + 1)
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_FILE:
        raise FormatError(f"{path}: larger than {_MAX_FILE} bytes")
    return data


def _read_channel(folder: Path, channel: str) -> _Channel | None:
    path = folder / "timestamp.json"
    if not path.is_file():
        return None
    data = _read(path)
    ts = _Loaded(data, _load(data, f"{channel} timestamp.json", Timestamp))
    meta = ts.md.signed.snapshot_meta
    name = f"{meta.version}.snapshot.json"
    snap_data = _read(folder / name)
    return _Channel(_Loaded(snap_data, _load(snap_data, name, Snapshot)), ts)


def _next_version(directory: Path, role: str) -> int:
    """One more than every version of ``role`` on disk (both channels)."""
    folders = [directory / METADATA_DIR, directory / OFFLINE_DIR / METADATA_DIR]
    highest = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _VERSIONED.fullmatch(path.name)
            if match and match.group(2) == role:
                highest = max(highest, int(match.group(1)))
    return highest + 1


def _write_new(path: Path, data: bytes) -> None:
    if path.exists():
        raise UsageError(f"{path} exists already; refusing to overwrite a versioned file")
    _replace(path, data)


def _write_once(path: Path, data: bytes) -> None:
    """Write a content-addressed or versioned file unless the same bytes are there."""
    if path.exists():
        if _read(path) == data:
            return
        raise UsageError(f"{path} exists with other bytes; refusing to overwrite it")
    _replace(path, data)


def _replace(path: Path, data: bytes) -> None:
    try:
        write_durably(path, data, _FILE_MODE)
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot write {path}: {exc.strerror or exc}") from None


def _sync_tree(out: Path, files: Mapping[str, bytes], timestamp: bytes) -> list[Path]:
    written: list[Path] = []
    try:
        for sub in (METADATA_DIR, TARGETS_DIR):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot create {out}: {exc.strerror or exc}") from None
    for name, data in files.items():
        path = out / name
        if path.exists() and _read(path) == data:
            continue
        if path.exists():
            raise UsageError(
                f"{path} exists with other bytes",
                hint="publish into an empty directory or an earlier publication of this repository",
            )
        _replace(path, data)
        written.append(path)
    ts = out / METADATA_DIR / "timestamp.json"
    if not ts.exists() or _read(ts) != timestamp:
        _replace(ts, timestamp)
        written.append(ts)
    return written


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer at a time (two cron runs must not race for version numbers)."""
    import fcntl

    try:
        fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot lock {directory}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EnvironmentSetupError(
                f"another airseal process is writing {directory}",
                hint="wait for it to finish, then run the command again",
            ) from None
        yield
        fsync_dir(directory)
    finally:
        os.close(fd)


# --- Time -------------------------------------------------------------------------


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise UsageError("times must be timezone-aware")


def _expiry(now: datetime, lifetime: Lifetime) -> datetime:
    return (now + lifetime.expiry).astimezone(UTC).replace(microsecond=0)


def _due(loaded: _Loaded, lifetime: Lifetime | None, now: datetime) -> bool:
    if lifetime is None:
        return False
    expires: datetime = loaded.md.signed.expires
    return expires - now <= lifetime.renew_before


def _state(role: str, loaded: _Loaded, channel: str = "online") -> RoleState:
    signed = loaded.md.signed
    return RoleState(role, signed.version, signed.expires, channel)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
