#!/usr/bin/env python3
"""Benchmark online issuance: certificates/s from the CA and timestamps/s from the TSA.

Run as ``.venv/bin/python tests/bench/issuance.py [--quick] [--duration S]``.
Prints ONE JSON document on stdout; progress goes to stderr. Nothing is
asserted: ``meets_target`` says whether a target was met.

Everything runs as an operator would run it, on 127.0.0.1, with keys on
SoftHSM from a rehearsed ceremony (``airseal ceremony rehearse``):

* section ``ca`` -- ``airseal serve oidc-dev``, ``airseal serve ct`` and
  ``airseal serve ca`` processes. Each request is a Fulcio v2
  ``publicKeyRequest`` with its own P-256 key and proof of possession and an
  oidc-dev token (prepared before the clock starts); each certificate costs two
  intermediate signatures on SoftHSM (precertificate and certificate), an
  ``add-pre-chain`` round trip to the CT log (whose SCT is signed on SoftHSM
  and whose entry is durable in its log before it answers), and the CA's
  self-checks. Measured twice: with a **P-256 intermediate** (a ceremony
  config derived from the example) and with the example's **P-384**
  intermediate (SoftHSM signs P-384 ~13x slower than P-256). Target: >= 500
  certificates/s.
* section ``tsa`` -- ``airseal serve tsa`` with the ceremony's TSA key
  (P-256) on SoftHSM; each request is a unique RFC 3161 query (SHA-256
  imprint, nonce, certReq). Target: >= 1,000 timestamps/s.

Reported per run: completed requests per second, p50/p99 latency (request
sent -> full answer read), errors by status. The load generator is asyncio
over raw HTTP/1.1 keep-alive connections (uvloop) in this process; it shares
the machine's cores with the servers, as the issue asks.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench._common import log, machine  # noqa: E402
from tests.bench._load import run_load  # noqa: E402
from tests.support.instance import (  # noqa: E402
    EXAMPLE_CEREMONY,
    RehearsedCeremony,
    ServiceProcess,
    rehearse,
    write_config,
)
from tests.support.issuance import IssuanceInstance, p256_ceremony_config  # noqa: E402

TARGET_CERTS_PER_S = 500.0
TARGET_TIMESTAMPS_PER_S = 1000.0
EMAIL_DOMAIN = "bench.airseal.test"
IDENTITIES = 32


# -- requests, prepared before the clock starts -------------------------------------


def _ca_requests(args: tuple[list[tuple[str, str]], int]) -> list[bytes]:
    """``count`` signingCert bodies, each with a fresh P-256 key (a worker process)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tokens, count = args
    out: list[bytes] = []
    for n in range(count):
        email, token = tokens[n % len(tokens)]
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        proof = key.sign(email.encode(), ec.ECDSA(hashes.SHA256()))
        body = {
            "credentials": {"oidcIdentityToken": token},
            "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": pem.decode()},
                "proofOfPossession": base64.b64encode(proof).decode(),
            },
        }
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def _tsa_requests(count: int) -> list[bytes]:
    from rfc3161_client import TimestampRequestBuilder

    return [
        TimestampRequestBuilder()
        .data(os.urandom(64))
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
        .as_bytes()
        for _ in range(count)
    ]


def _parallel(jobs: list[tuple[list[tuple[str, str]], int]]) -> list[bytes]:
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        chunks = pool.map(_ca_requests, jobs)
    return [body for chunk in chunks for body in chunk]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# -- sections ----------------------------------------------------------------------------


