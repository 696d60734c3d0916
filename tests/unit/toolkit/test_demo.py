from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_cases, require_vectors
from toolkit.demo import main


def test_demo_verifies_every_happy_vector(capsys: pytest.CaptureFixture[str]) -> None:
    vectors = require_vectors().parent
    assert main(["--vectors", str(vectors)]) == 0
    out = capsys.readouterr().out
    rows = sum(2 if c.artifact_path else 1 for c in load_cases() if c.expected == "pass")
    assert f"{rows} of {rows} verified offline, 0 failed." in out
    assert "staging-rekor2-dsse-happy" in out


def test_demo_without_vectors_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--vectors", str(tmp_path)]) == 2
    assert "no Sigstore vectors" in capsys.readouterr().err
