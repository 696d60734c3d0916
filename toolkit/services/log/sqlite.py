"""The embedded storage backend: SQLite for sequencing, plain files for tiles.

:class:`SQLiteCoordinator` keeps the entries and the checkpoint in one SQLite
database in WAL mode with ``synchronous=FULL``: a commit is on disk when it
returns. A commit costs about as much as an fsync (≈ 3.7k commits/s) while a
row costs little (≈ 44k rows/s in 256-row transactions), so
:meth:`~SQLiteCoordinator.sequence` writes a whole batch in one transaction.
``BEGIN IMMEDIATE`` takes the database write lock up front, so several
coordinators on the same file (threads or processes) sequence one after the
other and never hand out an index twice.

:class:`FileTileStore` writes each tile as a file under a root directory,
durably: temp file in the same directory, fsync, hard link into place (which,
unlike a rename, never replaces an existing tile), fsync of the directory --
and of every parent directory it had to create.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from toolkit._fs import create_synced, fsync_dir, temp_name
from toolkit.services.log.storage import (
    LogIdentity,
    LogState,
    NewEntry,
    SequencedEntry,
    StorageError,
    check_path,
    partial_prefix,
    plan_batch,
)

__all__ = ["FileTileStore", "SQLiteCoordinator"]

#: ``PRAGMA user_version`` of the schema below; a newer file is refused.
SCHEMA_VERSION = 1

_SCHEMA = (
    # Single-row tables: the CHECK keeps a second row out.
    "CREATE TABLE IF NOT EXISTS meta ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), origin TEXT NOT NULL, key_id TEXT NOT NULL)",
    # idx is the rowid: dense from 0, so MAX(idx) + 1 is the size.
    "CREATE TABLE IF NOT EXISTS entries ("
    " idx INTEGER PRIMARY KEY, identity BLOB NOT NULL UNIQUE, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS checkpoint ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL,"
    " root BLOB NOT NULL, note BLOB NOT NULL)",
)

#: SQLite page cache per connection, in KiB (the default is 2 MiB).
_CACHE_KIB = 64 * 1024

# SQLite's default limit on host parameters is 32766 since 3.32, 999 before.
_LOOKUP_CHUNK = 500


class SQLiteCoordinator:
    """A :class:`~toolkit.services.log.storage.Coordinator` on one SQLite file.

    One connection, usable from any thread (the engine runs its rounds in a
    worker thread) and serialised by a lock. Several instances, in this or
    other processes, may share the file: writers queue on SQLite's lock for
    up to ``busy_timeout`` seconds.

    Args:
        path: The database file (created, with its parent directories, if missing).
        busy_timeout: Seconds to wait for another writer before failing.

    Raises:
        StorageError: The file cannot be opened, is not an airseal log
            database, or is from a newer schema.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions, ours are explicit.
            conn = sqlite3.connect(
                self._path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._error("cannot open", exc) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"SQLite {self._path}: cannot enable WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            # Identities are random, so each batch touches index pages all
            # over the file: a larger page cache (allocated as used) keeps
            # ~20% more throughput once the log has a few 100k entries.
            conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StorageError(
                        f"SQLite {self._path}: schema version {version} is newer than this "
                        f"airseal supports ({SCHEMA_VERSION})"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._error("cannot initialise", exc) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _error(self, action: str, exc: BaseException) -> StorageError:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return StorageError(f"SQLite {self._path}: {action}: {detail}")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"SQLite {self._path}: coordinator is closed")
        return self._conn

    @contextmanager
    def _read(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, for statements that only read."""
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception.

        ``BEGIN IMMEDIATE`` takes the write lock before the first read, so
        what the transaction reads (the next index, the checkpoint size) is
        still true when it writes.
        """
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # A failed COMMIT may already have rolled back.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(action, exc) from exc
                raise

    def claim(self, identity: LogIdentity) -> None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.claim`."""
        with self._write("claim") as conn:
            row = conn.execute("SELECT origin, key_id FROM meta WHERE id = 1").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (id, origin, key_id) VALUES (1, ?, ?)",
                    (identity.origin, identity.key_id),
                )
                return
            bound = LogIdentity(row[0], row[1])
            if bound != identity:
                raise StorageError(f"store belongs to {bound.origin} ({bound.key_id[:16]}…)")

    def sequence(self, entries: Sequence[NewEntry]) -> list[SequencedEntry]:
        """See :meth:`~toolkit.services.log.storage.Coordinator.sequence`.

        The whole batch is one transaction (one fsync).
        """
        if not entries:
            return []
        with self._write("sequence") as conn:
            known: dict[bytes, SequencedEntry] = {}
            wanted = list(dict.fromkeys(entry.identity for entry in entries))
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT identity, idx, body FROM entries WHERE identity IN ({marks})"  # noqa: S608 -- only "?" marks are interpolated
                for identity, index, body in conn.execute(query, chunk):
                    known[bytes(identity)] = SequencedEntry(index, bytes(body), True)
            next_index: int = conn.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM entries"
            ).fetchone()[0]
            out, rows = plan_batch(entries, known, next_index)
            conn.executemany("INSERT INTO entries (idx, identity, body) VALUES (?, ?, ?)", rows)
            return out

    def size(self) -> int:
        """See :meth:`~toolkit.services.log.storage.Coordinator.size`."""
        with self._read("size") as conn:
            size: int = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries").fetchone()[0]
            return size

    def bodies(self, start: int, end: int) -> list[bytes]:
        """See :meth:`~toolkit.services.log.storage.Coordinator.bodies`."""
        if not 0 <= start <= end:
            raise StorageError(f"no entries [{start}, {end})")
        with self._read("read entries") as conn:
            rows = conn.execute(
                "SELECT body FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
            ).fetchall()
        if len(rows) != end - start:
            raise StorageError(f"no entries [{start}, {end})")
        return [bytes(row[0]) for row in rows]

    def lookup(self, identity: bytes) -> int | None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.lookup`."""
        with self._read("lookup") as conn:
            row = conn.execute("SELECT idx FROM entries WHERE identity = ?", (identity,)).fetchone()
        return None if row is None else int(row[0])

    def state(self) -> LogState | None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.state`."""
        with self._read("read checkpoint") as conn:
            row = conn.execute("SELECT size, root, note FROM checkpoint WHERE id = 1").fetchone()
        return None if row is None else LogState(int(row[0]), bytes(row[1]), bytes(row[2]))

    def compare_and_swap(self, expected_size: int | None, new: LogState) -> bool:
        """See :meth:`~toolkit.services.log.storage.Coordinator.compare_and_swap`."""
        with self._write("store checkpoint") as conn:
            row = conn.execute("SELECT size FROM checkpoint WHERE id = 1").fetchone()
            current = None if row is None else int(row[0])
            if current != expected_size:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO checkpoint (id, size, root, note) VALUES (1, ?, ?, ?)",
                (new.size, new.root_hash, new.checkpoint),
            )
            return True

    def close(self) -> None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.close` (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents, each one durably (parent fsynced)."""
    missing: list[Path] = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # another writer created it (and synced its parent)
        fsync_dir(path.parent)


class FileTileStore:
    """A :class:`~toolkit.services.log.storage.TileStore` of files under ``root``.

    Tile ``tile/0/x001/234`` is the file ``root/tile/0/x001/234``; only paths
    :func:`~toolkit.services.log.storage.check_path` accepts are read or
    written, so nothing outside ``root`` (nor a temp file) is ever served.

    Args:
        root: The directory (created durably if missing).

    Raises:
        StorageError: ``root`` cannot be created.
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        try:
            _make_dirs(self._root)
        except OSError as exc:
            message = f"cannot create tile directory {self._root}: {exc.strerror}"
            raise StorageError(message) from exc

    @property
    def root(self) -> Path:
        """The directory holding the ``tile/`` tree."""
        return self._root

    def put(self, path: str, data: bytes) -> None:
        """See :meth:`~toolkit.services.log.storage.TileStore.put`."""
        target = self._root / check_path(path)
        data = bytes(data)
        try:
            if self._same(path, target, data):
                return
            _make_dirs(target.parent)
            # The temp name starts with "." and ends in ".tmp": check_path
            # never accepts it, so a half-written file is never served.
            temp = temp_name(target)
            try:
                create_synced(temp, data, 0o644)
                self._place(path, temp, target, data)
            finally:
                temp.unlink(missing_ok=True)
            fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def _same(self, path: str, target: Path, data: bytes) -> bool:
        """True when ``target`` already holds ``data``; raises if it holds something else."""
        try:
            existing = target.read_bytes()
        except FileNotFoundError:
            return False
        if existing != data:
            raise StorageError(f"{path} exists with different content")
        return True

    def _place(self, path: str, temp: Path, target: Path, data: bytes) -> None:
        """Publish ``temp`` as ``target`` atomically, never replacing an existing tile."""
        try:
            target.hardlink_to(temp)
        except FileExistsError:
            # A concurrent writer won the race: fine if it wrote the same bytes.
            self._same(path, target, data)
        except OSError as exc:
            # Filesystems without hard links: an atomic rename instead (it
            # could replace a tile written in the last microseconds, but
            # tile contents are a function of the log, so it would be equal).
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
            temp.replace(target)

    def get(self, path: str) -> bytes | None:
        """See :meth:`~toolkit.services.log.storage.TileStore.get`."""
        try:
            check_path(path)
        except StorageError:
            return None
        try:
            return (self._root / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def delete_partials(self, path: str) -> None:
        """See :meth:`~toolkit.services.log.storage.TileStore.delete_partials`.

        The partials of ``tile/0/001`` are the files of the directory
        ``tile/0/001.p``: its files go (temp files a crashed write left
        there included), then the directory, then the parent is fsynced so
        that the removal is durable. A crash half-way leaves a few partials,
        which are harmless: readers fall back to the full tile.
        """
        directory = self._root / partial_prefix(path).rstrip("/")
        try:
            names = [entry.name for entry in directory.iterdir()]
        except (FileNotFoundError, NotADirectoryError):
            return  # already deleted, or the tile never had partials
        except OSError as exc:
            raise StorageError(f"cannot list {path}.p: {exc.strerror or exc}") from exc
        try:
            for name in names:
                (directory / name).unlink(missing_ok=True)
            try:
                directory.rmdir()
            except FileNotFoundError:
                return  # a concurrent delete_partials got there first
            fsync_dir(directory.parent)
        except OSError as exc:
            raise StorageError(f"cannot delete {path}.p: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """See :meth:`~toolkit.services.log.storage.TileStore.close` (nothing to release)."""
