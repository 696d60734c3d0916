"""All-or-nothing output directories.

A ceremony writes every output into ``<out>.staging`` with ``O_EXCL`` and
fsync, and renames the staging directory to ``<out>`` only when every step
succeeded. If a step fails, everything but the transcript is removed and the
directory is renamed to ``<out>.aborted-<time>`` so that the record of where
the ceremony stopped survives while nothing looks like a finished output. A
process killed outright leaves ``<out>.staging`` behind; the next run refuses
to start until a person has looked at it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from toolkit._fs import create_synced, fsync_dir
from toolkit.errors import EnvironmentSetupError, UsageError

__all__ = ["Staging", "preflight", "staging_path"]

TRANSCRIPT = "transcript.jsonl"


def staging_path(out: Path) -> Path:
    """Where a ceremony writing to ``out`` stages its files."""
    return out.with_name(out.name + ".staging")


def preflight(out: Path) -> None:
    """Refuse to start when outputs, or the remains of an interrupted run, exist.

    Raises:
        UsageError: ``out`` or its staging directory exists (exit 2).
    """
    if out.exists():
        raise UsageError(
            f"output directory {str(out)!r} already exists; a ceremony never overwrites outputs",
            hint="choose a new output directory, or move the old one away after checking it",
        )
    staging = staging_path(out)
    if staging.exists():
        raise UsageError(
            f"{str(staging)!r} exists: an earlier run was interrupted",
            hint=f"read {staging / TRANSCRIPT} to see where it stopped, then move it away",
        )
    if not out.parent.is_dir():
        raise UsageError(f"parent directory of {str(out)!r} does not exist")


class Staging:
    """A staging directory for one ceremony's outputs."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = staging_path(out)
        try:
            # mkdir fails if the directory exists: two ceremonies never share one.
            self.path.mkdir(mode=0o755)
        except FileExistsError:
            raise UsageError(f"{str(self.path)!r} exists: an earlier run was interrupted") from None
        except OSError as exc:
            raise EnvironmentSetupError(
                f"cannot create {str(self.path)!r}: {exc.strerror}"
            ) from None

    def write(self, name: str, data: bytes, *, mode: int = 0o644) -> None:
        """Create ``name`` with ``O_EXCL``, write ``data`` and fsync it."""
        if "/" in name or name in {"", ".", ".."}:
            raise ValueError(f"bad output name {name!r}")
        create_synced(self.path / name, data, mode)

    def commit(self) -> None:
        """Make the outputs durable and move them into place in one rename."""
        fsync_dir(self.path)
        if self.out.exists():
            # rename(2) would replace an empty directory: check right before.
            raise UsageError(f"output directory {str(self.out)!r} appeared during the ceremony")
        self.path.rename(self.out)
        fsync_dir(self.out.parent)

    def abort(self, *, now: datetime | None = None) -> Path:
        """Remove every output but the transcript and set the directory aside.

        Returns:
            The directory that now holds the aborted run's transcript.
        """
        for entry in self.path.iterdir():
            if entry.name != TRANSCRIPT:
                entry.unlink()
        moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        target = self.out.with_name(f"{self.out.name}.aborted-{moment}")
        suffix = 1
        while target.exists():
            suffix += 1
            target = self.out.with_name(f"{self.out.name}.aborted-{moment}-{suffix}")
        self.path.rename(target)
        fsync_dir(self.out.parent)
        return target
