"""Property tests for the log's request parser: a request or a RequestError, nothing else."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.encoding import b64encode
from toolkit.services.log.hashedrekord import (
    MAX_REQUEST_BYTES,
    PROBLEM_BASE,
    PROBLEM_TYPES,
    HashedRekordRequest,
    RequestError,
    parse_request,
)

FAST = settings(max_examples=300, deadline=None)

_KEY = ec.derive_private_key(12345, ec.SECP256R1())
_SPKI = _KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
_DIGEST = bytes(range(32))
_SIGNATURE = _KEY.sign(_DIGEST, ec.ECDSA(Prehashed(hashes.SHA256())))
VALID: dict[str, Any] = {
    "hashedRekordRequestV002": {
        "digest": b64encode(_DIGEST),
        "signature": {
            "content": b64encode(_SIGNATURE),
            "verifier": {
                "publicKey": {"rawBytes": b64encode(_SPKI)},
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            },
        },
    }
}

# Names and values that get random documents past the first checks.
NAMES = [
    "hashedRekordRequestV002",
    "hashed_rekord_request_v002",
    "dsseRequestV002",
    "digest",
    "signature",
    "content",
    "verifier",
    "x509Certificate",
    "publicKey",
    "rawBytes",
    "keyDetails",
    "x",
]
STRINGS = [
    b64encode(_DIGEST),
    b64encode(_SIGNATURE),
    b64encode(_SPKI),
    b64encode(b"\x30\x03\x02\x01\x01"),
    "PKIX_ECDSA_P256_SHA_256",
    "PKIX_ED25519",
    "PKIX_RSA_PSS_2048_SHA256",
    "AAAA",
    "A===",
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from(STRINGS),
    st.text(max_size=10),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), inner, max_size=5),
    ),
    max_leaves=30,
)


def _check(data: bytes) -> None:
    try:
        parsed = parse_request(data)
    except RequestError as exc:
        assert exc.slug in PROBLEM_TYPES
        assert exc.status == PROBLEM_TYPES[exc.slug][0]
        assert exc.type == PROBLEM_BASE + exc.slug
        assert "\n" not in exc.detail and len(exc.detail) <= 300
    else:
        assert isinstance(parsed, HashedRekordRequest)
        assert parsed.entry().body == parsed.body()


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FAST
@given(documents)
def test_random_json(document: Any) -> None:
    _check(json.dumps(document).encode())


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    return out


PATHS = [p for p in _paths(VALID) if p]


@FAST
@given(st.sampled_from(PATHS), documents)
def test_one_field_replaced(path: tuple[str, ...], replacement: Any) -> None:
    document = json.loads(json.dumps(VALID))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    _check(json.dumps(document).encode())


@FAST
@given(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=8))
def test_valid_request_with_bytes_changed(position: int, junk: bytes) -> None:
    data = json.dumps(VALID).encode()
    position %= len(data)
    _check(data[:position] + junk + data[position + len(junk) :])


@FAST
@given(
    st.sampled_from(["x509Certificate", "publicKey"]),
    st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(lambda b: b"\x30\x82" + b)),
)
def test_random_key_material(kind: str, raw: bytes) -> None:
    document = json.loads(json.dumps(VALID))
    verifier = document["hashedRekordRequestV002"]["signature"]["verifier"]
    del verifier["publicKey"]
    verifier[kind] = {"rawBytes": b64encode(raw)}
    _check(json.dumps(document).encode())


def test_the_valid_seed_is_valid() -> None:
    assert parse_request(json.dumps(VALID).encode()).digest == _DIGEST
    assert len(json.dumps(VALID)) < MAX_REQUEST_BYTES
