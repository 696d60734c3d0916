"""``keys.toml``: where an instance's keys live, as the ceremony wrote it.

The ceremony ends by listing each key it created with its PKCS#11 URI (never a
PIN), its purpose, signing scheme and SPKI hash. Services read this file to
find their signing keys; ``ceremony verify`` reads it to check it against the
transcript. The format is deliberately small::

    [pkcs11]
    module = "/usr/lib/softhsm/libsofthsm2.so"
    module_sha256 = "…"

    [keys.tlog]
    purpose = "tlog"
    uri = "pkcs11:token=airseal-ca;serial=…;object=airseal-tlog;type=private"
    scheme = "PKIX_ED25519"
    spki_sha256 = "…"

A rehearsal adds ``[rehearsal] softhsm2_conf = "…"`` so that its throwaway
tokens can be found again.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from toolkit.errors import FormatError
from toolkit.signing._api import Scheme

__all__ = ["KeyEntry", "KeyRing"]

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class KeyEntry:
    """One key of the ring.

    Attributes:
        name: The key's name in the ceremony config.
        purpose: What the key is for (``root-ca``, ``tlog``, …).
        uri: Its PKCS#11 URI; may carry ``pin-source``, never a PIN.
        scheme: The signing scheme.
        spki_sha256: Hex SHA-256 of the DER public key, to check the token
            still holds the same key.
    """

    name: str
    purpose: str
    uri: str
    scheme: Scheme
    spki_sha256: str

    def __post_init__(self) -> None:
        if not _BARE_KEY.fullmatch(self.name):
            raise FormatError(f"key name {self.name!r} must use only letters, digits, - and _")
        if "pin-value" in self.uri:
            raise FormatError(f"keys.{self.name}.uri: must not carry a PIN (pin-value)")
        if not _HEX64.fullmatch(self.spki_sha256):
            raise FormatError(f"keys.{self.name}.spki_sha256: expected 64 lowercase hex digits")

    def to_dict(self) -> dict[str, str]:
        """The key's table in ``keys.toml``."""
        return {
            "purpose": self.purpose,
            "uri": self.uri,
            "scheme": self.scheme.value,
            "spki_sha256": self.spki_sha256,
        }


@dataclass(frozen=True)
class KeyRing:
    """The contents of a ``keys.toml``.

    Attributes:
        module: Path of the PKCS#11 module the keys were created with.
        module_sha256: Hex SHA-256 of that module file.
        keys: The keys, in the ceremony's order.
        softhsm2_conf: For rehearsals only: the SoftHSM config of the
            throwaway tokens.
    """

    module: str
    module_sha256: str
    keys: Mapping[str, KeyEntry] = field(default_factory=dict)
    softhsm2_conf: str | None = None

    def by_purpose(self, purpose: str) -> KeyEntry:
        """The one key with ``purpose``.

        Raises:
            FormatError: No key, or more than one, has that purpose.
        """
        found = [k for k in self.keys.values() if k.purpose == purpose]
        if len(found) != 1:
            raise FormatError(
                f"keys.toml: expected one key with purpose {purpose!r}, found {len(found)}"
            )
        return found[0]

    def to_toml(self, *, header: str = "") -> bytes:
        """Render the ring as TOML (strings escaped as TOML basic strings)."""
        out: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
        if out:
            out.append("")
        out += [
            "[pkcs11]",
            f"module = {_q(self.module)}",
            f"module_sha256 = {_q(self.module_sha256)}",
        ]
        if self.softhsm2_conf is not None:
            out += ["", "[rehearsal]", f"softhsm2_conf = {_q(self.softhsm2_conf)}"]
        for entry in self.keys.values():
            out += ["", f"[keys.{entry.name}]"]
            out += [f"{k} = {_q(v)}" for k, v in entry.to_dict().items()]
        return ("\n".join(out) + "\n").encode()

    @classmethod
    def from_toml(cls, data: bytes) -> KeyRing:
        """Parse ``keys.toml``.

        Raises:
            FormatError: Malformed TOML, unknown or missing fields (message
                gives the dotted path).
        """
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise FormatError(f"keys.toml: {exc}") from None
        _only(doc, {"pkcs11", "rehearsal", "keys"}, "")
        pkcs11 = _table(doc, "pkcs11", "")
        _only(pkcs11, {"module", "module_sha256"}, "pkcs11")
        rehearsal = _table(doc, "rehearsal", "") if "rehearsal" in doc else None
        if rehearsal is not None:
            _only(rehearsal, {"softhsm2_conf"}, "rehearsal")
        keys: dict[str, KeyEntry] = {}
        for name, raw in _table(doc, "keys", "").items():
            path = f"keys.{name}"
            if not isinstance(raw, dict):
                raise FormatError(f"{path}: expected a table")
            _only(raw, {"purpose", "uri", "scheme", "spki_sha256"}, path)
            scheme_text = _str(raw, "scheme", path)
            try:
                scheme = Scheme(scheme_text)
            except ValueError:
                raise FormatError(f"{path}.scheme: unknown scheme {scheme_text!r}") from None
            keys[name] = KeyEntry(
                name,
                _str(raw, "purpose", path),
                _str(raw, "uri", path),
                scheme,
                _str(raw, "spki_sha256", path),
            )
        return cls(
            module=_str(pkcs11, "module", "pkcs11"),
            module_sha256=_str(pkcs11, "module_sha256", "pkcs11"),
            keys=keys,
            softhsm2_conf=_str(rehearsal, "softhsm2_conf", "rehearsal") if rehearsal else None,
        )

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read and parse a ``keys.toml`` file."""
        try:
            return cls.from_toml(path.read_bytes())
        except OSError as exc:
            raise FormatError(f"cannot read {path}: {exc.strerror}") from None


def _q(value: str) -> str:
    # JSON string syntax is a subset of TOML basic strings once non-ASCII
    # characters are escaped as \uXXXX, which both accept.
    return json.dumps(value, ensure_ascii=True)


def _only(table: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise FormatError(f"keys.toml: {where}: unknown field")


def _table(doc: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = doc.get(key)
    where = f"{path}.{key}" if path else key
    if not isinstance(value, dict):
        raise FormatError(f"keys.toml: {where}: expected a table")
    return value


def _str(table: Mapping[str, Any], key: str, path: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise FormatError(f"keys.toml: {path}.{key}: expected a string")
    return value
