"""``airseal`` looks plugins up only for commands that are not built in."""

from __future__ import annotations

import subprocess
import sys

import pytest

import toolkit.cli as cli

BUILT_IN = ("verify", "verify-bundle", "serve", "log")


def test_built_in_commands_and_groups_are_known() -> None:
    names = cli._builtin_names()
    assert set(BUILT_IN) <= names
    # log is a command group, not a command: it counts all the same.
    assert "log" in {group.name for group in cli.app.registered_groups}
    assert "ceremony" not in names


@pytest.mark.parametrize(
    ("argv", "loads"),
    [
        (["verify", "--help"], False),
        (["serve", "--help"], False),
        (["log", "--help"], False),
        (["log", "monitor", "--help"], False),
        (["ceremony", "--help"], True),
        (["--help"], True),
        ([], True),
    ],
)
def test_plugins_are_loaded_only_for_other_commands(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], loads: bool
) -> None:
    calls: list[object] = []
    # Recorded, not loaded: the shared app must not gain the ceremony group here.
    monkeypatch.setattr(cli, "load_plugins", lambda *args: calls.append(args))
    monkeypatch.setattr(sys, "argv", ["airseal", *argv])
    with pytest.raises(SystemExit):
        cli.main()
    assert bool(calls) is loads, calls


def test_built_ins_never_import_the_ceremony_plugin() -> None:
    # In a fresh interpreter, so that nothing else has imported ceremony yet;
    # the built-ins run first, ceremony last (loading it is for good).
    script = """
import sys
import toolkit.cli as cli
for argv in (["verify", "--help"], ["serve", "--help"], ["log", "--help"], ["ceremony", "--help"]):
    sys.argv = ["airseal", *argv]
    try:
        cli.main()
    except SystemExit:
        pass
    print(argv[0], "ceremony.cli" in sys.modules, file=sys.stderr)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["verify False", "serve False", "log False", "ceremony True"], lines
