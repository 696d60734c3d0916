"""The log storage contract, run identically over every backend.

Each case is parametrised by backend: ``memory`` (MemoryCoordinator +
MemoryTileStore), ``sqlite`` (SQLiteCoordinator + FileTileStore in a temp
dir) and ``postgres`` (PostgresCoordinator + PostgresTileStore on a fresh
database of the session's throwaway cluster, ``tests/support/postgres.py``).
A backend "reopens" by opening new instances on the same file or database;
the memory backend hands out its one instance again (it has no durability).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from toolkit.services.log.postgres import PostgresCoordinator, PostgresTileStore
from toolkit.services.log.sqlite import FileTileStore, SQLiteCoordinator
from toolkit.services.log.storage import (
    Coordinator,
    LogIdentity,
    LogState,
    MemoryCoordinator,
    MemoryTileStore,
    NewEntry,
    SequencedEntry,
    StorageError,
    TileStore,
    check_path,
)

BACKENDS = ["memory", "sqlite", "postgres"]
IDENTITY = LogIdentity("log.example.test", "ab" * 32)


def entry(name: str, body: bytes | None = None) -> NewEntry:
    """An entry whose identity is derived from ``name`` (body defaults to it too)."""
    return NewEntry(
        hashlib.sha256(name.encode()).digest(), body if body is not None else name.encode()
    )


def state(size: int, tag: bytes = b"") -> LogState:
    root = hashlib.sha256(b"root %d" % size + tag).digest()
    return LogState(size, root, b"log.example.test\n%d\n" % size + tag)


@dataclass
class Backend:
    """Opens coordinators and tile stores on one backing store; closes them at teardown."""

    name: str
    _coordinator: Callable[[], Coordinator]
    _tiles: Callable[[], TileStore]
    opened: list[Coordinator | TileStore] = field(default_factory=list)

    def coordinator(self) -> Coordinator:
        store = self._coordinator()
        self.opened.append(store)
        return store

    def tiles(self) -> TileStore:
        store = self._tiles()
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


def _open_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name == "memory":
        memory_coordinator, memory_tiles = MemoryCoordinator(), MemoryTileStore()
        store = Backend(name, lambda: memory_coordinator, lambda: memory_tiles)
    elif name == "sqlite":
        store = Backend(
            name,
            lambda: SQLiteCoordinator(tmp_path / "log" / "log.db"),
            lambda: FileTileStore(tmp_path / "log" / "tiles"),
        )
    else:
        dsn: str = request.getfixturevalue("fresh_postgres_dsn")
        store = Backend(name, lambda: PostgresCoordinator(dsn), lambda: PostgresTileStore(dsn))
    return store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    store = _open_backend(request.param, request, tmp_path)
    yield store
    store.close_all()


@pytest.fixture(params=[name for name in BACKENDS if name != "memory"])
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    # The memory backend is neither durable nor holds anything to release.
    store = _open_backend(request.param, request, tmp_path)
    yield store
    store.close_all()


@pytest.fixture
def coordinator(backend: Backend) -> Coordinator:
    return backend.coordinator()


@pytest.fixture
def tiles(backend: Backend) -> TileStore:
    return backend.tiles()


def test_implements_the_protocols(coordinator: Coordinator, tiles: TileStore) -> None:
    assert isinstance(coordinator, Coordinator)
    assert isinstance(tiles, TileStore)


# --- claim -------------------------------------------------------------------


def test_claim_binds_an_empty_store_and_accepts_the_same_identity(
    coordinator: Coordinator,
) -> None:
    coordinator.claim(IDENTITY)
    coordinator.claim(LogIdentity(IDENTITY.origin, IDENTITY.key_id))


@pytest.mark.parametrize(
    "other",
    [
        LogIdentity("other.example.test", IDENTITY.key_id),
        LogIdentity(IDENTITY.origin, "cd" * 32),
    ],
    ids=["other-origin", "other-key"],
)
def test_claim_refuses_another_identity(coordinator: Coordinator, other: LogIdentity) -> None:
    coordinator.claim(IDENTITY)
    with pytest.raises(StorageError, match=r"store belongs to log\.example\.test \(abababab"):
        coordinator.claim(other)
    coordinator.claim(IDENTITY)  # the failed claim changed nothing


# --- sequencing --------------------------------------------------------------


def test_empty_store(coordinator: Coordinator) -> None:
    assert coordinator.size() == 0
    assert coordinator.state() is None
    assert coordinator.bodies(0, 0) == []
    assert coordinator.lookup(entry("a").identity) is None


def test_sequence_gives_consecutive_indices_in_order(coordinator: Coordinator) -> None:
    first = [entry(f"e{i}") for i in range(5)]
    assert coordinator.sequence(first) == [
        SequencedEntry(i, f"e{i}".encode(), False) for i in range(5)
    ]
    second = [entry(f"e{i}") for i in range(5, 9)]
    assert coordinator.sequence(second) == [
        SequencedEntry(i, f"e{i}".encode(), False) for i in range(5, 9)
    ]
    assert coordinator.size() == 9
    assert coordinator.bodies(0, 9) == [f"e{i}".encode() for i in range(9)]


def test_sequence_of_nothing_changes_nothing(coordinator: Coordinator) -> None:
    assert coordinator.sequence([]) == []
    assert coordinator.size() == 0
    coordinator.sequence([entry("a")])
    assert coordinator.sequence([]) == []
    assert coordinator.size() == 1


def test_duplicate_across_batches_returns_the_stored_entry(coordinator: Coordinator) -> None:
    coordinator.sequence([entry("a"), entry("b"), entry("c")])
    # Same identity, other body: the stored body wins, nothing is added.
    again = coordinator.sequence([entry("b", b"another body"), entry("d")])
    assert again == [SequencedEntry(1, b"b", True), SequencedEntry(3, b"d", False)]
    assert coordinator.size() == 4
    assert coordinator.bodies(0, 4) == [b"a", b"b", b"c", b"d"]


def test_duplicates_within_one_batch(coordinator: Coordinator) -> None:
    coordinator.sequence([entry("old")])
    batch = [
        entry("a"),
        entry("b"),
        entry("a", b"a again"),
        entry("old", b"old again"),
        entry("c"),
        entry("b"),
    ]
    assert coordinator.sequence(batch) == [
        SequencedEntry(1, b"a", False),
        SequencedEntry(2, b"b", False),
        SequencedEntry(1, b"a", True),
        SequencedEntry(0, b"old", True),
        SequencedEntry(3, b"c", False),
        SequencedEntry(2, b"b", True),
    ]
    assert coordinator.size() == 4
    assert coordinator.bodies(0, 4) == [b"old", b"a", b"b", b"c"]


def test_large_batch(coordinator: Coordinator) -> None:
    # More identities than SQLite's per-query lookup chunk, some of them known.
    coordinator.sequence([entry(f"e{i}") for i in range(0, 1500, 3)])
    batch = [entry(f"e{i}") for i in range(1500)]
    results = coordinator.sequence(batch)
    assert coordinator.size() == 1500
    assert [r.duplicate for r in results] == [i % 3 == 0 for i in range(1500)]
    bodies = coordinator.bodies(0, 1500)
    for i, result in enumerate(results):
        assert bodies[result.index] == f"e{i}".encode()
    assert sorted(r.index for r in results) == list(range(1500))


def test_bodies_ranges(coordinator: Coordinator) -> None:
    coordinator.sequence([entry(f"e{i}") for i in range(6)])
    assert coordinator.bodies(2, 5) == [b"e2", b"e3", b"e4"]
    assert coordinator.bodies(5, 6) == [b"e5"]
    assert coordinator.bodies(3, 3) == []
    assert coordinator.bodies(6, 6) == []


@pytest.mark.parametrize(("start", "end"), [(0, 7), (6, 7), (-1, 2), (4, 3), (10, 12)], ids=str)
def test_bodies_outside_the_log_are_refused(coordinator: Coordinator, start: int, end: int) -> None:
    coordinator.sequence([entry(f"e{i}") for i in range(6)])
    with pytest.raises(StorageError, match=rf"no entries \[{start}, {end}\)"):
        coordinator.bodies(start, end)


def test_lookup(coordinator: Coordinator) -> None:
    coordinator.sequence([entry("a"), entry("b")])
    assert coordinator.lookup(entry("a").identity) == 0
    assert coordinator.lookup(entry("b").identity) == 1
    assert coordinator.lookup(entry("c").identity) is None


# --- checkpoint state ------------------------------------------------------------


def test_compare_and_swap(coordinator: Coordinator) -> None:
    first, second, third = state(0), state(5), state(9)
    assert not coordinator.compare_and_swap(0, first)  # there is no checkpoint yet
    assert coordinator.state() is None
    assert coordinator.compare_and_swap(None, first)
    assert coordinator.state() == first
    assert not coordinator.compare_and_swap(None, second)  # someone already wrote one
    assert coordinator.compare_and_swap(0, second)
    assert coordinator.state() == second
    assert not coordinator.compare_and_swap(0, third)  # stale expected size
    assert not coordinator.compare_and_swap(9, third)
    assert coordinator.state() == second
    assert coordinator.compare_and_swap(5, third)
    assert coordinator.state() == third


def test_compare_and_swap_same_size_replaces_the_note(coordinator: Coordinator) -> None:
    # A re-signed checkpoint of the same tree (e.g. new cosignature) is a swap too.
    assert coordinator.compare_and_swap(None, state(3))
    assert coordinator.compare_and_swap(3, state(3, b"resigned"))
    assert coordinator.state() == state(3, b"resigned")


# --- durability --------------------------------------------------------------


def test_everything_survives_reopening(durable_backend: Backend) -> None:
    first = durable_backend.coordinator()
    first.claim(IDENTITY)
    first.sequence([entry(f"e{i}") for i in range(4)])
    assert first.compare_and_swap(None, state(4))
    first.close()
    first.close()  # idempotent

    second = durable_backend.coordinator()
    second.claim(IDENTITY)
    with pytest.raises(StorageError, match="store belongs to"):
        second.claim(LogIdentity("other.example.test", IDENTITY.key_id))
    assert second.size() == 4
    assert second.bodies(0, 4) == [b"e0", b"e1", b"e2", b"e3"]
    assert second.lookup(entry("e2").identity) == 2
    assert second.state() == state(4)
    assert second.sequence([entry("e1"), entry("e4")]) == [
        SequencedEntry(1, b"e1", True),
        SequencedEntry(4, b"e4", False),
    ]
    assert not second.compare_and_swap(None, state(5))
    assert second.compare_and_swap(4, state(5))


def test_tiles_survive_reopening(durable_backend: Backend) -> None:
    first = durable_backend.tiles()
    first.put("tile/0/000", b"\x01" * 8192)
    first.close()
    second = durable_backend.tiles()
    assert second.get("tile/0/000") == b"\x01" * 8192
    with pytest.raises(StorageError, match="different content"):
        second.put("tile/0/000", b"\x02" * 8192)


def test_a_closed_coordinator_refuses_to_work(durable_backend: Backend) -> None:
    store = durable_backend.coordinator()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.size()


# --- tiles -------------------------------------------------------------------

VALID_PATHS = [
    "tile/0/000",
    "tile/0/x001/x234/067",
    "tile/0/x001/234.p/17",
    "tile/1/000.p/1",
    "tile/63/999.p/255",
    "tile/entries/000",
    "tile/entries/x999/000.p/128",
    "tile/entries/x001/x000/x000/000",
    "tile/0/x018/x446/x744/x073/x709/x551/615",  # 2**64 - 1
]

BAD_PATHS = [
    "",
    "checkpoint",
    "tile",
    "tile/0",
    "tile/0/",
    "tile/0/1",
    "tile/0/0000",
    "tile/0/x000/001",  # non-canonical leading group
    "tile/0/x001",
    "tile/0/001/",
    "tile/0/001/002",
    "/tile/0/000",
    "./tile/0/000",
    "../tile/0/000",
    "tile/0/../0/000",
    "tile/0/./000",
    "tile//0/000",
    "tile/00/000",
    "tile/64/000",
    "tile/-1/000",
    "tile/data/000",
    "tile/0/000.p/0",
    "tile/0/000.p/256",
    "tile/0/000.p/007",
    "tile/0/000.p/",
    "tile/0/000.P/5",
    "tile/0/000.p.5",
    "tile/0/000\n",
    "tile/0/000 ",
    "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits match \d, not [0-9]
    "tile\\0\\000",
    "tile/0/.000.abc.tmp",
    "tile/0/" + "x001/" * 20 + "000",
    "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2**64
]


@pytest.mark.parametrize("path", VALID_PATHS)
def test_check_path_accepts_c2sp_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize("path", BAD_PATHS, ids=repr)
def test_check_path_refuses_anything_else(path: str) -> None:
    with pytest.raises(StorageError, match="not a tile path"):
        check_path(path)


def test_put_and_get(tiles: TileStore) -> None:
    for number, path in enumerate(VALID_PATHS):
        assert tiles.get(path) is None
        tiles.put(path, bytes([number]) * (32 * (number + 1)))
    for number, path in enumerate(VALID_PATHS):
        assert tiles.get(path) == bytes([number]) * (32 * (number + 1))


def test_partial_and_full_tiles_are_distinct(tiles: TileStore) -> None:
    tiles.put("tile/0/000.p/1", b"a" * 32)
    tiles.put("tile/0/000.p/2", b"a" * 64)
    tiles.put("tile/0/000", b"a" * 8192)
    assert tiles.get("tile/0/000.p/1") == b"a" * 32
    assert tiles.get("tile/0/000.p/2") == b"a" * 64
    assert tiles.get("tile/0/000") == b"a" * 8192
    assert tiles.get("tile/0/000.p/3") is None


def test_identical_re_put_is_a_no_op(tiles: TileStore) -> None:
    tiles.put("tile/entries/000.p/2", b"\x00\x01a\x00\x01b")
    tiles.put("tile/entries/000.p/2", b"\x00\x01a\x00\x01b")
    assert tiles.get("tile/entries/000.p/2") == b"\x00\x01a\x00\x01b"


def test_empty_tile(tiles: TileStore) -> None:
    tiles.put("tile/entries/000.p/1", b"")
    assert tiles.get("tile/entries/000.p/1") == b""


@pytest.mark.parametrize("other", [b"\x00" * 63 + b"\x01", b"\x00" * 32, b"\x00" * 96, b""])
def test_different_content_is_refused(tiles: TileStore, other: bytes) -> None:
    tiles.put("tile/1/x002/345.p/2", b"\x00" * 64)
    with pytest.raises(StorageError, match=r"tile/1/x002/345\.p/2 exists with different content"):
        tiles.put("tile/1/x002/345.p/2", other)
    assert tiles.get("tile/1/x002/345.p/2") == b"\x00" * 64


def test_bad_paths_are_refused(tiles: TileStore) -> None:
    # One test for all paths (each is checked alone by check_path's test
    # above): a fresh PostgreSQL database per path would cost seconds.
    for path in BAD_PATHS:
        with pytest.raises(StorageError, match="not a tile path"):
            tiles.put(path, b"data")
        assert tiles.get(path) is None, path


def test_file_store_never_reads_outside_its_root(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"secret")
    store = FileTileStore(tmp_path / "tiles")
    store.put("tile/0/000", b"x" * 32)
    assert store.get("../secret") is None
    assert store.get("tile/0/../../../secret") is None
    assert store.get(str(tmp_path / "secret")) is None
    # Nothing but the tile (and its directories) was written: no temp files left.
    root = tmp_path / "tiles"
    written = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert written == ["tile", "tile/0", "tile/0/000"]


# --- deleting partial tiles ----------------------------------------------------

# Around the full tile tile/0/001: its own partials, and neighbours that share
# its index, level or the tail of its encoding but are other tiles.
OWN_PARTIALS = ["tile/0/001.p/1", "tile/0/001.p/2", "tile/0/001.p/255"]
NEIGHBOURS = [
    "tile/0/001",  # the full tile itself
    "tile/0/000.p/3",  # another index, same level
    "tile/0/002.p/1",
    "tile/0/x001/001.p/4",  # index 1001: its path ends like ours
    "tile/1/001.p/1",  # same index, another level
    "tile/entries/001.p/1",  # the entry bundle of the same index
    "tile/entries/001",
]


def _put_all(tiles: TileStore, paths: list[str]) -> None:
    for number, path in enumerate(paths):
        tiles.put(path, bytes([number]) * 32)


def test_delete_partials_removes_only_the_partials_of_that_tile(tiles: TileStore) -> None:
    _put_all(tiles, OWN_PARTIALS + NEIGHBOURS)
    tiles.delete_partials("tile/0/001")
    assert [path for path in OWN_PARTIALS if tiles.get(path) is not None] == []
    assert [path for path in NEIGHBOURS if tiles.get(path) is None] == []
    # The neighbours still hold their own bytes.
    assert tiles.get("tile/0/001") == bytes([len(OWN_PARTIALS)]) * 32


def test_delete_partials_of_an_entry_bundle(tiles: TileStore) -> None:
    _put_all(tiles, OWN_PARTIALS + NEIGHBOURS)
    tiles.delete_partials("tile/entries/001")
    assert tiles.get("tile/entries/001.p/1") is None
    assert tiles.get("tile/entries/001") is not None
    # Hash tiles of the same index are another family.
    assert [path for path in OWN_PARTIALS + NEIGHBOURS[:-2] if tiles.get(path) is None] == []


def test_delete_partials_is_idempotent(tiles: TileStore) -> None:
    _put_all(tiles, OWN_PARTIALS + NEIGHBOURS)
    tiles.delete_partials("tile/0/001")
    tiles.delete_partials("tile/0/001")
    # A tile that never had partials (nor exists) is no error either.
    tiles.delete_partials("tile/5/x123/456")
    assert [path for path in OWN_PARTIALS if tiles.get(path) is not None] == []
    assert [path for path in NEIGHBOURS if tiles.get(path) is None] == []


def test_partials_can_be_written_again_after_deletion(tiles: TileStore) -> None:
    # A lagging front-end may still write one; the store must take it.
    tiles.put("tile/0/001.p/2", b"a" * 64)
    tiles.delete_partials("tile/0/001")
    tiles.put("tile/0/001.p/2", b"a" * 64)
    assert tiles.get("tile/0/001.p/2") == b"a" * 64


@pytest.mark.parametrize(
    "path", [path for path in VALID_PATHS if ".p/" in path] + ["tile/0/001.p/2"], ids=repr
)
def test_delete_partials_refuses_a_partial_path(tiles: TileStore, path: str) -> None:
    tiles.put("tile/0/001.p/2", b"a" * 64)
    with pytest.raises(StorageError, match="not a full tile path"):
        tiles.delete_partials(path)
    assert tiles.get("tile/0/001.p/2") == b"a" * 64


def test_delete_partials_refuses_bad_paths(tiles: TileStore) -> None:
    # One test for all paths, as for put: a database per path costs seconds.
    tiles.put("tile/0/000.p/5", b"a" * 160)
    for path in BAD_PATHS:
        with pytest.raises(StorageError, match="not a tile path"):
            tiles.delete_partials(path)
    assert tiles.get("tile/0/000.p/5") == b"a" * 160


def test_deleted_partials_stay_deleted_after_reopening(durable_backend: Backend) -> None:
    first = durable_backend.tiles()
    _put_all(first, OWN_PARTIALS + NEIGHBOURS)
    first.delete_partials("tile/0/001")
    first.close()
    second = durable_backend.tiles()
    assert [path for path in OWN_PARTIALS if second.get(path) is not None] == []
    assert [path for path in NEIGHBOURS if second.get(path) is None] == []


def test_file_store_deletes_the_partial_directory(tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    store = FileTileStore(root)
    _put_all(store, OWN_PARTIALS + NEIGHBOURS)
    # A temp file a crashed write left among the partials goes too.
    (root / "tile/0/001.p/.2.abc.tmp").write_bytes(b"half")
    store.delete_partials("tile/0/001")
    assert not (root / "tile/0/001.p").exists()
    assert (root / "tile/0/001").is_file()
    assert (root / "tile/0/x001/001.p/4").is_file()


def test_file_store_never_deletes_outside_its_root(tmp_path: Path) -> None:
    victim = tmp_path / "secret.p"
    victim.mkdir()
    (victim / "1").write_bytes(b"secret")
    store = FileTileStore(tmp_path / "tiles")
    for path in ["../secret", "tile/0/../../../secret", str(tmp_path / "secret")]:
        with pytest.raises(StorageError, match="not a tile path"):
            store.delete_partials(path)
    assert (victim / "1").read_bytes() == b"secret"


def test_file_store_reports_a_partial_directory_it_cannot_remove(tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    store = FileTileStore(root)
    store.put("tile/0/001.p/1", b"a" * 32)
    # Not a file the store wrote: it is not removed, and the caller hears why.
    (root / "tile/0/001.p/stray").mkdir()
    with pytest.raises(StorageError, match=r"cannot delete tile/0/001\.p: Is a directory"):
        store.delete_partials("tile/0/001")


# --- concurrency -------------------------------------------------------------


def _run_threads(workers: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def run(work: Callable[[], None]) -> None:
        try:
            start.wait()
            work()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    assert not errors, errors


def test_concurrent_sequencing_never_reuses_an_index(backend: Backend) -> None:
    # Two coordinators on the same store (two front-ends), two threads each.
    # Every worker sends its own entries plus entries all workers share.
    coordinators = [backend.coordinator(), backend.coordinator()]
    workers_count, batches, batch_size = 4, 12, 16
    results: dict[int, list[tuple[NewEntry, SequencedEntry]]] = {}

    def worker(number: int) -> Callable[[], None]:
        def work() -> None:
            store = coordinators[number % 2]
            done: list[tuple[NewEntry, SequencedEntry]] = []
            for batch in range(batches):
                own = [entry(f"w{number}-b{batch}-{i}") for i in range(batch_size)]
                shared = [entry(f"shared-b{batch}-{i}") for i in range(4)]
                sent = own[:8] + shared + own[8:]
                done.extend(zip(sent, store.sequence(sent), strict=True))
            results[number] = done

        return work

    _run_threads([worker(n) for n in range(workers_count)])

    expected_size = workers_count * batches * batch_size + batches * 4
    assert coordinators[0].size() == coordinators[1].size() == expected_size
    bodies = coordinators[1].bodies(0, expected_size)
    first_seen: dict[bytes, int] = {}
    added: list[int] = []
    for done in results.values():
        for sent, result in done:
            assert bodies[result.index] == sent.body
            assert result.body == sent.body
            if not result.duplicate:
                added.append(result.index)
            assert first_seen.setdefault(sent.identity, result.index) == result.index
    # Every index was handed out exactly once, with no gap.
    assert sorted(added) == list(range(expected_size))
    for identity, index in first_seen.items():
        assert coordinators[0].lookup(identity) == index


def test_concurrent_compare_and_swap_has_one_winner(backend: Backend) -> None:
    coordinators = [backend.coordinator(), backend.coordinator()]
    assert coordinators[0].compare_and_swap(None, state(10))
    wins: list[int] = []
    lock = threading.Lock()

    def worker(number: int) -> Callable[[], None]:
        def work() -> None:
            if coordinators[number % 2].compare_and_swap(10, state(20, b"%d" % number)):
                with lock:
                    wins.append(number)

        return work

    _run_threads([worker(n) for n in range(8)])
    assert len(wins) == 1
    assert coordinators[1].state() == state(20, b"%d" % wins[0])


# --- backend-specific errors ---------------------------------------------------


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    path.write_bytes(b"this is not a database, just text " * 100)
    with pytest.raises(StorageError, match=r"SQLite .*log\.db: .*not a database"):
        SQLiteCoordinator(path)


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "log.db"
    SQLiteCoordinator(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StorageError, match="schema version 99 is newer"):
        SQLiteCoordinator(path)


def test_postgres_errors_never_show_the_password() -> None:
    # Nothing listens on port 1 of 127.0.0.1: the connection is refused at once.
    dsn = "host=127.0.0.1 port=1 user=airseal password=s3cret-pw dbname=log connect_timeout=2"
    with pytest.raises(StorageError, match=r"PostgreSQL 127\.0\.0\.1:1/log: connect: ") as caught:
        PostgresCoordinator(dsn)
    assert "s3cret-pw" not in str(caught.value)
    assert "\n" not in str(caught.value)
    uri = "postgresql://airseal:s3cret-pw@127.0.0.1:1/log?connect_timeout=2"
    with pytest.raises(StorageError, match=r"PostgreSQL 127\.0\.0\.1:1/log: connect: ") as caught:
        PostgresTileStore(uri)
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "dsn",
    ["host=127.0.0.1 password='s3cret-pw", "postgresql://a:s3cret-pw@[::1/x", "password s3cret-pw"],
)
def test_postgres_bad_dsn_is_refused_without_quoting_it(dsn: str) -> None:
    with pytest.raises(StorageError, match="invalid PostgreSQL connection string") as caught:
        PostgresCoordinator(dsn)
    assert "s3cret-pw" not in str(caught.value)


def test_postgres_refuses_a_newer_schema(fresh_postgres_dsn: str) -> None:
    import psycopg

    PostgresCoordinator(fresh_postgres_dsn).close()
    with psycopg.connect(fresh_postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE log_meta SET schema_version = 99")
    with pytest.raises(StorageError, match="schema version 99 is newer"):
        PostgresTileStore(fresh_postgres_dsn)


def test_postgres_reconnects_after_the_connection_dies(fresh_postgres_dsn: str) -> None:
    import psycopg

    store = PostgresCoordinator(fresh_postgres_dsn)
    try:
        store.sequence([entry("a")])
        with psycopg.connect(fresh_postgres_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'airseal-log'"
            )
        with pytest.raises(StorageError, match=r"PostgreSQL 127\.0\.0\.1:\d+/test_\w+: size: "):
            store.size()
        assert store.size() == 1  # the next call reconnects
    finally:
        store.close()
