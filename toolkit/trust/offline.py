"""Verify an offline kit from a pinned TUF root, with no network at all.

Two steps, in this order (``docs/formats/kit.md``):

1. **TUF.** python-tuf's ``Updater`` walks the kit's metadata through an
   in-memory fetcher, starting from the *pinned* root (the root bytes the user
   holds, or the kit's first root when its SHA-256 equals the pinned hash):
   root chain v1..vN, timestamp, snapshot, targets, delegations. The length
   and hashes of each kit target file are then checked against the verified
   targets metadata. A persistent state directory (python-tuf's metadata dir)
   remembers the newest metadata seen, which is what refuses rollbacks.
   Everything python-tuf reads back from that directory is verified against
   the trusted root again; the trusted root file itself always comes from
   the kit and is checked against TUF, never read from a cache.
2. **Sigstore.** The kit's bundles are verified against the verified
   ``trusted_root.json`` with :class:`toolkit.verify.Verifier`.

Expiry policies (:class:`ExpiryPolicy`) choose the clock of the TUF expiry
checks: ``strict`` (now), ``grace=DAYS`` (timestamp and snapshot may be
expired by less than DAYS; root and targets strict) and ``attested-time=T``
(every expiry checked at T; ``T=bundle`` means the latest time the verified
bundle attests with a TSA timestamp or a log SET).

Every failure is a :class:`~toolkit.errors.VerificationError` (or a
:class:`~toolkit.errors.FormatError` for ``kit.parse``) naming a ``kit.*``
check code.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, unquote

from toolkit.encoding import format_rfc3339, parse_rfc3339
from toolkit.errors import (
    Check,
    EnvironmentSetupError,
    FormatError,
    UsageError,
    VerificationError,
)
from toolkit.trust.kit import TRUSTED_ROOT_TARGET, Kit

if TYPE_CHECKING:
    from tuf.api.metadata import Signed
    from tuf.ngclient import Updater

    from toolkit.verify import Artifact, Policy, VerificationResult

__all__ = [
    "ExpiryPolicy",
    "without_http_fetcher",
    "KitVerification",
    "PinnedRoot",
    "RoleStatus",
    "VerifiedTrust",
    "default_state_dir",
    "verify_kit",
    "verify_trust",
]

_BASE: Final = "airseal-kit:/"
_METADATA_URL: Final = _BASE + "metadata/"
_TARGETS_URL: Final = _BASE + "targets/"
_VERSIONED: Final = re.compile(r"\A([1-9][0-9]{0,9})\.(.+)\Z")
#: The clock python-tuf gets while expiry checks are deferred (attested-time=bundle).
_BEFORE_EVERYTHING: Final = datetime(1, 1, 2, tzinfo=UTC)
_MAX_GRACE_DAYS: Final = 3650


# --------------------------------------------------------------------------- no network


_HTTP_FETCHER_MODULE: Final = "tuf.ngclient.urllib3_fetcher"


def without_http_fetcher() -> bool:
    """Keep python-tuf from loading its HTTP fetcher (and urllib3) in this process.

    ``import tuf.ngclient`` imports urllib3, and importing urllib3 creates and
    binds an IPv6 socket on ``::1`` to probe for IPv6 support. An offline
    verification must not create any socket, so one-shot offline commands
    (``airseal verify --kit``) call this before python-tuf is first imported:
    it registers a stand-in for ``tuf.ngclient.urllib3_fetcher`` whose
    ``Urllib3Fetcher`` refuses to be constructed. The stand-in stays for the
    life of the process, so never call this where HTTP is needed later.

    Returns:
        True if the stand-in was installed; False if python-tuf was already
        imported (then nothing changes).
    """
    import sys
    import types

    if "tuf.ngclient" in sys.modules or _HTTP_FETCHER_MODULE in sys.modules:
        return False

    class Urllib3Fetcher:
        """Stand-in: offline verification has no network."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            raise EnvironmentSetupError("this offline process has no HTTP fetcher")

    stub = types.ModuleType(_HTTP_FETCHER_MODULE, "offline stand-in (airseal)")
    stub.Urllib3Fetcher = Urllib3Fetcher  # type: ignore[attr-defined]
    sys.modules[_HTTP_FETCHER_MODULE] = stub
    return True


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PinnedRoot:
    """The trust anchor: TUF root bytes, or the SHA-256 of the kit's ``1.root.json``.

    Attributes:
        sha256: SHA-256 of the pinned root bytes.
        data: The pinned root bytes, or None when only the hash is pinned
            (the kit's first root must then have this hash).
    """

    sha256: bytes
    data: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.sha256) != 32:
            raise UsageError("a pinned root SHA-256 is 32 bytes")
        if self.data is not None and hashlib.sha256(self.data).digest() != self.sha256:
            raise UsageError("the pinned root bytes do not match the pinned SHA-256")

    @classmethod
    def from_bytes(cls, data: bytes) -> PinnedRoot:
        """Pin these root metadata bytes (any version of the repository's root)."""
        return cls(hashlib.sha256(data).digest(), data)

    @classmethod
    def from_hex(cls, text: str) -> PinnedRoot:
        """Pin the SHA-256 (64 hex digits, optionally ``sha256:``-prefixed) of ``1.root.json``.

        Raises:
            UsageError: Not 64 hex digits.
        """
        value = text.strip().lower().removeprefix("sha256:")
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise UsageError(f"{text[:80]!r} is not a SHA-256 (64 hex digits)")
        return cls(bytes.fromhex(value))

    @property
    def hex(self) -> str:
        """The pinned SHA-256 in hex."""
        return self.sha256.hex()

    def bootstrap(self, kit: Kit) -> bytes:
        """The root bytes python-tuf starts from.

        Raises:
            VerificationError: ``kit.root`` when the kit's first root does not
                have the pinned hash.
        """
        if self.data is not None:
            return self.data
        first = kit.roots[0]
        if hashlib.sha256(first).digest() != self.sha256:
            raise VerificationError(
                Check.KIT_ROOT,
                f"the kit's 1.root.json has SHA-256 {hashlib.sha256(first).hexdigest()}, "
                f"not the pinned {self.hex}",
                hint="this kit was not made from the repository you pinned",
            )
        return first


