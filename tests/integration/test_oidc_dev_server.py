"""``airseal serve oidc-dev --config FILE`` as a real process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.instance import ServiceProcess, write_config
from toolkit.services.ca.oidc import IssuerConfig, IssuerType, TokenError, TokenVerifier
from toolkit.signing import KeyAlgorithm, SoftwareSigner


def _get(url: str) -> tuple[dict[str, Any], dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        # Header names are case-insensitive: normalise them.
        return json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        document: dict[str, Any] = json.loads(response.read())
        return document


def _config(tmp_path: Path, **table: Any) -> Path:
    return write_config(tmp_path / "services.toml", None, {"oidc_dev": table})


def test_serves_tokens_the_ca_verifier_accepts(tmp_path: Path) -> None:
    config = _config(tmp_path, listen="127.0.0.1:0")
    with ServiceProcess(["serve", "oidc-dev", "--config", str(config)]).start() as server:
        url = server.url
        assert any("DEVELOPMENT-ONLY" in line for line in server.output)
        discovery, headers = _get(url + "/.well-known/openid-configuration")
        assert discovery["issuer"] == url
        assert discovery["airseal_development_only"] is True
        assert headers["x-airseal-development-only"] == "true"
        jwks, _ = _get(discovery["jwks_uri"])
        assert len(jwks["keys"]) == 1
        token = _post(url + "/token", {"identity": "dev@example.com"})["id_token"]

        async def check() -> str:
            verifier = TokenVerifier([IssuerConfig(url, IssuerType.EMAIL)])
            try:
                principal = await verifier.verify(token, datetime.now(UTC))
                with pytest.raises(TokenError) as info:
                    head, body, signature = token.split(".")
                    flipped = (
                        signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
                    )
                    await verifier.verify(f"{head}.{body}.{flipped}", datetime.now(UTC))
                assert info.value.slug == "token-signature"
                return principal.san_value
            finally:
                await verifier.aclose()

        assert asyncio.run(check()) == "dev@example.com"
        assert server.stop() == 0


def test_key_from_a_file_is_stable_across_restarts(tmp_path: Path) -> None:
    key = tmp_path / "dev.pem"
    key.write_bytes(SoftwareSigner.generate(KeyAlgorithm.ED25519).to_pem())
    config = _config(tmp_path, listen="127.0.0.1:0", key="file:dev.pem")
    kids = []
    for _ in range(2):
        with ServiceProcess(["serve", "oidc-dev", "--config", str(config)]).start() as server:
            jwks, _ = _get(server.url + "/jwks")
            assert jwks["keys"][0]["alg"] == "EdDSA"
            kids.append(jwks["keys"][0]["kid"])
    assert kids[0] == kids[1]


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "192.0.2.1:3000"])
def test_refuses_non_loopback_without_force(tmp_path: Path, listen: str) -> None:
    config = _config(tmp_path, listen=listen)
    status, output = ServiceProcess(["serve", "oidc-dev", "--config", str(config)]).run_to_exit()
    assert status == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "refuses to listen on non-loopback" in lines[0]
    assert "allow_non_loopback" in lines[0] and "--allow-non-loopback" in lines[0]


def test_listen_flag_is_checked_too(tmp_path: Path) -> None:
    config = _config(tmp_path)
    args = ["serve", "oidc-dev", "--config", str(config), "--listen", "0.0.0.0:0"]
    status, output = ServiceProcess(args).run_to_exit()
    assert status == 2 and "non-loopback" in output


def test_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    config = _config(tmp_path, listen="127.0.0.1:0", colour="red")
    status, output = ServiceProcess(["serve", "oidc-dev", "--config", str(config)]).run_to_exit()
    assert status == 2
    assert "oidc_dev.colour" in output
