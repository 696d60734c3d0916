"""Storage protocols of the transparency log, and an in-memory implementation.

The log keeps two kinds of state, behind two protocols so that the same
engine runs on the embedded default (SQLite + files) and on PostgreSQL shared
by several stateless front-ends:

* a :class:`Coordinator` -- the sequenced entries (index → body, with a
  unique identity hash for duplicate detection) and the current signed
  checkpoint, advanced only by compare-and-swap. Entries sequenced but not
  yet covered by the checkpoint are the crash-recovery staging record: after
  a restart they are integrated before anything else.
* a :class:`TileStore` -- immutable C2SP objects (hash tiles, entry bundles)
  addressed by their path, e.g. ``tile/0/x001/234`` or ``tile/entries/000.p/7``.

Durability contract: when :meth:`Coordinator.sequence` or
:meth:`Coordinator.compare_and_swap` returns, the change survives a crash
(fsync / commit); when :meth:`TileStore.put` returns, the object does.

Partial tiles are the one exception to immutability: once the full tile of
an index is durable, :meth:`TileStore.delete_partials` removes its partial
versions (C2SP tlog-tiles allows it; clients then read the full tile and
use its prefix), so that a slow log does not keep up to 255 superseded
copies of every tile and entry bundle.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Coordinator",
    "LogIdentity",
    "LogState",
    "MemoryCoordinator",
    "MemoryTileStore",
    "NewEntry",
    "SequencedEntry",
    "StorageError",
    "TileStore",
    "check_full_path",
    "check_path",
    "partial_prefix",
    "plan_batch",
]


class StorageError(Exception):
    """The backend failed or found its data inconsistent (the caller maps it to 503/exit 3)."""


@dataclass(frozen=True)
class LogIdentity:
    """Which log a store belongs to: a store never serves another origin or key.

    Attributes:
        origin: The checkpoint origin (host of the log's base URL).
        key_id: Hex SHA-256 of the log key's DER SPKI.
    """

    origin: str
    key_id: str


@dataclass(frozen=True)
class LogState:
    """The latest durable checkpoint.

    Attributes:
        size: Tree size.
        root_hash: 32-byte root hash.
        checkpoint: The signed note, exactly as served at ``/checkpoint``.
    """

    size: int
    root_hash: bytes
    checkpoint: bytes


@dataclass(frozen=True)
class NewEntry:
    """An entry to sequence.

    Attributes:
        identity: 32-byte key for duplicate detection (the leaf hash).
        body: The canonical entry body (the Merkle leaf data).
    """

    identity: bytes
    body: bytes


@dataclass(frozen=True)
class SequencedEntry:
    """Where an entry landed.

    Attributes:
        index: Its log index.
        body: Its body (for a duplicate: the stored body).
        duplicate: True when an entry with the same identity already existed.
    """

    index: int
    body: bytes
    duplicate: bool


@runtime_checkable
class Coordinator(Protocol):
    """Sequencing and checkpoint state shared by every front-end of one log."""

    def claim(self, identity: LogIdentity) -> None:
        """Bind an empty store to ``identity``, or check it is already bound to it.

        Raises:
            StorageError: The store belongs to another origin or key.
        """
        ...

    def sequence(self, entries: Sequence[NewEntry]) -> list[SequencedEntry]:
        """Give each new entry the next index, atomically and durably.

        Entries whose identity is already stored (or repeated within the batch)
        are not added again: their result carries the existing index and
        ``duplicate=True``. Results are in the order of ``entries``.
        """
        ...

    def size(self) -> int:
        """Number of sequenced entries (may exceed the checkpoint's size)."""
        ...

    def bodies(self, start: int, end: int) -> list[bytes]:
        """Bodies of entries ``[start, end)``, in order."""
        ...

    def lookup(self, identity: bytes) -> int | None:
        """Index of the entry with ``identity``, if sequenced."""
        ...

    def state(self) -> LogState | None:
        """The current checkpoint, or None before the first."""
        ...

    def compare_and_swap(self, expected_size: int | None, new: LogState) -> bool:
        """Replace the checkpoint if its size is still ``expected_size``.

        ``expected_size`` None means "no checkpoint yet". Returns False, and
        changes nothing, when another writer got there first.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class TileStore(Protocol):
    """Immutable storage of C2SP tiles and entry bundles, by path."""

    def put(self, path: str, data: bytes) -> None:
        """Store ``data`` at ``path`` durably.

        Putting identical bytes again is a no-op; different bytes at an
        existing path raise :class:`StorageError` (tiles are immutable), and
        so does a path :func:`check_path` refuses.
        """
        ...

    def get(self, path: str) -> bytes | None:
        """The bytes at ``path``, or None (also for a path that is not a tile path)."""
        ...

    def delete_partials(self, path: str) -> None:
        """Remove every partial version ``<path>.p/<W>`` of the full tile or bundle at ``path``.

        Only called once the full object at ``path`` is durable, so that a
        reader who misses a partial can always fall back to it. Idempotent:
        deleting partials that are already gone (or never existed) is a
        no-op. Other indices and levels are untouched.

        Raises:
            StorageError: ``path`` is not a canonical *full* tile or bundle
                path (:func:`check_full_path`), or the backend failed.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


# C2SP tlog-tiles paths, exactly as the encoder writes them, and nothing else:
# every store checks them so that a request path can never name another file
# ("..", absolute paths, temp files) or a non-canonical alias of a tile. The
# index is 3-digit groups, all but the last prefixed with "x", without a
# leading "x000" group, and below 2**64; the level is 0-63; a partial width
# is 1-255 without leading zeros. ASCII digits only ([0-9], not \d, which
# matches any Unicode digit). toolkit.services.log.tiles.parse_path accepts
# the same set (it also decodes).
_INDEX = r"(?:x(?!000)[0-9]{3}/(?:x[0-9]{3}/)*)?[0-9]{3}"
_LEVEL = r"(?:[0-9]|[1-5][0-9]|6[0-3]|entries)"
_WIDTH = r"(?:[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5])"
_TILE_PATH = re.compile(rf"tile/{_LEVEL}/(?P<index>{_INDEX})(?:\.p/{_WIDTH})?")
# A 64-bit index takes 7 groups; anything much longer is not a tile.
_MAX_PATH = 64
# Tree sizes are uint64, so are tile indices.
_MAX_INDEX = (1 << 64) - 1


def check_path(path: str) -> str:
    """Return ``path`` if it is a C2SP tile or entry-bundle path.

    Accepted: ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]`` in
    their canonical encoding (e.g. ``tile/0/x001/x234/067``,
    ``tile/entries/000.p/7``). Stores call this before touching a path.

    Raises:
        StorageError: Anything else (``..``, absolute paths, other files,
            non-canonical encodings).
    """
    match = _TILE_PATH.fullmatch(path) if len(path) <= _MAX_PATH else None
    if match is None or int(match["index"].replace("x", "").replace("/", "")) > _MAX_INDEX:
        raise StorageError(f"not a tile path: {path[:_MAX_PATH]!r}")
    return path


def check_full_path(path: str) -> str:
    """Return ``path`` if it is a canonical C2SP path of a *full* tile or entry bundle.

    What :meth:`TileStore.delete_partials` accepts: a partial path there
    would name ``<N>.p/<W>.p/…``, which no store holds, and refusing it keeps
    a typo from silently deleting nothing.

    Raises:
        StorageError: ``path`` is not a tile path, or is a partial one.
    """
    check_path(path)
    if ".p/" in path:
        raise StorageError(f"not a full tile path: {path!r}")
    return path


def partial_prefix(path: str) -> str:
    """The prefix ``<path>.p/`` shared by every partial version of the full tile ``path``.

    Raises:
        StorageError: As :func:`check_full_path`.
    """
    return check_full_path(path) + ".p/"


def plan_batch(
    entries: Sequence[NewEntry], known: Mapping[bytes, SequencedEntry], next_index: int
) -> tuple[list[SequencedEntry], list[tuple[int, bytes, bytes]]]:
    """Sequence a batch on paper: the part of :meth:`Coordinator.sequence` every backend shares.

    Args:
        entries: The batch, in order.
        known: The stored entries whose identity is in the batch, by identity
            (each with ``duplicate=True``), as read inside the caller's
            write transaction.
        next_index: The first free index.

    Returns:
        The results, in the order of ``entries``, and the rows
        ``(index, identity, body)`` to insert, with consecutive indices from
        ``next_index`` (so the next free index is ``next_index + len(rows)``).
    """
    # A copy: batch-internal repeats are added to it, the caller's stays as read.
    known = dict(known)
    out: list[SequencedEntry] = []
    rows: list[tuple[int, bytes, bytes]] = []
    for entry in entries:
        existing = known.get(entry.identity)
        if existing is not None:
            out.append(existing)
            continue
        index = next_index + len(rows)
        rows.append((index, entry.identity, entry.body))
        out.append(SequencedEntry(index, entry.body, False))
        # A repeat later in the same batch is a duplicate of this one.
        known[entry.identity] = SequencedEntry(index, entry.body, True)
    return out, rows


class MemoryCoordinator:
    """A :class:`Coordinator` in memory, for unit tests (not durable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._identity: LogIdentity | None = None
        self._bodies: list[bytes] = []
        self._index: dict[bytes, int] = {}
        self._state: LogState | None = None

    def claim(self, identity: LogIdentity) -> None:
        """See :meth:`Coordinator.claim`."""
        with self._lock:
            if self._identity is None:
                self._identity = identity
            elif self._identity != identity:
                raise StorageError(
                    f"store belongs to {self._identity.origin} ({self._identity.key_id[:16]}…)"
                )

    def sequence(self, entries: Sequence[NewEntry]) -> list[SequencedEntry]:
        """See :meth:`Coordinator.sequence`."""
        with self._lock:
            # The same planning as the databases, so that tests on this
            # coordinator exercise the duplicate handling production runs.
            known = {
                entry.identity: SequencedEntry(index, self._bodies[index], True)
                for entry in entries
                if (index := self._index.get(entry.identity)) is not None
            }
            out, rows = plan_batch(entries, known, len(self._bodies))
            for index, identity, body in rows:
                self._index[identity] = index
                self._bodies.append(body)
            return out

    def size(self) -> int:
        """See :meth:`Coordinator.size`."""
        with self._lock:
            return len(self._bodies)

    def bodies(self, start: int, end: int) -> list[bytes]:
        """See :meth:`Coordinator.bodies`."""
        with self._lock:
            if not 0 <= start <= end <= len(self._bodies):
                raise StorageError(f"no entries [{start}, {end})")
            return self._bodies[start:end]

    def lookup(self, identity: bytes) -> int | None:
        """See :meth:`Coordinator.lookup`."""
        with self._lock:
            return self._index.get(identity)

    def state(self) -> LogState | None:
        """See :meth:`Coordinator.state`."""
        with self._lock:
            return self._state

    def compare_and_swap(self, expected_size: int | None, new: LogState) -> bool:
        """See :meth:`Coordinator.compare_and_swap`."""
        with self._lock:
            current = None if self._state is None else self._state.size
            if current != expected_size:
                return False
            self._state = new
            return True

    def close(self) -> None:
        """See :meth:`Coordinator.close`."""
        pass


class MemoryTileStore:
    """A :class:`TileStore` in memory, for unit tests (not durable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}

    def put(self, path: str, data: bytes) -> None:
        """See :meth:`TileStore.put`."""
        check_path(path)
        with self._lock:
            existing = self._objects.get(path)
            if existing is not None and existing != data:
                raise StorageError(f"{path} exists with different content")
            self._objects[path] = bytes(data)

    def get(self, path: str) -> bytes | None:
        """See :meth:`TileStore.get` (None for a path that is not a tile path)."""
        with self._lock:
            return self._objects.get(path)

    def delete_partials(self, path: str) -> None:
        """See :meth:`TileStore.delete_partials`."""
        prefix = partial_prefix(path)
        with self._lock:
            for stored in [p for p in self._objects if p.startswith(prefix)]:
                del self._objects[stored]

    def close(self) -> None:
        """See :meth:`TileStore.close`."""
        pass