@dataclass(frozen=True)
class ExpiryPolicy:
    """Which clock the TUF expiry checks use.

    Attributes:
        mode: ``strict``, ``grace`` or ``attested-time``.
        grace: For ``grace``: how long timestamp and snapshot may be expired.
        attested: For ``attested-time``: the reference time, or None for the
            bundle's attested time.
    """

    mode: Literal["strict", "grace", "attested-time"] = "strict"
    grace: timedelta | None = None
    attested: datetime | None = None

    def __post_init__(self) -> None:
        if self.mode == "grace":
            if self.grace is None or self.grace < timedelta(0):
                raise UsageError("the grace policy needs a non-negative number of days")
        elif self.grace is not None:
            raise UsageError("only the grace policy takes a number of days")
        if self.mode != "attested-time" and self.attested is not None:
            raise UsageError("only the attested-time policy takes a time")
        if self.attested is not None and self.attested.tzinfo is None:
            raise UsageError("an attested time must be timezone-aware")

    @classmethod
    def parse(cls, spec: str) -> ExpiryPolicy:
        """Parse ``strict``, ``grace=DAYS`` or ``attested-time=T`` (RFC 3339, or ``bundle``).

        Raises:
            UsageError: Anything else.
        """
        name, sep, value = spec.strip().partition("=")
        if name == "strict" and not sep:
            return cls()
        if name == "grace" and sep:
            try:
                days = float(value)
            except ValueError:
                days = -1.0
            if not 0 <= days <= _MAX_GRACE_DAYS:
                raise UsageError(
                    f"grace={value[:40]} is not a number of days between 0 and {_MAX_GRACE_DAYS}"
                )
            return cls("grace", grace=timedelta(days=days))
        if name == "attested-time" and sep:
            if value == "bundle":
                return cls("attested-time")
            try:
                moment = parse_rfc3339(value)
            except FormatError:
                raise UsageError(
                    f"attested-time={value[:40]} is neither 'bundle' nor an RFC 3339 time "
                    "such as 2025-06-01T12:00:00Z"
                ) from None
            return cls("attested-time", attested=moment)
        raise UsageError(
            f"unknown expiry policy {spec[:60]!r}",
            hint="use strict, grace=DAYS or attested-time=T (RFC 3339 time, or 'bundle')",
        )

    def __str__(self) -> str:
        if self.mode == "grace":
            assert self.grace is not None
            days = self.grace / timedelta(days=1)
            return f"grace={days:g}"
        if self.mode == "attested-time":
            return "attested-time=" + (
                format_rfc3339(self.attested) if self.attested is not None else "bundle"
            )
        return "strict"

    def from_bundle(self) -> bool:
        """Whether the reference time is taken from the verified bundle."""
        return self.mode == "attested-time" and self.attested is None


