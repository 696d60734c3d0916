"""The ``.airseal`` offline kit: one strictly decoded msgpack map.

A kit carries across an air gap everything a verifier needs besides a pinned
TUF root: the TUF metadata chain, the target files it signs and the Sigstore
bundles to verify (``docs/formats/kit.md``)::

    {"v": 1,
     "tuf": {"root": [bytes v1, …, bytes vN], "timestamp": bytes,
             "snapshot": bytes, "targets": bytes, <delegated role>: bytes, …},
     "targets": {"trusted_root.json": bytes, "signing_config.v0.2.json": bytes, …},
     "bundles": [bytes, …],
     "meta": {…}}

Every member is carried byte-exact (python-tuf's ``to_bytes()`` is not
byte-stable, and signatures cover exact bytes). Nothing in a kit is trusted
because it is in the kit: TUF signatures cover the metadata and target files,
Sigstore signatures the bundles, and ``meta`` is informational only.

Decoding is deliberately strict, so that one kit has one meaning: a total size
cap and per-member caps checked while parsing, no ext types (msgpack
timestamps included), no duplicate map keys at any depth, no trailing bytes,
exact types (``bin`` for members, ``str`` for names) and no unknown top-level
or ``tuf`` keys beyond delegated role names. Every violation raises
:class:`~toolkit.errors.FormatError` with check ``kit.parse``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import msgpack

from toolkit.errors import Check, FormatError

__all__ = [
    "FORMAT_VERSION",
    "MAX_BUNDLES",
    "MAX_BUNDLE_BYTES",
    "MAX_DELEGATED_ROLES",
    "MAX_KIT_BYTES",
    "MAX_META_BYTES",
    "MAX_META_DEPTH",
    "MAX_ROOTS",
    "MAX_ROOT_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "MAX_TARGETS_BYTES",
    "MAX_TARGET_FILES",
    "MAX_TARGET_FILE_BYTES",
    "MAX_TIMESTAMP_BYTES",
    "SIGNING_CONFIG_TARGET",
    "TOP_LEVEL_ROLES",
    "TRUSTED_ROOT_TARGET",
    "Kit",
]

FORMAT_VERSION: Final = 1
#: Target paths of the two files a Sigstore TUF repository distributes.
TRUSTED_ROOT_TARGET: Final = "trusted_root.json"
SIGNING_CONFIG_TARGET: Final = "signing_config.v0.2.json"
TOP_LEVEL_ROLES: Final = ("root", "timestamp", "snapshot", "targets")

# Caps. The metadata caps are python-tuf's UpdaterConfig defaults, so that a
# kit never holds a file the updater would refuse to download anyway.
MAX_KIT_BYTES: Final = 64 << 20
MAX_ROOTS: Final = 256  # UpdaterConfig.max_root_rotations
MAX_ROOT_BYTES: Final = 512_000  # UpdaterConfig.root_max_length
MAX_TIMESTAMP_BYTES: Final = 16_384  # UpdaterConfig.timestamp_max_length
MAX_SNAPSHOT_BYTES: Final = 2_000_000  # UpdaterConfig.snapshot_max_length
MAX_TARGETS_BYTES: Final = 5_000_000  # UpdaterConfig.targets_max_length (also delegated roles)
MAX_DELEGATED_ROLES: Final = 64
MAX_TARGET_FILES: Final = 16
MAX_TARGET_FILE_BYTES: Final = 8 << 20
MAX_BUNDLES: Final = 256
MAX_BUNDLE_BYTES: Final = 4 << 20
MAX_META_BYTES: Final = 64 << 10
MAX_META_DEPTH: Final = 8
#: Longest role name or target path, in UTF-8 bytes.
MAX_NAME_BYTES: Final = 255

_TOP_KEYS: Final = ("v", "tuf", "targets", "bundles", "meta")
_BIGGEST_MEMBER: Final = max(MAX_TARGETS_BYTES, MAX_TARGET_FILE_BYTES, MAX_BUNDLE_BYTES)
# Names: printable, no path tricks. TUF role names end up in URLs and, in
# python-tuf, in file names of the state directory (URL-quoted).
_NAME_RE: Final = re.compile(r"\A[A-Za-z0-9._~+\-/@]+\Z")


def _error(message: str, path: str | None = None) -> FormatError:
    return FormatError(message, path=path, check=Check.KIT_PARSE)


class _DuplicateKeyError(ValueError):
    """A map repeated a key (raised inside msgpack's object_pairs_hook)."""


def _pairs(pairs: Sequence[tuple[Any, Any]]) -> dict[Any, Any]:
    # msgpack keeps the last of two equal keys silently; a kit with two
    # meanings is refused instead.
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"duplicate map key {str(key)[:60]!r}")
        out[key] = value
    return out


def _check_name(name: object, path: str, what: str) -> str:
    if type(name) is not str:
        raise _error(f"{what} must be a string", path)
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise _error(f"{what} must be 1 to {MAX_NAME_BYTES} bytes long", path)
    if not _NAME_RE.match(name) or name.startswith("/") or ".." in name.split("/"):
        raise _error(
            f"{what} {name[:60]!r} has characters or segments outside the allowed set", path
        )
    return name


