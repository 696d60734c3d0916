"""``airseal trust …`` end to end with software keys: output and exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.toolkit.trust._trust_helpers import Keys, first_root, trusted_root_bytes
from toolkit.cli import app

runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Keys, Path]:
    keys = Keys()
    (tmp_path / "online.pem").write_bytes(keys.online.to_pem())
    for index, custodian in enumerate(keys.custodians):
        (tmp_path / f"c{index}.pem").write_bytes(custodian.to_pem())
    (tmp_path / "1.root.json").write_bytes(first_root(keys))
    (tmp_path / "trusted_root.json").write_bytes(trusted_root_bytes())
    config = tmp_path / "trust.toml"
    config.write_text(
        '[trust]\nrepository = "repo"\nonline_keys = ["file:online.pem"]\n'
        "[trust.offline]\nexpiry_days = 90\n"
    )
    return tmp_path, keys, config


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_distributor_flow(setup: tuple[Path, Keys, Path]) -> None:
    tmp, _, config = setup
    c = str(config)
    code, out = _run(
        "trust",
        "init",
        "-c",
        c,
        "--root",
        str(tmp / "1.root.json"),
        "--trusted-root",
        str(tmp / "trusted_root.json"),
    )
    assert code == 0, out
    assert "timestamp" in out
    code, out = _run("trust", "refresh", "-c", c)
    assert (code, out.strip()) == (0, "nothing due")
    code, out = _run("trust", "refresh", "-c", c, "--force", "--json")
    assert code == 0, out
    assert {s["role"] for s in json.loads(out)["signed"]} == {"snapshot", "timestamp"}
    code, out = _run("trust", "publish", "-c", c, str(tmp / "pub"))
    assert code == 0 and "published" in out
    code, out = _run("trust", "status", "-c", c, "--json")
    assert code == 0 and len(json.loads(out)["roles"]) == 6

    root_hash = hashlib.sha256((tmp / "1.root.json").read_bytes()).hexdigest()
    out_file = tmp / "verified.json"
    code, out = _run(
        "trust",
        "update",
        "--mirror",
        str(tmp / "pub"),
        "--root-sha256",
        root_hash,
        "--cache",
        str(tmp / "cache"),
        "-o",
        str(out_file),
    )
    assert code == 0, out
    assert out_file.read_bytes() == trusted_root_bytes()
    code, out = _run("trust", "show", str(out_file))
    assert code == 0
    assert out.splitlines()[0].split() == ["KIND", "URL", "ID", "KEY", "FROM", "UNTIL"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == {"tlog", "ctlog", "ca", "tsa"}
    code, out = _run("trust", "show", str(out_file), "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_rotation_commands(setup: tuple[Path, Keys, Path]) -> None:
    tmp, _, config = setup
    c = str(config)
    assert (
        _run(
            "trust",
            "init",
            "-c",
            c,
            "--root",
            str(tmp / "1.root.json"),
            "--trusted-root",
            str(tmp / "trusted_root.json"),
        )[0]
        == 0
    )
    proposal = tmp / "2.root.json"
    code, out = _run(
        "trust", "rotate-root", "-c", c, "-o", str(proposal), "--expires", "2027-11-30T00:00:00Z"
    )
    assert code == 0, out
    # A second run does not overwrite the proposal.
    assert _run("trust", "rotate-root", "-c", c, "-o", str(proposal))[0] == 2

    a, b = tmp / "a.json", tmp / "b.json"
    code, out = _run(
        "trust",
        "sign-root",
        str(proposal),
        "--key",
        f"file:{tmp / 'c0.pem'}",
        "-o",
        str(a),
        "--previous",
        str(tmp / "1.root.json"),
    )
    assert code == 0, out
    assert "1 of 2 required signatures of root v1" in out
    code, out = _run("trust", "commit-root", "-c", c, str(a))
    assert code == 1
    assert "error[kit.tuf]: refusing to commit" in out
    code, out = _run(
        "trust", "sign-root", str(proposal), "--key", f"file:{tmp / 'c2.pem'}", "-o", str(b)
    )
    assert code == 0, out
    code, out = _run("trust", "merge-signatures", str(a), str(b), "-o", str(tmp / "m.json"))
    assert code == 0 and "2 of 2 required signatures of root v2" in out
    code, out = _run("trust", "commit-root", "-c", c, str(tmp / "m.json"))
    assert code == 0, out
    assert "signed online root v2" in out
    assert (tmp / "repo" / "metadata" / "2.root.json").read_bytes() == (tmp / "m.json").read_bytes()


def test_exit_codes(setup: tuple[Path, Keys, Path]) -> None:
    tmp, _, config = setup
    code, out = _run("trust", "status", "-c", str(config))
    assert code == 2 and "not a TUF repository" in out
    config.write_text('[trust]\nrepository = "repo"\nonline_keys = ["file:k"]\nbogus = 1\n')
    code, out = _run("trust", "status", "-c", str(config))
    assert code == 2 and "trust.bogus: unknown field" in out
    code, out = _run(
        "trust",
        "update",
        "--mirror",
        "http://127.0.0.1:9",
        "--root",
        str(tmp / "1.root.json"),
        "--cache",
        str(tmp / "c"),
        "--timeout",
        "2",
    )
    assert code == 3, out
    code, out = _run(
        "trust",
        "update",
        "--mirror",
        str(tmp),
        "--root-sha256",
        "00" * 32,
        "--cache",
        str(tmp / "c"),
    )
    assert code == 3  # no metadata/1.root.json there: the mirror lacks files
    code, out = _run("trust", "show", str(tmp / "1.root.json"))
    assert code == 2 and "trust-root.parse" in out
