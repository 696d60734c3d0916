"""Where PINs and the PKCS#11 module come from, in which order."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from toolkit.errors import HSMError
from toolkit.signing import Pkcs11Uri, module_path, resolve_pin
from toolkit.signing._pin import pin_env_name

URI = Pkcs11Uri(token="airseal-ca", object="root")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRSEAL_PKCS11_PIN", raising=False)
    monkeypatch.delenv("AIRSEAL_PIN_CA", raising=False)
    monkeypatch.delenv("PKCS11_MODULE", raising=False)
    # Not a terminal: no interactive prompt unless a test asks for one.
    monkeypatch.setattr(sys, "stdin", io.StringIO())


def _pin_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pin"
    path.write_text(text)
    return path


def test_pin_source_wins_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRSEAL_PIN_CA", "from-token-env")
    monkeypatch.setenv("AIRSEAL_PKCS11_PIN", "from-env")
    path = _pin_file(tmp_path, "from-file\n")
    assert resolve_pin(URI.replace(pin_source=str(path)), token_name="ca") == "from-file"


@pytest.mark.parametrize("form", ["{p}", "file:{p}", "file://{p}", "file://localhost{p}"])
def test_pin_source_forms(tmp_path: Path, form: str) -> None:
    path = _pin_file(tmp_path, "1234")
    assert resolve_pin(URI.replace(pin_source=form.format(p=path))) == "1234"


@pytest.mark.parametrize(
    ("content", "pin"),
    [
        ("1234\n", "1234"),
        ("1234\r\n", "1234"),
        ("1234\n\n", "1234\n"),  # only one line end goes
        (" 1234 ", " 1234 "),  # other whitespace is part of the PIN
    ],
)
def test_pin_source_strips_one_newline(tmp_path: Path, content: str, pin: str) -> None:
    path = _pin_file(tmp_path, content)
    assert resolve_pin(URI.replace(pin_source=str(path))) == pin


def test_pin_source_problems(tmp_path: Path) -> None:
    with pytest.raises(HSMError, match=r"cannot read the pin-source file .* of token 'airseal-ca'"):
        resolve_pin(URI.replace(pin_source=str(tmp_path / "absent")))
    empty = _pin_file(tmp_path, "\n")
    with pytest.raises(HSMError, match="is empty"):
        resolve_pin(URI.replace(pin_source=str(empty)))
    with pytest.raises(HSMError, match="is a command"):
        resolve_pin(URI.replace(pin_source="|/usr/bin/get-pin"))
    with pytest.raises(HSMError, match="names host"):
        resolve_pin(URI.replace(pin_source="file://elsewhere/pin"))


def test_token_env_before_generic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRSEAL_PKCS11_PIN", "generic")
    assert resolve_pin(URI, token_name="ca") == "generic"
    monkeypatch.setenv("AIRSEAL_PIN_CA", "specific")
    assert resolve_pin(URI, token_name="ca") == "specific"
    # Without a token name only the generic variable counts.
    assert resolve_pin(URI) == "generic"


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("ca", "AIRSEAL_PIN_CA"),
        ("alice-tuf", "AIRSEAL_PIN_ALICE_TUF"),
        ("bob.2026", "AIRSEAL_PIN_BOB_2026"),
        ("zoë", "AIRSEAL_PIN_ZO_"),
    ],
)
def test_pin_env_name(name: str, variable: str) -> None:
    assert pin_env_name(name) == variable


def test_empty_env_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRSEAL_PIN_CA", "")
    monkeypatch.setenv("AIRSEAL_PKCS11_PIN", "generic")
    assert resolve_pin(URI, token_name="ca") == "generic"


def test_prompt_comes_last(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    assert resolve_pin(URI, prompt=prompt) == "typed"
    assert asked == ["PIN for token 'airseal-ca': "]
    monkeypatch.setenv("AIRSEAL_PKCS11_PIN", "env")
    assert resolve_pin(URI, prompt=prompt) == "env"
    assert len(asked) == 1
    monkeypatch.delenv("AIRSEAL_PKCS11_PIN")
    with pytest.raises(HSMError, match="no PIN entered for token 'airseal-ca'"):
        resolve_pin(URI, prompt=lambda _text: "")


def test_terminal_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda text: f"typed at {text!r}")
    assert resolve_pin(URI) == "typed at \"PIN for token 'airseal-ca': \""


def test_no_source(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HSMError) as caught:
        resolve_pin(URI, token_name="ca")
    assert caught.value.message == "no PIN for token 'airseal-ca'"
    assert caught.value.hint is not None
    assert "AIRSEAL_PIN_CA or AIRSEAL_PKCS11_PIN" in caught.value.hint
    assert "pin-source=file:" in caught.value.hint
    assert caught.value.exit_code == 3


def test_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HSMError, match="no PKCS#11 module given") as caught:
        module_path(None)
    assert caught.value.hint is not None
    assert "PKCS11_MODULE" in caught.value.hint
    monkeypatch.setenv("PKCS11_MODULE", "/env/module.so")
    assert module_path(None) == "/env/module.so"
    assert module_path("/explicit.so") == "/explicit.so"
