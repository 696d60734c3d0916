"""RFC 7512 PKCS#11 URIs, and the ``file:`` key URIs next to them.

This module needs no PKCS#11 library: configs and ``keys.toml`` are checked
with it on machines that have no token at all.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from typing import Any, Final

from toolkit.errors import FormatError

__all__ = ["Pkcs11Uri", "file_uri_path"]

#: Path attributes airseal selects tokens and keys by, in canonical order.
_PATH_ATTRIBUTES: Final = (
    "token",
    "manufacturer",
    "serial",
    "model",
    "slot-id",
    "object",
    "id",
    "type",
)
_QUERY_ATTRIBUTES: Final = ("pin-source", "module-path")
#: Standard attributes airseal does not implement. They are refused rather than
#: ignored: an ignored selector could pick a different token or key than meant.
_UNSUPPORTED: Final = frozenset(
    {
        "library-manufacturer",
        "library-description",
        "library-version",
        "slot-description",
        "slot-manufacturer",
        "module-name",
    }
)
_OBJECT_TYPES: Final = frozenset({"public", "private", "cert", "secret-key", "data"})
_UNRESERVED: Final = frozenset(string.ascii_letters + string.digits + "-._~")
# RFC 7512 §2.3: characters that may appear unencoded in path and query values.
_PATH_SAFE: Final = _UNRESERVED | frozenset(":[]@!$'()*+,=&")
_QUERY_SAFE: Final = _UNRESERVED | frozenset(":[]@!$'()*+,=/?|")
_HEX: Final = frozenset(string.hexdigits)
_SCHEME: Final = "pkcs11:"


def _error(message: str, *, hint: str | None = None) -> FormatError:
    return FormatError(message, path="PKCS#11 URI", hint=hint)


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed ``pkcs11:`` URI (RFC 7512) naming a token and, usually, a key.

    ``str(uri)`` gives the canonical form: attributes in a fixed order,
    characters percent-encoded exactly where RFC 7512 requires, ``id`` always
    fully encoded. A URI never carries a PIN: ``pin-value`` is refused.

    Attributes:
        token: Token label (``token=``).
        manufacturer: Token manufacturer ID.
        serial: Token serial number.
        model: Token model.
        slot_id: Slot number (``slot-id=``); SoftHSM assigns random ones, so
            prefer ``token`` and ``serial``.
        object: Key label (``CKA_LABEL``).
        id: Key ID (``CKA_ID``), raw bytes.
        type: Object class: ``private``, ``public``, ``cert``, ``secret-key``
            or ``data``.
        pin_source: Where to read the PIN from: a ``file:`` URI or a path.
        module_path: The PKCS#11 module (shared library) to load.
    """

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    slot_id: int | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    pin_source: str | None = None
    module_path: str | None = None

    def __post_init__(self) -> None:
        for name in ("token", "manufacturer", "serial", "model", "object"):
            value = getattr(self, name)
            if value is not None and not value:
                raise _error(f"{name} is empty")
        if self.id is not None and not self.id:
            raise _error("id is empty")
        if self.slot_id is not None and self.slot_id < 0:
            raise _error("slot-id must be a non-negative number")
        if self.type is not None and self.type not in _OBJECT_TYPES:
            raise _error(
                f"type must be one of {', '.join(sorted(_OBJECT_TYPES))}, not {self.type!r}"
            )
        for name in ("pin_source", "module_path"):
            value = getattr(self, name)
            if value is not None and not value:
                raise _error(f"{name.replace('_', '-')} is empty")

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        """Parse a ``pkcs11:`` URI.

        Raises:
            FormatError: The text is not a PKCS#11 URI, repeats or misspells an
                attribute, uses one airseal does not support, or carries a
                ``pin-value``. The message never repeats attribute values, so
                a PIN put in the wrong place does not end up in a log.
        """
        if not text[: len(_SCHEME)].lower() == _SCHEME:
            raise _error("must start with 'pkcs11:'")
        body = text[len(_SCHEME) :]
        if any(ch in body for ch in "\r\n\t\x00") or any(ord(ch) < 0x20 for ch in body):
            raise _error("contains control characters")
        if "#" in body:
            raise _error("a PKCS#11 URI has no fragment ('#' must be written %23)")
        path, _, query = body.partition("?")
        values: dict[str, Any] = {}
        if path:
            for item in path.split(";"):
                name, value = _split(item, "path")
                if name in _QUERY_ATTRIBUTES:
                    raise _error(f"{name} belongs in the query part (after '?')")
                _store(values, name, value, _PATH_ATTRIBUTES)
        if query:
            for item in query.split("&"):
                name, value = _split(item, "query")
                if name == "pin-value":
                    raise _error(
                        "pin-value is refused: airseal never takes a PIN from a URI",
                        hint=(
                            "remove pin-value and give the PIN with pin-source=file:…, "
                            "the AIRSEAL_PKCS11_PIN environment variable or at the prompt"
                        ),
                    )
                if name in _PATH_ATTRIBUTES:
                    raise _error(f"{name} belongs in the path part (before '?')")
                _store(values, name, value, _QUERY_ATTRIBUTES)
        return cls(**values)

    def replace(self, **changes: Any) -> Pkcs11Uri:
        """A copy with some attributes changed (``None`` removes one)."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        path: list[str] = []
        for name in _PATH_ATTRIBUTES:
            value = self._value(name)
            if value is None:
                continue
            if isinstance(value, bytes):
                encoded = "".join(f"%{b:02X}" for b in value)
            else:
                encoded = _encode(str(value), _PATH_SAFE)
            path.append(f"{name}={encoded}")
        query = [
            f"{name}={_encode(str(value), _QUERY_SAFE)}"
            for name in _QUERY_ATTRIBUTES
            if (value := self._value(name)) is not None
        ]
        text = _SCHEME + ";".join(path)
        return f"{text}?{'&'.join(query)}" if query else text

    def _value(self, name: str) -> str | int | bytes | None:
        value: str | int | bytes | None = getattr(self, name.replace("-", "_"))
        return value

    def __repr__(self) -> str:
        return f"Pkcs11Uri({str(self)!r})"


def _split(item: str, part: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep:
        # The item is not repeated: a mistyped PIN must not reach a log.
        raise _error(f"an attribute in the {part} part has no '='")
    if not name:
        raise _error(f"attribute without a name in the {part} part")
    return name, value


def _store(values: dict[str, Any], name: str, raw: str, allowed: tuple[str, ...]) -> None:
    if name not in allowed:
        if name in _UNSUPPORTED or name.startswith("x-"):
            raise _error(f"attribute {name!r} is not supported by airseal")
        raise _error(
            f"unknown attribute {name!r}",
            hint=f"known attributes: {', '.join((*_PATH_ATTRIBUTES, *_QUERY_ATTRIBUTES))}",
        )
    key = name.replace("-", "_")
    if key in values:
        raise _error(f"attribute {name!r} appears twice")
    octets = _decode(raw, name)
    if name == "id":
        values[key] = octets
        return
    try:
        text = octets.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(f"{name} is not UTF-8 after percent-decoding") from None
    if name == "slot-id":
        if not text.isascii() or not text.isdigit():
            raise _error("slot-id must be a decimal number")
        values[key] = int(text)
    else:
        values[key] = text


def _decode(raw: str, name: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "%":
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise _error(f"bad percent-encoding in {name}")
            out.append(int(pair, 16))
            i += 3
        else:
            out += ch.encode("utf-8")
            i += 1
    return bytes(out)


def _encode(text: str, safe: frozenset[str]) -> str:
    return "".join(
        ch if ch in safe else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in text
    )


def file_uri_path(uri: str) -> str:
    """The local path of a ``file:`` URI (``file:/p``, ``file:///p``, ``file://localhost/p``).

    ``file:relative/path`` is accepted too, relative to the working directory.
    Percent-escapes are decoded.

    Raises:
        FormatError: Not a ``file:`` URI, or one naming another host.
    """
    if not uri[:5].lower() == "file:":
        raise FormatError("must start with 'file:'", path="file URI")
    rest = uri[5:]
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise FormatError(f"names host {host!r}; only local files work", path="file URI")
        rest = slash + path
    if not rest:
        raise FormatError("has no path", path="file URI")
    try:
        return _decode(rest, "path").decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("path is not UTF-8", path="file URI") from None
