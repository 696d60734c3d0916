"""The ceremony transcript: a hash-chained, append-only JSON-lines record.

Every step of a ceremony appends one line: an RFC 8785 canonical JSON object
with its sequence number, the step name, the wall-clock time, the step's data
and ``prev``, the SHA-256 of the previous line's bytes (64 zeros for the first
line). Each line is flushed and fsynced before the ceremony moves on, so a
process killed mid-run still leaves a record of the last step it finished.

A completed transcript ends with a ``seal`` line whose signature, made with the
root CA key on the HSM, covers the seal line itself (minus the signature) and
through its ``prev`` the hash of every line before it. An attacker
who edits any line must either break the chain or forge the seal, so
``ceremony verify`` needs no outside anchor; the final hash printed at the end
(hex and words) lets witnesses compare what they read aloud as well.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from toolkit.encoding import b64encode, canonical_json, format_rfc3339

__all__ = [
    "GENESIS",
    "SEAL_CONTEXT",
    "Line",
    "TranscriptFormatError",
    "TranscriptWriter",
    "line_hash",
    "parse_transcript",
    "seal_message",
]

#: ``prev`` of the first line.
GENESIS: Final = "0" * 64

#: Domain separation for the seal signature, so that it can never be mistaken
#: for a signature over anything else the root key signs (certificates, CRLs).
SEAL_CONTEXT: Final = b"airseal ceremony transcript seal v1\n"

#: The fields every line carries, and nothing else.
_FIELDS: Final = frozenset({"seq", "prev", "step", "time", "data"})


def line_hash(raw: bytes) -> str:
    """Hex SHA-256 of one transcript line (without its newline)."""
    return hashlib.sha256(raw).hexdigest()


def seal_message(record: Mapping[str, Any]) -> bytes:
    """The bytes the root CA key signs to seal a transcript.

    Args:
        record: The seal line as a JSON object, without ``data.signature``.
    """
    return SEAL_CONTEXT + canonical_json(record)


@dataclass(frozen=True)
class Line:
    """One parsed transcript line.

    Attributes:
        number: 1-based line number in the file, for messages.
        seq: Sequence number recorded in the line (0-based).
        prev: Hash of the previous line as recorded.
        step: Step name.
        time: RFC 3339 time the step finished.
        data: The step's data.
        raw: The exact bytes of the line.
    """

    number: int
    seq: int
    prev: str
    step: str
    time: str
    data: Mapping[str, Any]
    raw: bytes

    def unsigned(self) -> dict[str, Any]:
        """The line as a JSON object without ``data.signature`` (what a seal signs)."""
        data = {k: v for k, v in self.data.items() if k != "signature"}
        return {
            "seq": self.seq,
            "prev": self.prev,
            "step": self.step,
            "time": self.time,
            "data": data,
        }

    @property
    def hash(self) -> str:
        """Hex SHA-256 of this line's bytes."""
        return line_hash(self.raw)


class TranscriptWriter:
    """Appends hash-chained lines to a transcript file, durably.

    The file is created with ``O_EXCL``: a transcript is never appended to by
    two ceremonies.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._seq = 0
        self._prev = GENESIS
        self._last_step: str | None = None
        self.closed = False

    @property
    def last_hash(self) -> str:
        """Hash of the last line written (``GENESIS`` before the first)."""
        return self._prev

    @property
    def count(self) -> int:
        """Number of lines written so far."""
        return self._seq

    @property
    def last_step(self) -> str | None:
        """Name of the last step recorded, if any."""
        return self._last_step

    def append(self, step: str, data: Mapping[str, Any], *, now: datetime | None = None) -> str:
        """Write one line and fsync it; return its hash."""
        return self._write(self._record(step, data, now))

    def append_sealed(
        self, step: str, data: Mapping[str, Any], sign: Callable[[bytes], bytes]
    ) -> str:
        """Write a line carrying a signature over itself and, by ``prev``, all before it.

        Args:
            step: The step name (``seal``).
            data: The line's data, without the signature.
            sign: Signs :func:`seal_message` of the line; the result is stored
                base64-encoded in ``data.signature``.
        """
        record = self._record(step, data, None)
        signature = sign(seal_message(record))
        record["data"] = {**record["data"], "signature": b64encode(signature)}
        return self._write(record)

    def _record(self, step: str, data: Mapping[str, Any], now: datetime | None) -> dict[str, Any]:
        if self.closed:
            raise ValueError("transcript is closed")
        moment = now if now is not None else datetime.now(UTC)
        return {
            "seq": self._seq,
            "prev": self._prev,
            "step": step,
            "time": format_rfc3339(moment.replace(microsecond=0)),
            "data": dict(data),
        }

    def _write(self, record: Mapping[str, Any]) -> str:
        raw = canonical_json(record)
        os.write(self._fd, raw + b"\n")
        os.fsync(self._fd)
        self._prev = line_hash(raw)
        self._seq += 1
        self._last_step = str(record["step"])
        return self._prev

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self.closed:
            os.close(self._fd)
            self.closed = True


class TranscriptFormatError(ValueError):
    """A transcript line is malformed or out of chain (message names the line)."""


def parse_transcript(data: bytes) -> list[Line]:
    """Parse a transcript and check its hash chain and sequence numbers.

    Args:
        data: The whole file.

    Returns:
        The lines, in order.

    Raises:
        TranscriptFormatError: The message names the first offending line. A
            line whose hash does not match the next line's ``prev`` is named as
            the changed one.
    """
    if not data:
        raise TranscriptFormatError("transcript.jsonl is empty")
    if not data.endswith(b"\n"):
        raise TranscriptFormatError("transcript.jsonl does not end with a newline (truncated?)")
    lines: list[Line] = []
    prev = GENESIS
    for index, raw in enumerate(data[:-1].split(b"\n")):
        number = index + 1
        line = _parse_line(raw, number)
        if line.seq != index:
            raise TranscriptFormatError(
                f"transcript.jsonl line {number}: seq is {line.seq}, expected {index}"
            )
        if line.prev != prev:
            # The recorded prev is part of this line, so either this line or
            # the one before it was altered; the one before is the one whose
            # bytes no longer hash to what the chain says.
            culprit = number - 1 if number > 1 else number
            raise TranscriptFormatError(
                f"transcript.jsonl line {culprit}: hash chain broken "
                f"(line {number} records prev {line.prev[:16]}…, "
                f"line {culprit} hashes to {prev[:16]}…)"
            )
        lines.append(line)
        prev = line.hash
    return lines


def _parse_line(raw: bytes, number: int) -> Line:
    where = f"transcript.jsonl line {number}"
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise TranscriptFormatError(f"{where}: not valid JSON") from None
    if not isinstance(value, dict) or set(value) != _FIELDS:
        raise TranscriptFormatError(f"{where}: expected exactly the fields {sorted(_FIELDS)}")
    seq, prev, step, time, body = (value[k] for k in ("seq", "prev", "step", "time", "data"))
    if not (
        isinstance(seq, int)
        and isinstance(prev, str)
        and isinstance(step, str)
        and isinstance(time, str)
        and isinstance(body, dict)
    ):
        raise TranscriptFormatError(f"{where}: a field has the wrong type")
    try:
        canonical = canonical_json(value)
    except (TypeError, ValueError):
        raise TranscriptFormatError(f"{where}: not canonical JSON") from None
    if canonical != raw:
        # Only the writer's canonical form is accepted, so that the hash of a
        # line is a hash of its meaning, not of one of many spellings.
        raise TranscriptFormatError(f"{where}: not in RFC 8785 canonical form")
    return Line(number, seq, prev, step, time, body, raw)
