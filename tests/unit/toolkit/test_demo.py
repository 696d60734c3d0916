from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import load_cases, require_vectors
from toolkit.demo import (
    READY_NAMES,
    Demo,
    DemoError,
    error_code,
    find_port_base,
    flip_byte,
    main,
    parse_ready_line,
    render_table,
    sample_release,
    vectors_step,
)


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


def test_vectors_step_skips_without_vectors_unless_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert vectors_step(tmp_path, echo=lambda _: None).startswith("skipped: no Sigstore vectors")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(DemoError, match="CI is set"):
        vectors_step(tmp_path, echo=lambda _: None)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("oidc-dev listening on http://127.0.0.1:3000", ("oidc-dev", "http://127.0.0.1:3000")),
        (
            "ct ctlog.airseal.example listening on http://127.0.0.1:3002",
            ("ct", "http://127.0.0.1:3002"),
        ),
        ("tuf listening on http://127.0.0.1:3005\n", ("tuf", "http://127.0.0.1:3005")),
        ("vkey tlog.airseal.example+3ba9cc6d+AdkW", None),
        ("WARNING: oidc-dev is a DEVELOPMENT-ONLY OIDC issuer", None),
        ("ca: 2 worker processes", None),
    ],
)
def test_parse_ready_line(line: str, expected: tuple[str, str] | None) -> None:
    assert parse_ready_line(line) == expected


def test_ready_names_follow_the_port_contract() -> None:
    # airseal init --port-base N: oidc-dev N, CA N+1, CT N+2, log N+3, TSA N+4, TUF N+5.
    assert READY_NAMES == ("oidc-dev", "ca", "ct", "log", "tsa", "tuf")


def test_error_code() -> None:
    assert error_code("error[tlog.body]: log entry records a different digest\n") == "tlog.body"
    assert error_code("x\nerror[kit.mix-and-match]: y") == "kit.mix-and-match"
    assert error_code("error: no such file") is None


def test_flip_byte_changes_exactly_one_byte() -> None:
    data = bytes(range(16))
    flipped = flip_byte(data, 7)
    assert len(flipped) == len(data)
    assert [i for i in range(16) if flipped[i] != data[i]] == [7]
    with pytest.raises(ValueError, match="outside"):
        flip_byte(data, 16)


def test_find_port_base_prefers_the_default() -> None:
    assert find_port_base(3000, is_free=lambda base: True) == 3000


def test_find_port_base_falls_back_to_a_free_range() -> None:
    busy = {3000}
    base = find_port_base(3000, is_free=lambda b: b not in busy, rng=random.Random(1))
    assert base != 3000
    assert 20000 <= base <= 60000
    with pytest.raises(DemoError, match="no 6 free ports"):
        find_port_base(3000, is_free=lambda b: False, attempts=3)


def test_render_table() -> None:
    text = render_table(["a", "bb"], [["xxx", "y"], ["z", ""]])
    assert text.splitlines() == ["a    bb", "---  --", "xxx  y", "z"]


def test_sample_release_is_reproducible() -> None:
    assert sample_release() == sample_release()
    assert sample_release()[:2] == b"\x1f\x8b"  # gzip


def test_main_refuses_a_non_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "leftover").write_text("x")
    assert main(["--vectors", str(tmp_path), "--dir", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err


def _demo(tmp_path: Path) -> tuple[Demo, list[str]]:
    lines: list[str] = []
    demo = Demo(tmp_path, port_base=3000, echo=lines.append)
    return demo, lines


def test_run_checks_the_exit_status(tmp_path: Path) -> None:
    demo, lines = _demo(tmp_path)
    # Stand in for the airseal entry point: print the arguments, exit with the first.
    demo.airseal = [
        sys.executable,
        "-c",
        "import sys; print(sys.argv[1:]); sys.exit(int(sys.argv[1]))",
    ]
    assert demo.run(["0"]).returncode == 0
    assert demo.run(["1"], expect=1).returncode == 1
    with pytest.raises(DemoError, match=r"exit 3 \(expected 0\)"):
        demo.run(["3"])
    assert any(line.startswith("  $ airseal 0") for line in lines)


class _ScriptedDemo(Demo):
    def __init__(self, root: Path, actions: list[tuple[str, Callable[[], str]]]) -> None:
        super().__init__(root, port_base=3000, echo=lambda _: None)
        self.actions = actions
        self.killed = 0

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return self.actions

    def kill_server(self) -> None:
        self.killed += 1


def test_a_failed_step_stops_the_demo_and_the_services(tmp_path: Path) -> None:
    def boom() -> str:
        raise DemoError("exit 2 (expected 0): error: no such command 'sign'")

    demo = _ScriptedDemo(tmp_path, [("one", lambda: "fine"), ("two", boom), ("three", lambda: "x")])
    assert demo.run_all([("vectors", lambda: "12 of 12")]) is False
    assert [(r.step, r.ok) for r in demo.results] == [
        ("one", True),
        ("two", False),
        ("three", False),
        ("vectors", False),
    ]
    assert demo.results[1].result.startswith("FAILED: exit 2")
    assert demo.results[2].result == "not run"
    assert demo.killed >= 1


def test_every_step_ok(tmp_path: Path) -> None:
    demo = _ScriptedDemo(tmp_path, [("one", lambda: "fine")])
    assert demo.run_all() is True
    assert demo.results[0].result == "fine"
    assert demo.killed == 1  # the services are stopped at the end whatever happened
