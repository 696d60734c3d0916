"""Reading the files a command is given, with one-line errors that name them."""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import EnvironmentSetupError, UsageError

__all__ = ["read_input"]


def read_input(path: Path, what: str, *, limit: int | None = None) -> bytes:
    """The bytes of an input file; at most ``limit + 1`` of them when ``limit`` is given.

    One byte over the limit is enough for the caller (or the decoder it hands
    the bytes to) to refuse the file, without reading a huge one whole.

    Args:
        path: The file.
        what: What the file is, for messages (``"bundle"``, ``"--root"``).
        limit: Largest size the caller accepts, in bytes.

    Raises:
        UsageError: The file does not exist or is a directory (exit 2).
        EnvironmentSetupError: It cannot be read (exit 3).
    """
    try:
        with path.open("rb") as handle:
            return handle.read() if limit is None else handle.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {str(path)!r} is a directory, not a file") from None
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
