"""RFC 3161 timestamp verification: real Sigstore tokens and generated broken ones."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import VerifierBuilder, decode_timestamp_response

from tests.conftest import require_vectors
from tests.support.tsa_tokens import (
    GEN_TIME,
    NOT_AFTER,
    NOT_BEFORE,
    Der,
    TsaChain,
    issue_token,
    load_authorities,
    load_bundle_timestamps,
    make_chain,
)
from toolkit.errors import Check, FormatError, VerificationError
from toolkit.verify._rfc3161 import (
    MAX_TIMESTAMPS,
    SignedTimestamp,
    TimestampAuthority,
    TimestampVerifier,
    _issuer_der,
    parse_timestamp_response,
)

UTC = dt.UTC
MESSAGE = b"the bundle signature bytes"

# --------------------------------------------------------------------------- vector helpers


@functools.cache
def vector_verifier(case: str) -> TimestampVerifier:
    return TimestampVerifier(load_authorities(require_vectors() / case / "trusted_root.json"))


def vector_timestamps(case: str) -> tuple[list[bytes], bytes]:
    return load_bundle_timestamps(require_vectors() / case / "bundle.sigstore.json")


def issue1482() -> tuple[bytes, bytes]:
    folder = require_vectors() / "_rfc3161"
    return (
        (folder / "tsa__issue1482-timestamp-with-no-cert").read_bytes(),
        (folder / "tsa__issue1482-message").read_bytes(),
    )


def all_vector_tokens() -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for case in (
        "staging-rekor2-tsa-happy",
        "staging-rekor2-dsse-happy",
        "tsa-local-extra-bad-timestamp",
        "tsa-duplicate-timestamps_fail",
        "tsa-too-many-timestamps_fail",
    ):
        ders, _ = vector_timestamps(case)
        out.extend((f"{case}#{i}", der) for i, der in enumerate(ders))
    out.append(("issue1482", issue1482()[0]))
    return out


# --------------------------------------------------------------------------- real tokens


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("staging-rekor2-tsa-happy", dt.datetime(2025, 6, 9, 11, 57, 38, tzinfo=UTC)),
        ("staging-rekor2-dsse-happy", dt.datetime(2026, 5, 13, 19, 23, 33, tzinfo=UTC)),
    ],
)
def test_staging_timestamp_verifies(case: str, expected: dt.datetime) -> None:
    (der,), message = vector_timestamps(case)
    verifier = vector_verifier(case)
    assert verifier.problems == {}
    ts = parse_timestamp_response(der)
    assert verifier.verify(ts, message) == expected
    ((moment, authority),) = verifier.verify_all([ts], message)
    assert (moment, authority) == (expected, "sigstore-tsa-selfsigned")


def test_staging_token_fields() -> None:
    (der,), _ = vector_timestamps("staging-rekor2-tsa-happy")
    ts = parse_timestamp_response(der)
    assert ts.der == der
    assert ts.status == 0
    assert ts.hash_algorithm == "sha256"
    assert len(ts.message_imprint) == 32
    assert ts.policy == "1.3.6.1.4.1.57264.2"
    assert ts.nonce == 11204840483090223374
    assert "sigstore-tsa-selfsigned" in ts.signer


def test_local_tsa_first_verifies_second_is_over_another_message() -> None:
    (first, second), message = vector_timestamps("tsa-local-extra-bad-timestamp")
    verifier = vector_verifier("tsa-local-extra-bad-timestamp")
    assert verifier.problems == {}  # a 3-certificate chain with an intermediate
    assert verifier.verify(parse_timestamp_response(first), message) == dt.datetime(
        2024, 10, 31, 10, 23, 39, tzinfo=UTC
    )
    bad = parse_timestamp_response(second)
    assert bad.hash_algorithm == "sha512"
    with pytest.raises(VerificationError) as info:
        verifier.verify(bad, message)
    assert info.value.check == Check.TIME_TSA
    assert "imprint does not match" in info.value.detail
    with pytest.raises(VerificationError, match=r"timestamp #1: timestamp imprint"):
        verifier.verify_all([parse_timestamp_response(first), bad], message)


def test_token_without_embedded_certificates_verifies_against_trusted_chain() -> None:
    der, message = issue1482()
    ts = parse_timestamp_response(der)
    got = vector_verifier("staging-rekor2-tsa-happy").verify(ts, message)
    assert got == decode_timestamp_response(der).tst_info.gen_time
    assert got == dt.datetime(2025, 7, 25, 19, 53, 4, tzinfo=UTC)


def test_dsse_token_has_no_embedded_certificates_either() -> None:
    (der,), _ = vector_timestamps("staging-rekor2-dsse-happy")
    assert decode_timestamp_response(der).signed_data.certificates == set()


def test_duplicate_timestamps_are_rejected() -> None:
    ders, message = vector_timestamps("tsa-duplicate-timestamps_fail")
    stamps = [parse_timestamp_response(d) for d in ders]
    with pytest.raises(VerificationError) as info:
        vector_verifier("tsa-duplicate-timestamps_fail").verify_all(stamps, message)
    assert info.value.check == Check.TIME_TSA
    assert "duplicate" in info.value.detail


def test_duplicate_detection_sees_through_re_encoding() -> None:
    chain = chains()["p256"]
    with_certs = issue_token(chain, MESSAGE, embed_certs=True)
    ts = parse_timestamp_response(with_certs)
    # Same TSTInfo and signature, different outer bytes (no embedded certificates).
    stripped = _strip_certificates(with_certs)
    assert stripped != with_certs
    again = parse_timestamp_response(stripped)
    verifier = TimestampVerifier([chain.authority()])
    assert verifier.verify(again, MESSAGE) == GEN_TIME
    with pytest.raises(VerificationError, match="duplicate"):
        verifier.verify_all([ts, again], MESSAGE)


def test_too_many_timestamps_are_rejected() -> None:
    ders, message = vector_timestamps("tsa-too-many-timestamps_fail")
    assert len(ders) == MAX_TIMESTAMPS + 1
    stamps = [parse_timestamp_response(d) for d in ders]
    with pytest.raises(VerificationError) as info:
        vector_verifier("tsa-too-many-timestamps_fail").verify_all(stamps, message)
    assert info.value.check == Check.TIME_TSA
    assert "too many timestamps: 33 > 32" in info.value.detail


def test_vector_bundles_with_bad_counts_also_carry_unverifiable_tokens() -> None:
    # Each of these tokens is over another message: rejected one by one as well.
    for case in ("tsa-duplicate-timestamps_fail", "tsa-too-many-timestamps_fail"):
        ders, message = vector_timestamps(case)
        verifier = vector_verifier(case)
        for der in ders:
            with pytest.raises(VerificationError, match="imprint does not match"):
                verifier.verify(parse_timestamp_response(der), message)


def test_every_vector_token_matches_rfc3161_client_fields() -> None:
    tokens = all_vector_tokens()
    assert len(tokens) == 1 + 1 + 2 + 3 + 33 + 1
    for label, der in tokens:
        ours = parse_timestamp_response(der)
        ref = decode_timestamp_response(der)
        assert ours.gen_time == ref.tst_info.gen_time, label
        assert ours.serial_number == ref.tst_info.serial_number, label
        assert ours.nonce == ref.tst_info.nonce, label
        assert ours.policy == ref.tst_info.policy.dotted_string, label
        assert ours.message_imprint == ref.tst_info.message_imprint.message, label


def test_staging_token_rejected_by_other_tsa() -> None:
    (der,), message = vector_timestamps("staging-rekor2-tsa-happy")
    with pytest.raises(VerificationError) as info:
        vector_verifier("tsa-local-extra-bad-timestamp").verify(
            parse_timestamp_response(der), message
        )
    assert info.value.check == Check.TIME_TSA
    assert "no trusted TSA signed this timestamp" in info.value.detail
    assert "sigstore-tsa-selfsigned" in info.value.detail


def test_staging_token_outside_valid_for() -> None:
    (der,), message = vector_timestamps("staging-rekor2-tsa-happy")
    (authority,) = load_authorities(
        require_vectors() / "staging-rekor2-tsa-happy" / "trusted_root.json"
    )
    ts = parse_timestamp_response(der)
    late = TimestampVerifier(
        [TimestampAuthority(authority.certificates, ts.gen_time + dt.timedelta(seconds=1), None)]
    )
    with pytest.raises(VerificationError, match="outside the TSA #0 validFor"):
        late.verify(ts, message)
    exact = TimestampVerifier(
        [TimestampAuthority(authority.certificates, ts.gen_time, ts.gen_time, "exact")]
    )
    assert exact.verify(ts, message) == ts.gen_time


def test_staging_token_with_flipped_signature_byte() -> None:
    (der,), message = vector_timestamps("staging-rekor2-tsa-happy")
    ts = parse_timestamp_response(der)
    sig = ts._signer.signature
    at = der.index(sig) + len(sig) - 2
    tampered = der[:at] + bytes([der[at] ^ 0x01]) + der[at + 1 :]
    with pytest.raises(VerificationError, match="signature does not verify"):
        vector_verifier("staging-rekor2-tsa-happy").verify(
            parse_timestamp_response(tampered), message
        )


# --------------------------------------------------------------------------- generated tokens


@functools.cache
def chains() -> dict[str, TsaChain]:
    """Generated TSAs, built once per test session (RSA keys are slow)."""
    return {
        "p256": make_chain("p256"),
        "p384": make_chain("p384", intermediate=True),
        "rsa": make_chain("rsa"),
        "ed25519": make_chain("ed25519", root_key_type="p256"),
        "ed25519-root": make_chain("ed25519"),
        "eku-non-critical": make_chain("p256", eku_critical=False),
        "no-eku": make_chain("p256", eku=None),
        "eku-code-signing": make_chain("p256", eku=(ExtendedKeyUsageOID.CODE_SIGNING,)),
        "rogue": make_chain("p256", rogue_issuer=True),
        "short-leaf": make_chain(
            "p256",
            leaf_not_before=dt.datetime(2025, 1, 1, tzinfo=UTC),
            leaf_not_after=dt.datetime(2025, 12, 31, tzinfo=UTC),
        ),
    }


def verify_generated(
    chain_name: str,
    der: bytes,
    message: bytes = MESSAGE,
    *,
    valid_from: dt.datetime = NOT_BEFORE,
    valid_until: dt.datetime | None = None,
) -> dt.datetime:
    chain = chains()[chain_name]
    verifier = TimestampVerifier([chain.authority(valid_from, valid_until)])
    return verifier.verify(parse_timestamp_response(der), message)


@pytest.mark.parametrize(
    ("chain_name", "options"),
    [
        ("p256", {}),
        ("p256", {"embed_certs": False}),
        ("p256", {"signer_id": "ski"}),
        ("p256", {"ess": "v1"}),
        ("p256", {"ess": "both"}),
        ("p256", {"ess_hash": None}),  # ESSCertIDv2 hashAlgorithm DEFAULT sha256
        ("p256", {"ess_hash": "sha512"}),
        ("p256", {"ess_issuer_serial": False}),
        ("p256", {"plain_sig_oid": True}),
        ("p256", {"status": 1}),  # grantedWithMods
        ("p256", {"imprint_hash": "sha384"}),
        ("p256", {"imprint_hash": "sha512", "digest": "sha512"}),
        ("p384", {"digest": "sha384"}),
        ("p384", {}),
        ("rsa", {}),
        ("rsa", {"plain_sig_oid": True}),
        ("rsa", {"pss": True}),
        ("rsa", {"pss": True, "digest": "sha512"}),
        ("ed25519", {"digest": "sha512"}),
    ],
)
def test_generated_token_verifies(chain_name: str, options: dict[str, Any]) -> None:
    der = issue_token(chains()[chain_name], MESSAGE, **options)
    assert verify_generated(chain_name, der) == GEN_TIME


NEGATIVE: list[tuple[str, str, dict[str, Any], str]] = [
    # (id, chain, issue_token options, distinctive substring of the detail)
    ("wrong-imprint", "p256", {"wrong_imprint": True}, "imprint does not match the signature"),
    (
        "wrong-message-digest",
        "p256",
        {"wrong_message_digest": True},
        "messageDigest attribute does not match",
    ),
    (
        "wrong-content-type-attr",
        "p256",
        {"content_type_attr": "1.2.840.113549.1.7.1"},
        "contentType attribute is not id-ct-TSTInfo",
    ),
    ("no-ess", "p256", {"ess": "none"}, "no signingCertificate or signingCertificateV2"),
    (
        "ess-v2-wrong-cert",
        "p256",
        {"ess_wrong_cert": True},
        "signingCertificateV2 attribute does not name",
    ),
    (
        "ess-v1-wrong-cert",
        "p256",
        {"ess": "v1", "ess_wrong_cert": True},
        "signingCertificate attribute does not name",
    ),
    (
        "ess-wrong-issuer-serial",
        "p256",
        {"ess_wrong_serial": True},
        "signingCertificateV2 issuerSerial does not match",
    ),
    ("tampered-signature", "p256", {"tamper_signature": True}, "signature does not verify"),
    ("tampered-rsa-pss", "rsa", {"pss": True, "tamper_signature": True}, "does not verify"),
    ("tampered-ed25519", "ed25519", {"tamper_signature": True}, "does not verify"),
    (
        "wrong-signer-serial",
        "p256",
        {"wrong_signer_serial": True},
        "no trusted TSA signed this timestamp (signer: issuer",
    ),
    (
        "before-leaf-validity",
        "short-leaf",
        {"gen_time": dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)},
        "outside the TSA 'test-tsa' certificate validity",
    ),
    (
        "after-leaf-validity",
        "short-leaf",
        {"gen_time": dt.datetime(2025, 12, 31, 0, 0, 1, tzinfo=UTC)},
        "certificate validity",
    ),
    ("rejected", "p256", {"status": 2}, "TSA did not grant the timestamp (status rejection)"),
    ("waiting", "p256", {"status": 3}, "status waiting"),
    ("eku-not-critical", "eku-non-critical", {}, "extendedKeyUsage is not critical"),
    ("eku-missing", "no-eku", {}, "no extendedKeyUsage"),
    ("eku-wrong-purpose", "eku-code-signing", {}, "extendedKeyUsage lacks timeStamping"),
    ("untrusted-root", "rogue", {}, "chain does not verify"),
    ("ed25519-signed-certs", "ed25519-root", {}, "chain does not verify"),
]


@pytest.mark.parametrize(
    ("chain_name", "options", "needle"),
    [case[1:] for case in NEGATIVE],
    ids=[case[0] for case in NEGATIVE],
)
def test_generated_token_rejected(chain_name: str, options: dict[str, Any], needle: str) -> None:
    der = issue_token(chains()[chain_name], MESSAGE, **options)
    with pytest.raises(VerificationError) as info:
        verify_generated(chain_name, der)
    assert info.value.check == Check.TIME_TSA
    assert needle in info.value.detail
    assert "\n" not in info.value.detail


def test_signer_key_that_is_not_the_leaf() -> None:
    chain = chains()["p256"]
    other = chains()["p384"]
    der = issue_token(chain, MESSAGE, signer_key=other.leaf_key)
    with pytest.raises(VerificationError, match="signature does not verify"):
        verify_generated("p256", der)


def test_signed_by_an_unknown_tsa() -> None:
    der = issue_token(chains()["p384"], MESSAGE)
    with pytest.raises(VerificationError, match="no trusted TSA signed this timestamp"):
        verify_generated("p256", der)
    der = issue_token(chains()["p384"], MESSAGE, signer_id="ski")
    with pytest.raises(VerificationError, match=r"signer: subjectKeyIdentifier [0-9a-f]{40}"):
        verify_generated("p256", der)


@pytest.mark.parametrize(
    ("gen_time", "ok"),
    [
        (dt.datetime(2025, 3, 1, tzinfo=UTC), True),  # exactly validFor.start
        (dt.datetime(2025, 9, 1, tzinfo=UTC), True),  # exactly validFor.end (closed)
        (dt.datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC), False),
        (dt.datetime(2025, 9, 1, 0, 0, 1, tzinfo=UTC), False),
        (dt.datetime(2025, 9, 1, 0, 0, 0, 1, tzinfo=UTC), False),  # fractional genTime
    ],
)
def test_valid_for_is_a_closed_interval(gen_time: dt.datetime, ok: bool) -> None:
    start, end = dt.datetime(2025, 3, 1, tzinfo=UTC), dt.datetime(2025, 9, 1, tzinfo=UTC)
    der = issue_token(chains()["p256"], MESSAGE, gen_time=gen_time)
    if ok:
        assert verify_generated("p256", der, valid_from=start, valid_until=end) == gen_time
    else:
        with pytest.raises(VerificationError, match="outside the TSA 'test-tsa' validFor"):
            verify_generated("p256", der, valid_from=start, valid_until=end)


def test_leaf_validity_is_a_closed_interval() -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    end = dt.datetime(2025, 12, 31, tzinfo=UTC)
    for moment in (start, end):
        der = issue_token(chains()["short-leaf"], MESSAGE, gen_time=moment)
        assert verify_generated("short-leaf", der) == moment


def test_generated_token_over_other_message() -> None:
    der = issue_token(chains()["p256"], MESSAGE)
    with pytest.raises(VerificationError, match="imprint does not match"):
        verify_generated("p256", der, message=MESSAGE + b"x")


def test_most_specific_reason_wins_across_authorities() -> None:
    good, other = chains()["p256"], chains()["p384"]
    der = issue_token(good, MESSAGE, tamper_signature=True)
    verifier = TimestampVerifier([other.authority(name="first"), good.authority(name="second")])
    with pytest.raises(VerificationError) as info:
        verifier.verify(parse_timestamp_response(der), MESSAGE)
    assert info.value.detail == "timestamp signature does not verify with the TSA 'second' key"


def test_broken_authority_is_recorded_and_others_still_work() -> None:
    rogue, good = chains()["rogue"], chains()["p256"]
    verifier = TimestampVerifier([rogue.authority(name="rogue"), good.authority(name="good")])
    assert list(verifier.problems) == ["TSA 'rogue'"]
    assert "chain does not verify" in verifier.problems["TSA 'rogue'"]
    ts = parse_timestamp_response(issue_token(good, MESSAGE))
    assert verifier.verify(ts, MESSAGE) == GEN_TIME
    assert verifier.verify_all([ts], MESSAGE) == [(GEN_TIME, "good")]
    nameless = TimestampVerifier([TimestampAuthority(good.certificates, NOT_BEFORE, None)])
    assert nameless.verify_all([ts], MESSAGE)[0].authority == "TSA #0"


def test_authority_chain_shapes() -> None:
    chain = chains()["p256"]
    only_leaf = TimestampAuthority((chain.leaf,), NOT_BEFORE, None, "lonely")
    empty = TimestampAuthority((), NOT_BEFORE, None)
    verifier = TimestampVerifier([only_leaf, empty])
    assert "at least 2" in verifier.problems["TSA 'lonely'"]
    assert verifier.problems["TSA #1"] == "chain is empty"
    with pytest.raises(VerificationError, match="at least 2"):
        verifier.verify(parse_timestamp_response(issue_token(chain, MESSAGE)), MESSAGE)
    with pytest.raises(VerificationError, match="lists no timestamp authorities"):
        TimestampVerifier([]).verify(parse_timestamp_response(issue_token(chain, MESSAGE)), MESSAGE)


def test_chain_without_common_validity() -> None:
    chain = make_chain(
        "p256",
        leaf_not_before=NOT_AFTER + dt.timedelta(days=1),
        leaf_not_after=NOT_AFTER + dt.timedelta(days=365),
    )
    assert TimestampVerifier([chain.authority()]).problems == {
        "TSA 'test-tsa'": "chain certificates have no common validity period"
    }


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"two_signer_infos": True}, "exactly 1 is required"),
        ({"tst_version": 2}, "unsupported TSTInfo version 2"),
        ({"imprint_hash": "sha1"}, "unsupported message imprint hash algorithm 1.3.14.3.2.26"),
        ({"digest": "sha1"}, "unsupported SignerInfo digest hash algorithm"),
    ],
)
def test_unsupported_structures_are_format_errors(options: dict[str, Any], needle: str) -> None:
    der = issue_token(chains()["p256"], MESSAGE, **options)
    with pytest.raises(FormatError) as info:
        parse_timestamp_response(der)
    assert info.value.check == Check.TIME_TSA
    assert needle in info.value.detail


@pytest.mark.parametrize(
    "der",
    [b"", b"\x00", b"\x30\x00", b"\x30\x03\x02\x01\x00", b"not der at all", b"\x30\x80" * 100],
)
def test_garbage_is_a_format_error(der: bytes) -> None:
    with pytest.raises(FormatError) as info:
        parse_timestamp_response(der)
    assert info.value.check == Check.TIME_TSA


def test_trailing_bytes_are_a_format_error() -> None:
    der = issue_token(chains()["p256"], MESSAGE)
    with pytest.raises(FormatError):
        parse_timestamp_response(der + b"\x00")


def test_signed_timestamp_is_a_value() -> None:
    der = issue_token(chains()["p256"], MESSAGE, nonce=42)
    a, b = parse_timestamp_response(der), parse_timestamp_response(der)
    assert isinstance(a, SignedTimestamp)
    assert a == b
    assert hash(a) == hash(b)
    assert a.nonce == 42
    assert "der" not in repr(a)


# --------------------------------------------------------------------------- strict DER

# Paths into the staging token (Der.walk) whose *contents* the parser skips
# without reading (it checks their own header only): SignedData digestAlgorithms
# and certificates, the SignerInfo sid issuer Name, the signingTime attribute's
# values and the ESSCertIDv2 issuerSerial directoryName Name.
STAGING_OPAQUE = (
    (1, 1, 0, 1),
    (1, 1, 0, 3),
    (1, 1, 0, 4, 0, 1, 0),
    (1, 1, 0, 4, 0, 3, 1, 1),
    (1, 1, 0, 4, 0, 3, 3, 1, 0, 0, 0, 1, 0, 0, 0),
)
ECONTENT = (1, 1, 0, 2, 1, 0)  # the eContent OCTET STRING holding the TSTInfo DER
TST_OPAQUE = ((5,), (7,))  # TSTInfo accuracy and tsa


def is_bare_algorithm(node: Der) -> bool:
    """An AlgorithmIdentifier without parameters: appending NULL ones is fine."""
    return [c.tag for c in node.children or ()] == [0x06]


def staging_der() -> bytes:
    (der,), _ = vector_timestamps("staging-rekor2-tsa-happy")
    return der


def read_paths(tree: Der, opaque: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
    """Paths of the elements whose header the parser reads."""
    return [
        path
        for path, _ in tree.walk()
        if not any(path[: len(o)] == o and len(path) > len(o) for o in opaque)
    ]


def edit_tst(tree: Der, edit: Any) -> None:
    """Apply ``edit`` to the TSTInfo tree inside ``tree`` and re-embed it."""
    tst = Der.parse(tree.at(*ECONTENT).content)
    edit(tst)
    tree.at(*ECONTENT).content = tst.encode()


def parse_error(der: bytes) -> str:
    with pytest.raises(FormatError) as info:
        parse_timestamp_response(der)
    assert info.value.check == Check.TIME_TSA
    assert "\n" not in info.value.detail
    return info.value.detail


def test_der_tree_round_trips_the_vector_tokens() -> None:
    for label, der in all_vector_tokens():
        assert Der.parse(der).encode() == der, label


def test_every_truncation_is_a_format_error() -> None:
    for label, der in all_vector_tokens()[:2]:
        for cut in range(len(der)):
            with pytest.raises(FormatError) as info:
                parse_timestamp_response(der[:cut])
            assert info.value.check == Check.TIME_TSA, (label, cut)


@pytest.mark.parametrize(
    ("form", "needle"),
    [
        ("long", "not minimally encoded"),
        ("padded", "not minimally encoded"),
        ("indefinite", "indefinite length"),
    ],
)
def test_non_der_length_anywhere_is_rejected(form: Any, needle: str) -> None:
    der = staging_der()
    accepted: list[str] = []
    for path in read_paths(Der.parse(der), STAGING_OPAQUE):
        tree = Der.parse(der)
        tree.at(*path).length_form = form
        try:
            detail = parse_error_or_none(tree.encode())
        except AssertionError:
            accepted.append(f"outer {path}")
            continue
        assert needle in detail, (path, detail)
    tst = Der.parse(Der.parse(der).at(*ECONTENT).content)
    for path in read_paths(tst, TST_OPAQUE):
        tree = Der.parse(der)

        def edit(node: Der, path: tuple[int, ...] = path) -> None:
            node.at(*path).length_form = form

        edit_tst(tree, edit)
        try:
            detail = parse_error_or_none(tree.encode())
        except AssertionError:
            accepted.append(f"TSTInfo {path}")
            continue
        # NULL parameters are compared as a whole.
        want = "has unexpected parameters" if tst.at(*path).tag == 0x05 else needle
        assert want in detail, (path, detail)
    assert accepted == []


def parse_error_or_none(der: bytes) -> str:
    """The FormatError detail; AssertionError if the token is accepted."""
    try:
        parse_timestamp_response(der)
    except FormatError as exc:
        assert exc.check == Check.TIME_TSA
        return exc.detail
    raise AssertionError("accepted")


def test_non_der_length_messages() -> None:
    tree = Der.parse(staging_der())
    tree.length_form = "indefinite"
    assert parse_error(tree.encode()) == ("TimeStampResp has an indefinite length (BER, not DER)")
    tree.length_form = "padded"
    assert parse_error(tree.encode()) == "TimeStampResp length is not minimally encoded"
    tree = Der.parse(staging_der())
    tree.at(0).length_form = "long"  # PKIStatusInfo: 0x81 0x03 instead of 0x03
    assert parse_error(tree.encode()) == "PKIStatusInfo length is not minimally encoded"
    der = staging_der()
    huge = b"\x30\x85\x00\x00\x00\x04\xeb" + der[4:]
    assert parse_error(huge) == "TimeStampResp length is too large"


def test_trailing_data_inside_any_structure_is_rejected() -> None:
    der = staging_der()
    accepted: list[str] = []
    outer = Der.parse(der)
    for path in read_paths(outer, STAGING_OPAQUE):
        node = outer.at(*path)
        if node.children is None or path in STAGING_OPAQUE or is_bare_algorithm(node):
            continue
        tree = Der.parse(der)
        children = tree.at(*path).children
        assert children is not None
        children.append(Der(0x05))
        try:
            parse_error_or_none(tree.encode())
        except AssertionError:
            accepted.append(f"outer {path}")
    tst = Der.parse(outer.at(*ECONTENT).content)
    for path in read_paths(tst, TST_OPAQUE):
        if tst.at(*path).children is None or path in TST_OPAQUE:
            continue
        tree = Der.parse(der)

        def edit(node: Der, path: tuple[int, ...] = path) -> None:
            children = node.at(*path).children
            assert children is not None
            children.append(Der(0x05))

        edit_tst(tree, edit)
        try:
            parse_error_or_none(tree.encode())
        except AssertionError:
            accepted.append(f"TSTInfo {path}")
    assert accepted == []


def test_trailing_data_messages() -> None:
    tree = Der.parse(staging_der())
    assert tree.children is not None
    tree.children.append(Der(0x05))
    assert parse_error(tree.encode()) == "unexpected data after the TimeStampToken"
    tree = Der.parse(staging_der())
    edit_tst(tree, lambda tst: tst.children.append(Der(0x05)))
    assert parse_error(tree.encode()) == "unexpected data after the TSTInfo fields"
    tree = Der.parse(staging_der())
    tree.at(*ECONTENT).content += b"\x05\x00"
    assert parse_error(tree.encode()) == "unexpected data after the TSTInfo"


@pytest.mark.parametrize(
    ("path", "content", "needle"),
    [
        ((0, 0), b"\x00\x00", "PKIStatus is not a minimally encoded INTEGER"),
        ((0, 0), b"\xff\x80", "PKIStatus is not a minimally encoded INTEGER"),
        ((0, 0), b"", "PKIStatus is an empty INTEGER"),
        ((1, 0), b"\x2a\x86\x48\x86\xf7\x0d\x01\x87", "malformed OBJECT IDENTIFIER"),
        ((1, 0), b"\x2a\x80\x86\x48\x86\xf7\x0d\x01\x07\x02", "not minimally encoded"),
        ((1, 0), b"", "malformed OBJECT IDENTIFIER"),
        ((1, 1, 0, 4, 0, 1, 1), b"\x00\x0a", "sid serialNumber is not a minimally encoded"),
        # Numbers too big to print (Python's int -> str limit) are rejected up front.
        ((0, 0), b"\x02" + b"\xff" * 2000, "PKIStatus is too large"),
        ((1, 0), b"\x2a" + b"\xff" * 2000 + b"\x7f", "OBJECT IDENTIFIER is too long"),
        ((1, 1, 0, 4, 0, 2, 0), b"\x2a" + b"\xff" * 2000 + b"\x7f", "is too long"),
    ],
)
def test_non_minimal_primitives_are_rejected(
    path: tuple[int, ...], content: bytes, needle: str
) -> None:
    tree = Der.parse(staging_der())
    tree.at(*path).content = content
    assert needle in parse_error(tree.encode())


def test_non_minimal_tst_info_fields_are_rejected() -> None:
    tree = Der.parse(staging_der())

    def pad_nonce(tst: Der) -> None:
        tst.at(6).content = b"\x00" + tst.at(6).content

    edit_tst(tree, pad_nonce)
    assert parse_error(tree.encode()) == "TSTInfo nonce is not a minimally encoded INTEGER"

    tree = Der.parse(staging_der())

    def bad_policy(tst: Der) -> None:
        tst.at(1).content = b"\x2b\x80\x06"

    edit_tst(tree, bad_policy)
    assert parse_error(tree.encode()) == "OBJECT IDENTIFIER is not minimally encoded"


def test_high_tag_numbers_and_wrong_tags_are_rejected() -> None:
    tree = Der.parse(staging_der())
    tree.at(1, 1, 0, 4, 0, 1).tag = 0xBF  # sid: [high tag number]
    assert parse_error(tree.encode()) == "SignerInfo sid uses a high tag number"
    tree = Der.parse(staging_der())
    tree.at(1, 1, 0, 4, 0, 1).tag = 0xA1
    assert "neither issuerAndSerialNumber nor subjectKeyIdentifier" in parse_error(tree.encode())
    tree = Der.parse(staging_der())
    tree.at(1, 1, 0, 4).tag = 0x30  # signerInfos as SEQUENCE instead of SET
    assert parse_error(tree.encode()) == ("SignedData signerInfos: expected tag 0x31, found 0x30")
    tree = Der.parse(staging_der())
    tree.at(*ECONTENT).tag = 0x24  # constructed OCTET STRING (BER only)
    tree.at(*ECONTENT).children = [Der(0x04, tree.at(*ECONTENT).content)]
    assert parse_error(tree.encode()) == "eContent: expected tag 0x04, found 0x24"


def test_tst_info_ordering_must_be_a_der_boolean() -> None:
    for value, ok in ((b"\xff", True), (b"\x00", True), (b"\x01", False), (b"", False)):
        tree = Der.parse(staging_der())

        def add_ordering(tst: Der, value: bytes = value) -> None:
            assert tst.children is not None
            tst.children.insert(6, Der(0x01, value))

        edit_tst(tree, add_ordering)
        if ok:
            assert parse_timestamp_response(tree.encode()).nonce == 11204840483090223374
        else:
            assert parse_error(tree.encode()) == "TSTInfo ordering is not a DER BOOLEAN"


def test_signed_attribute_value_counts() -> None:
    digest_values = (1, 1, 0, 4, 0, 3, 2, 1)
    tree = Der.parse(staging_der())
    values = tree.at(*digest_values).children
    assert values is not None
    values.append(values[0])
    assert parse_error(tree.encode()) == (
        "signed attribute 1.2.840.113549.1.9.4 must have exactly one value"
    )
    values.clear()
    assert parse_error(tree.encode()) == (
        "signed attribute 1.2.840.113549.1.9.4 must have exactly one value"
    )
    tree = Der.parse(staging_der())
    attrs = tree.at(1, 1, 0, 4, 0, 3).children
    assert attrs is not None
    attrs.append(attrs[2])
    assert parse_error(tree.encode()) == "signed attribute 1.2.840.113549.1.9.4 appears twice"
    del attrs[2:]
    assert parse_error(tree.encode()) == "signed attributes lack messageDigest"


def test_ess_general_names_must_be_general_names() -> None:
    names = (1, 1, 0, 4, 0, 3, 3, 1, 0, 0, 0, 1, 0)
    tree = Der.parse(staging_der())
    children = tree.at(*names).children
    assert children is not None
    children.insert(0, Der(0x86, b"https://tsa.example"))  # a URI GeneralName is fine
    assert parse_timestamp_response(tree.encode()).nonce == 11204840483090223374
    children.insert(0, Der(0x04, b"not a GeneralName"))
    assert parse_error(tree.encode()) == "issuerSerial issuer is not a GeneralName"


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        (b"20250601120000.5Z", dt.datetime(2025, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        (b"20250601120000.123456Z", dt.datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        (b"20250601120000.000001Z", dt.datetime(2025, 6, 1, 12, 0, 0, 1, tzinfo=UTC)),
        (b"20250601120000", "not a DER GeneralizedTime in UTC"),
        (b"20250601120000+0000", "not a DER GeneralizedTime in UTC"),
        (b"202506011200Z", "not a DER GeneralizedTime in UTC"),
        (b"2025060112000Z", "not a DER GeneralizedTime in UTC"),
        (b"2025-6-01120000Z", "not a DER GeneralizedTime in UTC"),
        (b"20250601120000.Z", "fraction is not DER"),
        (b"20250601120000.50Z", "fraction is not DER"),
        (b"20250601120000,5Z", "fraction is not DER"),
        (b"20250601120000.1234567Z", "finer than a microsecond"),
        (b"20250601120000.+5Z", "fraction is not DER"),
        (b"20250631120000Z", "not a valid date and time"),
        (b"20250601120060Z", "not a valid date and time"),
        (b"20250601240000Z", "not a valid date and time"),
    ],
)
def test_gen_time_must_be_der(contents: bytes, expected: dt.datetime | str) -> None:
    der = issue_token(chains()["p256"], MESSAGE, gen_time_der=contents)
    if isinstance(expected, dt.datetime):
        assert parse_timestamp_response(der).gen_time == expected
        assert verify_generated("p256", der) == expected
    else:
        assert expected in parse_error(der)


def rsa_pss_tree(**options: Any) -> Der:
    return Der.parse(issue_token(chains()["rsa"], MESSAGE, pss=True, **options))


PSS_PARAMS = (1, 1, 0, 4, 0, 4, 1)  # RSASSA-PSS-params in the SignerInfo


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ("drop-params", "RSASSA-PSS signature algorithm lacks its parameters"),
        ("drop-hash", "unsupported RSASSA-PSS hash algorithm 1.3.14.3.2.26"),
        ("drop-mgf", "unsupported MGF1 hash algorithm 1.3.14.3.2.26"),
        ("mgf-oid", "RSASSA-PSS mask generation function is not MGF1"),
        ("trailer-2", "RSASSA-PSS trailer field is not 1"),
        ("salt-negative", "RSASSA-PSS salt length is negative"),
        ("extra", "unexpected data after the RSASSA-PSS parameters"),
    ],
)
def test_rsa_pss_parameters_are_strict(edit: str, needle: str) -> None:
    tree = rsa_pss_tree()
    alg = tree.at(*PSS_PARAMS[:-1]).children
    params = tree.at(*PSS_PARAMS).children
    assert alg is not None and params is not None
    assert [p.tag for p in params] == [0xA0, 0xA1, 0xA2]  # asn1crypto omits trailer 1
    if edit == "drop-params":
        del alg[1]
    elif edit == "drop-hash":
        del params[0]
    elif edit == "drop-mgf":
        del params[1]
    elif edit == "mgf-oid":
        params[1].at(0, 0).content = params[1].at(0, 0).content[:-1] + b"\x09"
    elif edit == "trailer-2":
        params.append(Der(0xA3, children=[Der(0x02, b"\x02")]))
    elif edit == "salt-negative":
        params[2].at(0).content = b"\xff"
    else:
        params.append(Der(0x05))
    assert parse_error(tree.encode()) == needle


def test_rsa_pss_explicit_defaults_are_accepted() -> None:
    tree = rsa_pss_tree()
    params = tree.at(*PSS_PARAMS).children
    assert params is not None
    params.append(Der(0xA3, children=[Der(0x02, b"\x01")]))  # trailerField 1, explicit
    assert verify_generated("rsa", tree.encode()) == GEN_TIME


def test_rejection_status_text_is_reported() -> None:
    der = issue_token(chains()["p256"], MESSAGE, status=2)
    with pytest.raises(VerificationError) as info:
        parse_timestamp_response(der)
    assert info.value.detail == (
        "TSA did not grant the timestamp (status rejection): request refused by test TSA"
    )


def test_issuer_name_is_read_from_the_certificate_bytes() -> None:
    certs = [c for chain in chains().values() for c in chain.certificates]
    for case in ("staging-rekor2-tsa-happy", "tsa-local-extra-bad-timestamp"):
        (authority,) = load_authorities(require_vectors() / case / "trusted_root.json")
        certs.extend(authority.certificates)
    for cert in certs:
        der = cert.public_bytes(serialization.Encoding.DER)
        assert _issuer_der(der) == cert.issuer.public_bytes()


def test_signer_issuer_matches_after_rfc5280_normalisation() -> None:
    # The sid is not signed: re-encode its issuer with PrintableStrings instead of
    # UTF8Strings. Byte comparison fails, the RFC 5280 comparison still matches.
    tree = Der.parse(issue_token(chains()["p256"], MESSAGE))
    name = tree.at(1, 1, 0, 4, 0, 1, 0)
    for _, node in name.walk():
        if node.tag == 0x0C:
            node.tag = 0x13
    der = tree.encode()
    assert verify_generated("p256", der) == GEN_TIME
    for _, node in name.walk():
        if node.tag == 0x13:
            node.content = node.content.upper() + b"X"
    with pytest.raises(VerificationError, match="no trusted TSA signed this timestamp"):
        verify_generated("p256", tree.encode())


# --------------------------------------------------------------------------- reference agreement


def rfc3161_client_accepts(chain: TsaChain, der: bytes, message: bytes) -> bool:
    """sigstore-python's check (as in Verifier._verify_signed_timestamp)."""
    builder = VerifierBuilder().tsa_certificate(chain.leaf).add_root_certificate(chain.root)
    for cert in chain.intermediates:
        builder = builder.add_intermediate_certificate(cert)
    try:
        builder.build().verify_message(decode_timestamp_response(der), message)
    except Exception:
        return False
    return True


