"""The ``[ca]`` table: defaults, paths, issuers and strictness."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.ca import software_chain
from toolkit.errors import FormatError, UsageError
from toolkit.services.ca.config import CAConfig, load_chain
from toolkit.services.ca.oidc import IssuerType
from toolkit.services.config import ConfigFile

BASE = """
[ca]
key = "file:inter.pem"
chain = ["inter.pem", "root.pem"]
ct_url = "http://127.0.0.1:3002"
ct_key = "ct.pub.pem"

[[ca.issuers]]
url = "https://oidc.example.com"
type = "email"
"""


def load(tmp_path: Path, text: str) -> CAConfig:
    path = tmp_path / "services.toml"
    path.write_text(text, encoding="utf-8")
    return CAConfig.from_file(ConfigFile.load(path))


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    assert config.listen == "127.0.0.1:3001"
    assert config.key == f"file:{tmp_path / 'inter.pem'}"
    assert config.chain == (tmp_path / "inter.pem", tmp_path / "root.pem")
    assert config.ct_key == tmp_path / "ct.pub.pem"
    assert config.validity_minutes == 10
    assert config.skew == 60.0
    assert config.ct_timeout == 10.0
    assert [i.type for i in config.issuers] == [IssuerType.EMAIL]


def test_every_key(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        BASE.replace(
            "[[ca.issuers]]",
            'listen = "127.0.0.1:0"\nvalidity_minutes = 5\nskew = 30\nct_timeout = 2.5\n\n'
            "[[ca.issuers]]",
        )
        + '\n[[ca.issuers]]\nurl = "https://*.example.net"\ntype = "uri"\nmeta = true\n'
        'subject_domain = "https://ci.example.net"\n',
    )
    assert (config.listen, config.validity_minutes, config.skew, config.ct_timeout) == (
        "127.0.0.1:0",
        5,
        30.0,
        2.5,
    )
    assert config.issuers[1].meta


def test_one_chain_file(tmp_path: Path) -> None:
    config = load(tmp_path, BASE.replace('["inter.pem", "root.pem"]', '"chain.pem"'))
    assert config.chain == (tmp_path / "chain.pem",)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('ct_url = "http://127.0.0.1:3002"', 'ct_url = "ftp://x"', "ca.ct_url"),
        ('ct_url = "http://127.0.0.1:3002"', "", "ca.ct_url"),
        ('chain = ["inter.pem", "root.pem"]', "chain = []", "ca.chain"),
        ('chain = ["inter.pem", "root.pem"]', "chain = 3", "ca.chain"),
        ('key = "file:inter.pem"', 'key = "pkcs11:token=a?pin-value=1234"', "ca.key"),
        ('key = "file:inter.pem"', 'key = "intermediate-ca"', "ca.key"),
        ('ct_key = "ct.pub.pem"', "", "ca.ct_key"),
        ('ct_key = "ct.pub.pem"', 'ct_key = "ct.pub.pem"\nsurprise = 1', "ca.surprise"),
        (
            'ct_key = "ct.pub.pem"',
            'ct_key = "ct.pub.pem"\nvalidity_minutes = 0',
            "ca.validity_minutes",
        ),
        ('ct_key = "ct.pub.pem"', 'ct_key = "ct.pub.pem"\nskew = true', "ca.skew"),
        ('type = "email"', 'type = "carrier-pigeon"', "ca.issuers[0].type"),
        ('[[ca.issuers]]\nurl = "https://oidc.example.com"\ntype = "email"', "", "ca.issuers"),
    ],
)
def test_refusals_name_the_field(tmp_path: Path, old: str, new: str, where: str) -> None:
    assert old in BASE
    with pytest.raises(FormatError) as excinfo:
        load(tmp_path, BASE.replace(old, new))
    assert where in str(excinfo.value.path) + excinfo.value.message
    assert "1234" not in str(excinfo.value)


def test_no_ca_table(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        load(tmp_path, "[ct]\n")


def test_load_chain(tmp_path: Path) -> None:
    chain = software_chain()
    both = tmp_path / "both.pem"
    both.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain.chain))
    assert load_chain((both,)) == chain.chain
    (tmp_path / "empty.pem").write_text("nothing")
    with pytest.raises(FormatError):
        load_chain((tmp_path / "empty.pem",))
    with pytest.raises(FormatError):
        load_chain((tmp_path / "missing.pem",))
