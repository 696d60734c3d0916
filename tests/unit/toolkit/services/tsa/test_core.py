"""The TSA core: granted tokens verify, every refusal carries its RFC 3161 failure bit."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support import tsa_tokens
from tests.support.factory import DEFAULT_EMAIL, DEFAULT_ISSUER, FakeSigstore
from tests.unit.toolkit.services.tsa._tsa import (
    KINDS,
    NOW,
    POLICY,
    Kind,
    authority,
    chain_for,
    decode,
    request,
    signer_for,
    tlv,
)
from toolkit.errors import HSMError, UsageError, VerificationError
from toolkit.models import TrustedRoot
from toolkit.services.tsa import MAX_REQUEST_BYTES, TimestampAuthority
from toolkit.services.tsa.core import FailureInfo, parse_request, rejection
from toolkit.signing import PrivateKey, PublicKey, Scheme, SoftwareSigner
from toolkit.verify import Artifact, IdentityPolicy, Verifier
from toolkit.verify._rfc3161 import TimestampVerifier, parse_timestamp_response

MESSAGE = b"signature bytes"  # what request() hashes by default


def _verify(tsa_kind: Kind, der: bytes, message: bytes = MESSAGE, intermediate: bool = False):  # type: ignore[no-untyped-def]
    """Verify a reply with airseal's verifier against the kind's chain; return the token."""
    token = parse_timestamp_response(der)
    TimestampVerifier([chain_for(tsa_kind, intermediate).authority()]).verify(token, message)
    return token


# --------------------------------------------------------------------------- granted


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hash_algorithm", ["sha256", "sha384", "sha512"])
def test_tokens_verify_with_the_airseal_verifier(kind: Kind, hash_algorithm: str) -> None:
    der = authority(kind).respond(request(MESSAGE, hash_algorithm=hash_algorithm), NOW)
    token = _verify(kind, der)
    assert token.hash_algorithm == hash_algorithm
    assert token.message_imprint == hashlib.new(hash_algorithm, MESSAGE).digest()
    assert token.policy == POLICY
    # Whole seconds: 12:00:00.123456 -> 12:00:00 (the accuracy covers it).
    assert token.gen_time == NOW.replace(microsecond=0)
    reply = decode(der)
    assert reply.status == 0 and not reply.failures


def test_signature_algorithm_identifiers() -> None:
    expected: dict[Kind, tuple[str, str]] = {
        "p256": ("sha256", "sha256_ecdsa"),
        "p384": ("sha384", "sha384_ecdsa"),
        "rsa-pkcs1": ("sha256", "sha256_rsa"),
        "rsa-pss": ("sha256", "rsassa_pss"),
        "ed25519": ("sha512", "ed25519"),  # RFC 8419: SHA-512 with signed attributes
    }
    for kind, (digest, signature) in expected.items():
        reply = decode(authority(kind).respond(request(), NOW))
        signed_data = reply.signed_data
        (info,) = signed_data["signer_infos"]
        assert info["digest_algorithm"]["algorithm"].native == digest
        assert [a["algorithm"].native for a in signed_data["digest_algorithms"]] == [digest]
        assert info["signature_algorithm"]["algorithm"].native == signature
        if kind == "rsa-pss":
            params = info["signature_algorithm"]["parameters"].native
            assert params["salt_length"] == 32
            assert params["hash_algorithm"]["algorithm"] == "sha256"
        elif kind == "rsa-pkcs1":
            assert info["signature_algorithm"]["parameters"].dump() == b"\x05\x00"
        else:  # RFC 5758 / RFC 8410: ECDSA and Ed25519 parameters absent
            assert info["signature_algorithm"]["parameters"].native is None


def test_tst_info_fields() -> None:
    tsa = authority()
    der = tsa.respond(request(MESSAGE, nonce=77), NOW)
    reply = decode(der)
    tst = reply.tst_info.native
    assert tst["version"] == "v1"
    assert tst["policy"] == POLICY
    assert tst["accuracy"] == {"seconds": 1, "millis": None, "micros": None}
    assert tst["nonce"] == 77
    leaf = chain_for("p256").leaf
    tsa_name = reply.tst_info["tsa"]
    assert tsa_name.name == "directory_name"
    # [4] EXPLICIT Name: the wrapper, then the certificate subject's DER.
    assert (
        tsa_name.chosen.dump()
        == b"\xa4" + bytes((len(subject := leaf.subject.public_bytes()),)) + subject
    )
    tst_der = reply.tst_info.dump()
    # ordering FALSE is the DEFAULT: DER leaves it out; no extensions.
    assert b"\x01\x01\x00" not in tst_der
    assert tst["extensions"] is None
    assert reply.signed_data["version"].native == "v3"
    assert reply.signed_data["encap_content_info"]["content_type"].native == "tst_info"


def test_imprint_is_copied_byte_for_byte() -> None:
    # NULL parameters in the request's AlgorithmIdentifier come back as NULL.
    req = request(MESSAGE, parameters=b"\x05\x00")
    reply = decode(authority().respond(req, NOW))
    assert reply.tst_info["message_imprint"].dump() in req
    plain = decode(authority().respond(request(MESSAGE), NOW))
    assert plain.tst_info["message_imprint"].dump() in request(MESSAGE)


@pytest.mark.parametrize(
    ("accuracy_ms", "expected"),
    [
        (1000, {"seconds": 1, "millis": None, "micros": None}),
        (250, {"seconds": None, "millis": 250, "micros": None}),
        (2500, {"seconds": 2, "millis": 500, "micros": None}),
        (0, None),
    ],
)
def test_accuracy(accuracy_ms: int, expected: object) -> None:
    tsa = authority("p256", accuracy_ms=accuracy_ms)
    assert tsa.accuracy_ms == accuracy_ms
    reply = decode(tsa.respond(request(), NOW))
    assert reply.tst_info.native["accuracy"] == expected
    _verify("p256", tsa.respond(request(), NOW))


@pytest.mark.parametrize("microsecond", [0, 100000, 120999, 999, 7000, 999999])
def test_gen_time_is_der_in_whole_seconds(microsecond: int) -> None:
    # No fraction: DER would drop its trailing zeros ("…00.12Z"), a form
    # sigstore-js 5 refuses ("invalid time"); Sigstore's TSA writes seconds.
    now = NOW.replace(microsecond=microsecond)
    der = authority().respond(request(), now)
    text = b"20250601120000Z"
    assert b"\x18" + bytes((len(text),)) + text in der
    _verify("p256", der)


def test_gen_time_is_utc_whatever_the_zone() -> None:
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
    der = authority().respond(request(), NOW.astimezone(zone))
    assert parse_timestamp_response(der).gen_time == NOW.replace(microsecond=0)


@pytest.mark.parametrize("nonce", [0, 1, 0x7F, 0x80, 2**63, 2**64 - 1, -1, -(2**70), 2**511 - 1])
def test_nonce_is_echoed(nonce: int) -> None:
    der = authority().respond(request(nonce=nonce), NOW)
    assert _verify("p256", der).nonce == nonce
    assert decode(der).tst_info.native["nonce"] == nonce


def test_no_nonce_no_nonce() -> None:
    der = authority().respond(request(nonce=None), NOW)
    assert _verify("p256", der).nonce is None


@pytest.mark.parametrize("cert_req", [None, False])
def test_without_cert_req_no_certificates(cert_req: bool | None) -> None:
    reply = decode(authority().respond(request(cert_req=cert_req), NOW))
    assert reply.status == 0
    assert reply.signed_data["certificates"].native is None


def test_cert_req_embeds_the_tsa_certificate_not_the_root() -> None:
    reply = decode(authority().respond(request(cert_req=True), NOW))
    chain = chain_for("p256")
    embedded = [c.chosen.dump() for c in reply.signed_data["certificates"]]
    assert embedded == [chain.leaf.public_bytes(serialization.Encoding.DER)]


def test_cert_req_with_an_intermediate_embeds_it_in_der_order() -> None:
    tsa = authority("p256", intermediate=True)
    der = tsa.respond(request(cert_req=True), NOW)
    _verify("p256", der, intermediate=True)
    chain = chain_for("p256", True)
    embedded = [c.chosen.dump() for c in decode(der).signed_data["certificates"]]
    expected = [c.public_bytes(serialization.Encoding.DER) for c in chain.certificates[:-1]]
    assert embedded == sorted(expected)
    # embed_chain=False: only the TSA certificate.
    lean = authority("p256", intermediate=True, embed_chain=False)
    embedded = [
        c.chosen.dump() for c in decode(lean.respond(request(), NOW)).signed_data["certificates"]
    ]
    assert embedded == [expected[0]]


def test_serial_numbers_are_random_unique_and_long() -> None:
    tsa = authority()
    serials = [
        parse_timestamp_response(tsa.respond(request(), NOW)).serial_number for _ in range(500)
    ]
    assert len(set(serials)) == len(serials)
    assert all(2**126 <= s < 2**127 for s in serials)  # 126 random bits, 16 octets, positive


def test_signed_attributes() -> None:
    reply = decode(authority().respond(request(), NOW))
    (info,) = reply.signed_data["signer_infos"]
    assert info["version"].native == "v1"
    chain = chain_for("p256")
    leaf_der = chain.leaf.public_bytes(serialization.Encoding.DER)
    sid = info["sid"].chosen
    assert sid["serial_number"].native == chain.leaf.serial_number
    assert sid["issuer"].dump() == a_x509.Certificate.load(leaf_der).issuer.dump()
    attrs = {a["type"].native: a["values"] for a in info["signed_attrs"]}
    assert set(attrs) == {"content_type", "message_digest", "signing_certificate_v2"}
    assert attrs["content_type"].native == ["tst_info"]
    tst_der = reply.tst_info.dump()
    assert attrs["message_digest"].native == [hashlib.sha256(tst_der).digest()]
    (ess,) = attrs["signing_certificate_v2"]
    (cert_id,) = ess["certs"]
    assert cert_id["cert_hash"].native == hashlib.sha256(leaf_der).digest()
    # hashAlgorithm is the sha256 DEFAULT: left out in DER.
    assert b"\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01" not in cert_id.dump()
    assert cert_id["issuer_serial"]["serial_number"].native == chain.leaf.serial_number
    (name,) = cert_id["issuer_serial"]["issuer"]
    assert name.name == "directory_name"
    wrapped = name.chosen.dump()  # [4] EXPLICIT Name
    assert wrapped[0] == 0xA4 and wrapped.endswith(sid["issuer"].dump())
    # DER: SET OF members in encoding order.
    encoded = [a.dump() for a in info["signed_attrs"]]
    assert encoded == sorted(encoded)


def test_bundle_with_our_timestamp_verifies_end_to_end() -> None:
    chain = chain_for("p256")
    tsa = TimestampAuthority(signer_for("p256", chain), chain.certificates)

    class OurTsa(FakeSigstore):
        def timestamp(
            self,
            message: bytes,
            gen_time: dt.datetime,
            *,
            chain: tsa_tokens.TsaChain | None = None,
        ) -> bytes:
            return tsa.respond(request(message), gen_time)

    instance = OurTsa(seed="tsa-core")
    instance.__dict__["tsa"] = chain  # the trusted root lists our chain
    signed = instance.sign_blob(b"artifact", rekor="v2", tsa=True)
    verifier = Verifier(TrustedRoot.from_dict(signed.trusted_root))
    result = verifier.verify(
        json.dumps(signed.bundle),
        Artifact.from_bytes(b"artifact"),
        IdentityPolicy(identity=DEFAULT_EMAIL, issuer=DEFAULT_ISSUER),
        now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    assert [t.source for t in result.times] == ["tsa"]


def test_chain_pem_and_properties() -> None:
    tsa = authority()
    chain = chain_for("p256")
    assert x509.load_pem_x509_certificates(tsa.chain_pem()) == list(chain.certificates)
    assert tsa.certificates == chain.certificates
    assert tsa.policy == POLICY


def test_other_policy() -> None:
    tsa = authority("p256", policy="1.2.3.4.5")
    der = tsa.respond(request(policy="1.2.3.4.5"), NOW)
    assert _verify("p256", der).policy == "1.2.3.4.5"
    assert decode(tsa.respond(request(policy=POLICY), NOW)).failures == {"unaccepted_policy"}


# --------------------------------------------------------------------------- refused


def _long_form(der: bytes) -> bytes:
    """The outer SEQUENCE with a non-minimal (long-form) length."""
    return b"\x30\x81" + bytes((der[1],)) + der[2:]


_SHA256 = hashlib.sha256(MESSAGE).digest()
REFUSALS: list[tuple[str, bytes, str, str]] = [
    ("garbage", b"hello", "bad_data_format", "malformed"),
    ("not a sequence", b"\x02\x01\x01", "bad_data_format", "expected tag"),
    ("truncated", request()[:-3], "bad_data_format", "truncated"),
    ("trailing bytes", request() + b"\x00", "bad_data_format", "after the TimeStampReq"),
    (
        "indefinite length",
        b"\x30\x80" + request()[2:] + b"\x00\x00",
        "bad_data_format",
        "indefinite",
    ),
    ("non-minimal length", _long_form(request()), "bad_data_format", "minimally"),
    (
        "non-minimal version",
        tlv(0x30, b"\x02\x02\x00\x01" + request()[5:]),
        "bad_data_format",
        "minimally encoded INTEGER",
    ),
    ("high tag", b"\x1f\x81\x00", "bad_data_format", "high tag"),
    (
        "oversized",
        b"\x30\x82" + (MAX_REQUEST_BYTES - 3).to_bytes(2, "big") + bytes(MAX_REQUEST_BYTES - 3),
        "bad_data_format",
        "more than the",
    ),
    ("version 2", request(version=2), "bad_request", "version 2"),
    ("version 0", request(version=0), "bad_request", "version 0"),
    ("huge version", request(version=2**80), "bad_request", "version"),
    ("sha1", request(hash_algorithm="sha1"), "bad_alg", "1.3.14.3.2.26"),
    ("md5", request(hash_algorithm="md5"), "bad_alg", "not supported"),
    ("sha3", request(hash_algorithm="sha3_256"), "bad_alg", "not supported"),
    ("parameters", request(parameters=b"\x01\x01\x00"), "bad_alg", "parameters"),
    ("short sha256", request(digest=_SHA256[:20]), "bad_data_format", "20 bytes"),
    ("long sha256", request(digest=_SHA256 + b"\x00"), "bad_data_format", "33 bytes"),
    ("sha384 size", request(hash_algorithm="sha384", digest=_SHA256), "bad_data_format", "sha384"),
    ("foreign policy", request(policy="1.2.3.4"), "unaccepted_policy", "1.2.3.4"),
    ("extensions", request(extensions=True), "unaccepted_extensions", "extensions"),
    ("nonce too long", request(nonce=2**520), "bad_data_format", "nonce"),
    (
        "bad boolean",
        tlv(0x30, request(cert_req=None)[2:] + b"\x01\x01\x01"),
        "bad_data_format",
        "BOOLEAN",
    ),
    (
        "out of order",
        tlv(0x30, request(nonce=None, cert_req=None)[2:] + b"\x02\x01\x05\x06\x03\x2a\x03\x04"),
        "bad_data_format",
        "unexpected field",
    ),
    (
        "bad policy oid",
        tlv(0x30, request(nonce=None, cert_req=None)[2:] + b"\x06\x02\x2a\x80"),
        "bad_data_format",
        "OBJECT IDENTIFIER",
    ),
]


@pytest.mark.parametrize(
    ("data", "failure", "text"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_carry_their_failure_bit(data: bytes, failure: str, text: str) -> None:
    der = authority().respond(data, NOW)
    reply = decode(der)
    assert reply.status == 2  # rejection
    assert reply.failures == {failure}
    assert reply.token is None
    (status_string,) = reply.texts
    assert text in status_string
    with pytest.raises(VerificationError, match="status rejection"):
        parse_timestamp_response(der)


def test_empty_request_is_refused() -> None:
    reply = decode(authority().respond(b"", NOW))
    assert reply.failures == {"bad_data_format"}
    assert reply.texts == ("malformed TimeStampReq: the request is empty",)


def test_parse_request_reports_the_bit() -> None:
    req = parse_request(request(MESSAGE, policy=POLICY, nonce=5, cert_req=True))
    assert (req.hash_algorithm, req.policy, req.nonce, req.cert_req) == ("sha256", POLICY, 5, True)
    assert req.hashed_message == _SHA256
    with pytest.raises(Exception) as caught:
        parse_request(request(hash_algorithm="sha1"))
    assert caught.value.failure is FailureInfo.BAD_ALG  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("bit", "encoded"),
    [
        (FailureInfo.BAD_ALG, "03020780"),
        (FailureInfo.BAD_REQUEST, "03020520"),
        (FailureInfo.BAD_DATA_FORMAT, "03020204"),
        (FailureInfo.TIME_NOT_AVAILABLE, "0303010002"),
        (FailureInfo.UNACCEPTED_POLICY, "0303000001"),
        (FailureInfo.UNACCEPTED_EXTENSION, "0304070000" + "80"),
        (FailureInfo.SYSTEM_FAILURE, "03050600000040"),
    ],
)
def test_failure_info_is_a_der_named_bit_string(bit: FailureInfo, encoded: str) -> None:
    der = rejection(bit, "no")
    assert bytes.fromhex(encoded) in der
    assert len(decode(der).failures) == 1


class _BrokenSigner:
    """A signer whose token fails."""

    def __init__(self, inner: SoftwareSigner) -> None:
        self._inner = inner
        self.fail = False

    @property
    def scheme(self) -> Scheme:
        return self._inner.scheme

    @property
    def public_key(self) -> PublicKey:
        return self._inner.public_key

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    def sign(self, data: bytes) -> bytes:
        if self.fail:
            raise HSMError("the token went away (pin 1234 must never show)")
        return self._inner.sign(data)

    def private_key(self) -> PrivateKey:
        return self._inner.private_key()


def test_signer_failure_is_a_system_failure(caplog: pytest.LogCaptureFixture) -> None:
    chain = chain_for("p256")
    signer = _BrokenSigner(signer_for("p256", chain))
    tsa = TimestampAuthority(signer, chain.certificates)
    signer.fail = True
    reply = decode(tsa.respond(request(), NOW))
    assert reply.status == 2 and reply.failures == {"system_failure"}
    assert "1234" not in " ".join(reply.texts) and "1234" not in caplog.text
    assert "HSMError" in caplog.text


@pytest.mark.parametrize(
    "now",
    [dt.datetime(2023, 12, 31, tzinfo=dt.UTC), dt.datetime(2034, 1, 1, 0, 0, 1, tzinfo=dt.UTC)],
)
def test_time_outside_the_chain_validity_is_a_system_failure(now: dt.datetime) -> None:
    reply = decode(authority().respond(request(), now))
    assert reply.failures == {"system_failure"}
    assert "not valid" in reply.texts[0]


def test_naive_now_is_the_callers_bug() -> None:
    with pytest.raises(UsageError, match="aware"):
        authority().respond(request(), dt.datetime(2025, 6, 1))


# --------------------------------------------------------------------------- construction


def test_key_must_match_the_certificate() -> None:
    chain = chain_for("p256")
    stranger = SoftwareSigner(tsa_tokens.new_key("p256"))
    with pytest.raises(UsageError, match="does not hold the TSA key"):
        TimestampAuthority(stranger, chain.certificates)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eku": None}, "no extendedKeyUsage"),
        ({"eku_critical": False}, "not critical"),
        ({"eku": (ExtendedKeyUsageOID.CODE_SIGNING,)}, "not exactly timeStamping"),
        (
            {"eku": (ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING)},
            "not exactly timeStamping",
        ),
        ({"rogue_issuer": True}, "chain is not usable"),
    ],
)
def test_chain_must_be_a_tsa_chain(options: dict[str, object], message: str) -> None:
    chain = tsa_tokens.make_chain("p256", **options)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=message):
        TimestampAuthority(SoftwareSigner(chain.leaf_key), chain.certificates)


def test_chain_needs_the_root() -> None:
    chain = chain_for("p256")
    with pytest.raises(UsageError, match="1 certificate"):
        TimestampAuthority(signer_for("p256", chain), chain.certificates[:1])


def test_chain_must_be_leaf_first() -> None:
    chain = chain_for("p256")
    with pytest.raises(UsageError, match="does not hold"):
        TimestampAuthority(signer_for("p256", chain), list(reversed(chain.certificates)))


def test_ed25519_roots_are_refused_as_verifiers_refuse_them() -> None:
    # The Web PKI profile airseal's (and cryptography's) chain validation
    # applies has no Ed25519 CA keys: a TSA no verifier would accept does not start.
    chain = tsa_tokens.make_chain("ed25519")
    with pytest.raises(UsageError, match="chain is not usable"):
        TimestampAuthority(SoftwareSigner(chain.leaf_key), chain.certificates)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"policy": "not.an.oid"}, "policy"),
        ({"policy": "3.1"}, "policy"),
        ({"accuracy_ms": -1}, "accuracy"),
        ({"accuracy_ms": 3_600_001}, "accuracy"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    chain = chain_for("p256")
    with pytest.raises(UsageError, match=message):
        TimestampAuthority(signer_for("p256", chain), chain.certificates, **options)  # type: ignore[arg-type]