def ours_accepts(chain: TsaChain, der: bytes, message: bytes) -> bool:
    try:
        TimestampVerifier([chain.authority()]).verify(parse_timestamp_response(der), message)
    except (VerificationError, FormatError):
        return False
    return True


@pytest.mark.parametrize(
    ("chain_name", "options", "accepted"),
    [
        ("p256", {}, True),
        ("p384", {}, True),  # with an intermediate
        ("p256", {"embed_certs": False}, True),
        ("p256", {"ess": "v1"}, True),
        ("p256", {"plain_sig_oid": True}, True),
        ("rsa", {}, True),
        ("p256", {"wrong_imprint": True}, False),
        ("p256", {"wrong_message_digest": True}, False),
        ("p256", {"tamper_signature": True}, False),
        ("p256", {"wrong_signer_serial": True}, False),
        ("short-leaf", {"gen_time": dt.datetime(2024, 6, 1, tzinfo=UTC)}, False),
        ("eku-non-critical", {}, False),
        ("no-eku", {}, False),
        ("rogue", {}, False),
    ],
)
def test_agrees_with_rfc3161_client(
    chain_name: str, options: dict[str, Any], accepted: bool
) -> None:
    chain = chains()[chain_name]
    der = issue_token(chain, MESSAGE, **options)
    assert ours_accepts(chain, der, MESSAGE) is accepted
    assert rfc3161_client_accepts(chain, der, MESSAGE) is accepted