def default_state_dir(pin: PinnedRoot) -> Path:
    """``$XDG_DATA_HOME/airseal/kit-state/<pinned sha256>`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "airseal" / "kit-state" / pin.hex


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RoleStatus:
    """One verified metadata role."""

    role: str
    version: int
    expires: datetime
    expired_now: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``airseal verify --json``)."""
        return {
            "role": self.role,
            "version": self.version,
            "expires": format_rfc3339(self.expires),
            "expiredNow": self.expired_now,
        }


@dataclass(frozen=True)
class VerifiedTrust:
    """What the TUF step established.

    Attributes:
        trusted_root: The verified ``trusted_root.json`` bytes.
        target_files: Every verified target file of the kit (path -> bytes).
        policy: The expiry policy used.
        reference_time: The time root and targets expiry were checked at
            (None while deferred to the bundle's attested time).
        tuf_reference_time: The time timestamp and snapshot were checked at.
        now: The verifier's clock.
        roles: Root first, then timestamp, snapshot, targets, delegated roles.
        state_dir: The state directory used.
    """

    trusted_root: bytes
    target_files: dict[str, bytes]
    policy: ExpiryPolicy
    reference_time: datetime | None
    tuf_reference_time: datetime | None
    now: datetime
    roles: tuple[RoleStatus, ...]
    state_dir: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``airseal verify --json``, key ``kit``)."""

        def when(moment: datetime | None) -> str | None:
            return format_rfc3339(moment) if moment is not None else None

        return {
            "expiryPolicy": str(self.policy),
            "referenceTime": when(self.reference_time),
            "freshnessReferenceTime": when(self.tuf_reference_time),
            "now": when(self.now),
            "roles": [r.to_dict() for r in self.roles],
            "rootVersion": self.roles[0].version,
            "trustedRootSha256": hashlib.sha256(self.trusted_root).hexdigest(),
        }


@dataclass(frozen=True)
class KitVerification:
    """A verified kit: the trust step and the bundle that verified."""

    trust: VerifiedTrust
    result: VerificationResult
    bundle_index: int
    bundles: int = field(default=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON form of ``airseal verify --kit --json``."""
        out = self.result.to_dict()
        out["kit"] = self.trust.to_dict() | {"bundle": self.bundle_index, "bundles": self.bundles}
        return out


# --------------------------------------------------------------------------- fetcher


def _fetcher_class() -> type[Any]:
    from tuf.api.exceptions import DownloadHTTPError
    from tuf.ngclient import FetcherInterface

    class KitFetcher(FetcherInterface):
        """Serves the kit's metadata members; everything else is 404.

        It records the role of the last request, so that a failure can be
        named after the metadata being checked.
        """

        def __init__(self, kit: Kit) -> None:
            self._kit = kit
            self.stage = "root"

        def _fetch(self, url: str) -> Iterator[bytes]:
            data = self._lookup(url)
            if data is None:
                raise DownloadHTTPError(f"the kit has no {url.removeprefix(_BASE)}", 404)
            return iter((data,))

        def _lookup(self, url: str) -> bytes | None:
            if not url.startswith(_METADATA_URL) or not url.endswith(".json"):
                return None
            name = unquote(url[len(_METADATA_URL) : -len(".json")])
            kit = self._kit
            members = {"timestamp": kit.timestamp, "snapshot": kit.snapshot}
            members["targets"] = kit.targets
            if name in members or name in kit.delegated:
                self.stage = name
                return members.get(name) or kit.delegated[name]
            match = _VERSIONED.match(name)
            if match is None:
                return None
            version, role = int(match.group(1)), match.group(2)
            self.stage = role
            if role == "root":
                return kit.roots[version - 1] if version <= len(kit.roots) else None
            # Consistent snapshots ask for N.snapshot.json etc.: the kit holds
            # one version of each and python-tuf checks it is the one named.
            return members.get(role) or kit.delegated.get(role)

    return KitFetcher