def _check_bytes(value: object, path: str, cap: int) -> bytes:
    if type(value) is not bytes:
        raise _error(f"must be msgpack bin (bytes), got {_type_name(value)}", path)
    if not value:
        raise _error("must not be empty", path)
    if len(value) > cap:
        raise _error(f"is {len(value)} bytes, more than the cap of {cap}", path)
    return value


def _type_name(value: object) -> str:
    if value is None:
        return "nil"
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names |= {bytes: "bin", list: "an array", dict: "a map"}
    return names.get(type(value), type(value).__name__)


def _check_meta(value: object, path: str, depth: int) -> Any:
    """Validate free-form ``meta`` values: msgpack's plain types, bounded depth."""
    if depth > MAX_META_DEPTH:
        raise _error(f"is nested more than {MAX_META_DEPTH} levels deep", path)
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes):
        return value
    if isinstance(value, list | tuple):
        return tuple(_check_meta(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _error("map keys must be strings", path)
            out[key] = _check_meta(item, f"{path}.{key}", depth + 1)
        return MappingProxyType(out)
    raise _error(f"holds {_type_name(value)}, which meta does not allow", path)


def _plain(value: Any) -> Any:
    """Frozen meta back to plain msgpack-encodable values."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Kit:
    """An offline kit (``.airseal``), validated at construction.

    Attributes:
        roots: Root metadata versions 1..N, in order, as published.
        timestamp: ``timestamp.json`` as published.
        snapshot: The snapshot the timestamp names.
        targets: The top-level targets metadata.
        delegated: Delegated targets metadata by role name.
        target_files: Target files by target path (``trusted_root.json`` is required).
        bundles: Sigstore bundles (JSON bytes), in order.
        meta: Unsigned, informational data (export time, mirror URL…);
            never used for a trust decision.
    """

    roots: tuple[bytes, ...]
    timestamp: bytes
    snapshot: bytes
    targets: bytes
    target_files: Mapping[str, bytes]
    bundles: tuple[bytes, ...] = ()
    delegated: Mapping[str, bytes] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        roots = tuple(self.roots)
        if not roots:
            raise _error("must list at least root version 1", "tuf.root")
        if len(roots) > MAX_ROOTS:
            raise _error(f"lists {len(roots)} roots, more than the cap of {MAX_ROOTS}", "tuf.root")
        for i, data in enumerate(roots):
            _check_bytes(data, f"tuf.root[{i}]", MAX_ROOT_BYTES)
        _check_bytes(self.timestamp, "tuf.timestamp", MAX_TIMESTAMP_BYTES)
        _check_bytes(self.snapshot, "tuf.snapshot", MAX_SNAPSHOT_BYTES)
        _check_bytes(self.targets, "tuf.targets", MAX_TARGETS_BYTES)
        if not isinstance(self.delegated, Mapping):
            raise _error("delegated roles must be a mapping", "tuf")
        if len(self.delegated) > MAX_DELEGATED_ROLES:
            raise _error(f"more than {MAX_DELEGATED_ROLES} delegated roles", "tuf")
        delegated: dict[str, bytes] = {}
        for name, data in self.delegated.items():
            _check_name(name, "tuf", "a delegated role name")
            if name in TOP_LEVEL_ROLES:
                raise _error(f"{name!r} is a top-level role, not a delegated one", "tuf")
            delegated[name] = _check_bytes(data, f"tuf.{name}", MAX_TARGETS_BYTES)
        if not isinstance(self.target_files, Mapping):
            raise _error("must be a map of target paths to bytes", "targets")
        if len(self.target_files) > MAX_TARGET_FILES:
            raise _error(f"more than {MAX_TARGET_FILES} target files", "targets")
        files: dict[str, bytes] = {}
        for name, data in self.target_files.items():
            _check_name(name, "targets", "a target path")
            files[name] = _check_bytes(data, f"targets.{name}", MAX_TARGET_FILE_BYTES)
        if TRUSTED_ROOT_TARGET not in files:
            raise _error(f"must carry {TRUSTED_ROOT_TARGET}", "targets")
        bundles = tuple(self.bundles)
        if len(bundles) > MAX_BUNDLES:
            raise _error(f"more than {MAX_BUNDLES} bundles", "bundles")
        for i, data in enumerate(bundles):
            _check_bytes(data, f"bundles[{i}]", MAX_BUNDLE_BYTES)
        if not isinstance(self.meta, Mapping):
            raise _error("must be a map", "meta")
        meta = _check_meta(self.meta, "meta", 0)
        if len(msgpack.packb(_plain(meta), use_bin_type=True)) > MAX_META_BYTES:
            raise _error(f"is larger than the cap of {MAX_META_BYTES} bytes", "meta")
        object.__setattr__(self, "roots", roots)
        object.__setattr__(self, "bundles", bundles)
        object.__setattr__(self, "delegated", MappingProxyType(delegated))
        object.__setattr__(self, "target_files", MappingProxyType(files))
        object.__setattr__(self, "meta", meta)

    # -- accessors -------------------------------------------------------------

    @property
    def trusted_root(self) -> bytes:
        """The (still unverified) ``trusted_root.json`` bytes the kit carries."""
        return self.target_files[TRUSTED_ROOT_TARGET]

    def metadata_files(self) -> dict[str, bytes]:
        """Every TUF metadata member under its role name (roots as ``N.root``)."""
        out = {f"{i}.root": data for i, data in enumerate(self.roots, start=1)}
        out |= {"timestamp": self.timestamp, "snapshot": self.snapshot, "targets": self.targets}
        out |= dict(self.delegated)
        return out

    # -- codec -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The msgpack map, as plain Python values."""
        tuf: dict[str, Any] = {
            "root": list(self.roots),
            "timestamp": self.timestamp,
            "snapshot": self.snapshot,
            "targets": self.targets,
        }
        tuf |= dict(self.delegated)
        return {
            "v": FORMAT_VERSION,
            "tuf": tuf,
            "targets": dict(self.target_files),
            "bundles": list(self.bundles),
            "meta": _plain(self.meta),
        }

    def encode(self) -> bytes:
        """Serialise the kit (msgpack, ``bin`` for every member)."""
        data: bytes = msgpack.packb(self.to_dict(), use_bin_type=True)
        if len(data) > MAX_KIT_BYTES:
            raise _error(f"the kit would be {len(data)} bytes, more than {MAX_KIT_BYTES}")
        return data

    @classmethod
    def decode(cls, data: bytes) -> Kit:
        """Parse a kit strictly.

        Args:
            data: The ``.airseal`` file's bytes.

        Returns:
            The kit; nothing in it is verified yet.

        Raises:
            FormatError: ``kit.parse`` for any deviation from the format.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise _error("a kit is bytes")
        if len(data) > MAX_KIT_BYTES:
            raise _error(f"the kit is {len(data)} bytes, more than the cap of {MAX_KIT_BYTES}")
        if not data:
            raise _error("the kit is empty")
        try:
            value = msgpack.unpackb(
                data,
                raw=False,
                use_list=True,
                strict_map_key=True,
                object_pairs_hook=_pairs,
                # No ext type at all: that also refuses msgpack's timestamp
                # (ext -1), which ext_hook never sees.
                max_ext_len=0,
                max_bin_len=_BIGGEST_MEMBER,
                max_str_len=MAX_META_BYTES,
                max_array_len=max(MAX_ROOTS, MAX_BUNDLES),
                max_map_len=4096,
            )
        except _DuplicateKeyError as exc:
            raise _error(str(exc)) from None
        except msgpack.ExtraData:
            raise _error("trailing bytes after the kit's map") from None
        except UnicodeDecodeError:
            raise _error("a string is not valid UTF-8") from None
        except msgpack.StackError:
            raise _error("nested too deeply") from None
        except (ValueError, TypeError) as exc:
            # Truncated input, a cap exceeded, an ext type, a non-string key…
            raise _error(f"not a valid kit: {str(exc)[:120] or type(exc).__name__}") from None
        return cls.from_dict(value)

    @classmethod
    def from_dict(cls, value: object) -> Kit:
        """Build a kit from the decoded msgpack map (exact types required).

        Raises:
            FormatError: ``kit.parse`` for a missing, unknown or mistyped member.
        """
        if type(value) is not dict:
            raise _error(f"a kit is a msgpack map, got {_type_name(value)}")
        unknown = sorted(str(k) for k in value if k not in _TOP_KEYS)
        if unknown:
            raise _error(f"unknown top-level key {unknown[0][:60]!r}")
        missing = [k for k in _TOP_KEYS if k not in value]
        if missing:
            raise _error(f"missing top-level key {missing[0]!r}")
        version = value["v"]
        if type(version) is not int or version != FORMAT_VERSION:
            raise _error(f"unsupported kit version {str(version)[:20]!r} (expected 1)", "v")
        tuf = value["tuf"]
        if type(tuf) is not dict:
            raise _error(f"must be a map, got {_type_name(tuf)}", "tuf")
        for role in TOP_LEVEL_ROLES:
            if role not in tuf:
                raise _error(f"missing {role!r}", "tuf")
        roots = tuf["root"]
        if type(roots) is not list:
            raise _error(f"must be an array of bin, got {_type_name(roots)}", "tuf.root")
        delegated = {k: v for k, v in tuf.items() if k not in TOP_LEVEL_ROLES}
        targets = value["targets"]
        if type(targets) is not dict:
            raise _error(f"must be a map, got {_type_name(targets)}", "targets")
        bundles = value["bundles"]
        if type(bundles) is not list:
            raise _error(f"must be an array of bin, got {_type_name(bundles)}", "bundles")
        meta = value["meta"]
        if type(meta) is not dict:
            raise _error(f"must be a map, got {_type_name(meta)}", "meta")
        return cls(
            roots=tuple(roots),
            timestamp=tuf["timestamp"],
            snapshot=tuf["snapshot"],
            targets=tuf["targets"],
            delegated=delegated,
            target_files=targets,
            bundles=tuple(bundles),
            meta=meta,
        )
