"""What every benchmark script shares: progress on stderr, and a description of the machine."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["log", "machine"]


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
