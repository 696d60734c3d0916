#!/usr/bin/env python3
"""Benchmark PKCS#11 signing: airseal's ``Pkcs11Signer`` against raw python-pkcs11.

Run as ``.venv/bin/python tests/bench/hsm.py [--quick]`` (``make bench``).
Prints ONE JSON document on stdout; progress goes to stderr. Timings are
reported, never asserted: ``meets_target`` says whether a target was met on
this machine.

Section ``signing``: for ECDSA P-256 and Ed25519, one key is generated on a
throwaway SoftHSM token and signed with two ways, in alternating blocks whose
order flips every round so machine noise hits both alike:

* **raw** -- python-pkcs11's ``key.sign`` on the key object, as a caller
  without airseal would (for ECDSA including the host-side SHA-256, since
  SoftHSM has no hash-and-sign ECDSA mechanism);
* **signer** -- ``Pkcs11Signer.sign``: the process-wide lock, the session
  check, host-side hashing, raw ``r||s`` → DER, and the verification of every
  signature with the public key.

Headline per algorithm: ``overhead_ratio`` = median raw rate / median signer
rate (target <= 1.2). The signer verifies every signature it returns, a cost
raw signing does not pay and that is as large as SoftHSM's own signing for
ECDSA. So a third variant, **raw_checked**, does by hand what the signer must
do (DER encoding, verification); ``verify_cost_ratio`` = raw / raw_checked is
the price of checking, ``wrapper_overhead_ratio`` = raw_checked / signer is
what airseal adds on top (lock, session check, hashing, dispatch).

Section ``rehearse``: the wall time of ``airseal ceremony rehearse`` on
``ceremony/examples/root-ceremony.toml`` (target <= 15 s), each run a fresh
process, median of several runs.

Exit status: 0 on success, 2 when SoftHSM is not installed.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
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

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: E402
    Prehashed,
    encode_dss_signature,
)

from tests.bench._common import emit, log, machine  # noqa: E402
from toolkit.errors import HSMError  # noqa: E402
from toolkit.signing import KeyAlgorithm  # noqa: E402
from toolkit.signing.pkcs11 import Pkcs11Signer  # noqa: E402
from toolkit.signing.softhsm import SoftHSM  # noqa: E402

OVERHEAD_TARGET = 1.2
MESSAGE = b"airseal hsm benchmark " * 3  # 66 bytes, about a TUF or checkpoint signature input
TOKEN = "airseal-bench"
PIN = "bench-pin-0000"


@dataclass(frozen=True)
class Settings:
    """How much to measure."""

    rounds: int
    block: int
    warmup: int


@dataclass(frozen=True)
class Context:
    """What every section gets: the settings and a SoftHSM store active in this process."""

    settings: Settings
    store: SoftHSM
    scratch: Path


def rate_of(call: Callable[[], object], count: int) -> float:
    """Calls per second over ``count`` back-to-back calls."""
    started = time.perf_counter_ns()
    for _ in range(count):
        call()
    elapsed = time.perf_counter_ns() - started
    return count / (elapsed / 1e9)


def interleaved_rates(
    calls: dict[str, Callable[[], object]], settings: Settings
) -> dict[str, list[float]]:
    """Per-round rates of each call, in alternating blocks (order flips each round)."""
    for call in calls.values():
        for _ in range(settings.warmup):
            call()
    names = list(calls)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(settings.rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            rates[name].append(rate_of(calls[name], settings.block))
    return rates


def _raw_calls(signer: Pkcs11Signer) -> tuple[Callable[[], object], Callable[[], object]]:
    """Raw python-pkcs11 signing on the signer's key: bare, and followed by a host check.

    The checked variant does by hand what the signer must do (DER-encode an
    ECDSA signature, verify it with the public key), so comparing it with the
    signer isolates airseal's own overhead.
    """
    from pkcs11.mechanisms import Mechanism

    raw_key = signer.raw_private_key
    public = signer.public_key
    if isinstance(public, ed25519.Ed25519PublicKey):
        ed_public = public

        def raw_eddsa() -> bytes:
            return bytes(raw_key.sign(MESSAGE, mechanism=Mechanism.EDDSA))

        def checked_eddsa() -> None:
            ed_public.verify(raw_eddsa(), MESSAGE)

        return raw_eddsa, checked_eddsa
    assert isinstance(public, ec.EllipticCurvePublicKey)
    ec_public = public
    prehashed = ec.ECDSA(Prehashed(hashes.SHA256()))

    def raw_ecdsa() -> bytes:
        # SoftHSM has no hash-and-sign ECDSA: a raw caller hashes too.
        return bytes(raw_key.sign(hashlib.sha256(MESSAGE).digest(), mechanism=Mechanism.ECDSA))

    def checked_ecdsa() -> None:
        digest = hashlib.sha256(MESSAGE).digest()
        raw = bytes(raw_key.sign(digest, mechanism=Mechanism.ECDSA))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        ec_public.verify(der, digest, prehashed)

    return raw_ecdsa, checked_ecdsa


def signing_section(context: Context) -> dict[str, Any]:
    """Signatures per second through Pkcs11Signer vs raw python-pkcs11 on the same key."""
    from toolkit.signing.pkcs11 import Pkcs11Module, generate_key

    module = Pkcs11Module.load(context.store.module)
    session = module.find_token(label=TOKEN).session(PIN)
    results: dict[str, Any] = {}
    for algorithm in (KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ED25519):
        log(f"signing: {algorithm.value}")
        signer = generate_key(session, algorithm, f"bench-{algorithm.value}")
        raw, raw_checked = _raw_calls(signer)

        def through_signer(signer: Pkcs11Signer = signer) -> bytes:
            return signer.sign(MESSAGE)

        rates = interleaved_rates(
            {"raw": raw, "signer": through_signer, "raw_checked": raw_checked},
            context.settings,
        )
        raw_rate = statistics.median(rates["raw"])
        signer_rate = statistics.median(rates["signer"])
        checked_rate = statistics.median(rates["raw_checked"])
        ratio = raw_rate / signer_rate
        results[algorithm.value] = {
            "raw_signatures_per_s": round(raw_rate, 1),
            "signer_signatures_per_s": round(signer_rate, 1),
            "raw_checked_signatures_per_s": round(checked_rate, 1),
            "overhead_ratio": round(ratio, 3),
            "meets_target": ratio <= OVERHEAD_TARGET,
            "verify_cost_ratio": round(raw_rate / checked_rate, 3),
            "wrapper_overhead_ratio": round(checked_rate / signer_rate, 3),
            "rounds": {name: [round(r, 1) for r in values] for name, values in rates.items()},
        }
    return {
        "target_overhead_ratio": OVERHEAD_TARGET,
        "message_bytes": len(MESSAGE),
        "block": context.settings.block,
        "rounds": context.settings.rounds,
        "algorithms": results,
    }


REHEARSE_TARGET_S = 15.0
EXAMPLE = ROOT / "ceremony" / "examples" / "root-ceremony.toml"


def rehearse_section(context: Context) -> dict[str, Any]:
    """Wall time of ``airseal ceremony rehearse`` on the example config, process included.

    Each run is a fresh ``airseal`` process (as an operator runs it) creating
    its own SoftHSM tokens, generating every key, linting and issuing the
    certificates, and writing and sealing the outputs.
    """
    import subprocess

    airseal = str(Path(sys.executable).with_name("airseal"))
    runs = 3 if context.settings.rounds < 7 else 5
    times: list[float] = []
    for index in range(runs):
        out = context.scratch / f"rehearsal-{index}"
        started = time.perf_counter()
        result = subprocess.run(
            [airseal, "ceremony", "rehearse", str(EXAMPLE), "--out", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"rehearse failed: {result.stderr.strip()}")
    median = statistics.median(times)
    log(f"rehearse: median {median:.3f} s over {runs} runs")
    return {
        "config": str(EXAMPLE.relative_to(ROOT)),
        "runs": runs,
        "median_s": round(median, 3),
        "times_s": [round(t, 3) for t in times],
        "target_s": REHEARSE_TARGET_S,
        "meets_target": median <= REHEARSE_TARGET_S,
    }


#: Sections in output order: (key in the JSON document, function).
SECTIONS: list[tuple[str, Callable[[Context], dict[str, Any]]]] = [
    ("signing", signing_section),
    ("rehearse", rehearse_section),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (smoke run)")
    parser.add_argument("--rounds", type=int, help="timed rounds per measurement (default 7)")
    parser.add_argument("--block", type=int, help="calls per timed block (default 400)")
    args = parser.parse_args(argv)
    settings = Settings(
        rounds=args.rounds or (3 if args.quick else 7),
        block=args.block or (60 if args.quick else 400),
        warmup=10 if args.quick else 50,
    )
    if settings.rounds < 1 or settings.block < 1:
        parser.error("--rounds and --block must be >= 1")
    document: dict[str, Any] = {
        "benchmark": "airseal PKCS#11 signing on SoftHSM",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": machine(("cryptography", "python-pkcs11", "airseal")),
    }
    with tempfile.TemporaryDirectory(prefix="airseal-bench-hsm-") as scratch:
        try:
            store = SoftHSM.create(Path(scratch) / "softhsm", [(TOKEN, PIN)])
        except HSMError as exc:
            document["error"] = exc.diagnostics()
            emit(document)
            return 2
        # SoftHSM reads SOFTHSM2_CONF once, when the module is first loaded.
        store.activate()
        context = Context(settings, store, Path(scratch))
        for name, section in SECTIONS:
            document[name] = section(context)
    emit(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
