"""Fuzzing the TSA: whatever arrives, the answer is a well-formed DER TimeStampResp.

Three generators: random bytes; valid requests with random mutations (byte
flips, insertions, deletions, truncation, splices); and structured requests
whose fields are drawn at random, checked against an oracle that says which
PKIFailureInfo bit (or a grant) each one deserves. Every reply is decoded
strictly with asn1crypto (DER re-encoding must give the same bytes); a
granted reply must verify with airseal's verifier over the request's imprint
and echo its nonce.
"""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfc3161_client import VerifierBuilder, decode_timestamp_response

from tests.unit.toolkit.services.tsa._tsa import NOW, POLICY, authority, chain_for, decode, request
from toolkit.services.tsa.core import parse_request
from toolkit.verify._rfc3161 import parse_timestamp_response

KNOWN_FAILURES = {
    "bad_alg",
    "bad_request",
    "bad_data_format",
    "unaccepted_policy",
    "unaccepted_extensions",
}
_CHAIN = chain_for("p256")
_REFERENCE = (
    VerifierBuilder().tsa_certificate(_CHAIN.leaf).add_root_certificate(_CHAIN.root).build()
)
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _check(data: bytes) -> str:
    """Answer ``data``; check the reply's form; return "granted" or the failure bit."""
    der = authority().respond(data, NOW)
    reply = decode(der)
    if reply.status == 0:
        assert not reply.failures and reply.token is not None
        parsed = parse_request(data)
        token = parse_timestamp_response(der)
        assert token.message_imprint == parsed.hashed_message
        assert token.hash_algorithm == parsed.hash_algorithm
        assert token.nonce == parsed.nonce
        # The imprint is over unknown bytes: rfc3161-client verifies against
        # the digest itself (signature, chain, ESS, imprint).
        assert _REFERENCE.verify(decode_timestamp_response(der), parsed.hashed_message)
        embedded = reply.signed_data["certificates"].native is not None
        assert embedded == parsed.cert_req
        return "granted"
    assert reply.status == 2
    assert reply.token is None
    assert len(reply.failures) == 1 and reply.failures <= KNOWN_FAILURES
    assert len(reply.texts) == 1 and reply.texts[0]
    (failure,) = reply.failures
    return failure


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _check(data)


def _seeds() -> list[bytes]:
    return [
        request(),
        request(hash_algorithm="sha512", nonce=None, cert_req=None),
        request(policy=POLICY, nonce=2**64 - 1),
        request(hash_algorithm="sha384", extensions=True),
        request(parameters=b"\x05\x00"),
    ]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0xFF, 0x30, 0xA0]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 4))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            other = draw(st.sampled_from(_seeds()))
            start = draw(st.integers(0, len(other)))
            data[at:] = other[start:]
    return bytes(data)


@FUZZ
@given(_mutated())
def test_mutated_requests(data: bytes) -> None:
    _check(data)


_HASHES = {"sha256": 32, "sha384": 48, "sha512": 64, "sha1": 20, "md5": 16, "sha224": 28}


@FUZZ
@given(
    version=st.integers(-3, 5),
    hash_algorithm=st.sampled_from(sorted(_HASHES)),
    size_delta=st.sampled_from([0, 0, 0, -1, 1, -20]),
    parameters=st.sampled_from([None, None, b"\x05\x00", b"\x01\x01\x00", b"\x04\x00"]),
    policy=st.sampled_from([None, POLICY, "1.2.3.4", "2.999.1"]),
    nonce=st.one_of(st.none(), st.integers(-(2**600), 2**600)),
    cert_req=st.sampled_from([None, True, False]),
    extensions=st.booleans(),
)
def test_structured_requests_get_the_right_answer(
    version: int,
    hash_algorithm: str,
    size_delta: int,
    parameters: bytes | None,
    policy: str | None,
    nonce: int | None,
    cert_req: bool | None,
    extensions: bool,
) -> None:
    size = max(0, _HASHES[hash_algorithm] + size_delta)
    digest = hashlib.sha512(b"m").digest()[:size].ljust(size, b"\x00")
    data = request(
        version=version,
        hash_algorithm=hash_algorithm,
        digest=digest,
        parameters=parameters,
        policy=policy,
        nonce=nonce,
        cert_req=cert_req,
        extensions=extensions,
    )
    nonce_octets = len(
        (nonce or 0).to_bytes(((nonce or 0).bit_length() + 8) // 8, "big", signed=True)
    )
    # The oracle, in the TSA's documented order of checks.
    if nonce is not None and nonce_octets > 64:
        expected = "bad_data_format"
    elif version != 1:
        expected = "bad_request"
    elif hash_algorithm not in ("sha256", "sha384", "sha512") or parameters not in (
        None,
        b"\x05\x00",
    ):
        expected = "bad_alg"
    elif size_delta != 0:
        expected = "bad_data_format"
    elif policy not in (None, POLICY):
        expected = "unaccepted_policy"
    elif extensions:
        expected = "unaccepted_extensions"
    else:
        expected = "granted"
    assert _check(data) == expected
