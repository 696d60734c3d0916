"""The ``[tsa]`` table: strict reading, defaults, opening a software-key TSA; the CLI's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from tests.unit.toolkit.services.tsa._tsa import NOW, chain_for, decode, request, signer_for
from toolkit.cli import app
from toolkit.errors import EnvironmentSetupError, FormatError, UsageError
from toolkit.services.tsa.config import DEFAULT_LISTEN, TsaConfig, load_chain


@pytest.fixture
def files(tmp_path: Path) -> Path:
    chain = chain_for("p256")
    (tmp_path / "tsa-chain.pem").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain.certificates)
    )
    (tmp_path / "tsa-key.pem").write_bytes(signer_for("p256", chain).to_pem())
    (tmp_path / "tsa-key.pem").chmod(0o600)
    return tmp_path


def _write(directory: Path, body: str) -> Path:
    path = directory / "services.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_full_table(files: Path) -> None:
    path = _write(
        files,
        '[tsa]\nlisten = "127.0.0.1:4000"\nkey = "file:tsa-key.pem"\n'
        'chain = "tsa-chain.pem"\npolicy = "1.2.3.4"\naccuracy_ms = 250\n',
    )
    config, settings = TsaConfig.load(path)
    assert settings == TsaConfig(
        listen="127.0.0.1:4000",
        key="file:" + str(files / "tsa-key.pem"),
        chain=files / "tsa-chain.pem",
        policy="1.2.3.4",
        accuracy_ms=250,
    )
    tsa = settings.open(config)
    assert (tsa.policy, tsa.accuracy_ms) == ("1.2.3.4", 250)
    assert decode(tsa.respond(request(), NOW)).status == 0


def test_defaults(files: Path) -> None:
    path = _write(files, '[tsa]\nkey = "file:tsa-key.pem"\nchain = "tsa-chain.pem"\n')
    _, settings = TsaConfig.load(path)
    assert settings.listen == DEFAULT_LISTEN
    assert settings.policy == "1.3.6.1.4.1.57264.2"
    assert settings.accuracy_ms == 1000


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ('[tsa]\nchain = "c.pem"\nkey = "file:k.pem"\nbogus = 1\n', "tsa.bogus", "unknown field"),
        ('[tsa]\nkey = "file:k.pem"\n', "tsa.chain", "missing"),
        (
            '[tsa]\nchain = "c.pem"\nkey = "file:k.pem"\nlisten = "nowhere"\n',
            "tsa.listen",
            "HOST:PORT",
        ),
        (
            '[tsa]\nchain = "c.pem"\nkey = "file:k.pem"\npolicy = "x.y"\n',
            "tsa.policy",
            "dotted OID",
        ),
        (
            '[tsa]\nchain = "c.pem"\nkey = "file:k.pem"\naccuracy_ms = -5\n',
            "tsa.accuracy_ms",
            "at least 0",
        ),
        (
            '[tsa]\nchain = "c.pem"\nkey = "file:k.pem"\naccuracy_ms = true\n',
            "tsa.accuracy_ms",
            "boolean",
        ),
        ('[tsa]\nchain = "c.pem"\n', "tsa.key", "neither a pkcs11:/file: URI"),
        ('[tsa]\nchain = "c.pem"\nkey = "pkcs11:token=t;object=o?pin-value=1"\n', "tsa.key", "PIN"),
    ],
)
def test_bad_tables(tmp_path: Path, body: str, where: str, message: str) -> None:
    with pytest.raises(FormatError) as caught:
        TsaConfig.load(_write(tmp_path, body))
    assert where in str(caught.value.path)
    assert message in caught.value.message


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no \[tsa\] table"):
        TsaConfig.load(_write(tmp_path, '[ca]\nlisten = "127.0.0.1:1"\n'))


def test_load_chain_errors(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSetupError, match="cannot read"):
        load_chain(tmp_path / "absent.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(FormatError, match="not a PEM certificate chain"):
        load_chain(tmp_path / "junk.pem")


def test_chain_that_does_not_fit_the_key(files: Path) -> None:
    other = chain_for("p384")
    (files / "other.pem").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in other.certificates)
    )
    path = _write(files, '[tsa]\nkey = "file:tsa-key.pem"\nchain = "other.pem"\n')
    config, settings = TsaConfig.load(path)
    with pytest.raises(UsageError, match="does not hold the TSA key"):
        settings.open(config)


def test_cli_refuses_a_bad_config_in_one_line(files: Path) -> None:
    path = _write(files, '[tsa]\nkey = "file:tsa-key.pem"\nchain = "tsa-chain.pem"\nextra = 1\n')
    result = CliRunner().invoke(app, ["serve", "tsa", "--config", str(path)])
    assert result.exit_code == 2
    assert "tsa.extra: unknown field" in result.output
    assert "Traceback" not in result.output


def test_cli_lists_tsa() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "tsa" in result.output
