"""The services' TOML config: one file, one table per service.

``airseal serve ca|ct|tsa|oidc-dev|log --config FILE`` each read their own
table of the same file, so that one file describes a whole instance (and
``airseal serve all`` reads them all)::

    [instance]
    keys = "ceremony/keys.toml"              # names below refer to its keys
    trusted_root = "ceremony/trusted_root.json"

    [ca]
    listen = "127.0.0.1:3001"
    key = "intermediate-ca"                  # a keys.toml name, or pkcs11:… / file:…
    ...

Reading is strict, as for the ceremony config: unknown keys are errors, every
error names the file and the dotted path of the field (``instance.toml:
ca.listen: expected a string``), relative paths are relative to the config
file's directory, and secrets never appear in the file: key URIs may carry a
``pin-source`` file, never a ``pin-value``.

Each service module parses its own table into a frozen dataclass with the
:class:`Table` reader below; this module only knows the shared ``[instance]``
table and how to open a key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from toolkit.errors import FormatError, UsageError

if TYPE_CHECKING:
    from toolkit.signing import Signer
    from toolkit.signing.keyring import KeyRing

__all__ = ["ConfigFile", "Instance", "Table"]

_MISSING: Final = object()
_T = TypeVar("_T")


class Table:
    """A strict reader over one TOML table.

    Every getter records the key as known; :meth:`done` then rejects any key
    nobody asked for. Errors are :class:`FormatError` naming the file and the
    dotted path.

    Args:
        data: The table's contents.
        path: Its dotted path (``ca``, ``ca.issuers[0]``).
        config: The file it came from (for messages and relative paths).
    """

    def __init__(self, data: Mapping[str, Any], path: str, config: ConfigFile) -> None:
        self._data = data
        self.path = path
        self.config = config
        self._seen: set[str] = set()

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str, *, hint: str | None = None) -> FormatError:
        """A :class:`FormatError` about ``key`` of this table."""
        return FormatError(message, path=f"{self.config.name}: {self._where(key)}", hint=hint)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def _get(self, key: str, kind: type[_T] | tuple[type, ...], what: str, default: Any) -> Any:
        self._seen.add(key)
        if key not in self._data:
            if default is _MISSING:
                raise self.error(key, "missing (required)")
            return default
        value = self._data[key]
        # TOML booleans are ints in Python; never let one pass for a number.
        if isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"expected {what}, got a boolean")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {what}, got {_type_name(value)}")
        return value

    def text(self, key: str, default: Any = _MISSING) -> Any:
        """A string (``default`` when absent; required when no default is given)."""
        value = self._get(key, str, "a string", default)
        if isinstance(value, str) and not value:
            raise self.error(key, "must not be empty")
        return value

    def integer(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        """An integer within ``[minimum, maximum]``."""
        value = self._get(key, int, "an integer", default)
        if isinstance(value, int):
            if minimum is not None and value < minimum:
                raise self.error(key, f"must be at least {minimum}, not {value}")
            if maximum is not None and value > maximum:
                raise self.error(key, f"must be at most {maximum}, not {value}")
        return value

    def number(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> Any:
        """A number (integer or float) within ``[minimum, maximum]``."""
        value = self._get(key, (int, float), "a number", default)
        if isinstance(value, int | float):
            value = float(value)
            if minimum is not None and value < minimum:
                raise self.error(key, f"must be at least {minimum:g}, not {value:g}")
            if maximum is not None and value > maximum:
                raise self.error(key, f"must be at most {maximum:g}, not {value:g}")
        return value

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        """A boolean."""
        return self._get(key, bool, "true or false", default)

    def strings(self, key: str, default: Any = _MISSING) -> Any:
        """A list of non-empty strings (as a tuple)."""
        value = self._get(key, list, "a list of strings", default)
        if value is default:
            return value
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.error(f"{key}[{index}]", "expected a non-empty string")
        return tuple(value)

    def path_value(self, key: str, default: Any = _MISSING) -> Any:
        """A file or directory path; relative paths are relative to the config file."""
        value = self.text(key, default)
        if isinstance(value, str):
            return self.config.resolve(value)
        return value

    def table(self, key: str, *, required: bool = True) -> Table | None:
        """A sub-table (None when absent and not required)."""
        value = self._get(key, dict, "a table", _MISSING if required else None)
        if value is None:
            return None
        return Table(value, self._where(key), self.config)

    def tables(self, key: str) -> list[Table]:
        """An array of tables (``[[ca.issuers]]``); empty when absent."""
        value = self._get(key, list, "an array of tables", [])
        out: list[Table] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{index}]", f"expected a table, got {_type_name(item)}")
            out.append(Table(item, f"{self._where(key)}[{index}]", self.config))
        return out

    def keys(self) -> Iterator[str]:
        """The keys present in the table."""
        return iter(self._data)

    def done(self) -> None:
        """Reject every key no getter asked for.

        Raises:
            FormatError: The first unknown key, by dotted path.
        """
        for key in self._data:
            if key not in self._seen:
                known = ", ".join(sorted(self._seen)) or "none"
                raise self.error(key, "unknown field", hint=f"known fields here: {known}")


def _type_name(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


@dataclass(frozen=True)
class Instance:
    """The shared ``[instance]`` table.

    Attributes:
        keys: The ceremony's ``keys.toml``, if given: key names refer to it.
        trusted_root: The instance's ``trusted_root.json``, if given.
    """

    keys: Path | None = None
    trusted_root: Path | None = None


class ConfigFile:
    """A parsed services config file.

    Args:
        document: The TOML document.
        path: Where it was read from (relative paths resolve against its directory).
    """

    def __init__(self, document: Mapping[str, Any], path: Path) -> None:
        self.document = document
        self.file = path
        self.name = path.name
        self._keyring: KeyRing | None = None
        root = Table(document, "", self)
        instance = root.table("instance", required=False)
        if instance is None:
            self.instance = Instance()
        else:
            self.instance = Instance(
                keys=instance.path_value("keys", None),
                trusted_root=instance.path_value("trusted_root", None),
            )
            instance.done()

    @classmethod
    def load(cls, path: Path) -> ConfigFile:
        """Read and parse ``path``.

        Raises:
            FormatError: Not readable, not UTF-8 or not TOML.
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            document = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise FormatError(f"{path.name}: not a TOML file: {exc}") from None
        return cls(document, path.absolute())

    def resolve(self, value: str) -> Path:
        """``value`` as a path, relative to the config file's directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.file.parent / path

    def section(self, name: str) -> Table | None:
        """The table of one service (``ca``, ``ct``, …), or None when the file has none."""
        value = self.document.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise FormatError(
                f"expected a table, got {_type_name(value)}", path=f"{self.name}: {name}"
            )
        return Table(value, name, self)

    def require_section(self, name: str) -> Table:
        """The table of one service.

        Raises:
            UsageError: The file has no such table.
        """
        table = self.section(name)
        if table is None:
            raise UsageError(
                f"{self.name} has no [{name}] table",
                hint=f"add a [{name}] table (see docs/operations/issuance.md)",
            )
        return table

    def keyring(self) -> KeyRing | None:
        """The ``keys.toml`` named by ``[instance] keys`` (None when not given)."""
        if self.instance.keys is None:
            return None
        if self._keyring is None:
            from toolkit.signing.keyring import KeyRing

            self._keyring = KeyRing.load(self.instance.keys)
        return self._keyring

    def key_uri(self, table: Table, key: str, default: Any = _MISSING) -> Any:
        """A key reference of ``table``: a ``keys.toml`` name, or a ``pkcs11:``/``file:`` URI.

        ``file:`` paths that are relative resolve against the config file.

        Raises:
            FormatError: A name that ``keys.toml`` lacks, or no ``keys.toml``
                to look it up in, or a URI that carries a PIN.
        """
        value = table.text(key, default)
        if not isinstance(value, str):
            return value
        if "pin-value" in value.lower():
            raise table.error(
                key,
                "must not carry a PIN (pin-value)",
                hint="use a pin-source file, AIRSEAL_PIN_<TOKEN> or the prompt",
            )
        scheme = value.partition(":")[0].lower()
        if scheme == "pkcs11":
            return value
        if scheme == "file":
            rest = value[len("file:") :]
            if rest.startswith("//"):
                return value
            return "file:" + str(self.resolve(rest))
        ring = self.keyring()
        if ring is None:
            raise table.error(
                key,
                f"{value!r} is neither a pkcs11:/file: URI nor usable as a key name",
                hint="name keys.toml in [instance] keys, or give a URI",
            )
        entry = ring.keys.get(value)
        if entry is None:
            raise table.error(
                key,
                f"keys.toml has no key {value!r}",
                hint=f"its keys: {', '.join(ring.keys) or 'none'}",
            )
        return entry.uri

    def open_key(self, uri: str) -> Signer:
        """Open the key a URI from :meth:`key_uri` names.

        PKCS#11 keys use the module of ``keys.toml`` when the URI has none;
        a rehearsal's ``keys.toml`` also makes its SoftHSM config current
        (over any ``SOFTHSM2_CONF`` already set: it names exactly the tokens
        its URIs refer to), so that the throwaway tokens are found.

        Raises:
            HSMError: The token, key or PIN problems of the PKCS#11 signer.
            UsageError: A wrong passphrase or unsupported key.
            EnvironmentSetupError: The key file cannot be read.
        """
        from toolkit.signing import load_signer

        module: str | None = None
        ring = self.keyring()
        if uri.lower().startswith("pkcs11:") and ring is not None:
            module = ring.module
            if ring.softhsm2_conf is not None:
                # SoftHSM reads its config once, when the module is first
                # loaded: this must happen before any token is opened. A
                # stale SOFTHSM2_CONF from another rehearsal would hide the
                # tokens this keys.toml names.
                os.environ["SOFTHSM2_CONF"] = ring.softhsm2_conf
        return load_signer(uri, module=module)
