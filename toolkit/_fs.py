"""Durable file writes: what must survive a crash once the call returns.

A write is durable only when the file's bytes *and* the directory entry that
names it are on disk: ``fsync`` of the file covers the first, ``fsync`` of the
directory the second (a created, renamed, linked or removed name). The log
server, the log monitor and ceremonies all rely on these steps; keeping them
here means one place decides how they are done.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["create_synced", "fsync_dir", "temp_name", "write_durably"]


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a created, renamed, linked or removed name) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_synced(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never an existing file), write ``data`` and fsync it.

    The file is created with ``mode`` from the start, so it is never readable
    by more people than ``mode`` allows, even for a moment. Its name is not
    yet durable: the caller fsyncs the directory once the name is final.

    Raises:
        OSError: ``path`` exists or cannot be written; a partly written file
            is left for the caller to remove.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """A fresh temp file name next to ``path``: hidden, random, ending in ``.tmp``.

    Same directory, so that a rename or link into place never crosses a
    filesystem; random, so that concurrent writers never share one.
    """
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def write_durably(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Temp file in the same directory (created with ``mode``), fsync, rename
    over ``path``, fsync of the directory: after a crash ``path`` holds either
    the old bytes or all of the new ones.

    Raises:
        OSError: The file cannot be written; no temp file is left behind.
    """
    temp = temp_name(path)
    try:
        create_synced(temp, data, mode)
        temp.replace(path)
    finally:
        # Only there when something failed: after the rename the name is gone.
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)
