from __future__ import annotations

from pathlib import Path

from toolkit.errors import (
    Check,
    EnvironmentSetupError,
    FormatError,
    HSMError,
    TransportError,
    UsageError,
    VerificationError,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "formats" / "bundle.md"


def test_every_check_code_is_documented() -> None:
    text = DOC.read_text()
    missing = [c.value for c in Check if f"| `{c.value}` |" not in text]
    assert missing == []


def test_exit_codes_by_fault() -> None:
    assert VerificationError(Check.SIGNATURE, "x").exit_code == 1
    assert FormatError("x").exit_code == 2
    assert UsageError("x").exit_code == 2
    assert TransportError("x").exit_code == 3
    assert EnvironmentSetupError("x").exit_code == 3
    assert HSMError("x").exit_code == 3


def test_messages_codes_and_hints() -> None:
    error = VerificationError(Check.TLOG_BODY, "log entry differs", hint="re-sign")
    assert error.code == "tlog.body"
    assert str(error) == "log entry differs"
    assert error.diagnostics() == "log entry differs\nhint: re-sign"
    located = FormatError("is not base64", path="a.b", check=Check.BUNDLE_PARSE)
    assert located.message == "a.b: is not base64"
    assert located.code == "bundle.parse"
    assert FormatError("x").code is None
