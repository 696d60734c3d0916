"""The TUF client: refresh from a mirror and hand out the verified trusted root.

``airseal trust update`` runs python-tuf's ``Updater`` against an HTTP mirror
or a local directory (:mod:`toolkit.trust._fetchers`), from a pinned initial
root: a root file the user holds, or the mirror's own ``1.root.json`` checked
against a SHA-256 the user holds. State (every root version seen, the last
timestamp, snapshot and targets) persists in a cache directory, so a later
run detects rollback and freeze attacks; the default cache is per pinned root:
``$XDG_DATA_HOME/airseal/tuf/<sha256 of the initial root>``.

Every python-tuf failure maps to one airseal error by :func:`tuf_error`:
verification failures to :class:`~toolkit.errors.VerificationError` with the
check codes the offline kit uses too (``kit.tuf``, ``kit.expired``,
``kit.rollback``), download failures to :class:`~toolkit.errors.TransportError`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from toolkit.errors import (
    Check,
    EnvironmentSetupError,
    Error,
    TransportError,
    UsageError,
    VerificationError,
)

if TYPE_CHECKING:
    from tuf.ngclient import FetcherInterface, Updater

__all__ = [
    "ROOT_MAX_LENGTH",
    "TRUSTED_ROOT_TARGET",
    "RoleInfo",
    "UpdateResult",
    "default_cache_dir",
    "fetch_initial_root",
    "tuf_error",
    "update",
]

TRUSTED_ROOT_TARGET: Final = "trusted_root.json"
#: Largest root file accepted (python-tuf's own default limit).
ROOT_MAX_LENGTH: Final = 512_000
_HEX64: Final = re.compile(r"[0-9a-f]{64}")


def tuf_error(exc: BaseException, *, source: str, stage: str | None = None) -> Error:
    """The airseal error for a python-tuf failure.

    Args:
        exc: What python-tuf raised.
        source: Where the metadata came from (mirror URL or kit), for messages.
        stage: ``target`` while a target file is downloaded (its length or
            hash mismatch is then ``kit.target``); None during the refresh.

    Returns:
        ``VerificationError`` for metadata that fails to verify:
        ``kit.expired``; ``kit.rollback`` (older than what the state has seen);
        ``kit.mix-and-match`` (a snapshot or targets file that is not the one
        the signed metadata names); ``kit.target`` (target bytes differ);
        ``kit.tuf`` (signatures, thresholds, root chain, malformed metadata).
        ``TransportError`` for a download that failed, ``EnvironmentSetupError``
        for a local file problem.
    """
    from tuf.api import exceptions as tuf_exc

    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    where = f"{source}: {detail}"
    if isinstance(exc, tuf_exc.ExpiredMetadataError):
        return VerificationError(
            Check.KIT_EXPIRED,
            where,
            hint="the repository has not been refreshed in time (or this clock is wrong)",
        )
    if isinstance(exc, tuf_exc.BadVersionNumberError):
        if "must be >=" in detail:
            return VerificationError(
                Check.KIT_ROLLBACK,
                where,
                hint="the mirror serves older metadata than this state has already seen",
            )
        if "root version" in detail:
            return VerificationError(Check.KIT_TUF, f"{source}: broken root chain: {detail}")
        return VerificationError(Check.KIT_MIX_AND_MATCH, where)
    if isinstance(exc, tuf_exc.LengthOrHashMismatchError | tuf_exc.DownloadLengthMismatchError):
        if stage == "target":
            return VerificationError(
                Check.KIT_TARGET, f"{source}: the target's bytes differ from the signed ones"
            )
        return VerificationError(Check.KIT_MIX_AND_MATCH, where)
    if isinstance(exc, tuf_exc.RepositoryError):
        return VerificationError(Check.KIT_TUF, where)
    if isinstance(exc, tuf_exc.DownloadHTTPError):
        return TransportError(f"{source}: HTTP {exc.status_code}: {detail}")
    if isinstance(exc, tuf_exc.DownloadError):
        cause = exc.__cause__
        reason = " ".join(str(cause).split())[:200] if cause is not None else detail
        return TransportError(f"{source}: download failed: {reason}")
    if isinstance(exc, OSError):
        return EnvironmentSetupError(f"cannot write the TUF state: {exc.strerror or exc}")
    return VerificationError(Check.KIT_TUF, where)


@dataclass(frozen=True)
class RoleInfo:
    """One verified role: version and expiry."""

    role: str
    version: int
    expires: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "role": self.role,
            "version": self.version,
            "expires": self.expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclass(frozen=True)
class UpdateResult:
    """What a refresh established.

    Attributes:
        target: The target's name.
        data: Its verified bytes.
        sha256: Hex SHA-256 of ``data``.
        roles: The verified top-level roles.
        cache_dir: The state directory used.
        initial_root_sha256: Hex SHA-256 of the pinned initial root.
        custom: The target's ``custom`` field from the targets metadata.
    """

    target: str
    data: bytes
    sha256: str
    roles: tuple[RoleInfo, ...]
    cache_dir: Path
    initial_root_sha256: str
    custom: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (without the target bytes)."""
        return {
            "ok": True,
            "target": self.target,
            "sha256": self.sha256,
            "length": len(self.data),
            "roles": [r.to_dict() for r in self.roles],
            "cache": str(self.cache_dir),
            "initial_root_sha256": self.initial_root_sha256,
            "custom": self.custom,
        }


