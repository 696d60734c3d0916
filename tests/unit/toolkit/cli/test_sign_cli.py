"""``airseal sign`` / ``airseal token`` argument handling, with the fake services of test_sign.

The command runs in-process (typer's CliRunner); ``toolkit.sign.SigningClient``
is swapped for one whose HTTP goes to :class:`FakeServices`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import toolkit.sign
from tests.unit.toolkit.test_sign import EMAIL, NOW, TOKEN, FakeServices
from toolkit.cli import app


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> FakeServices:
    fake = FakeServices()
    original = toolkit.sign.SigningClient

    class Client(original):  # type: ignore[misc, valid-type]
        def __init__(self, root: Any, endpoints: Any, **kwargs: Any) -> None:
            kwargs["http"] = httpx.Client(transport=httpx.MockTransport(fake.handler))
            kwargs["clock"] = lambda: NOW
            super().__init__(root, endpoints, **kwargs)

    monkeypatch.setattr(toolkit.sign, "SigningClient", Client)
    monkeypatch.delenv("AIRSEAL_IDENTITY_TOKEN", raising=False)
    return fake


@pytest.fixture
def files(tmp_path: Path, services: FakeServices) -> dict[str, Path]:
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(b"cli artifact\n")
    root = tmp_path / "trusted_root.json"
    root.write_text(services.root.to_json())
    return {"artifact": artifact, "root": root, "bundle": tmp_path / "out.sigstore.json"}


def _services_args(files: dict[str, Path]) -> list[str]:
    return [
        "--ca",
        "http://ca.fake",
        "--tsa",
        "http://tsa.fake",
        "--log",
        "http://log.fake",
        "--trusted-root",
        str(files["root"]),
    ]


def _run(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, args, env=env)


def test_sign_json(files: dict[str, Path]) -> None:
    result = _run(
        [
            "sign",
            str(files["artifact"]),
            "--bundle",
            str(files["bundle"]),
            "--identity-token",
            TOKEN,
            "--json",
            *_services_args(files),
        ]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["identity"] == EMAIL
    assert summary["bundle"] == str(files["bundle"])
    assert files["bundle"].exists()
    assert TOKEN not in result.output


def test_sign_token_from_env_and_file(files: dict[str, Path], tmp_path: Path) -> None:
    args = ["sign", str(files["artifact"]), "--bundle", str(files["bundle"])]
    result = _run([*args, *_services_args(files)], env={"AIRSEAL_IDENTITY_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"signed {files['artifact']} as {EMAIL}: ")
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")
    result = _run([*args, "--identity-token", f"@{token_file}", "--dsse", *_services_args(files)])
    assert result.exit_code == 0, result.output
    assert json.loads(files["bundle"].read_bytes())["dsseEnvelope"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give exactly one of --identity-token"),
        (["--identity-token", TOKEN, "--key", "file:/k.pem"], "got --identity-token, --key"),
        (["--oidc-dev", "http://oidc.fake"], "--oidc-dev and --identity go together"),
        (["--identity-token", "@/does/not/exist"], "does not exist"),
        (["--identity-token", TOKEN, "--payload-type", "text/plain", "--dsse"], "payload type"),
    ],
)
def test_sign_usage_errors(files: dict[str, Path], extra: list[str], message: str) -> None:
    result = _run(
        [
            "sign",
            str(files["artifact"]),
            "--bundle",
            str(files["bundle"]),
            *extra,
            *_services_args(files),
        ]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not files["bundle"].exists()


def test_sign_refuses_a_missing_bundle_directory_before_any_request(
    files: dict[str, Path], services: FakeServices, tmp_path: Path
) -> None:
    result = _run(
        [
            "sign",
            str(files["artifact"]),
            "--bundle",
            str(tmp_path / "nowhere" / "b.json"),
            "--identity-token",
            TOKEN,
            *_services_args(files),
        ]
    )
    assert result.exit_code == 2 and "does not exist" in result.output
    assert services.requests == []


def test_sign_needs_services_and_a_trusted_root(files: dict[str, Path]) -> None:
    base = ["sign", str(files["artifact"]), "--bundle", str(files["bundle"]), "--identity-token"]
    result = _run([*base, TOKEN, "--tsa", "http://tsa.fake", "--log", "http://log.fake"])
    assert result.exit_code == 2 and "--ca missing" in result.output
    result = _run([*base, TOKEN, "--ca", "http://c", "--tsa", "http://t", "--log", "http://l"])
    assert result.exit_code == 2 and "no trusted root" in result.output


def test_sign_refused_by_the_ca(files: dict[str, Path], services: FakeServices) -> None:
    services.mode["ca"] = "refuse"
    result = _run(
        [
            "sign",
            str(files["artifact"]),
            "--bundle",
            str(files["bundle"]),
            "--identity-token",
            TOKEN,
            *_services_args(files),
        ]
    )
    assert result.exit_code == 2
    assert "error: the CA refused the request (401 token-expired)" in result.output
    assert not files["bundle"].exists()


def test_sign_log_down_exit_3(files: dict[str, Path], services: FakeServices) -> None:
    services.mode["log"] = "down"
    result = _run(
        [
            "sign",
            str(files["artifact"]),
            "--bundle",
            str(files["bundle"]),
            "--identity-token",
            TOKEN,
            *_services_args(files),
        ]
    )
    assert result.exit_code == 3
    assert "error: the log at http://log.fake is unreachable" in result.output
    assert not files["bundle"].exists()


def test_token_command_unreachable_issuer() -> None:
    result = _run(["token", "--oidc-dev", "http://127.0.0.1:9", "--identity", EMAIL])
    assert result.exit_code == 3
    assert "oidc-dev issuer at http://127.0.0.1:9 is unreachable" in result.output
