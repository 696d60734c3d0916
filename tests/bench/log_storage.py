#!/usr/bin/env python3
"""Benchmark the log's storage backends: sequencing and tile writes, durably.

Run as ``.venv/bin/python tests/bench/log_storage.py [--quick] [--dir DIR]``.
Prints ONE JSON document on stdout; progress goes to stderr. Timings are
reported, never asserted.

* ``sequence``: entries per second through ``Coordinator.sequence`` with
  batches of 256 and 1024 fresh entries (32-byte identity, ~600-byte body, about
  a hashedrekord), on ``SQLiteCoordinator`` (WAL, synchronous=FULL) and on
  ``PostgresCoordinator`` (a throwaway cluster with fsync on, as production).
  Each batch size starts on an empty store; each run sequences several
  batches on the growing log (16k rows per run, 82k in all); median of the runs.
* ``put``: full 8 KiB tiles per second through ``FileTileStore`` (tmp file,
  fsync, link, directory fsync) and ``PostgresTileStore``; median of the runs.

``--dir`` chooses where the SQLite file and the tiles live (default: the
system temp directory); the filesystem decides what an fsync costs.

Exit status: 0 on success (a PostgreSQL section reports an ``error`` instead
when PostgreSQL is not installed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench._common import log, machine  # noqa: E402
from tests.support.postgres import PostgresCluster, postgres_missing  # noqa: E402
from toolkit.services.log.postgres import PostgresCoordinator, PostgresTileStore  # noqa: E402
from toolkit.services.log.sqlite import FileTileStore, SQLiteCoordinator  # noqa: E402
from toolkit.services.log.storage import Coordinator, NewEntry, TileStore  # noqa: E402
from toolkit.services.log.tiles import tile_path  # noqa: E402

BATCH_SIZES = (256, 1024)
BODY = b"x" * 600
TILE = bytes(range(256)) * 32  # 8192 bytes: a full tile of 256 hashes


class Entries:
    """Fresh, never-repeated entries."""

    def __init__(self) -> None:
        self._next = 0

    def take(self, count: int) -> list[NewEntry]:
        out = []
        for number in range(self._next, self._next + count):
            identity = hashlib.sha256(number.to_bytes(8, "big")).digest()
            out.append(NewEntry(identity, identity + BODY))
        self._next += count
        return out


def sequence_rates(
    open_store: Callable[[str], Coordinator], runs: int, rows: int
) -> dict[str, Any]:
    """Rows per second for each batch size: median of ``runs`` runs.

    Each batch size starts on a fresh, empty store (``open_store(name)``) so
    that both see the same log sizes: sequencing slows down as the identity
    index grows.
    """
    result: dict[str, Any] = {}
    for batch in BATCH_SIZES:
        coordinator = open_store(f"batch{batch}")
        try:
            entries = Entries()
            coordinator.sequence(entries.take(256))  # warm-up: tables, caches, connection
            count = max(1, rows // batch)
            rates: list[float] = []
            for _ in range(runs):
                batches = [entries.take(batch) for _ in range(count)]
                started = time.perf_counter()
                for items in batches:
                    coordinator.sequence(items)
                elapsed = time.perf_counter() - started
                rates.append(count * batch / elapsed)
            size = coordinator.size()
        finally:
            coordinator.close()
        result[f"batch_{batch}"] = {
            "rows_per_s": round(statistics.median(rates)),
            "transactions_per_s": round(statistics.median(rates) / batch, 1),
            "batches_per_run": count,
            "runs_rows_per_s": [round(rate) for rate in rates],
            "final_log_size": size,
        }
        log(f"  batch {batch}: {statistics.median(rates):.0f} rows/s")
    return result


def put_rates(store: TileStore, runs: int, tiles_per_run: int) -> dict[str, Any]:
    """Full tiles written per second: median of ``runs`` runs, each on new paths."""
    rates: list[float] = []
    index = 0
    for _ in range(runs):
        paths = []
        for _ in range(tiles_per_run):
            # Spread over directories as a growing log does (x001/234 …).
            paths.append(tile_path(0, index))
            index += 1
        started = time.perf_counter()
        for path in paths:
            store.put(path, TILE)
        elapsed = time.perf_counter() - started
        rates.append(tiles_per_run / elapsed)
    log(f"  put: {statistics.median(rates):.0f} tiles/s")
    return {
        "tiles_per_s": round(statistics.median(rates)),
        "tile_bytes": len(TILE),
        "tiles_per_run": tiles_per_run,
        "runs_tiles_per_s": [round(rate) for rate in rates],
    }


def sqlite_section(scratch: Path, runs: int, rows: int, tiles: int) -> dict[str, Any]:
    log("sqlite + files")
    store = FileTileStore(scratch / "tiles")
    try:
        return {
            "sequence": sequence_rates(
                lambda name: SQLiteCoordinator(scratch / f"{name}.db"), runs, rows
            ),
            "put": put_rates(store, runs, tiles),
        }
    finally:
        store.close()


def postgres_section(runs: int, rows: int, tiles: int) -> dict[str, Any]:
    reason = postgres_missing()
    if reason is not None:
        return {"error": reason}
    log("postgres")
    with PostgresCluster(durable=True) as cluster:
        store = PostgresTileStore(cluster.create_database("tiles"))
        try:
            return {
                "server_version": cluster.version,
                "sequence": sequence_rates(
                    lambda name: PostgresCoordinator(cluster.create_database(name)), runs, rows
                ),
                "put": put_rates(store, runs, tiles),
            }
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (smoke run)")
    parser.add_argument("--dir", type=Path, help="where SQLite and the tiles live")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else 5
    rows = 2048 if args.quick else 16384
    tiles = 50 if args.quick else 300
    document: dict[str, Any] = {
        "benchmark": "airseal log storage backends",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "runs": runs,
        "rows_per_run": rows,
    }
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="airseal-bench-log-", dir=args.dir) as scratch:
        document["machine"] = machine(
            ("psycopg", "psycopg-binary", "airseal"),
            sqlite=sqlite3.sqlite_version,
            scratch_dir=str(scratch),
        )
        sections: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("sqlite", lambda: sqlite_section(Path(scratch), runs, rows, tiles)),
            ("postgres", lambda: postgres_section(runs, rows, tiles)),
        ]
        for name, section in sections:
            document[name] = section()
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
