"""What every benchmark script shares: progress on stderr, and a description of the machine."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["emit", "log", "machine", "time_interleaved"]


def emit(document: dict[str, Any]) -> None:
    """The benchmark's one JSON document, on stdout."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def time_interleaved(
    calls: dict[str, Callable[[], object]], iterations: int, warmup: int, block: int = 10
) -> dict[str, list[int]]:
    """Per-call times (ns) of each callable, run in alternating blocks.

    Each callable runs ``block`` times before the next takes over, and the
    order flips every round, so that a change in the machine's load touches
    every implementation alike.
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    samples: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    rounds = max(1, math.ceil(iterations / block))
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            call, out = calls[name], samples[name]
            for _ in range(min(block, iterations - r * block)):
                start = clock()
                call()
                out.append(clock() - start)
    return samples


def log(message: str) -> None:
    """Progress for humans: stderr, so that stdout stays JSON only."""
    print(message, file=sys.stderr, flush=True)


def machine(packages: Iterable[str], **extra: Any) -> dict[str, Any]:
    """Python, platform, CPU and the versions of ``packages`` (None when absent)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        **extra,
    }
    for package in packages:
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info
