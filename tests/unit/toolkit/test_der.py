"""toolkit/_der.py against asn1crypto's encoder (an independent DER implementation)."""

from __future__ import annotations

import pytest
from asn1crypto import core
from hypothesis import given
from hypothesis import strategies as st

from toolkit import _der


@given(st.integers(min_value=-(2**300), max_value=2**300))
def test_integer_matches_asn1crypto(value: int) -> None:
    assert _der.integer(value) == core.Integer(value).dump()


@given(st.text(max_size=400))
def test_utf8string_matches_asn1crypto(text: str) -> None:
    assert _der.utf8string(text) == core.UTF8String(text).dump()


@given(st.binary(max_size=70000))
def test_tlv_lengths_match_asn1crypto(content: bytes) -> None:
    assert _der.tlv(0x04, content) == core.OctetString(content).dump()


@pytest.mark.parametrize(
    "dotted",
    [
        "1.2.840.113549.1.9.16.1.4",
        "2.16.840.1.101.3.4.2.1",
        "1.3.6.1.4.1.57264.2",
        "2.999.1",
        "0.39",
    ],
)
def test_oid_content_matches_asn1crypto(dotted: str) -> None:
    assert _der.tlv(0x06, _der.oid_content(dotted)) == core.ObjectIdentifier(dotted).dump()


@pytest.mark.parametrize(
    "bad", ["", "1", "1.", "1.02", "3.1", "1.40", "0.40", "a.b", "1..2", "-1.2"]
)
def test_oid_content_refuses_what_is_not_an_oid(bad: str) -> None:
    with pytest.raises(ValueError, match="OID"):
        _der.oid_content(bad)