# --------------------------------------------------------------------------- TUF step


def _updater_class() -> type[Updater]:
    from tuf.ngclient import Updater

    class StateUpdater(Updater):
        """python-tuf's Updater, minus rewrites of state files that did not change.

        The stock Updater rewrites the bootstrap root and the ``root.json``
        symlink on every run (temp file + rename), which costs more than the
        whole verification of a warm state. Writing only what changed keeps
        the same state. What is read back is still verified by python-tuf.
        """

        def _persist_file(self, filename: str, data: bytes) -> None:
            try:
                with Path(filename).open("rb") as handle:
                    if handle.read(len(data) + 1) == data:
                        return
            except OSError:
                pass
            super()._persist_file(filename, data)

        def _update_root_symlink(self) -> None:
            link = Path(self._dir) / "root.json"
            wanted = Path("root_history") / f"{self._trusted_set.root.version}.root.json"
            try:
                if link.readlink() == wanted:
                    return
            except OSError:
                pass
            super()._update_root_symlink()

    return StateUpdater


def _classify(exc: Exception, stage: str, expiry: ExpiryPolicy) -> VerificationError:
    """Name a python-tuf failure after the attack it reveals."""
    from tuf.api import exceptions as tx

    text = str(exc) or type(exc).__name__
    where = "root" if stage == "root" else f"{stage}.json"
    if isinstance(exc, tx.ExpiredMetadataError):
        return VerificationError(
            Check.KIT_EXPIRED,
            f"TUF metadata expired under --expiry {expiry}: {text}",
            hint="carry a fresher kit, or choose --expiry grace=DAYS / attested-time=… "
            "knowing what it gives up",
        )
    if isinstance(exc, tx.BadVersionNumberError):
        if "must be >=" in text or (stage == "snapshot" and ".json version" in text):
            return VerificationError(
                Check.KIT_ROLLBACK,
                f"{where} is older than metadata this state has already seen: {text}",
                hint="this kit is older than one verified before (rollback), or use "
                "another --state",
            )
        if "root version" in text:
            return VerificationError(Check.KIT_TUF, f"broken root chain: {text}")
        return VerificationError(
            Check.KIT_MIX_AND_MATCH,
            f"{where} is not the version the signed metadata names: {text}",
        )
    if isinstance(exc, tx.LengthOrHashMismatchError | tx.DownloadLengthMismatchError):
        if stage == "root":
            return VerificationError(Check.KIT_TUF, f"root metadata too large: {text}")
        return VerificationError(
            Check.KIT_MIX_AND_MATCH,
            f"{where} is not the file the signed metadata names (length or hash differs)",
        )
    if isinstance(exc, tx.UnsignedMetadataError):
        return VerificationError(Check.KIT_TUF, f"{where} is not signed by its threshold: {text}")
    if isinstance(exc, tx.RepositoryError):
        return VerificationError(Check.KIT_TUF, f"{where} does not verify: {text}")
    if isinstance(exc, tx.DownloadError):
        return VerificationError(Check.KIT_TUF, f"the kit lacks metadata: {text}")
    raise exc


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock (two verifications never interleave)."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot use the kit state directory {str(state_dir)!r}: {exc.strerror}",
            hint="give a writable --state DIR",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _status(role: str, signed: Signed, now: datetime) -> RoleStatus:
    return RoleStatus(role, signed.version, signed.expires, signed.is_expired(now))


def _check_expired(roles: Sequence[RoleStatus], at: datetime, why: str) -> None:
    for status in roles:
        if status.expires <= at:
            raise VerificationError(
                Check.KIT_EXPIRED,
                f"{status.role} v{status.version} expired at {format_rfc3339(status.expires)}, "
                f"before the reference time {format_rfc3339(at)} ({why})",
                hint="carry a fresher kit",
            )


