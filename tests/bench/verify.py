#!/usr/bin/env python3
"""Benchmark airseal's offline bundle verification against sigstore-python.

Run as ``.venv/bin/python tests/bench/verify.py`` (``make bench``). Prints ONE
JSON document on stdout; progress goes to stderr. Timings are reported, never
asserted: ``meets_target`` says whether a target was met on this machine.

Two measurements:

* **in-process** -- for every happy case of the shared Sigstore vectors, both
  verifiers are built once, then parse + verify of the bundle bytes is timed
  per call with ``time.perf_counter_ns``. The two implementations run in
  alternating blocks (the order flips every round) so that machine noise hits
  both alike. Headline: ``ratio_of_total_medians`` = sum of airseal medians /
  sum of sigstore-python medians (target <= 0.5).
* **process** -- whole-process ``airseal verify ...`` against
  ``sigstore --trust-config CTC.json verify identity --offline ...`` on one
  bundle, interleaved, every run checked for exit status 0 (target <= 0.35).
  Both run with a private bytecode cache, so neither pays for compiling its
  sources (as with installed packages).

Exit status: 0 when everything verified, 1 when a verifier rejected a happy
case or a command failed (the JSON says which), 2 when the vectors are missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench._common import emit, log, machine, time_interleaved  # noqa: E402

IN_PROCESS_TARGET = 0.5
PROCESS_TARGET = 0.35
PROCESS_CASE = "staging-v0.3-happy"
SIGNING_CONFIG = Path("_trust_parsing") / "signing_config__signingconfig.v2.json"
CTC_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
IN_TOTO = "application/vnd.in-toto+json"
BLOCK = 10  # calls per implementation before switching to the other
WARMUP_RUNS = 2  # untimed runs of each command before the timed ones


def median_us(samples_ns: list[int]) -> float:
    return round(statistics.median(samples_ns) / 1000, 1)


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


# --------------------------------------------------------------------------- the two verifiers


@dataclass
class Case:
    name: str
    bundle: bytes
    trusted_root: Path
    artifact: bytes
    identity: str
    issuer: str
    paths: Any  # the VectorCase


def airseal_call(case: Case) -> Callable[[], object]:
    """Parse + verify with airseal; the verifier is built once, outside the timing."""
    from toolkit.verify import Artifact, IdentityPolicy, Verifier

    verifier = Verifier.from_json(case.trusted_root.read_bytes())
    artifact = Artifact.from_bytes(case.artifact)
    policy = IdentityPolicy(issuer=case.issuer, identity=case.identity)
    now = datetime.now(UTC)
    bundle = case.bundle

    def call() -> object:
        return verifier.verify(bundle, artifact, policy, now=now)

    return call


def sigstore_call(case: Case) -> Callable[[], object]:
    """Parse + verify with sigstore-python, as /work/shared/tools/sigpy_verify.py does."""
    import hashlib

    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier, policy
    from sigstore_models.common.v1 import HashAlgorithm

    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(case.trusted_root)))
    digest = hashlib.sha256(case.artifact).digest()
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest)
    identity = policy.Identity(identity=case.identity, issuer=case.issuer)
    bundle_bytes = case.bundle
    want = digest.hex()

    def call() -> object:
        bundle = Bundle.from_json(bundle_bytes)
        if bundle._inner.dsse_envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle=bundle, policy=identity)
            if payload_type != IN_TOTO:
                raise ValueError(f"unexpected DSSE payloadType {payload_type!r}")
            subjects = json.loads(payload).get("subject") or []
            if not any((s.get("digest") or {}).get("sha256", "").lower() == want for s in subjects):
                raise ValueError("in-toto statement has no subject matching the artifact")
            return payload
        verifier.verify_artifact(input_=hashed, bundle=bundle, policy=identity)
        return None

    return call


# --------------------------------------------------------------------------- in-process


def crypto_floor_us(call: Callable[[], object], iterations: int) -> float:
    """Per-call time airseal spends inside cryptography's signature and chain checks.

    Measured with cProfile, counting only the C-level ``verify`` methods of
    cryptography's key and X.509 verifier objects: the part no implementation
    of the same checks can avoid on one core. The profiler adds a little to
    each call, so this slightly overstates the floor.
    """
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(iterations):
        call()
    profile.disable()
    spent = 0.0
    for (_, _, name), row in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        if name.startswith("<method 'verify' of 'cryptography"):
            spent += row[2]
    return round(spent / iterations * 1e6, 1)


def in_process(cases: list[Case], iterations: int, warmup: int) -> tuple[dict[str, Any], bool]:
    results: list[dict[str, Any]] = []
    ok = True
    for case in cases:
        log(f"in-process: {case.name} ({iterations} iterations each)")
        entry: dict[str, Any] = {"case": case.name}
        try:
            calls = {"airseal": airseal_call(case), "sigstore-python": sigstore_call(case)}
            for name, call in calls.items():  # both must verify before timing means anything
                try:
                    call()
                except Exception as exc:
                    raise RuntimeError(f"{name} rejected the bundle: {exc!r}"[:300]) from None
        except Exception as exc:
            entry["error"] = str(exc)
            results.append(entry)
            ok = False
            log(f"  error: {exc}")
            continue
        samples = time_interleaved(calls, iterations, warmup, BLOCK)
        air, ref = median_us(samples["airseal"]), median_us(samples["sigstore-python"])
        entry.update(
            airseal_median_us=air,
            sigstore_python_median_us=ref,
            ratio=ratio(air, ref),
            airseal_p10_us=round(percentile(samples["airseal"], 0.10) / 1000, 1),
            airseal_p90_us=round(percentile(samples["airseal"], 0.90) / 1000, 1),
            sigstore_python_p10_us=round(percentile(samples["sigstore-python"], 0.10) / 1000, 1),
            sigstore_python_p90_us=round(percentile(samples["sigstore-python"], 0.90) / 1000, 1),
            n=len(samples["airseal"]),
        )
        entry["airseal_crypto_floor_us"] = crypto_floor_us(calls["airseal"], min(iterations, 100))
        log(f"  airseal {air} us, sigstore-python {ref} us, ratio {entry['ratio']}")
        results.append(entry)

    timed = [r for r in results if "ratio" in r]
    total_air = sum(r["airseal_median_us"] for r in timed)
    total_ref = sum(r["sigstore_python_median_us"] for r in timed)
    headline = ratio(total_air, total_ref) if timed else None
    floor = sum(r["airseal_crypto_floor_us"] for r in timed)
    geomean = (
        round(math.exp(statistics.fmean(math.log(r["ratio"]) for r in timed)), 4) if timed else None
    )
    summary = {
        "method": (
            "median per-call time of parse + verify of the bundle bytes; verifiers, "
            "policies and artifact digests built once per case; implementations "
            f"interleaved in blocks of {BLOCK} calls, order alternating every round; "
            f"{warmup} warm-up calls each"
        ),
        "cases": results,
        "airseal_total_median_us": round(total_air, 1),
        "sigstore_python_total_median_us": round(total_ref, 1),
        "ratio_of_total_medians": headline,
        # The ratio airseal would reach if everything but cryptography's signature
        # and chain verification cost nothing: no single-threaded verifier doing
        # these checks can go below it.
        "crypto_floor_ratio": ratio(floor, total_ref) if timed else None,
        "geometric_mean_ratio": geomean,
        "target": IN_PROCESS_TARGET,
        "meets_target": headline is not None and ok and headline <= IN_PROCESS_TARGET,
    }
    return summary, ok


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- process


def process(case: Case, vectors: Path, runs: int) -> tuple[dict[str, Any], bool]:
    bindir = Path(sys.executable).parent  # the venv's bin; do not resolve the symlink
    airseal, sigstore = bindir / "airseal", bindir / "sigstore"
    out: dict[str, Any] = {
        "case": case.name,
        "runs": runs,
        "warmup_runs": WARMUP_RUNS,
        "target": PROCESS_TARGET,
    }
    missing = [str(p) for p in (airseal, sigstore) if not p.exists()]
    if missing:
        out.update(error=f"executables not found: {', '.join(missing)}", meets_target=False)
        return out, False

    with tempfile.TemporaryDirectory(prefix="airseal-bench-") as tmp:
        ctc = Path(tmp) / "trust_config.json"
        ctc.write_text(
            json.dumps(
                {
                    "mediaType": CTC_MEDIA_TYPE,
                    "trustedRoot": json.loads(case.trusted_root.read_bytes()),
                    "signingConfig": json.loads((vectors / SIGNING_CONFIG).read_bytes()),
                }
            )
        )
        artifact = str(case.paths.artifact_path)
        bundle = str(case.paths.bundle_path)
        commands = {
            "airseal": [
                str(airseal),
                "verify",
                artifact,
                "--bundle",
                bundle,
                "--trusted-root",
                str(case.trusted_root),
                "--identity",
                case.identity,
                "--issuer",
                case.issuer,
            ],
            "sigstore-python": [
                str(sigstore),
                "--trust-config",
                str(ctc),
                "verify",
                "identity",
                "--offline",
                "--bundle",
                bundle,
                "--cert-identity",
                case.identity,
                "--cert-oidc-issuer",
                case.issuer,
                artifact,
            ],
        }
        out["commands"] = {
            name: " ".join(Path(a).name if a.startswith(tmp) else a for a in cmd)
            for name, cmd in commands.items()
        }
        # Both tools run from cached bytecode, as installed packages do: a private
        # pycache (filled by the warm-up rounds) instead of whatever the caller's
        # environment says (PYTHONDONTWRITEBYTECODE would make airseal, run from a
        # source checkout, recompile itself on every run while sigstore's wheel
        # ships .pyc files).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        out["bytecode"] = "cached in a private PYTHONPYCACHEPREFIX, filled by the warm-ups"
        samples: dict[str, list[int]] = {name: [] for name in commands}
        failures: list[str] = []
        names = list(commands)
        total = WARMUP_RUNS + runs
        for i in range(total):
            for name in names if i % 2 == 0 else names[::-1]:
                start = time.perf_counter_ns()
                done = subprocess.run(commands[name], capture_output=True, check=False, env=env)
                elapsed = time.perf_counter_ns() - start
                if done.returncode != 0:
                    tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-300:]
                    failures.append(f"{name} exited {done.returncode}: {tail}")
                elif i >= WARMUP_RUNS:
                    samples[name].append(elapsed)
            log(f"process: round {i + 1}/{total}")
    if failures:
        out.update(error=failures[0], failures=len(failures), meets_target=False)
        return out, False
    air = round(statistics.median(samples["airseal"]) / 1e6, 2)
    ref = round(statistics.median(samples["sigstore-python"]) / 1e6, 2)
    out.update(
        airseal_median_ms=air,
        sigstore_python_median_ms=ref,
        airseal_min_ms=round(min(samples["airseal"]) / 1e6, 2),
        sigstore_python_min_ms=round(min(samples["sigstore-python"]) / 1e6, 2),
        ratio=ratio(air, ref),
    )
    out["meets_target"] = out["ratio"] is not None and out["ratio"] <= PROCESS_TARGET
    log(f"  airseal {air} ms, sigstore-python {ref} ms, ratio {out['ratio']}")
    return out, True


# --------------------------------------------------------------------------- main


def load_happy_cases() -> tuple[Path, list[Case]] | str:
    """The vectors folder and its happy cases, or why they cannot be loaded."""
    from tests.conftest import load_cases, vectors_root

    folder = vectors_root() / "sigstore-python"
    if not (folder / "INDEX.json").is_file():
        return f"shared Sigstore vectors not found at {folder} (set AIRSEAL_VECTORS)"
    cases = []
    for vc in load_cases():
        if vc.expected != "pass":
            continue
        if vc.artifact_path is None:
            return f"vector case {vc.name} has no artifact file"
        cases.append(
            Case(
                name=vc.name,
                bundle=vc.bundle_path.read_bytes(),
                trusted_root=vc.trusted_root_path,
                artifact=vc.artifact_path.read_bytes(),
                identity=vc.identity,
                issuer=vc.issuer,
                paths=vc,
            )
        )
    if not cases:
        return f"no happy cases in {folder / 'INDEX.json'}"
    return folder, cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=300, help="timed calls per case")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls per case")
    parser.add_argument("--process-runs", type=int, default=15, help="timed runs per command")
    parser.add_argument("--no-process", action="store_true", help="skip the process benchmark")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.process_runs < 1 or args.warmup < 0:
        parser.error("--iterations and --process-runs must be >= 1, --warmup >= 0")

    loaded = load_happy_cases()
    if isinstance(loaded, str):
        emit({"error": loaded})
        return 2
    vectors, cases = loaded
    document: dict[str, Any] = {
        "benchmark": "airseal offline bundle verification vs sigstore-python",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(("cryptography", "sigstore", "airseal")),
    }
    document["in_process"], ok = in_process(cases, args.iterations, args.warmup)
    if args.no_process:
        document["process"] = None
    else:
        chosen = [c for c in cases if c.name == PROCESS_CASE]
        if not chosen:
            document["process"] = {"error": f"vector case {PROCESS_CASE} not found"}
            ok = False
        else:
            document["process"], process_ok = process(chosen[0], vectors, args.process_runs)
            ok = ok and process_ok
    emit(document)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
