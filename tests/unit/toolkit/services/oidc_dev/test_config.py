"""Tests of the ``[oidc_dev]`` table."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import FormatError, UsageError
from toolkit.services.config import ConfigFile
from toolkit.services.oidc_dev.config import OidcDevConfig, check_listen_host


def _load(tmp_path: Path, body: str) -> OidcDevConfig:
    path = tmp_path / "services.toml"
    path.write_text(body, encoding="utf-8")
    return OidcDevConfig.from_config(ConfigFile.load(path))


def test_defaults(tmp_path: Path) -> None:
    assert _load(tmp_path, "[oidc_dev]\n") == OidcDevConfig("127.0.0.1:3000", None, None, False)


def test_all_keys(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[oidc_dev]\nlisten = "127.0.0.1:0"\nissuer = "http://dev.local:1"\n'
        'key = "file:dev.pem"\nallow_non_loopback = true\n',
    )
    assert config.listen == "127.0.0.1:0"
    assert config.issuer == "http://dev.local:1"
    assert config.key == "file:" + str(tmp_path / "dev.pem")
    assert config.allow_non_loopback is True


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('listen = "nope"', "oidc_dev.listen"),
        ("listen = 3000", "oidc_dev.listen"),
        ('issuer = "ftp://x"', "oidc_dev.issuer"),
        ('allow_non_loopback = "yes"', "oidc_dev.allow_non_loopback"),
        ('color = "red"', "oidc_dev.color"),
        ('key = "some-name"', "oidc_dev.key"),
        ('key = "pkcs11:token=x;pin-value=1234"', "oidc_dev.key"),
    ],
)
def test_errors(tmp_path: Path, body: str, where: str) -> None:
    with pytest.raises(FormatError) as info:
        _load(tmp_path, "[oidc_dev]\n" + body + "\n")
    assert info.value.path == f"services.toml: {where}"
    assert "1234" not in str(info.value)


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        _load(tmp_path, "[ca]\n")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_fine(host: str) -> None:
    check_listen_host(host, allowed=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com", "localhost.evil"])
def test_non_loopback_hosts_need_force(host: str) -> None:
    with pytest.raises(UsageError) as info:
        check_listen_host(host, allowed=False)
    assert "--allow-non-loopback" in info.value.message and info.value.hint is None
    check_listen_host(host, allowed=True)