def verify_trust(
    kit: Kit,
    pin: PinnedRoot,
    *,
    state_dir: Path,
    expiry: ExpiryPolicy = ExpiryPolicy(),
    now: datetime,
) -> VerifiedTrust:
    """Verify the kit's TUF chain and target files from the pinned root.

    With ``attested-time=bundle`` the expiry checks are deferred: the result
    has ``reference_time=None`` and :func:`verify_kit` checks them at the
    bundle's attested time. Call :func:`verify_kit` rather than this for that
    policy.

    Args:
        kit: The decoded kit.
        pin: The trust anchor.
        state_dir: python-tuf's persistent metadata directory (created 0700).
        expiry: The expiry policy.
        now: The verifier's clock (timezone-aware).

    Returns:
        The verified target files and what was checked.

    Raises:
        VerificationError: A ``kit.*`` check failed.
        EnvironmentSetupError: The state directory is unusable.
    """
    if now.tzinfo is None:
        raise ValueError("verify_trust() needs an aware datetime for now")
    from tuf.api import exceptions as tx
    from tuf.ngclient import UpdaterConfig

    from toolkit.trust._time import set_reference_time

    bootstrap = pin.bootstrap(kit)
    if expiry.mode == "grace":
        assert expiry.grace is not None
        tuf_time: datetime | None = now - expiry.grace
    elif expiry.mode == "attested-time":
        tuf_time = expiry.attested
    else:
        tuf_time = now
    fetcher = _fetcher_class()(kit)
    # python-tuf never needs more root versions than the kit holds.
    config = UpdaterConfig(max_root_rotations=len(kit.roots) + 1)
    with _locked(state_dir):
        try:
            updater = _updater_class()(
                str(state_dir),
                _METADATA_URL,
                target_base_url=_TARGETS_URL,
                fetcher=fetcher,
                config=config,
                bootstrap=bootstrap,
            )
        except tx.RepositoryError as exc:
            raise VerificationError(
                Check.KIT_ROOT, f"the pinned root does not verify: {exc}"
            ) from None
        except OSError as exc:
            raise EnvironmentSetupError(
                f"cannot write the kit state directory {str(state_dir)!r}: {exc.strerror}"
            ) from None
        set_reference_time(updater, tuf_time or _BEFORE_EVERYTHING)
        try:
            updater.refresh()
            files = _verify_targets(updater, kit, fetcher)
            _check_members(updater, kit, state_dir)
        except (tx.RepositoryError, tx.DownloadError) as exc:
            raise _classify(exc, fetcher.stage, expiry) from None
        except OSError as exc:
            raise EnvironmentSetupError(
                f"cannot write the kit state directory {str(state_dir)!r}: {exc.strerror}"
            ) from None
        roles = _roles(updater, now)
    reference = expiry.attested if expiry.mode == "attested-time" else now
    if reference is not None and expiry.mode == "grace":
        # python-tuf checked everything at now - grace; root and targets
        # (delegations included) must also be valid now.
        strict = [r for r in roles if r.role not in ("timestamp", "snapshot")]
        _check_expired(strict, now, f"{expiry}: root and targets are checked strictly")
    return VerifiedTrust(
        trusted_root=files[TRUSTED_ROOT_TARGET],
        target_files=files,
        policy=expiry,
        reference_time=reference,
        tuf_reference_time=tuf_time,
        now=now,
        roles=roles,
        state_dir=state_dir,
    )


def _verify_targets(updater: Updater, kit: Kit, fetcher: Any) -> dict[str, bytes]:
    from tuf.api import exceptions as tx

    files: dict[str, bytes] = {}
    for path, data in kit.target_files.items():
        info = updater.get_targetinfo(path)
        if info is None:
            raise VerificationError(
                Check.KIT_TUF, f"the kit carries {path}, which the signed targets do not list"
            )
        fetcher.stage = "target"
        try:
            info.verify_length_and_hashes(data)
        except tx.LengthOrHashMismatchError:
            raise VerificationError(
                Check.KIT_TARGET,
                f"the kit's {path} is not the file the TUF targets metadata signs "
                "(length or hash differs)",
            ) from None
        files[path] = data
    return files


