"""DESIGN.md §2 dependency rules, enforced on the source and at run time.

The pure core (verifier, models, Merkle, notes) must not import network,
server, HSM or TUF code, so that verification stays a pure function and the
air-gapped path loads nothing that could touch a network or a device.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PURE = ["toolkit.verify", "toolkit.models", "toolkit.merkle", "toolkit.note"]
# Module prefixes the pure core must never import, directly or transitively.
# The stdlib ``socket`` module is not listed: cryptography.x509 loads it through
# email.utils, and loading it opens nothing; network *clients* are listed.
FORBIDDEN = [
    "ssl",
    "http",
    "urllib.request",
    "requests",
    "httpx",
    "urllib3",
    "asyncio",
    "starlette",
    "uvicorn",
    "psycopg",
    "sqlite3",
    "pkcs11",
    "tuf",
    "securesystemslib",
    "toolkit.services",
    "toolkit.cli",
    "toolkit.trust",
    "toolkit.signing",
    "toolkit.sign",
    "ceremony",
    "sigstore",
]


def _is_forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def _sources(module: str) -> list[Path]:
    path = REPO / Path(*module.split("."))
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    return [path.with_suffix(".py")]


@pytest.mark.parametrize("module", PURE)
def test_pure_core_source_imports(module: str) -> None:
    offending: list[str] = []
    for source in _sources(module):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offending.extend(f"{source.name}: {n}" for n in names if _is_forbidden(n))
    assert not offending


def test_pure_core_loads_nothing_forbidden_at_run_time() -> None:
    # A fresh interpreter, so that nothing the test runner imported counts.
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in PURE)
        + "import toolkit.verify._rfc3161\n"
        + "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if _is_forbidden(m)] == []
    # The check itself must be able to fail: the CLI is on the forbidden list.
    assert _is_forbidden("toolkit.cli._verify")


def test_toolkit_never_imports_ceremony() -> None:
    for source in sorted((REPO / "toolkit").rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("ceremony"), source
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("ceremony") for a in node.names), source
