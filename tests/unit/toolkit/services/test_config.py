"""The services' strict TOML config reader (toolkit/services/config.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit.errors import FormatError, HSMError, UsageError
from toolkit.services.config import ConfigFile
from toolkit.signing import KeyAlgorithm, SoftwareSigner
from toolkit.signing._api import Scheme
from toolkit.signing.keyring import KeyEntry, KeyRing

KEY_URI = "pkcs11:token=airseal-ca;object=airseal-tsa;type=private"


def _load(tmp_path: Path, text: str, name: str = "services.toml") -> ConfigFile:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return ConfigFile.load(path)


def _ring(tmp_path: Path, softhsm2_conf: str | None = None) -> Path:
    entry = KeyEntry("tsa", "tsa", KEY_URI, Scheme.ECDSA_P256_SHA256, "ab" * 32)
    path = tmp_path / "keys.toml"
    path.write_bytes(
        KeyRing("/usr/lib/softhsm.so", "cd" * 32, {"tsa": entry}, softhsm2_conf).to_toml()
    )
    return path


def test_getters_read_values_and_defaults(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[svc]\nname = "x"\ncount = 3\nratio = 2\nflag = true\nitems = ["a", "b"]\n'
        'dir = "data"\n[[svc.entries]]\nk = "v"\n',
    )
    table = config.require_section("svc")
    assert table.text("name") == "x"
    assert table.text("missing", "default") == "default"
    assert table.integer("count", minimum=1, maximum=3) == 3
    assert table.number("ratio") == 2.0
    assert table.flag("flag") is True
    assert table.strings("items") == ("a", "b")
    assert table.path_value("dir") == tmp_path / "data"
    (entry,) = table.tables("entries")
    assert entry.path == "svc.entries[0]"
    assert entry.text("k") == "v"
    entry.done()
    table.done()


@pytest.mark.parametrize(
    ("text", "read", "message"),
    [
        (
            "[svc]\nname = 1\n",
            lambda t: t.text("name"),
            "svc.name: expected a string, got a number",
        ),
        ('[svc]\nname = ""\n', lambda t: t.text("name"), "svc.name: must not be empty"),
        ("[svc]\n", lambda t: t.text("name"), "svc.name: missing (required)"),
        ("[svc]\ncount = true\n", lambda t: t.integer("count"), "got a boolean"),
        ("[svc]\ncount = 0\n", lambda t: t.integer("count", minimum=1), "at least 1, not 0"),
        ("[svc]\ncount = 9\n", lambda t: t.integer("count", maximum=8), "at most 8, not 9"),
        ("[svc]\nratio = 0.5\n", lambda t: t.number("ratio", minimum=1.0), "at least 1"),
        ('[svc]\nitems = ["a", 1]\n', lambda t: t.strings("items"), "svc.items[1]: expected"),
        (
            "[svc]\nentries = [1]\n",
            lambda t: t.tables("entries"),
            "svc.entries[0]: expected a table",
        ),
    ],
)
def test_type_and_range_errors_name_the_file_and_dotted_path(
    tmp_path: Path, text: str, read: object, message: str
) -> None:
    table = _load(tmp_path, text).require_section("svc")
    with pytest.raises(FormatError) as caught:
        read(table)  # type: ignore[operator]
    assert caught.value.message.startswith("services.toml: svc.")
    assert message in caught.value.message


def test_unknown_fields_are_errors(tmp_path: Path) -> None:
    table = _load(tmp_path, '[svc]\nname = "x"\nsurprise = 1\n').require_section("svc")
    table.text("name")
    with pytest.raises(FormatError) as caught:
        table.done()
    assert caught.value.message == "services.toml: svc.surprise: unknown field"
    assert caught.value.hint == "known fields here: name"


def test_missing_section_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"has no \[ca\] table"):
        _load(tmp_path, "[svc]\n").require_section("ca")
    assert _load(tmp_path, "[svc]\n").section("ca") is None
    with pytest.raises(FormatError, match="expected a table"):
        _load(tmp_path, 'ca = "x"\n').section("ca")
    with pytest.raises(FormatError, match="not a TOML file"):
        _load(tmp_path, "[svc\n")
    with pytest.raises(FormatError, match="cannot read"):
        ConfigFile.load(tmp_path / "absent.toml")
    with pytest.raises(FormatError, match=r"instance\.surprise: unknown field"):
        _load(tmp_path, "[instance]\nsurprise = 1\n")


def test_instance_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    config = _load(tmp_path, '[instance]\nkeys = "c/keys.toml"\ntrusted_root = "/abs/tr.json"\n')
    assert config.instance.keys == tmp_path / "c" / "keys.toml"
    assert config.instance.trusted_root == Path("/abs/tr.json")


def test_key_references(tmp_path: Path) -> None:
    _ring(tmp_path)
    config = _load(
        tmp_path,
        '[instance]\nkeys = "keys.toml"\n[svc]\nname = "tsa"\nuri = "pkcs11:token=x"\n'
        'rel = "file:k.pem"\nabs = "file:/etc/k.pem"\nother = "nope"\n',
    )
    table = config.require_section("svc")
    assert config.key_uri(table, "name") == KEY_URI
    assert config.key_uri(table, "uri") == "pkcs11:token=x"
    assert config.key_uri(table, "rel") == f"file:{tmp_path / 'k.pem'}"
    assert config.key_uri(table, "abs") == "file:/etc/k.pem"
    with pytest.raises(FormatError) as caught:
        config.key_uri(table, "other")
    assert "keys.toml has no key 'nope'" in caught.value.message
    assert caught.value.hint == "its keys: tsa"


def test_key_names_need_a_keys_toml_and_uris_never_carry_a_pin(tmp_path: Path) -> None:
    config = _load(tmp_path, '[svc]\nname = "tsa"\npin = "pkcs11:token=x?pin-value=1234"\n')
    table = config.require_section("svc")
    with pytest.raises(FormatError, match="neither a pkcs11:/file: URI"):
        config.key_uri(table, "name")
    with pytest.raises(FormatError) as caught:
        config.key_uri(table, "pin")
    assert "must not carry a PIN" in caught.value.message
    assert "1234" not in caught.value.diagnostics()


def test_a_rehearsal_keyring_makes_its_softhsm_config_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stale SOFTHSM2_CONF from another rehearsal must not hide the tokens
    # the keyring's URIs name: opening one of its PKCS#11 keys switches the
    # variable before the module loads (here a module that does not exist,
    # so the open itself fails).
    _ring(tmp_path, softhsm2_conf="/rehearsal/softhsm2.conf")
    monkeypatch.setenv("SOFTHSM2_CONF", "/stale/softhsm2.conf")
    config = _load(tmp_path, '[instance]\nkeys = "keys.toml"\n')
    key = tmp_path / "k.pem"
    key.write_bytes(SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256).to_pem())
    assert config.open_key(f"file:{key}").scheme is Scheme.ECDSA_P256_SHA256
    assert os.environ["SOFTHSM2_CONF"] == "/stale/softhsm2.conf"  # file keys change nothing
    with pytest.raises(HSMError):
        config.open_key(KEY_URI)
    assert os.environ["SOFTHSM2_CONF"] == "/rehearsal/softhsm2.conf"
