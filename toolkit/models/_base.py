"""Strict proto3-JSON reading and writing shared by every model.

:class:`Reader` wraps one JSON object while a model's ``from_dict`` pulls its
fields out of it. It knows the proto3 JSON rules (lowerCamelCase keys, with
the original snake_case names also accepted; ``null`` meaning "unset"; 64-bit
integers as strings; bytes as padded base64; enums by name) and rejects
everything else, including fields the model does not know. Errors carry the
dotted path of the offending field, e.g. ``verificationMaterial.tlogEntries[0].logIndex``.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, ParamSpec, TypeVar

from toolkit.encoding import (
    b64decode,
    b64encode,
    format_rfc3339,
    json_type_name,
    load_json,
    parse_int64,
    parse_rfc3339,
)
from toolkit.errors import Check, FormatError

__all__ = [
    "Reader",
    "compact",
    "dump_document",
    "enum_value",
    "format_time",
    "load_document",
    "read_media_type",
    "tag_errors",
    "to_b64",
]

T = TypeVar("T")
P = ParamSpec("P")
E = TypeVar("E", bound=enum.Enum)

_MISSING: Final = object()
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")
# lowerCamelCase field name -> its snake_case proto name, or None when equal.
_ALIASES: dict[str, str | None] = {}


def _alias(camel: str) -> str | None:
    try:
        return _ALIASES[camel]
    except KeyError:
        snake = _CAMEL_RE.sub("_", camel).lower()
        alias = _ALIASES[camel] = snake if snake != camel else None
        return alias


class Reader:
    """Reads the fields of one proto3-JSON object, strictly.

    Args:
        value: The decoded JSON value that should be an object.
        path: Dotted path of this object inside its document ("" at the top).
    """

    __slots__ = ("_data", "_path", "_used")

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise FormatError(f"expected an object, got {json_type_name(value)}", path=path or None)
        self._data: dict[str, Any] = value
        self._path = path
        self._used: set[str] = set()

    def sub(self, name: str) -> str:
        """Return the dotted path of field ``name``."""
        return f"{self._path}.{name}" if self._path else name

    def _take(self, name: str) -> Any:
        data = self._data
        alias = _alias(name)
        if name in data:
            if alias is not None and alias in data:
                raise FormatError(f"both {name!r} and {alias!r} are set", path=self._path or None)
            key = name
        elif alias is not None and alias in data:
            key = alias
        else:
            return _MISSING
        self._used.add(key)
        value = data[key]
        # proto3 JSON: null stands for "not set" on every field type.
        return _MISSING if value is None else value

    def _required(self, name: str) -> Any:
        value = self._take(name)
        if value is _MISSING:
            raise FormatError("required field is missing", path=self.sub(name))
        return value

    # Scalars ---------------------------------------------------------------

    def string(self, name: str, *, required: bool = False) -> str:
        """Read a string field ("" when unset and not required)."""
        value = self._required(name) if required else self._take(name)
        if value is _MISSING:
            return ""
        if not isinstance(value, str):
            raise FormatError(
                f"expected a string, got {json_type_name(value)}", path=self.sub(name)
            )
        return value

    def bytes_(self, name: str, *, required: bool = False) -> bytes:
        """Read a base64 ``bytes`` field (b"" when unset and not required)."""
        value = self._required(name) if required else self._take(name)
        if value is _MISSING:
            return b""
        try:
            return b64decode(value)
        except FormatError as exc:
            # The path is built only on failure: most fields never need it.
            raise FormatError(exc.detail, path=self.sub(name)) from None

    def int64(self, name: str, *, required: bool = False, minimum: int | None = None) -> int:
        """Read an ``int64`` field written as a decimal string (0 when unset)."""
        value = self._required(name) if required else self._take(name)
        if value is _MISSING:
            return 0
        return parse_int64(value, path=self.sub(name), minimum=minimum)

    def int32(self, name: str, *, required: bool = False) -> int:
        """Read a 32-bit integer field, which proto3 JSON writes as a number."""
        value = self._required(name) if required else self._take(name)
        if value is _MISSING:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise FormatError(
                f"expected an integer, got {json_type_name(value)}", path=self.sub(name)
            )
        if not -(2**31) <= value < 2**31:
            raise FormatError("is outside the int32 range", path=self.sub(name))
        return value

    def enum(self, name: str, enum_cls: type[E]) -> E:
        """Read a required enum field by its proto name; unknown names are errors."""
        value = self._required(name)
        if not isinstance(value, str):
            raise FormatError(
                f"expected an enum name, got {json_type_name(value)}", path=self.sub(name)
            )
        try:
            return enum_cls(value)
        except ValueError:
            raise FormatError(
                f"unknown {enum_cls.__name__} value {value[:60]!r}", path=self.sub(name)
            ) from None

    def timestamp(self, name: str, *, required: bool = False) -> datetime | None:
        """Read a ``google.protobuf.Timestamp`` (RFC 3339) field."""
        value = self._required(name) if required else self._take(name)
        if value is _MISSING:
            return None
        return parse_rfc3339(value, path=self.sub(name))

    # Composites ------------------------------------------------------------

    def message(self, name: str, parse: Callable[[Any, str], T]) -> T:
        """Read a required sub-message with ``parse(value, path)``."""
        return parse(self._required(name), self.sub(name))

    def opt_message(self, name: str, parse: Callable[[Any, str], T]) -> T | None:
        """Read an optional sub-message (None when unset)."""
        value = self._take(name)
        if value is _MISSING:
            return None
        return parse(value, self.sub(name))

    def repeated(
        self, name: str, parse: Callable[[Any, str], T], *, max_items: int | None = None
    ) -> tuple[T, ...]:
        """Read a repeated field (an empty tuple when unset)."""
        value = self._take(name)
        if value is _MISSING:
            return ()
        path = self.sub(name)
        if not isinstance(value, list):
            raise FormatError(f"expected an array, got {json_type_name(value)}", path=path)
        if max_items is not None and len(value) > max_items:
            raise FormatError(f"has {len(value)} items, more than {max_items}", path=path)
        return tuple(parse(item, f"{path}[{i}]") for i, item in enumerate(value))

    def finish(self) -> None:
        """Reject fields the model does not know (proto3 JSON parsers must)."""
        if len(self._used) != len(self._data):
            unknown = sorted(k for k in self._data if k not in self._used)
            raise FormatError(f"unknown field {unknown[0]!r}", path=self._path or None)

    def build(self, cls: Callable[..., T], /, **fields: Any) -> T:
        """Finish reading (rejecting unknown fields) and construct the model.

        Validation errors raised by the constructor get this object's path.
        """
        self.finish()
        try:
            return cls(**fields)
        except FormatError as exc:
            if exc.path is None and self._path:
                raise FormatError(exc.detail, path=self._path, check=exc.check) from None
            raise


#: Trust documents larger than this are refused (real ones are < 64 KiB).
MAX_TRUST_DOCUMENT_BYTES = 4 << 20


def tag_errors(check: Check) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Make a document parser's format errors carry ``check``.

    Errors that already name a check (an unknown media type, say) keep theirs.
    """

    def decorate(parse: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(parse)
        def tagged(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return parse(*args, **kwargs)
            except FormatError as exc:
                if exc.check is not None:
                    raise
                raise FormatError(exc.detail, path=exc.path, check=check) from None

        return tagged

    return decorate


def read_media_type(r: Reader, expected: str, what: str) -> str:
    """Read ``mediaType`` first and insist on ``expected``.

    It is checked before anything else so that a document of another kind or
    version gets this message rather than a field error.
    """
    media_type = r.string("mediaType", required=True)
    if media_type != expected:
        raise FormatError(
            f"unsupported {what} media type {media_type[:80]!r} (expected {expected!r})",
            path=r.sub("mediaType"),
        )
    return media_type


def load_document(data: bytes | str, what: str) -> Any:
    """Decode a trust document's JSON (check ``trust-root.parse`` on errors)."""
    if len(data) > MAX_TRUST_DOCUMENT_BYTES:
        raise FormatError(
            f"{what} is larger than {MAX_TRUST_DOCUMENT_BYTES} bytes", check=Check.TRUST_ROOT_PARSE
        )
    try:
        return load_json(data, what=what)
    except FormatError as exc:
        raise FormatError(exc.detail, check=Check.TRUST_ROOT_PARSE) from None


def dump_document(value: dict[str, Any]) -> str:
    """The indented JSON airseal publishes trust documents in (stable byte for byte)."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def to_b64(data: bytes) -> str:
    """Encode ``bytes`` for proto3 JSON."""
    return b64encode(data)


def format_time(moment: datetime) -> str:
    """Encode a timestamp for proto3 JSON."""
    return format_rfc3339(moment)


def enum_value(value: enum.Enum) -> str:
    """Encode an enum for proto3 JSON (its name)."""
    return str(value.value)


def compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """Drop unset fields (None) from a ``to_dict`` result, keeping field order."""
    return {k: v for k, v in mapping.items() if v is not None}
