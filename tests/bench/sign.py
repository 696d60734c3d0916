#!/usr/bin/env python3
"""Benchmark end-to-end keyless signing: signatures/s and p50/p99 latency.

Run as ``.venv/bin/python tests/bench/sign.py [--quick] [--duration S] [--signers 1,8,32]``.
Prints ONE JSON document on stdout; progress goes to stderr. Nothing is asserted.

The instance runs as an operator would run it, on 127.0.0.1, from a rehearsed
ceremony with a P-256 intermediate (keys on SoftHSM): ``airseal serve``
processes for oidc-dev, the CT log, the CA, the TSA and a Rekor v2 log
(tests/support/issuance.py). The client is :class:`toolkit.sign.SigningClient`
in this process, N signer threads each with its own client and HTTP
connection pool; one signature is the whole ``airseal sign`` flow minus
process start-up and file writes:

ephemeral P-256 key → Fulcio v2 request with proof of possession → chain +
SCT checked against the trusted root → ECDSA over the artifact → RFC 3161
timestamp (nonce, imprint checked) → Rekor v2 entry with inclusion proof and
checkpoint (durable before the log answers) → bundle v0.3 → full offline
verification of the bundle.

Tokens are fetched from oidc-dev before the clock starts (one per signer).
Reported per concurrency level: completed signatures, signatures/s, p50/p99
latency, errors by type, and the median time of each step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench._common import log, machine  # noqa: E402
from tests.support.instance import EXAMPLE_CEREMONY, rehearse  # noqa: E402
from tests.support.issuance import IssuanceInstance, p256_ceremony_config  # noqa: E402
from toolkit.models.trustroot import TrustedRoot  # noqa: E402
from toolkit.sign import Endpoints, SigningClient  # noqa: E402

STEPS = ("certificate", "timestamp", "log", "verify")


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def run_level(
    root: TrustedRoot,
    endpoints: Endpoints,
    tokens: list[str],
    signers: int,
    duration: float,
    warmup: int,
) -> dict[str, Any]:
    """``signers`` threads signing in a loop for ``duration`` seconds."""
    latencies: list[float] = []
    steps: dict[str, list[float]] = {step: [] for step in STEPS}
    errors: Counter[str] = Counter()
    samples: list[str] = []
    lock = threading.Lock()
    deadline = [0.0]

    def set_clock() -> None:  # runs once, before any thread passes the barrier
        deadline[0] = time.perf_counter() + duration

    start = threading.Barrier(signers + 1, action=set_clock)

    def worker(n: int) -> None:
        token = tokens[n]
        with SigningClient(root, endpoints, timeout=30) as client:
            for i in range(warmup):  # connection pools, JWKS cache, first sessions
                client.sign_keyless(f"warm-up {n} {i}".encode(), token)
            start.wait()
            i = 0
            while time.perf_counter() < deadline[0]:
                artifact = f"bench artifact {n} {i}\n".encode()
                i += 1
                began = time.perf_counter()
                try:
                    result = client.sign_keyless(artifact, token)
                except Exception as exc:  # counted, the run goes on
                    with lock:
                        errors[type(exc).__name__] += 1
                        if len(samples) < 3:
                            samples.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                took = time.perf_counter() - began
                with lock:
                    latencies.append(took)
                    for step in STEPS:
                        steps[step].append(result.timings.get(step, 0.0))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(signers)]
    for thread in threads:
        thread.start()
    start.wait()
    began = deadline[0] - duration
    for thread in threads:
        thread.join(duration + 120)
    wall = time.perf_counter() - began
    done = len(latencies)
    return {
        "signers": signers,
        "duration_s": duration,
        "wall_s": round(wall, 3),
        "completed": done,
        "signatures_per_s": round(done / wall, 2) if wall else None,
        "p50_latency_s": _round(_percentile(latencies, 0.5)),
        "p99_latency_s": _round(_percentile(latencies, 0.99)),
        "median_step_s": {
            step: _round(statistics.median(values)) if values else None
            for step, values in steps.items()
        },
        "errors": dict(errors),
        "sample_errors": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--duration", type=float, help="seconds per level (default 10, quick 4)")
    parser.add_argument(
        "--signers", help="comma-separated concurrency levels (default 1,8,32; quick 1,4)"
    )
    args = parser.parse_args(argv)
    duration = args.duration or (4.0 if args.quick else 10.0)
    levels = [
        int(x)
        for x in (args.signers or ("1,4" if args.quick else "1,8,32")).split(",")
        if x.strip()
    ]
    document: dict[str, Any] = {
        "benchmark": "airseal end-to-end keyless signing (CA + CT, TSA, Rekor v2 log)",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": machine(["cryptography", "python-pkcs11", "httpx", "uvicorn"]),
        "client": "toolkit.sign.SigningClient in-process, one thread + httpx.Client per signer",
        "per_signature": "P-256 keygen, signingCert (PoP) + chain/SCT check, ECDSA sign, "
        "RFC 3161 timestamp, Rekor v2 hashedrekord entry (durable, inclusion proof), "
        "bundle v0.3, full offline self-verification",
        "ceremony": "example with a P-256 intermediate, keys on SoftHSM",
    }
    with tempfile.TemporaryDirectory(prefix="airseal-bench-sign-") as name:
        scratch = Path(name)
        log("rehearsing the P-256-intermediate ceremony…")
        ceremony = rehearse(scratch / "ceremony", p256_ceremony_config(EXAMPLE_CEREMONY, scratch))
        work = scratch / "services"
        work.mkdir()
        log("starting oidc-dev, ct, ca, tsa and log…")
        with IssuanceInstance(ceremony, work, tsa=True, log=True) as instance:
            assert instance.tsa_url is not None and instance.log_url is not None
            root = TrustedRoot.from_json(ceremony.trusted_root.read_bytes())
            endpoints = Endpoints.explicit(instance.ca_url, instance.tsa_url, instance.log_url)
            tokens = [
                instance.token(f"signer{n}@bench.example", lifetime=3600)
                for n in range(max(levels))
            ]
            runs = []
            for signers in levels:
                log(f"{signers} signer(s): {duration:.0f} s…")
                result = run_level(root, endpoints, tokens, signers, duration, warmup=2)
                log(
                    f"{signers} signer(s): {result['signatures_per_s']} signatures/s, "
                    f"p50 {result['p50_latency_s']} s, p99 {result['p99_latency_s']} s, "
                    f"errors {result['errors']}"
                )
                runs.append(result)
    document["runs"] = runs
    best = max(runs, key=lambda r: r["signatures_per_s"] or 0)
    document["best"] = {
        "signers": best["signers"],
        "signatures_per_s": best["signatures_per_s"],
        "p50_latency_s": best["p50_latency_s"],
        "p99_latency_s": best["p99_latency_s"],
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