@pytest.mark.parametrize(
    "options",
    [{"ess": "none"}, {"ess_wrong_cert": True}, {"content_type_attr": "1.2.840.113549.1.7.1"}],
)
def test_stricter_than_rfc3161_client(options: dict[str, Any]) -> None:
    # rfc3161-client does not check the ESS signing-certificate binding or the
    # contentType attribute; airseal does.
    chain = chains()["p256"]
    der = issue_token(chain, MESSAGE, **options)
    assert rfc3161_client_accepts(chain, der, MESSAGE)
    assert not ours_accepts(chain, der, MESSAGE)


@pytest.mark.parametrize("options", [{"status": 1}, {"pss": True}, {"signer_id": "ski"}])
def test_accepted_where_rfc3161_client_cannot(options: dict[str, Any]) -> None:
    # grantedWithMods, RSASSA-PSS and subjectKeyIdentifier signer ids are valid
    # RFC 3161 / CMS that rfc3161-client does not support.
    chain = chains()["rsa"]
    der = issue_token(chain, MESSAGE, **options)
    assert ours_accepts(chain, der, MESSAGE)
    assert not rfc3161_client_accepts(chain, der, MESSAGE)


# --------------------------------------------------------------------------- helpers


def _strip_certificates(der: bytes) -> bytes:
    from asn1crypto import tsp

    resp = tsp.TimeStampResp.load(der)
    signed_data = resp["time_stamp_token"]["content"]
    rebuilt = {
        "version": signed_data["version"],
        "digest_algorithms": signed_data["digest_algorithms"],
        "encap_content_info": signed_data["encap_content_info"],
        "signer_infos": signed_data["signer_infos"],
    }
    token = {"content_type": "signed_data", "content": rebuilt}
    out: bytes = tsp.TimeStampResp({"status": resp["status"], "time_stamp_token": token}).dump()
    return out
