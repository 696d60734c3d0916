"""Strict codecs shared by every wire format airseal reads or writes.

Everything here is pure and raises :class:`~toolkit.errors.FormatError` with a
dotted ``path`` on bad input. The decoders are deliberately stricter than the
formats' most lenient readers: a signature tool must not accept two different
byte strings as "the same" document.

* JSON: UTF-8 only, no duplicate object keys, no NaN/Infinity; nesting is
  bounded by the interpreter's recursion limit (an error, never a crash).
* base64: standard alphabet, canonical padding, nothing else (no whitespace).
* proto3 JSON scalars: 64-bit integers as decimal strings, RFC 3339 timestamps.
* RFC 8785 (JCS) canonical JSON for the values airseal signs or hashes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from toolkit.errors import FormatError

__all__ = [
    "b64decode",
    "b64encode",
    "canonical_json",
    "format_rfc3339",
    "json_type_name",
    "load_json",
    "parse_int64",
    "parse_rfc3339",
]

_INT_RE = re.compile(r"\A-?(?:0|[1-9][0-9]*)\Z")
# proto3 JSON Timestamp: RFC 3339 with an upper-case "T", 0-9 fractional digits and
# either "Z" or a numeric offset.
_RFC3339_RE = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:(Z)|([+-])(\d{2}):(\d{2}))\Z"
)


def _reject_constant(name: str) -> Any:
    raise FormatError(f"JSON constant {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def load_json(data: bytes | str, *, what: str = "document") -> Any:
    """Parse JSON strictly.

    Args:
        data: UTF-8 bytes or text.
        what: Name of the document, for error messages.

    Returns:
        The decoded value (dicts, lists, str, int, float, bool, None).

    Raises:
        FormatError: Not UTF-8, not JSON, duplicate keys, NaN/Infinity or too deep.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{what} is not UTF-8 (byte {exc.start})") from None
    else:
        text = data
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except FormatError as exc:
        raise FormatError(f"{what} is not valid JSON: {exc.message}") from None
    except RecursionError:
        raise FormatError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise FormatError(f"{what} is not valid JSON: {exc}") from None
    return value


def b64decode(value: object, *, path: str | None = None) -> bytes:
    """Decode standard, padded base64 strictly (proto3 JSON ``bytes``).

    Raises:
        FormatError: Not a string, wrong alphabet, bad padding or non-canonical bits.
    """
    if not isinstance(value, str):
        raise FormatError(f"expected a base64 string, got {json_type_name(value)}", path=path)
    try:
        raw = value.encode("ascii")
        # strict_mode refuses characters outside the alphabet, misplaced or
        # missing padding and data after the padding.
        decoded = binascii.a2b_base64(raw, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise FormatError("is not canonical padded standard base64", path=path) from None
    # Reject encodings whose unused trailing bits are non-zero: two different
    # strings must never decode to the same bytes.
    if binascii.b2a_base64(decoded, newline=False) != raw:
        raise FormatError("is not canonical base64 (non-zero padding bits)", path=path)
    return decoded


def b64encode(data: bytes) -> str:
    """Encode bytes as standard, padded base64 text."""
    return base64.b64encode(data).decode("ascii")


def parse_int64(value: object, *, path: str | None = None, minimum: int | None = None) -> int:
    """Parse a proto3 JSON ``int64``, which must be a decimal string.

    Args:
        value: The JSON value.
        path: Dotted path for errors.
        minimum: Optional lower bound (inclusive).

    Raises:
        FormatError: Not a string, not canonical decimal, or out of range.
    """
    if not isinstance(value, str):
        raise FormatError(
            f"expected a 64-bit integer as a decimal string, got {json_type_name(value)}", path=path
        )
    if not _INT_RE.match(value):
        raise FormatError(f"{value[:40]!r} is not a canonical decimal integer", path=path)
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise FormatError("is outside the int64 range", path=path)
    if minimum is not None and number < minimum:
        raise FormatError(f"must be at least {minimum}", path=path)
    return number


def parse_rfc3339(value: object, *, path: str | None = None) -> datetime:
    """Parse a proto3 JSON ``Timestamp`` (RFC 3339) into an aware UTC datetime.

    Fractional digits beyond microseconds are truncated (Python's resolution).

    Raises:
        FormatError: Not a string or not an RFC 3339 timestamp.
    """
    if not isinstance(value, str):
        raise FormatError(f"expected an RFC 3339 timestamp, got {json_type_name(value)}", path=path)
    m = _RFC3339_RE.match(value)
    if not m:
        raise FormatError(f"{value[:40]!r} is not an RFC 3339 timestamp", path=path)
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = m.groups()
    micros = int((frac or "0").ljust(6, "0")[:6])
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, UTC
        )
    except ValueError as exc:
        raise FormatError(f"{value[:40]!r} is not a valid date: {exc}", path=path) from None
    if not zulu:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        moment = moment - offset if sign == "+" else moment + offset
    return moment


def format_rfc3339(moment: datetime) -> str:
    """Format an aware datetime as proto3 JSON does (UTC, ``Z``, 0/3/6 fraction digits)."""
    if moment.tzinfo is None:
        raise ValueError("format_rfc3339 needs an aware datetime")
    utc = moment.astimezone(UTC)
    base = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond == 0:
        return base + "Z"
    if utc.microsecond % 1000 == 0:
        return f"{base}.{utc.microsecond // 1000:03d}Z"
    return f"{base}.{utc.microsecond:06d}Z"


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` as RFC 8785 (JCS) canonical JSON.

    Supports the JSON types airseal signs: objects with string keys, arrays,
    strings, integers (exactly representable as IEEE 754 doubles), booleans and
    null. Floats are refused rather than risk a non-canonical rendering.

    Raises:
        ValueError: For unsupported types, non-string keys or unsafe integers.
    """
    parts: list[str] = []
    _jcs(value, parts)
    return "".join(parts).encode("utf-8")


def _jcs(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > 2**53:
            raise ValueError("integer too large for canonical JSON")
        out.append(str(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        keys = list(value.keys())
        if not all(isinstance(k, str) for k in keys):
            raise ValueError("canonical JSON object keys must be strings")
        # RFC 8785 sorts keys by their UTF-16 code units.
        keys.sort(key=lambda k: k.encode("utf-16-be"))
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _jcs(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _jcs(item, out)
        out.append("]")
    else:
        raise ValueError(f"cannot canonicalise {type(value).__name__}")


def json_type_name(value: object) -> str:
    """Name a decoded JSON value's type for messages ("a string", "an array", …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