def _check_members(updater: Updater, kit: Kit, state_dir: Path) -> None:
    """Every metadata member of the kit is the metadata python-tuf verified.

    python-tuf reads a role from the state directory instead of the kit when
    the state already holds the version the snapshot names: the kit's copy is
    then never looked at. A kit whose copy differs from the verified one (a
    flipped byte, or metadata of another repository state with the same
    version) must not pass for intact, so each member python-tuf trusts is
    compared byte for byte with the file it persisted.

    Raises:
        VerificationError: ``kit.mix-and-match`` naming the role.
    """
    trusted = updater._trusted_set  # the verified metadata, read only
    members = {"timestamp": kit.timestamp, "snapshot": kit.snapshot, "targets": kit.targets}
    members.update(kit.delegated)
    for role, data in members.items():
        signed = trusted.get(role)
        if signed is None:
            # A delegated role the lookup never needed: python-tuf did not
            # verify it, and nothing was taken from it.
            continue
        try:
            verified = (state_dir / f"{quote(role, '')}.json").read_bytes()
        except OSError:
            verified = None
        if verified != data:
            raise VerificationError(
                Check.KIT_MIX_AND_MATCH,
                f"the kit's {role} metadata is not the {role} metadata verified "
                f"(version {signed.version}): it was altered, or comes from another "
                "repository state",
            )


def _roles(updater: Updater, now: datetime) -> tuple[RoleStatus, ...]:
    trusted = updater._trusted_set  # the verified metadata, read only
    out = [
        _status("root", trusted.root, now),
        _status("timestamp", trusted.timestamp, now),
        _status("snapshot", trusted.snapshot, now),
        _status("targets", trusted.targets, now),
    ]
    top = {"root", "timestamp", "snapshot", "targets"}
    for name, signed in trusted._trusted_set.items():
        if name not in top:
            out.append(_status(str(name), signed, now))
    return tuple(out)


# --------------------------------------------------------------------------- both steps


def verify_kit(
    kit: Kit,
    artifact: Artifact,
    policy: Policy,
    pin: PinnedRoot,
    *,
    state_dir: Path,
    expiry: ExpiryPolicy = ExpiryPolicy(),
    now: datetime,
) -> KitVerification:
    """Verify the kit's TUF chain, then a bundle of the kit for the artifact.

    The bundles are tried in kit order; the first that verifies wins. When
    none does, the error of the first bundle is raised, unless a later bundle
    got past the artifact checks (then its error, which says more).

    Raises:
        VerificationError: ``kit.*`` for the TUF step, ``kit.bundle`` for a kit
            without bundles, or the bundle check that failed.
    """
    from toolkit.verify import Verifier

    if not kit.bundles:
        raise VerificationError(Check.KIT_BUNDLE, "the kit carries no bundle to verify")
    trust = verify_trust(kit, pin, state_dir=state_dir, expiry=expiry, now=now)
    verifier = Verifier.from_json(trust.trusted_root)
    errors: list[VerificationError] = []
    for index, bundle in enumerate(kit.bundles):
        try:
            result = verifier.verify(bundle, artifact, policy, now=now)
        except VerificationError as exc:
            errors.append(exc)
            continue
        if expiry.from_bundle():
            trust = _attest(trust, result)
        return KitVerification(trust, result, index, len(kit.bundles))
    mismatch = {Check.TLOG_BODY, Check.SIGNATURE_DIGEST, Check.DSSE_SUBJECT, Check.INPUT}
    telling = [e for e in errors if e.check not in mismatch]
    raise (telling or errors)[0]


def _attest(trust: VerifiedTrust, result: VerificationResult) -> VerifiedTrust:
    """Check every expiry at the latest time the verified bundle attests."""
    if not result.times:
        raise VerificationError(Check.TIME_NONE, "the bundle attests no time")
    at = max(t.time for t in result.times)
    _check_expired(trust.roles, at, "attested-time=bundle: the bundle's latest verified time")
    return VerifiedTrust(
        trusted_root=trust.trusted_root,
        target_files=trust.target_files,
        policy=trust.policy,
        reference_time=at,
        tuf_reference_time=at,
        now=trust.now,
        roles=trust.roles,
        state_dir=trust.state_dir,
    )
