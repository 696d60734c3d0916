"""RFC 7512 PKCS#11 URIs: parsing, percent-encoding, canonical form, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.errors import FormatError
from toolkit.signing import Pkcs11Uri
from toolkit.signing._uri import file_uri_path


def test_parse_every_attribute() -> None:
    uri = Pkcs11Uri.parse(
        "pkcs11:token=airseal-ca;manufacturer=SoftHSM%20project;serial=a1b2c3d4e5f60708;"
        "model=SoftHSM%20v2;slot-id=42;object=root-ca;id=%01%02%ff;type=private"
        "?pin-source=file:/run/pin&module-path=/usr/lib/softhsm/libsofthsm2.so"
    )
    assert uri == Pkcs11Uri(
        token="airseal-ca",
        manufacturer="SoftHSM project",
        serial="a1b2c3d4e5f60708",
        model="SoftHSM v2",
        slot_id=42,
        object="root-ca",
        id=b"\x01\x02\xff",
        type="private",
        pin_source="file:/run/pin",
        module_path="/usr/lib/softhsm/libsofthsm2.so",
    )


def test_canonical_form() -> None:
    uri = Pkcs11Uri.parse(
        "PKCS11:type=private;object=my%20key;token=caf%C3%A9;id=AB?module-path=/m.so&pin-source=/p"
    )
    assert str(uri) == (
        "pkcs11:token=caf%C3%A9;object=my%20key;id=%41%42;type=private"
        "?pin-source=/p&module-path=/m.so"
    )
    assert uri.token == "café"
    assert uri.id == b"AB"


def test_rfc7512_examples() -> None:
    # Examples from RFC 7512 §3.
    assert Pkcs11Uri.parse("pkcs11:") == Pkcs11Uri()
    assert Pkcs11Uri.parse("pkcs11:object=my-pubkey;type=public").object == "my-pubkey"
    uri = Pkcs11Uri.parse(
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
        "manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;"
        "id=%69%95%3E%5C%F4%BD%EC%91"
    )
    assert uri.token == "The Software PKCS#11 Softtoken"
    assert uri.manufacturer == "Snake Oil, Inc."
    assert uri.id == bytes.fromhex("69953e5cf4bdec91")


def test_reserved_characters_are_encoded() -> None:
    uri = Pkcs11Uri(token="a;b?c&d%e", object="x/y", pin_source="/dir/pin file?&")
    text = str(uri)
    assert text == "pkcs11:token=a%3Bb%3Fc&d%25e;object=x%2Fy?pin-source=/dir/pin%20file?%26"
    assert Pkcs11Uri.parse(text) == uri


def test_replace() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=t;object=k")
    assert str(uri.replace(serial="01", object=None)) == "pkcs11:token=t;serial=01"
    assert str(uri) == "pkcs11:token=t;object=k"


def test_pin_value_is_refused_without_echoing_it() -> None:
    with pytest.raises(FormatError) as caught:
        Pkcs11Uri.parse("pkcs11:token=t;object=k?pin-value=s3cret-1234")
    assert "pin-value is refused" in caught.value.message
    assert caught.value.hint is not None
    assert "pin-source" in caught.value.hint
    assert "s3cret" not in caught.value.diagnostics()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("file:/x", "must start with 'pkcs11:'"),
        ("pkcs11:token=a;token=b", "'token' appears twice"),
        ("pkcs11:tokn=a", "unknown attribute 'tokn'"),
        ("pkcs11:library-version=1", "'library-version' is not supported"),
        ("pkcs11:x-vendor=1", "'x-vendor' is not supported"),
        ("pkcs11:token=a%2", "bad percent-encoding in token"),
        ("pkcs11:token=a%zz", "bad percent-encoding in token"),
        ("pkcs11:token=%ff", "token is not UTF-8"),
        ("pkcs11:slot-id=one", "slot-id must be a decimal number"),
        ("pkcs11:type=key", "type must be one of"),
        ("pkcs11:token=", "token is empty"),
        ("pkcs11:id=", "id is empty"),
        ("pkcs11:token", "has no '='"),
        ("pkcs11:=x", "without a name"),
        ("pkcs11:pin-source=/p", "pin-source belongs in the query part"),
        ("pkcs11:?token=a", "token belongs in the path part"),
        ("pkcs11:token=a#frag", "no fragment"),
        ("pkcs11:token=a\nb", "control characters"),
    ],
)
def test_malformed(text: str, reason: str) -> None:
    with pytest.raises(FormatError) as caught:
        Pkcs11Uri.parse(text)
    assert reason in caught.value.message
    assert caught.value.message.startswith("PKCS#11 URI: ")


_text = st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1)


@given(
    token=st.none() | _text,
    object_=st.none() | _text,
    id_=st.none() | st.binary(min_size=1, max_size=20),
    slot_id=st.none() | st.integers(min_value=0, max_value=2**32),
    pin_source=st.none() | _text,
)
def test_round_trip(
    token: str | None,
    object_: str | None,
    id_: bytes | None,
    slot_id: int | None,
    pin_source: str | None,
) -> None:
    uri = Pkcs11Uri(token=token, object=object_, id=id_, slot_id=slot_id, pin_source=pin_source)
    text = str(uri)
    assert Pkcs11Uri.parse(text) == uri
    assert str(Pkcs11Uri.parse(text)) == text


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:/etc/key.pem", "/etc/key.pem"),
        ("file:///etc/key.pem", "/etc/key.pem"),
        ("file://localhost/etc/my%20key.pem", "/etc/my key.pem"),
        ("file:keys/dev.pem", "keys/dev.pem"),
    ],
)
def test_file_uri_path(uri: str, path: str) -> None:
    assert file_uri_path(uri) == path


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("file://host/etc/key.pem", "names host 'host'"),
        ("file:", "has no path"),
        ("http://x", "must start with 'file:'"),
    ],
)
def test_file_uri_refusals(uri: str, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        file_uri_path(uri)
