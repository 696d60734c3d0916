from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from toolkit.encoding import (
    b64decode,
    b64encode,
    canonical_json,
    format_rfc3339,
    load_json,
    parse_int64,
    parse_rfc3339,
)
from toolkit.errors import FormatError


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("", b""),
        ("AA==", b"\x00"),
        ("AAA=", b"\x00\x00"),
        ("AAAA", b"\x00\x00\x00"),
        ("+/8=", b"\xfb\xff"),
    ],
)
def test_b64_accepts_canonical(text: str, data: bytes) -> None:
    assert b64decode(text) == data
    assert b64encode(data) == text


@pytest.mark.parametrize(
    "text",
    [
        "AA",
        "AA=",
        "A",
        "AB==",
        "AAB=",
        " AAAA",
        "AA\n==",
        "AA-_",
        "AA==AA==",
        "====",
        "ÄA==",
        "AAAA=",
    ],
)
def test_b64_rejects_non_canonical(text: str) -> None:
    with pytest.raises(FormatError) as info:
        b64decode(text, path="x.y")
    assert info.value.path == "x.y"
    assert "base64" in info.value.detail


def test_b64_rejects_non_strings() -> None:
    with pytest.raises(FormatError, match="expected a base64 string, got a number"):
        b64decode(12)


def test_int64_is_a_decimal_string() -> None:
    assert parse_int64("0") == 0
    assert parse_int64("-5") == -5
    assert parse_int64(str(2**63 - 1)) == 2**63 - 1
    for bad in ["01", "+1", "1.0", "1e3", " 1", "", str(2**63), "0x10"]:
        with pytest.raises(FormatError):
            parse_int64(bad)
    with pytest.raises(FormatError, match="decimal string, got a number"):
        parse_int64(7)
    with pytest.raises(FormatError, match="at least 0"):
        parse_int64("-1", minimum=0)


def test_rfc3339() -> None:
    assert parse_rfc3339("2021-01-12T11:53:27Z") == datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC)
    assert parse_rfc3339("2021-01-12T11:53:27.123456789Z").microsecond == 123456
    assert parse_rfc3339("2021-01-12T12:53:27+01:00") == datetime(
        2021, 1, 12, 11, 53, 27, tzinfo=UTC
    )
    for bad in ["2021-01-12 11:53:27Z", "2021-01-12T11:53:27", "2021-13-01T00:00:00Z", "yesterday"]:
        with pytest.raises(FormatError):
            parse_rfc3339(bad)
    moment = datetime(2024, 5, 6, 7, 8, 9, 120000, tzinfo=timezone(timedelta(hours=2)))
    assert format_rfc3339(moment) == "2024-05-06T05:08:09.120Z"
    assert parse_rfc3339(format_rfc3339(moment)) == moment
    assert format_rfc3339(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"


def test_load_json_is_strict() -> None:
    assert load_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(FormatError, match="duplicate JSON key 'a'"):
        load_json(b'{"a": 1, "a": 2}')
    with pytest.raises(FormatError, match="NaN"):
        load_json(b'{"a": NaN}')
    with pytest.raises(FormatError, match="not UTF-8"):
        load_json(b'{"a": "\xff"}')
    with pytest.raises(FormatError, match="not valid JSON"):
        load_json(b'{"a": ')
    with pytest.raises(FormatError, match="nested too deeply"):
        load_json(b"[" * 100_000 + b"]" * 100_000)


def test_canonical_json_rfc8785() -> None:
    # Key order by UTF-16 code units (U+20AC sorts before the surrogates of
    # U+1F600), no whitespace, minimal escapes (RFC 8785 §3.2).
    value = {"b": 1, "a": [True, None, "é\n\u2028"], "\u20ac": "x", "\U0001f600": 0, "A": -3}
    assert canonical_json(value) == (
        '{"A":-3,"a":[true,null,"é\\n\u2028"],"b":1,"\u20ac":"x","\U0001f600":0}'.encode()
    )
    assert canonical_json({"k": '\x01\x1f"\\'}) == b'{"k":"\\u0001\\u001f\\"\\\\"}'
    with pytest.raises(ValueError, match="cannot canonicalise float"):
        canonical_json({"f": 1.5})
    with pytest.raises(ValueError, match="too large"):
        canonical_json(2**60)
