"""The ``.airseal`` kit format: round trip, byte-exact members, strict decoding."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from toolkit.errors import Check, FormatError
from toolkit.trust import kit as kitmod
from toolkit.trust.kit import Kit


def _kit(**changes: Any) -> Kit:
    fields: dict[str, Any] = {
        "roots": (b'{"signed": 1}', b'{"signed": 2} '),
        "timestamp": b"ts",
        "snapshot": b"snap",
        "targets": b"targets",
        "target_files": {"trusted_root.json": b"{}", "signing_config.v0.2.json": b"{ }"},
        "bundles": (b'{"bundle": 1}',),
        "delegated": {"sigstore": b"delegated"},
        "meta": {"exported": "2025-06-01T12:00:00Z", "mirror": "https://tuf.example", "n": [1, 2]},
    }
    fields.update(changes)
    return Kit(**fields)


def _doc(**changes: Any) -> dict[str, Any]:
    doc = _kit().to_dict()
    doc.update(changes)
    return doc


def _raw(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def _rejects(data: bytes, fragment: str = "") -> FormatError:
    with pytest.raises(FormatError) as info:
        Kit.decode(data)
    assert info.value.check is Check.KIT_PARSE
    assert info.value.code == "kit.parse"
    assert fragment in info.value.message
    return info.value


def test_round_trip_keeps_every_member_byte_exact() -> None:
    kit = _kit()
    data = kit.encode()
    again = Kit.decode(data)
    assert again == kit
    assert again.roots == kit.roots
    assert again.trusted_root == b"{}"
    assert again.delegated["sigstore"] == b"delegated"
    assert again.meta["n"] == (1, 2)
    assert again.encode() == data
    assert set(again.metadata_files()) == {
        "1.root",
        "2.root",
        "timestamp",
        "snapshot",
        "targets",
        "sigstore",
    }


def test_members_are_immutable() -> None:
    kit = _kit()
    with pytest.raises(TypeError):
        kit.target_files["trusted_root.json"] = b"x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        kit.timestamp = b"x"  # type: ignore[misc]


@pytest.mark.parametrize("cut", [1, 2, 10, 100])
def test_truncated_kit_is_rejected(cut: int) -> None:
    data = _kit().encode()
    _rejects(data[:-cut])


@pytest.mark.parametrize("pad", [b"\x00", b"\xc0", _raw({"v": 1})])
def test_padded_kit_is_rejected(pad: bytes) -> None:
    _rejects(_kit().encode() + pad, "trailing bytes")


def test_empty_and_non_map() -> None:
    _rejects(b"", "empty")
    _rejects(_raw([1, 2]), "msgpack map")


def test_duplicate_top_level_key_is_rejected() -> None:
    # {"v":1, "v":1, ...}: msgpack alone would keep the last one silently.
    doc = _doc()
    body = b"".join(_raw(k) + _raw(v) for k, v in doc.items())
    data = bytes([0x80 | (len(doc) + 1)]) + _raw("v") + _raw(1) + body
    _rejects(data, "duplicate map key 'v'")


def test_duplicate_key_in_nested_maps_is_rejected() -> None:
    files = _raw("trusted_root.json") + _raw(b"{}")
    targets = bytes([0x82]) + files + files
    doc = _doc()
    del doc["targets"]
    body = b"".join(_raw(k) + _raw(v) for k, v in doc.items())
    data = bytes([0x80 | (len(doc) + 1)]) + body + _raw("targets") + targets
    _rejects(data, "duplicate map key")
    meta = bytes([0x82]) + _raw("a") + _raw(1) + _raw("a") + _raw(2)
    doc = _doc()
    del doc["meta"]
    body = b"".join(_raw(k) + _raw(v) for k, v in doc.items())
    _rejects(bytes([0x80 | (len(doc) + 1)]) + body + _raw("meta") + meta, "duplicate")


@pytest.mark.parametrize(
    "ext",
    [msgpack.ExtType(1, b"x"), msgpack.Timestamp(1, 0)],
    ids=["ext-1", "msgpack-timestamp"],
)
def test_ext_types_are_rejected_anywhere(ext: Any) -> None:
    _rejects(_raw(_doc(meta={"when": ext})))
    _rejects(_raw(_doc(bundles=[ext])))


def test_unknown_and_missing_keys() -> None:
    _rejects(_raw(_doc(extra=1)), "unknown top-level key 'extra'")
    doc = _doc()
    del doc["bundles"]
    _rejects(_raw(doc), "missing top-level key 'bundles'")
    doc = _doc()
    del doc["tuf"]["snapshot"]
    _rejects(_raw(doc), "missing 'snapshot'")


def test_non_string_keys_are_rejected() -> None:
    _rejects(_raw(_doc(meta={1: "x"})))
    doc = _doc()
    doc["targets"] = {b"trusted_root.json": b"{}"}
    _rejects(_raw(doc))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"v": 2}, "unsupported kit version"),
        ({"v": True}, "unsupported kit version"),
        ({"v": 1.0}, "unsupported kit version"),
        ({"bundles": ["a string, not bin"]}, "must be msgpack bin"),
        ({"bundles": [b""]}, "must not be empty"),
        ({"bundles": {"0": b"x"}}, "must be an array"),
        ({"targets": {"signing_config.v0.2.json": b"{}"}}, "must carry trusted_root.json"),
        ({"targets": {"../trusted_root.json": b"{}", "trusted_root.json": b"{}"}}, "segments"),
        ({"meta": []}, "must be a map"),
    ],
)
def test_exact_types(change: dict[str, Any], fragment: str) -> None:
    _rejects(_raw(_doc(**change)), fragment)


def test_tuf_members_need_exact_types() -> None:
    doc = _doc()
    doc["tuf"]["timestamp"] = "ts"
    _rejects(_raw(doc), "tuf.timestamp")
    doc = _doc()
    doc["tuf"]["root"] = b"not a list"
    _rejects(_raw(doc), "tuf.root")
    doc = _doc()
    doc["tuf"]["root"] = []
    _rejects(_raw(doc), "at least root version 1")
    doc = _doc()
    doc["tuf"]["sigstore"] = 5
    _rejects(_raw(doc), "tuf.sigstore")


def test_caps() -> None:
    _rejects(_raw(_doc(bundles=[b"x"] * (kitmod.MAX_BUNDLES + 1))))
    doc = _doc()
    doc["tuf"]["timestamp"] = b"x" * (kitmod.MAX_TIMESTAMP_BYTES + 1)
    _rejects(_raw(doc), "more than the cap")
    _rejects(_raw(_doc(meta={"big": "x" * kitmod.MAX_META_BYTES})))
    deep: Any = 1
    for _ in range(kitmod.MAX_META_DEPTH + 2):
        deep = {"d": deep}
    _rejects(_raw(_doc(meta=deep)), "nested")
    _rejects(b"\x91" * 100_000)  # nested arrays far beyond msgpack's stack
    with pytest.raises(FormatError, match="more than the cap"):
        Kit.decode(b"\x00" * (kitmod.MAX_KIT_BYTES + 1))


def test_invalid_utf8_is_rejected() -> None:
    data = _raw(_doc(meta={"s": "x"}))
    _rejects(data.replace(b"\xa1x", b"\xa1\xff"), "UTF-8")


def test_construction_validates_too() -> None:
    with pytest.raises(FormatError, match="top-level role"):
        _kit(delegated={"snapshot": b"x"})
    with pytest.raises(FormatError, match="meta does not allow"):
        _kit(meta={"x": object()})