def _ca_run(
    ceremony: RehearsedCeremony, work: Path, label: str, args: argparse.Namespace
) -> dict[str, Any]:
    work.mkdir()
    with IssuanceInstance(ceremony, work, ca_extra={"workers": args.ca_workers}) as instance:
        tokens = [
            (
                f"signer{n}@{EMAIL_DOMAIN}",
                instance.token(f"signer{n}@{EMAIL_DOMAIN}", lifetime=3600),
            )
            for n in range(IDENTITIES)
        ]
        count = int(args.ca_prepare_rate * args.duration) + args.warmup
        log(f"ca {label}: preparing {count} requests…")
        workers = os.cpu_count() or 2
        per = -(-count // workers)
        requests = _parallel([(tokens, per) for _ in range(workers)])
        path = "/api/v2/signingCert"
        # Warm-up: JWKS fetch, connection pools, first HSM sessions.
        run_load(
            _port(instance.ca_url), path, "application/json", 201, requests[: args.warmup], 5, 8
        )
        before = instance.ct_tree_size()
        log(f"ca {label}: {args.duration:.0f} s of load, {args.connections} connections…")
        result = run_load(
            _port(instance.ca_url),
            path,
            "application/json",
            201,
            requests[args.warmup :],
            args.duration,
            args.connections,
        )
        time.sleep(0.5)
        result["ct_entries_added"] = instance.ct_tree_size() - before
    result["ca_workers"] = args.ca_workers
    result["meets_target"] = result["per_s"] >= TARGET_CERTS_PER_S
    log(
        f"ca {label}: {result['per_s']} certificates/s, p50 {result['p50_latency_s']} s, "
        f"p99 {result['p99_latency_s']} s, errors {result['errors']}"
    )
    return result


def ca_section(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    log("rehearsing the P-256-intermediate ceremony…")
    config = p256_ceremony_config(EXAMPLE_CEREMONY, scratch)
    p256 = rehearse(scratch / "ceremony-p256", config)
    results["p256_intermediate"] = _ca_run(p256, scratch / "ca-p256", "P-256", args)
    if not args.skip_p384:
        log("rehearsing the example (P-384-intermediate) ceremony…")
        p384 = rehearse(scratch / "ceremony-p384")
        results["p384_intermediate"] = _ca_run(p384, scratch / "ca-p384", "P-384", args)
    return {
        "target_certificates_per_s": TARGET_CERTS_PER_S,
        "target_run": "p256_intermediate",
        "request": "publicKeyRequest, fresh P-256 subject key + proof of possession, "
        "RS256 oidc-dev token (32 identities)",
        "per_certificate": "token verify, PoP verify, 2 intermediate signatures on SoftHSM, "
        "add-pre-chain over HTTP (CT: chain check, SCT signed on SoftHSM, durable log entry), "
        "TBS equality + certificate + SCT self-checks",
        "runs": results,
    }


def tsa_section(
    args: argparse.Namespace, scratch: Path, ceremony: RehearsedCeremony
) -> dict[str, Any]:
    count = int(args.tsa_prepare_rate * args.duration) + args.warmup
    log(f"tsa: preparing {count} RFC 3161 queries…")
    requests = _tsa_requests(count)
    config = write_config(
        scratch / "tsa.toml",
        ceremony,
        {"tsa": {"listen": "127.0.0.1:0", "key": "tsa", "chain": str(ceremony.tsa_chain)}},
    )
    process = ServiceProcess(["serve", "tsa", "--config", str(config)], ceremony.env).start()
    try:
        path = "/api/v1/timestamp"
        kind = "application/timestamp-query"
        run_load(_port(process.url), path, kind, 200, requests[: args.warmup], 5, 8)
        log(f"tsa: {args.duration:.0f} s of load, {args.connections} connections…")
        result = run_load(
            _port(process.url),
            path,
            kind,
            200,
            requests[args.warmup :],
            args.duration,
            args.connections,
        )
    finally:
        process.stop()
    result["meets_target"] = result["per_s"] >= TARGET_TIMESTAMPS_PER_S
    log(
        f"tsa: {result['per_s']} timestamps/s, p50 {result['p50_latency_s']} s, "
        f"p99 {result['p99_latency_s']} s, errors {result['errors']}"
    )
    return {
        "target_timestamps_per_s": TARGET_TIMESTAMPS_PER_S,
        "key": "ECDSA P-256 on SoftHSM (the ceremony's tsa key)",
        "request": "SHA-256 imprint, nonce, certReq",
        "run": result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="5 s runs (smoke test)")
    parser.add_argument("--duration", type=float, help="seconds of load per run (default 20)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skip-p384", action="store_true", help="only the P-256 CA run")
    parser.add_argument("--skip-tsa", action="store_true")
    parser.add_argument("--skip-ca", action="store_true")
    parser.add_argument("--ca-prepare-rate", type=float, default=1200.0)
    parser.add_argument(
        "--ca-workers",
        type=int,
        default=os.cpu_count() or 2,
        help="[ca] workers: CA processes sharing the port (default: one per core)",
    )
    parser.add_argument("--tsa-prepare-rate", type=float, default=3000.0)
    args = parser.parse_args(argv)
    args.duration = args.duration or (5.0 if args.quick else 20.0)
    args.warmup = 200
    document: dict[str, Any] = {
        "benchmark": "airseal online issuance (CA + CT, TSA)",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": machine(["cryptography", "python-pkcs11", "uvicorn", "starlette"]),
    }
    with tempfile.TemporaryDirectory(prefix="airseal-bench-issuance-") as name:
        scratch = Path(name)
        if not args.skip_ca:
            document["ca"] = ca_section(args, scratch)
        if not args.skip_tsa:
            tsa_dir = scratch / "tsa"
            tsa_dir.mkdir()
            ceremony = rehearse(tsa_dir / "ceremony")
            document["tsa"] = tsa_section(args, tsa_dir, ceremony)
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