def default_cache_dir(initial_root: bytes) -> Path:
    """``$XDG_DATA_HOME/airseal/tuf/<sha256 of the initial root>`` (``~/.local/share`` default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "airseal" / "tuf" / hashlib.sha256(initial_root).hexdigest()


def fetch_initial_root(
    fetcher: FetcherInterface, metadata_url: str, expected_sha256: str, *, source: str
) -> bytes:
    """The mirror's ``1.root.json``, if its SHA-256 is ``expected_sha256``.

    Raises:
        UsageError: ``expected_sha256`` is not 64 hex digits.
        VerificationError: Check ``kit.tuf`` when the hash differs.
        TransportError: The mirror cannot serve it.
    """
    expected = expected_sha256.strip().lower()
    if not _HEX64.fullmatch(expected):
        raise UsageError("--root-sha256 must be 64 hexadecimal digits")
    try:
        data = fetcher.download_bytes(metadata_url + "1.root.json", ROOT_MAX_LENGTH)
    except Exception as exc:  # python-tuf's download errors
        raise tuf_error(exc, source=source) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise VerificationError(
            Check.KIT_ROOT,
            f"{source}: 1.root.json has SHA-256 {actual}, not the pinned {expected}",
            hint="the mirror does not serve the repository you pinned",
        )
    return data


def update(
    mirror: str,
    *,
    root: bytes | None = None,
    root_sha256: str | None = None,
    cache_dir: Path | None = None,
    now: datetime | None = None,
    target: str = TRUSTED_ROOT_TARGET,
    timeout: float = 30.0,
    fetcher: FetcherInterface | None = None,
) -> UpdateResult:
    """Refresh from ``mirror`` and return one verified target.

    Args:
        mirror: ``http(s)://`` URL or local directory of a published tree.
        root: The pinned initial root's bytes, or
        root_sha256: the hex SHA-256 of the mirror's ``1.root.json``.
        cache_dir: Persistent state (default :func:`default_cache_dir`).
        now: Expiry reference time (default: the clock).
        target: The target to fetch (``trusted_root.json`` is also parsed).
        timeout: Seconds per HTTP connection and read.
        fetcher: Use this fetcher (with ``mirror`` as the base URL) instead
            of choosing one from ``mirror``.

    Raises:
        UsageError: Neither or both of ``root`` and ``root_sha256``.
        VerificationError: ``kit.tuf``/``kit.expired``/``kit.rollback``, or
            ``trust-root.parse`` for a malformed trusted root.
        TransportError: The mirror cannot be reached or lacks files.
        EnvironmentSetupError: The cache cannot be written.
    """
    from tuf.ngclient import Updater

    from toolkit.trust._fetchers import METADATA_DIR, TARGETS_DIR, open_mirror
    from toolkit.trust._time import set_reference_time

    if (root is None) == (root_sha256 is None):
        raise UsageError("give exactly one of --root and --root-sha256")
    if fetcher is None:
        fetcher, metadata_url, targets_url = open_mirror(mirror, timeout=timeout)
    else:
        base = mirror if mirror.endswith("/") else mirror + "/"
        metadata_url, targets_url = f"{base}{METADATA_DIR}/", f"{base}{TARGETS_DIR}/"
    source = mirror
    if root is None:
        assert root_sha256 is not None
        root = fetch_initial_root(fetcher, metadata_url, root_sha256, source=source)
    state = cache_dir if cache_dir is not None else default_cache_dir(root)
    metadata_dir = state / "metadata"
    targets_dir = state / "targets"
    try:
        metadata_dir.mkdir(parents=True, exist_ok=True)
        targets_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot create the TUF state directory {state}: {exc.strerror or exc}"
        ) from None
    try:
        updater = Updater(
            str(metadata_dir),
            metadata_url,
            str(targets_dir),
            targets_url,
            fetcher,
            bootstrap=root,
        )
    except Exception as exc:
        raise _initial_root_error(exc, source) from None
    if now is not None:
        set_reference_time(updater, now)
    try:
        updater.refresh()
        info = updater.get_targetinfo(target)
    except Exception as exc:
        raise tuf_error(exc, source=source) from None
    if info is None:
        raise VerificationError(Check.KIT_TUF, f"{source}: the signed targets list no {target!r}")
    try:
        path = updater.find_cached_target(info) or updater.download_target(info)
    except Exception as exc:
        raise tuf_error(exc, source=source, stage="target") from None
    data = Path(path).read_bytes()
    if target == TRUSTED_ROOT_TARGET:
        from toolkit.models.trustroot import TrustedRoot

        TrustedRoot.from_json(data)
    custom = info.unrecognized_fields.get("custom", {})
    return UpdateResult(
        target=target,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        roles=_roles(updater),
        cache_dir=state,
        initial_root_sha256=hashlib.sha256(root).hexdigest(),
        custom=custom if isinstance(custom, dict) else {},
    )


def _initial_root_error(exc: Exception, source: str) -> Error:
    if isinstance(exc, OSError):
        return EnvironmentSetupError(f"cannot write the TUF state: {exc.strerror or exc}")
    error = tuf_error(exc, source="initial root")
    if isinstance(error, VerificationError):
        return VerificationError(
            Check.KIT_ROOT,
            f"the pinned initial root does not verify: {error.detail}",
            hint=f"check the root file or hash you pinned for {source}",
        )
    return error


def _roles(updater: Updater) -> tuple[RoleInfo, ...]:
    # Read only: the metadata python-tuf has just verified.
    trusted = updater._trusted_set
    signed = (trusted.root, trusted.timestamp, trusted.snapshot, trusted.targets)
    return tuple(RoleInfo(s.type, s.version, s.expires) for s in signed)
