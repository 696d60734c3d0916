"""The [ct] table: strict fields, defaults taken from the trusted root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.factory import FakeSigstore
from toolkit.errors import FormatError, UsageError
from toolkit.services.config import ConfigFile
from toolkit.services.ct.config import DEFAULT_LISTEN, CTConfig
from toolkit.signing import spki_der

FAKE = FakeSigstore("ct-config-tests")


def _load(tmp_path: Path, text: str, *, trusted_root: bool = True) -> CTConfig:
    if trusted_root:
        (tmp_path / "trusted_root.json").write_text(json.dumps(FAKE.trusted_root()))
        text = '[instance]\ntrusted_root = "trusted_root.json"\n\n' + text
    path = tmp_path / "services.toml"
    path.write_text(text)
    return CTConfig.from_file(ConfigFile.load(path))


def test_defaults_come_from_the_trusted_root(tmp_path: Path) -> None:
    config = _load(tmp_path, '[ct]\nkey = "file:ct.pem"\n')
    assert config.listen == DEFAULT_LISTEN
    assert config.key == f"file:{tmp_path / 'ct.pem'}"
    assert config.data == tmp_path / "data" / "ct"
    assert config.batch_size == 512
    assert config.max_wait == 0.05
    # The origin: host of the ctlogs baseUrl whose key is the CT key.
    assert config.resolve_origin(spki_der(FAKE.ct_key.public_key())) == "ctfe.airseal.test"
    roots = config.load_roots()
    assert [root.subject for root in roots] == [FAKE.ca.root.subject]


def test_explicit_fields(tmp_path: Path) -> None:
    (tmp_path / "root.pem").write_bytes(FAKE.ca.root.public_bytes(serialization.Encoding.PEM))
    config = _load(
        tmp_path,
        '[ct]\nlisten = "127.0.0.1:0"\nkey = "file:/abs/ct.pem"\ndata = "/var/ct"\n'
        'origin = "ct.example"\nroots = ["root.pem"]\nbatch_size = 64\nmax_wait = 0\n',
        trusted_root=False,
    )
    assert (config.listen, config.key, config.data) == (
        "127.0.0.1:0",
        "file:/abs/ct.pem",
        Path("/var/ct"),
    )
    assert config.resolve_origin(b"anything") == "ct.example"
    assert config.load_roots() == [FAKE.ca.root]
    assert (config.batch_size, config.max_wait) == (64, 0.0)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('key = "file:k"\nunknown = 1', "ct.unknown: unknown field"),
        ("", "ct.key: missing"),
        ('key = "file:k"\nbatch_size = 0', "ct.batch_size: must be at least 1"),
        ('key = "file:k"\nmax_wait = -1', "ct.max_wait"),
        ('key = "file:k"\nmax_wait = true', "ct.max_wait"),
        ('key = "file:k"\norigin = "https://ct.example/x"', "ct.origin"),
        ('key = "file:k"\nroots = []', "ct.roots"),
        ('key = "file:k"\nroots = [1]', r"ct.roots\[0\]"),
        ('key = "pkcs11:token=t;object=o;pin-value=1234"', "PIN"),
    ],
)
def test_strict_fields(tmp_path: Path, table: str, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        _load(tmp_path, f"[ct]\n{table}\n")


def test_origin_and_roots_need_a_trusted_root_when_omitted(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"ct\.origin: missing"):
        _load(tmp_path, '[ct]\nkey = "file:k"\n', trusted_root=False)


def test_no_ct_table(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no \[ct\] table"):
        _load(tmp_path, "[ca]\n")


def test_unreadable_roots(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("junk")
    config = _load(tmp_path, '[ct]\nkey = "file:k"\nroots = ["junk.pem", "absent.pem"]\n')
    with pytest.raises(UsageError, match="no PEM certificate"):
        config.load_roots()
