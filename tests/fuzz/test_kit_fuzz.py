"""Property tests of the kit codec: decode returns a Kit or raises kit.parse, nothing else.

Also: valid kits survive a round trip byte-exact, and any single change to a
valid kit's bytes (truncation, padding, a flipped byte) either decodes to a
kit that re-encodes to those same bytes or is refused with ``kit.parse``.
"""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.errors import Check, FormatError
from toolkit.trust.kit import Kit

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

member = st.binary(min_size=1, max_size=64)
names = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z", fullmatch=True)
meta_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def kits(draw: st.DrawFn) -> Kit:
    files = draw(st.dictionaries(names, member, max_size=3))
    files["trusted_root.json"] = draw(member)
    delegated = draw(
        st.dictionaries(
            names.filter(lambda n: n not in ("root", "timestamp", "snapshot", "targets")),
            member,
            max_size=3,
        )
    )
    return Kit(
        roots=tuple(draw(st.lists(member, min_size=1, max_size=4))),
        timestamp=draw(member),
        snapshot=draw(member),
        targets=draw(member),
        delegated=delegated,
        target_files=files,
        bundles=tuple(draw(st.lists(member, max_size=3))),
        meta=draw(st.dictionaries(st.text(max_size=8), meta_values, max_size=4)),
    )


def _decode(data: bytes) -> Kit | None:
    try:
        return Kit.decode(data)
    except FormatError as exc:
        assert exc.check is Check.KIT_PARSE
        return None


@FAST
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _decode(data)


@FAST
@given(kits())
def test_round_trip_is_byte_exact(kit: Kit) -> None:
    data = kit.encode()
    again = Kit.decode(data)
    assert again == kit
    assert again.encode() == data


@FAST
@given(kits(), st.data())
def test_mutations_are_refused_or_harmless(kit: Kit, data: st.DataObject) -> None:
    raw = bytearray(kit.encode())
    how = data.draw(st.sampled_from(["truncate", "pad", "flip", "insert"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "truncate":
        mutated = bytes(raw[:at])
    elif how == "pad":
        mutated = bytes(raw) + data.draw(st.binary(min_size=1, max_size=8))
    elif how == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
        mutated = bytes(raw)
    else:
        mutated = bytes(raw[:at]) + data.draw(st.binary(min_size=1, max_size=4)) + bytes(raw[at:])
    decoded = _decode(mutated)
    if how in ("truncate", "pad"):
        assert decoded is None
    elif decoded is not None:
        # Whatever decodes is a well-formed kit of its own: still strict types.
        assert all(type(r) is bytes for r in decoded.roots)
        assert "trusted_root.json" in decoded.target_files


@FAST
@given(st.dictionaries(st.text(max_size=10), meta_values, max_size=6))
def test_arbitrary_msgpack_maps(doc: dict[str, Any]) -> None:
    _decode(msgpack.packb(doc, use_bin_type=True))
    base = Kit(
        roots=(b"r",),
        timestamp=b"t",
        snapshot=b"s",
        targets=b"g",
        target_files={"trusted_root.json": b"{}"},
    ).to_dict()
    base.update(doc)
    _decode(msgpack.packb(base, use_bin_type=True))
