#!/usr/bin/env python3
"""Benchmark the transparency log: sustained appends through HTTP on 127.0.0.1.

Run as ``.venv/bin/python tests/bench/log.py [--quick] [--duration S]``
(``make bench``). Prints ONE JSON document on stdout; progress goes to
stderr. Nothing is asserted: ``meets_target`` says whether a target was met.

Section ``load``: for each storage backend (SQLite + files, the embedded
default; PostgreSQL on a throwaway local cluster), a real ``airseal serve log``
process is started and a load generator in this process (asyncio, raw HTTP/1.1
keep-alive connections, uvloop) sends ``hashedRekordRequestV002`` requests for
``--duration`` seconds. Every request is unique (its own artifact digest and
signature, prepared before the clock starts) and carries an X.509
certificate, as keyless signers send. Reported: appends/s (201 responses per
second of the run), p50/p99 submit→proof latency (request sent → entry with
inclusion proof and checkpoint received), 503 pushback count. Target
(SQLite): >= 2,500 appends/s with p99 <= 1.0 s. Server and load generator
share the machine's cores, as the issue asks.

Section ``proofs``: inclusion proof generation from tiles at 1,000,000
entries (median over random indices), through the same tile hash source the
server uses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from tests.bench._common import log  # noqa: E402
from tests.bench._load import run_load  # noqa: E402
from tests.support.log_server import LogServer, hashedrekord_document  # noqa: E402
from toolkit.services.log.app import ENTRIES_PATH  # noqa: E402

TARGET_RATE = 2500.0
TARGET_P99_S = 1.0
CLIENT_KEYS = 32


# -- requests, prepared before the clock starts -------------------------------------


def _client(seed: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench client {seed}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _requests(args: tuple[int, int, int]) -> list[bytes]:
    """``count`` unique request bodies, signed by client ``seed`` (a worker process)."""
    seed, start, count = args
    key, cert = _client(seed)
    out = []
    for n in range(start, start + count):
        artifact = f"airseal bench artifact {seed} {n}".encode()
        body = hashedrekord_document(key, cert, artifact)
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def prepare(count: int, run: int) -> list[bytes]:
    per_client = -(-count // CLIENT_KEYS)
    jobs = [(run * 1000 + seed, 0, per_client) for seed in range(CLIENT_KEYS)]
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        chunks = pool.map(_requests, jobs)
    # Interleave clients, as concurrent signers would arrive.
    requests = [r for group in zip(*chunks, strict=False) for r in group]
    return requests[:count]


# -- the load generator ------------------------------------------------------------------


def run_log_load(
    server: LogServer, requests: list[bytes], duration: float, connections: int
) -> dict[str, Any]:
    """Appends through ``POST /api/v2/log/entries``, in the log's own terms."""
    load = run_load(
        server.port, ENTRIES_PATH, "application/json", 201, requests, duration, connections
    )
    errors = dict(load["errors"])
    return {
        "duration_s": load["duration_s"],
        "wall_s": load["wall_s"],
        "connections": load["connections"],
        "appends": load["completed"],
        "appends_per_s": load["per_s"],
        "p50_latency_s": load["p50_latency_s"],
        "p99_latency_s": load["p99_latency_s"],
        "pushback_503": errors.pop(503, 0),
        "errors": errors,
        "requests_prepared": load["requests_prepared"],
        "ran_out_of_requests": load["ran_out_of_requests"],
    }


# -- sections ----------------------------------------------------------------------------


@contextmanager
def _postgres() -> Iterator[str | None]:
    from tests.support.postgres import PostgresCluster

    try:
        cluster = PostgresCluster(durable=True)
    except RuntimeError as exc:  # Not installed here: the section says so in its JSON.
        log(f"postgres: unavailable ({exc})")
        yield None
        return
    with cluster:
        yield cluster.create_database("bench")


def load_section(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for run, backend in enumerate(backends):
        count = int(args.prepare_rate * args.duration)
        log(f"{backend}: preparing {count} signed requests…")
        requests = prepare(count, run)
        with _postgres() if backend == "postgres" else _nullcontext() as dsn:
            if backend == "postgres" and dsn is None:
                results[backend] = {"error": "PostgreSQL is not available"}
                continue
            extra: tuple[str, ...] = ("--postgres", dsn) if dsn else ()
            server = LogServer(scratch / f"data-{backend}", "bench.airseal.test", extra)
            server.start()
            try:
                log(f"{backend}: {args.duration:.0f} s of load, {args.connections} connections…")
                result = run_log_load(server, requests, args.duration, args.connections)
            finally:
                server.stop()
        result["meets_target"] = bool(
            result["appends_per_s"] >= TARGET_RATE
            and result["p99_latency_s"] is not None
            and result["p99_latency_s"] <= TARGET_P99_S
        )
        log(
            f"{backend}: {result['appends_per_s']} appends/s, "
            f"p50 {result['p50_latency_s']} s, p99 {result['p99_latency_s']} s"
        )
        results[backend] = result
    return {
        "target_appends_per_s": TARGET_RATE,
        "target_p99_s": TARGET_P99_S,
        "target_backend": "sqlite",
        "backends": results,
    }


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield None


def proofs_section(args: argparse.Namespace) -> dict[str, Any]:
    from toolkit.merkle import inclusion_proof, leaf_hash, verify_inclusion
    from toolkit.services.log.storage import MemoryTileStore
    from toolkit.services.log.tiles import TileHashSource, build_tiles

    size = args.proof_size
    log(f"proofs: building tiles for {size} entries…")
    rng = random.Random(1)
    leaves = [leaf_hash(rng.randbytes(16)) for _ in range(size)]
    store = MemoryTileStore()
    for path, data in build_tiles(leaves).items():
        store.put(path, data)
    root = TileHashSource(size, store.get).root()
    times: list[float] = []
    for _ in range(args.proof_samples):
        index = rng.randrange(size)
        started = time.perf_counter()
        # A fresh source per proof: every tile is read and split again, as for
        # a request about an old entry that no cache holds.
        proof = inclusion_proof(index, size, TileHashSource(size, store.get))
        times.append(time.perf_counter() - started)
        verify_inclusion(leaves[index], index, size, proof, root)
    return {
        "entries": size,
        "samples": len(times),
        "median_ms": round(statistics.median(times) * 1000, 4),
        "p99_ms": round(sorted(times)[int(len(times) * 0.99)] * 1000, 4),
        "note": "cold tile cache per proof; tiles from an in-memory store (a filesystem "
        "read adds one small file read per tile level)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10 s runs, 100k-entry proofs")
    parser.add_argument("--duration", type=float, help="seconds of load per backend (default 60)")
    parser.add_argument("--connections", type=int, default=1200)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--prepare-rate", type=float, default=4500.0, help="requests per second to prepare"
    )
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args(argv)
    args.duration = args.duration or (10.0 if args.quick else 60.0)
    args.proof_size = 100_000 if args.quick else 1_000_000
    args.proof_samples = 200 if args.quick else 1000
    document: dict[str, Any] = {
        "benchmark": "airseal transparency log",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="airseal-bench-log-") as scratch:
        if not args.skip_load:
            document["load"] = load_section(args, Path(scratch))
    document["proofs"] = proofs_section(args)
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
