#!/usr/bin/env python3
"""Benchmark offline kit verification: TUF chain + bundle, against python-tuf + sigstore-python.

Run as ``.venv/bin/python tests/bench/kit.py``. Prints ONE JSON document on
stdout; progress goes to stderr. Timings are reported, never asserted:
``meets_target`` says whether a target was met on this machine.

The kit: a TUF repository with roots v1..v3 (key changes at each rotation),
timestamp, snapshot, targets (``tests/support/tuf_repo.py``) and one
FakeSigstore bundle (Rekor v2 entry + RFC 3161 timestamp) whose
``trusted_root.json`` is the signed target.

* **in-process** -- per call, with a warm state directory (the steady state of
  a machine that verifies kits repeatedly):

  - ``airseal``: ``Kit.decode`` of the kit bytes + ``verify_kit`` (python-tuf
    Updater over the in-memory fetcher from the pinned root, target hash
    check, ``Verifier.from_json`` of the verified trusted root, bundle
    verification). Target: median <= 15 ms.
  - ``python-tuf + sigstore-python``: the same two steps with the stock
    tools: a stock ``tuf.ngclient.Updater`` over an in-memory fetcher (the
    mirror layout), ``refresh()``, ``get_targetinfo`` + length/hash check of
    the target bytes, then sigstore-python ``TrustedRoot`` parse,
    ``Verifier`` and ``verify_artifact``. Target ratio airseal/reference <= 0.7.

  Both run interleaved in blocks of 10 calls, the order flipping every round.
* **process** -- whole-process ``airseal verify ARTIFACT --kit K
  --root-sha256 H --identity … --issuer …`` (warm state, private bytecode
  cache filled by warm-up runs), median wall time.

Exit status: 0 when everything verified, 1 when a step failed (the JSON says which).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
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

from tests.bench._common import emit, log, machine, time_interleaved  # noqa: E402

MEDIAN_TARGET_MS = 15.0
RATIO_TARGET = 0.7
BLOCK = 10
WARMUP_RUNS = 2


def median_ms(samples: list[int]) -> float:
    return round(statistics.median(samples) / 1e6, 3)


def percentile_ms(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)


class Setup:
    """The kit, its pieces, and the state directories of both implementations."""

    def __init__(self, tmp: Path) -> None:
        from tests.support.tuf_repo import TufRepo, material

        self.material = material()
        now = datetime.now(UTC).replace(microsecond=0)
        repo = TufRepo(self.material.target_files, now=now)
        repo.rotate_root(replace_root_key=2, root_key_type="ecdsa", rotate=("timestamp",))
        repo.rotate_root(
            replace_root_key=0, root_key_type="ed25519", rotate=("snapshot", "timestamp")
        )
        self.published = repo.publish()
        self.kit_bytes = self.published.kit([self.material.bundle]).encode()
        self.root_sha = hashlib.sha256(self.published.roots[0]).hexdigest()
        self.tmp = tmp
        self.kit_path = tmp / "bench.airseal"
        self.kit_path.write_bytes(self.kit_bytes)
        self.artifact_path = tmp / "artifact.bin"
        self.artifact_path.write_bytes(self.material.artifact)


def airseal_call(setup: Setup) -> Callable[[], object]:
    from toolkit.trust.kit import Kit
    from toolkit.trust.offline import PinnedRoot, verify_kit
    from toolkit.verify import Artifact, IdentityPolicy

    m = setup.material
    state = setup.tmp / "airseal-state"
    pin = PinnedRoot.from_hex(setup.root_sha)
    artifact = Artifact.from_bytes(m.artifact)
    policy = IdentityPolicy(issuer=m.issuer, identity=m.identity)
    data = setup.kit_bytes

    def call() -> object:
        kit = Kit.decode(data)
        return verify_kit(kit, artifact, policy, pin, state_dir=state, now=datetime.now(UTC))

    return call


def reference_call(setup: Setup) -> Callable[[], object]:
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier, policy
    from sigstore_models.common.v1 import HashAlgorithm
    from sigstore_models.trustroot import v1 as trustroot_v1
    from tuf.ngclient import Updater

    from toolkit.trust._fetchers import MemoryFetcher, memory_urls

    published = setup.published
    files = {f"metadata/{v}.root.json": data for v, data in enumerate(published.roots, start=1)}
    files["metadata/timestamp.json"] = published.timestamp
    files[f"metadata/{published.versions['snapshot']}.snapshot.json"] = published.snapshot
    files[f"metadata/{published.versions['targets']}.targets.json"] = published.targets
    fetcher = MemoryFetcher(files)
    metadata_url, targets_url = memory_urls()
    state = setup.tmp / "reference-state"
    state.mkdir()
    bootstrap = published.roots[0]
    target_bytes = published.target_files["trusted_root.json"]
    m = setup.material
    digest = hashlib.sha256(m.artifact).digest()
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest)
    identity = policy.Identity(identity=m.identity, issuer=m.issuer)
    bundle_bytes = m.bundle

    def call() -> object:
        updater = Updater(
            str(state),
            metadata_url,
            str(state / "t"),
            targets_url,
            fetcher=fetcher,
            bootstrap=bootstrap,
        )
        updater.refresh()
        info = updater.get_targetinfo("trusted_root.json")
        assert info is not None
        info.verify_length_and_hashes(target_bytes)
        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(target_bytes))
        verifier = Verifier(trusted_root=root)
        verifier.verify_artifact(
            input_=hashed, bundle=Bundle.from_json(bundle_bytes), policy=identity
        )
        return None

    return call


def in_process(setup: Setup, iterations: int, warmup: int) -> tuple[dict[str, Any], bool]:
    log(f"in-process: {iterations} iterations each")
    try:
        calls = {"airseal": airseal_call(setup), "reference": reference_call(setup)}
        for name, call in calls.items():
            try:
                call()
            except Exception as exc:
                raise RuntimeError(f"{name} failed: {exc!r}"[:300]) from None
    except Exception as exc:
        log(f"  error: {exc}")
        return {"error": str(exc), "meets_target": False}, False
    samples = time_interleaved(calls, iterations, warmup, BLOCK)
    air, ref = median_ms(samples["airseal"]), median_ms(samples["reference"])
    ratio = round(air / ref, 4) if ref else None
    log(f"  airseal {air} ms, python-tuf + sigstore-python {ref} ms, ratio {ratio}")
    return {
        "method": (
            "median per-call time, warm state directories, implementations interleaved in "
            f"blocks of {BLOCK} calls with the order alternating; {warmup} warm-up calls each"
        ),
        "kit": {"roots": len(setup.published.roots), "bundles": 1, "bytes": len(setup.kit_bytes)},
        "airseal_median_ms": air,
        "airseal_p10_ms": percentile_ms(samples["airseal"], 0.1),
        "airseal_p90_ms": percentile_ms(samples["airseal"], 0.9),
        "reference_median_ms": ref,
        "reference_p10_ms": percentile_ms(samples["reference"], 0.1),
        "reference_p90_ms": percentile_ms(samples["reference"], 0.9),
        "reference": "python-tuf Updater refresh + target check, then sigstore-python verify",
        "ratio": ratio,
        "n": len(samples["airseal"]),
        "median_target_ms": MEDIAN_TARGET_MS,
        "ratio_target": RATIO_TARGET,
        "meets_median_target": air <= MEDIAN_TARGET_MS,
        "meets_ratio_target": ratio is not None and ratio <= RATIO_TARGET,
    }, True


def process(setup: Setup, runs: int) -> tuple[dict[str, Any], bool]:
    airseal = Path(sys.executable).parent / "airseal"
    m = setup.material
    command = [
        str(airseal),
        "verify",
        str(setup.artifact_path),
        "--kit",
        str(setup.kit_path),
        "--root-sha256",
        setup.root_sha,
        "--identity",
        m.identity,
        "--issuer",
        m.issuer,
        "--state",
        str(setup.tmp / "cli-state"),
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(setup.tmp / "pycache")
    samples: list[int] = []
    for i in range(WARMUP_RUNS + runs):
        start = time.perf_counter_ns()
        done = subprocess.run(command, capture_output=True, check=False, env=env)
        elapsed = time.perf_counter_ns() - start
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-300:]
            return {"error": f"airseal exited {done.returncode}: {tail}"}, False
        if i >= WARMUP_RUNS:
            samples.append(elapsed)
    out = {
        "command": "airseal verify ARTIFACT --kit KIT --root-sha256 HEX --identity I "
        "--issuer U --state DIR",
        "runs": runs,
        "warmup_runs": WARMUP_RUNS,
        "bytecode": "cached in a private PYTHONPYCACHEPREFIX, filled by the warm-ups",
        "median_ms": round(statistics.median(samples) / 1e6, 2),
        "min_ms": round(min(samples) / 1e6, 2),
    }
    log(f"process: airseal verify --kit median {out['median_ms']} ms")
    return out, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--iterations", type=int, default=200, help="timed calls per implementation"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls per implementation")
    parser.add_argument("--process-runs", type=int, default=10, help="timed CLI runs")
    parser.add_argument("--no-process", action="store_true", help="skip the process benchmark")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.process_runs < 1 or args.warmup < 0:
        parser.error("--iterations and --process-runs must be >= 1, --warmup >= 0")
    document: dict[str, Any] = {
        "benchmark": "airseal offline kit verification vs python-tuf + sigstore-python",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(("cryptography", "tuf", "securesystemslib", "sigstore", "airseal")),
    }
    with tempfile.TemporaryDirectory(prefix="airseal-bench-kit-") as tmp:
        setup = Setup(Path(tmp))
        document["in_process"], ok = in_process(setup, args.iterations, args.warmup)
        if args.no_process:
            document["process"] = None
        else:
            document["process"], process_ok = process(setup, args.process_runs)
            ok = ok and process_ok
    emit(document)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
