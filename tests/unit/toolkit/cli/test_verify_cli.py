"""``airseal verify`` and ``airseal verify-bundle``: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import VectorCase, load_cases
from toolkit.cli import app

runner = CliRunner()


def _case(name: str) -> VectorCase:
    return next(c for c in load_cases() if c.name == name)


def _verify_args(case: VectorCase, artifact: str | None = None) -> list[str]:
    return [
        "verify",
        artifact or str(case.artifact_path),
        "--bundle",
        str(case.bundle_path),
        "--trusted-root",
        str(case.trusted_root_path),
        "--identity",
        case.identity,
        "--issuer",
        case.issuer,
    ]


def test_verify_success_prints_identity_log_and_time() -> None:
    case = _case("staging-rekor2-tsa-happy")
    result = runner.invoke(app, _verify_args(case))
    assert result.exit_code == 0, result.output
    assert f"identity: {case.identity}" in result.output
    assert f"issuer:   {case.issuer}" in result.output
    assert "index 645 (tree size 646)" in result.output
    assert "timestamp:2025-06-09T11:57:38+00:00" in result.output


def test_verify_digest_mode_and_json() -> None:
    case = _case("staging-v0.1-happy")
    result = runner.invoke(app, [*_verify_args(case, case.digest_arg), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert data["check"] is None
    assert data["identity"] == case.identity
    assert data["log"]["url"] == "https://rekor.sigstage.dev"
    assert data["times"][0]["source"] == "tlog"


def test_verify_failure_is_one_line_with_check_code() -> None:
    case = _case("cve-2022-36056-inconsistent-entry_fail")
    result = runner.invoke(app, _verify_args(case))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == ["error[tlog.body]: log entry records a different signature"]


def test_verify_failure_json() -> None:
    case = _case("invalid-media-type_fail")
    result = runner.invoke(app, [*_verify_args(case), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert data["check"] == "bundle.media-type"


def test_regex_identity() -> None:
    case = _case("staging-v0.3-happy")
    args = _verify_args(case)
    i = args.index("--identity")
    args[i : i + 2] = ["--identity-regex", r"william@yossarian\.(net|org)"]
    assert runner.invoke(app, args).exit_code == 0
    args[i + 1] = r"william@yossarian"  # a prefix is not a match: the whole SAN must match
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.output.startswith("error[identity.san]")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda a: a.__setitem__(a.index("--trusted-root") + 1, "/nonexistent/root.json"),
            "does not exist",
        ),
        (lambda a: a.__setitem__(1, "/nonexistent/artifact"), "does not exist"),
        (lambda a: a.__setitem__(1, "sha256:abc"), "does not exist"),
        (lambda a: a.remove("--issuer") or a.remove(a[-1]), "--issuer"),
        (lambda a: a.extend(["--key", "/nonexistent.pem"]), "either --key or an identity"),
        (lambda a: a.extend(["--identity-regex", "("]), "exactly one of an identity"),
    ],
)
def test_bad_usage_exits_2(edit: object, message: str) -> None:
    case = _case("staging-v0.3-happy")
    args = _verify_args(case)
    edit(args)  # type: ignore[operator]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert message in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_bad_trusted_root_exits_2_with_check(tmp_path: Path) -> None:
    case = _case("staging-v0.3-happy")
    root = tmp_path / "root.json"
    root.write_text('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.2"}')
    args = _verify_args(case)
    args[args.index("--trusted-root") + 1] = str(root)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.output.startswith("error[trust-root.parse]: mediaType: unsupported trusted root")


def test_managed_key_flag_rejects_certificate_bundles(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = tmp_path / "key.pem"
    pem.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    case = _case("staging-v0.3-happy")
    args = [*_verify_args(case)[:6], "--key", str(pem)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.output.startswith("error[key.mismatch]")
    pem.write_text("not a key")
    assert runner.invoke(app, args).exit_code == 2


# The sigstore-conformance client protocol ------------------------------------


def _conformance_args(case: VectorCase, target: str, *, root: bool = True) -> list[str]:
    args = [
        "verify-bundle",
        "--bundle",
        str(case.bundle_path),
        "--certificate-identity",
        case.identity,
        "--certificate-oidc-issuer",
        case.issuer,
    ]
    if root:
        args += ["--trusted-root", str(case.trusted_root_path)]
    return [*args, target]


@pytest.mark.parametrize("mode", ["path", "digest"])
def test_conformance_protocol_verdicts(mode: str) -> None:
    for case in load_cases():
        if case.artifact_path is None and mode == "path":
            continue
        target = str(case.artifact_path) if mode == "path" else case.digest_arg
        result = runner.invoke(app, _conformance_args(case, target))
        if case.expected == "pass":
            assert result.exit_code == 0, (case.name, result.output)
        else:
            assert result.exit_code == 1, (case.name, result.output)


def test_conformance_staging_flag_and_missing_root() -> None:
    case = _case("staging-v0.3-happy")
    result = runner.invoke(app, _conformance_args(case, case.digest_arg, root=False))
    assert result.exit_code == 2
    assert "does not embed the public-good production trust root" in result.output
    args = _conformance_args(case, case.digest_arg, root=False)
    args.insert(1, "--staging")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "staging" in result.output
    args = _conformance_args(case, case.digest_arg)
    args.insert(1, "--staging")
    assert runner.invoke(app, args).exit_code == 0


def test_conformance_needs_identity_and_issuer_or_key() -> None:
    case = _case("staging-v0.3-happy")
    args = _conformance_args(case, case.digest_arg)
    i = args.index("--certificate-oidc-issuer")
    del args[i : i + 2]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--certificate-oidc-issuer" in result.output


def test_console_script_runs_as_a_process() -> None:
    case = _case("staging-v0.3-happy")
    script = Path(sys.executable).with_name("airseal")
    ok = subprocess.run(
        [str(script), *_verify_args(case)], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("verified: ")
    other = case.digest_arg[:-1] + ("0" if case.digest_arg[-1] != "0" else "1")
    bad = subprocess.run(
        [str(script), *_verify_args(case, other)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error[tlog.body]")
    assert bad.stdout == ""


def test_version_and_help() -> None:
    from toolkit import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"airseal {__version__}"
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    assert "verify-bundle" in listing.output


def test_unexpected_exceptions_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.verify import Verifier

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(Verifier, "verify", broken)
    result = runner.invoke(app, _verify_args(_case("staging-v0.3-happy")))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: internal error: RuntimeError: boom second line",
        "hint: this is a bug in airseal; please report it",
    ]
