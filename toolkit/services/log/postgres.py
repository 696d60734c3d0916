"""The shared storage backend: one PostgreSQL database behind several front-ends.

Every front-end process opens its own :class:`PostgresCoordinator` and
:class:`PostgresTileStore` on the same database. Sequencing is serialised by
a row lock on the single ``log_meta`` row (``SELECT … FOR UPDATE``), which
also holds the next index: whoever holds the lock reads the index, inserts
its batch and moves the index on, in one transaction. The checkpoint advances
by a conditional ``UPDATE`` (compare-and-swap), and tiles are immutable rows.

One database holds one log. Tables are created on first use.

Errors become :class:`~toolkit.services.log.storage.StorageError` with a
one-line message naming the server (host, port, database) -- never the
password of the connection string.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

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
from toolkit.services.log.tiles import TILE_WIDTH

__all__ = ["PostgresCoordinator", "PostgresTileStore"]

#: ``log_meta.schema_version`` of the schema below; a newer database is refused.
SCHEMA_VERSION = 1

_SCHEMA = (
    # One row (id = 1). Its row lock serialises sequencing; next_index is
    # the size, moved on in the same transaction as the inserts.
    "CREATE TABLE IF NOT EXISTS log_meta ("
    " id smallint PRIMARY KEY CHECK (id = 1),"
    " schema_version integer NOT NULL,"
    " origin text, key_id text,"
    " next_index bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS log_entries ("
    " idx bigint PRIMARY KEY, identity bytea NOT NULL UNIQUE, body bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS log_checkpoint ("
    " id smallint PRIMARY KEY CHECK (id = 1), size bigint NOT NULL,"
    " root bytea NOT NULL, note bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS log_tiles (path text PRIMARY KEY, data bytea NOT NULL)",
)

# Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog
# (unique violation on pg_type): the first use takes this advisory lock.
_SCHEMA_LOCK = int.from_bytes(b"airseal\x01", "big", signed=True)

_CONNECT_TIMEOUT_S = 10


def _describe(dsn: str) -> tuple[str, str | None]:
    """``host:port/dbname`` for messages, and the password to scrub from them.

    Raises:
        StorageError: The DSN does not parse (the message does not quote it:
            it may contain a password).
    """
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        raise StorageError(
            "invalid PostgreSQL connection string (expected 'host=… dbname=…' or 'postgresql://…')"
        ) from None
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    dbname = str(params.get("dbname") or params.get("user") or "")
    password = params.get("password")
    return f"PostgreSQL {host}:{port}/{dbname}", str(password) if password else None


class _Database:
    """One connection per instance, guarded by a lock, reconnected when broken.

    The connection runs in autocommit mode: single statements commit by
    themselves, and multi-statement work goes through :meth:`transaction`.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._where, self._password = _describe(dsn)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._closed = False
        with self._lock:
            conn = self._connection("connect")
            try:
                self._create_schema(conn)
            except psycopg.Error as exc:
                conn.close()
                raise self._error("create schema", exc) from None
            except BaseException:
                conn.close()
                raise

    def _error(self, action: str, exc: psycopg.Error) -> StorageError:
        """A one-line StorageError for ``exc``, scrubbed of the password."""
        text = str(exc).strip().splitlines()
        detail = text[0].strip() if text else type(exc).__name__
        if self._password:
            detail = detail.replace(self._password, "***")
        return StorageError(f"{self._where}: {action}: {detail}")

    def _connection(self, action: str) -> psycopg.Connection[tuple[Any, ...]]:
        """The open connection (call with the lock held); reconnects after a failure."""
        if self._closed:
            raise StorageError(f"{self._where}: store is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            options: dict[str, Any] = {"autocommit": True}
            params = conninfo_to_dict(self._dsn)
            if "connect_timeout" not in params:
                options["connect_timeout"] = _CONNECT_TIMEOUT_S
            if "application_name" not in params:
                options["application_name"] = "airseal-log"
            try:
                self._conn = psycopg.connect(self._dsn, **options)
            except psycopg.Error as exc:
                raise self._error(action, exc) from None
        return self._conn

    def _create_schema(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO log_meta (id, schema_version) VALUES (1, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (SCHEMA_VERSION,),
            )
            row = conn.execute("SELECT schema_version FROM log_meta WHERE id = 1").fetchone()
            assert row is not None
            if int(row[0]) > SCHEMA_VERSION:
                raise StorageError(
                    f"{self._where}: log schema version {row[0]} is newer than this "
                    f"airseal supports ({SCHEMA_VERSION})"
                )

    @contextmanager
    def connection(self, action: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """The connection under the lock; psycopg errors become StorageError."""
        with self._lock:
            conn = self._connection(action)
            try:
                yield conn
            except psycopg.Error as exc:
                raise self._error(action, exc) from None

    @contextmanager
    def transaction(self, action: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A transaction: committed on success, rolled back on any exception."""
        with self.connection(action) as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresCoordinator:
    """A :class:`~toolkit.services.log.storage.Coordinator` on a PostgreSQL database.

    Safe to share between threads (one connection, serialised by a lock) and
    between processes (the ``log_meta`` row lock serialises sequencing).

    Args:
        dsn: A libpq connection string (``host=… port=… dbname=… user=…``) or
            URI. ``connect_timeout`` defaults to 10 s.

    Raises:
        StorageError: Cannot connect or create the tables.
    """

    def __init__(self, dsn: str) -> None:
        self._db = _Database(dsn)

    def claim(self, identity: LogIdentity) -> None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.claim`."""
        with self._db.transaction("claim") as conn:
            row = conn.execute(
                "SELECT origin, key_id FROM log_meta WHERE id = 1 FOR UPDATE"
            ).fetchone()
            assert row is not None  # created with the schema
            if row[0] is None:
                conn.execute(
                    "UPDATE log_meta SET origin = %s, key_id = %s WHERE id = 1",
                    (identity.origin, identity.key_id),
                )
                return
            bound = LogIdentity(str(row[0]), str(row[1]))
            if bound != identity:
                raise StorageError(f"store belongs to {bound.origin} ({bound.key_id[:16]}…)")

    def sequence(self, entries: Sequence[NewEntry]) -> list[SequencedEntry]:
        """See :meth:`~toolkit.services.log.storage.Coordinator.sequence`.

        One transaction: lock ``log_meta``, look the identities up, COPY the
        new rows in, move ``next_index`` on.
        """
        if not entries:
            return []
        with self._db.transaction("sequence") as conn:
            row = conn.execute("SELECT next_index FROM log_meta WHERE id = 1 FOR UPDATE").fetchone()
            assert row is not None
            next_index = int(row[0])
            wanted = list(dict.fromkeys(entry.identity for entry in entries))
            # Under the lock (read committed: a fresh snapshot per statement),
            # this sees every entry committed by earlier lock holders.
            known: dict[bytes, SequencedEntry] = {
                bytes(identity): SequencedEntry(int(index), bytes(body), True)
                for identity, index, body in conn.execute(
                    "SELECT identity, idx, body FROM log_entries WHERE identity = ANY(%s)",
                    (wanted,),
                )
            }
            out, rows = plan_batch(entries, known, next_index)
            if rows:
                with (
                    conn.cursor() as cursor,
                    cursor.copy(
                        "COPY log_entries (idx, identity, body) FROM STDIN (FORMAT BINARY)"
                    ) as copy,
                ):
                    copy.set_types(["int8", "bytea", "bytea"])
                    for item in rows:
                        copy.write_row(item)
                conn.execute(
                    "UPDATE log_meta SET next_index = %s WHERE id = 1", (next_index + len(rows),)
                )
            return out

    def size(self) -> int:
        """See :meth:`~toolkit.services.log.storage.Coordinator.size`."""
        with self._db.connection("size") as conn:
            row = conn.execute("SELECT next_index FROM log_meta WHERE id = 1").fetchone()
        assert row is not None
        return int(row[0])

    def bodies(self, start: int, end: int) -> list[bytes]:
        """See :meth:`~toolkit.services.log.storage.Coordinator.bodies`."""
        if not 0 <= start <= end:
            raise StorageError(f"no entries [{start}, {end})")
        with self._db.connection("read entries") as conn:
            rows = conn.execute(
                "SELECT body FROM log_entries WHERE idx >= %s AND idx < %s ORDER BY idx",
                (start, end),
            ).fetchall()
        if len(rows) != end - start:
            raise StorageError(f"no entries [{start}, {end})")
        return [bytes(row[0]) for row in rows]

    def lookup(self, identity: bytes) -> int | None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.lookup`."""
        with self._db.connection("lookup") as conn:
            row = conn.execute(
                "SELECT idx FROM log_entries WHERE identity = %s", (identity,)
            ).fetchone()
        return None if row is None else int(row[0])

    def state(self) -> LogState | None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.state`."""
        with self._db.connection("read checkpoint") as conn:
            row = conn.execute(
                "SELECT size, root, note FROM log_checkpoint WHERE id = 1"
            ).fetchone()
        return None if row is None else LogState(int(row[0]), bytes(row[1]), bytes(row[2]))

    def compare_and_swap(self, expected_size: int | None, new: LogState) -> bool:
        """See :meth:`~toolkit.services.log.storage.Coordinator.compare_and_swap`.

        One statement each way: an INSERT that does nothing if a checkpoint
        exists, or an UPDATE whose WHERE re-checks the size after waiting for
        a concurrent writer's commit.
        """
        with self._db.connection("store checkpoint") as conn:
            if expected_size is None:
                cursor = conn.execute(
                    "INSERT INTO log_checkpoint (id, size, root, note) VALUES (1, %s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING",
                    (new.size, new.root_hash, new.checkpoint),
                )
            else:
                cursor = conn.execute(
                    "UPDATE log_checkpoint SET size = %s, root = %s, note = %s"
                    " WHERE id = 1 AND size = %s",
                    (new.size, new.root_hash, new.checkpoint, expected_size),
                )
            return cursor.rowcount == 1

    def close(self) -> None:
        """See :meth:`~toolkit.services.log.storage.Coordinator.close` (idempotent)."""
        self._db.close()


class PostgresTileStore:
    """A :class:`~toolkit.services.log.storage.TileStore` in the ``log_tiles`` table.

    Args:
        dsn: As for :class:`PostgresCoordinator` (usually the same database).

    Raises:
        StorageError: Cannot connect or create the tables.
    """

    def __init__(self, dsn: str) -> None:
        self._db = _Database(dsn)

    def put(self, path: str, data: bytes) -> None:
        """See :meth:`~toolkit.services.log.storage.TileStore.put`."""
        check_path(path)
        data = bytes(data)
        with self._db.connection(f"write {path}") as conn:
            cursor = conn.execute(
                "INSERT INTO log_tiles (path, data) VALUES (%s, %s) ON CONFLICT (path) DO NOTHING",
                (path, data),
            )
            if cursor.rowcount == 1:
                return
            row = conn.execute("SELECT data FROM log_tiles WHERE path = %s", (path,)).fetchone()
        if row is None or bytes(row[0]) != data:
            raise StorageError(f"{path} exists with different content")

    def get(self, path: str) -> bytes | None:
        """See :meth:`~toolkit.services.log.storage.TileStore.get`."""
        try:
            check_path(path)
        except StorageError:
            return None
        with self._db.connection(f"read {path}") as conn:
            row = conn.execute("SELECT data FROM log_tiles WHERE path = %s", (path,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete_partials(self, path: str) -> None:
        """See :meth:`~toolkit.services.log.storage.TileStore.delete_partials`.

        One statement naming the 255 possible partial paths: equality on the
        primary key uses its index whatever the database's collation, where
        ``LIKE 'prefix%'`` can only use it under the C collation and would
        otherwise scan the whole table at every completed tile.
        """
        prefix = partial_prefix(path)
        paths = [f"{prefix}{width}" for width in range(1, TILE_WIDTH)]
        with self._db.connection(f"delete partials of {path}") as conn:
            conn.execute("DELETE FROM log_tiles WHERE path = ANY(%s)", (paths,))

    def close(self) -> None:
        """See :meth:`~toolkit.services.log.storage.TileStore.close` (idempotent)."""
        self._db.close()
