"""RFC 6962 encodings, against independent construction with cryptography and struct."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.certificate_transparency import LogEntryType

from tests.support.factory import CertificateAuthority
from tests.unit.toolkit.services.ct.pki import der, make_precert
from toolkit import merkle
from toolkit.errors import FormatError
from toolkit.services.ct.sct import (
    OID_PRECERT_POISON,
    OID_SCT_LIST,
    PRECERT_POISON,
    SignedCertificateTimestamp,
    decode_digitally_signed,
    digitally_signed,
    issuer_key_hash,
    merkle_tree_leaf,
    precert_signing_input,
    precert_tbs,
    sct_list_extension,
    tree_head_signing_input,
    verify_sct,
)

CA = CertificateAuthority.create("ct-sct-tests")
KEY = ec.generate_private_key(ec.SECP256R1())


def _sct(timestamp: int = 1_700_000_000_123, extensions: bytes = b"") -> SignedCertificateTimestamp:
    signature = KEY.sign(b"anything", ec.ECDSA(hashes.SHA256()))
    return SignedCertificateTimestamp(bytes(range(32)), timestamp, signature, extensions)


# --------------------------------------------------------------------------- precert TBS


def test_precert_tbs_matches_cryptography_reconstruction_of_the_final_cert() -> None:
    precert = make_precert(CA)
    final = precert.finish(_sct())
    assert precert_tbs(precert.chain[0]) == final.tbs_precertificate_bytes


def test_precert_tbs_with_poison_in_the_middle() -> None:
    # The SCT list takes the poison's place; the extensions around it stay.
    def build(ext: x509.ExtensionType, critical: bool) -> x509.Certificate:
        precert = make_precert(CA)
        builder = precert.builder
        # Rebuild: SKI, <ext>, then an extra extension after it.
        builder = builder.add_extension(ext, critical=critical).add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), b"\x0c\x01a"
            ),
            critical=False,
        )
        return builder.sign(CA.intermediate_key, hashes.SHA384())

    pre = build(PRECERT_POISON, True)
    # Same builder contents are needed: rebuild the final from the precert's own fields.
    exts = list(pre.extensions)
    position = next(i for i, e in enumerate(exts) if e.oid == OID_PRECERT_POISON)
    assert position < len(exts) - 1
    builder = (
        x509.CertificateBuilder()
        .subject_name(pre.subject)
        .issuer_name(pre.issuer)
        .public_key(pre.public_key())
        .serial_number(pre.serial_number)
        .not_valid_before(pre.not_valid_before_utc)
        .not_valid_after(pre.not_valid_after_utc)
    )
    for ext in exts:
        if ext.oid == OID_PRECERT_POISON:
            builder = builder.add_extension(sct_list_extension([_sct()]), critical=False)
        else:
            builder = builder.add_extension(ext.value, critical=ext.critical)
    final = builder.sign(CA.intermediate_key, hashes.SHA384())
    assert precert_tbs(der(pre)) == final.tbs_precertificate_bytes


def test_precert_tbs_when_the_poison_is_the_only_extension() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(CA.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(CA.intermediate.not_valid_before_utc)
        .not_valid_after(CA.intermediate.not_valid_after_utc)
    )
    pre = builder.add_extension(PRECERT_POISON, critical=True).sign(key, hashes.SHA256())
    final = builder.add_extension(sct_list_extension([_sct()]), critical=False).sign(
        key, hashes.SHA256()
    )
    assert precert_tbs(der(pre)) == final.tbs_precertificate_bytes


def test_precert_tbs_refuses_a_certificate_without_poison() -> None:
    with pytest.raises(FormatError, match="0 poison"):
        precert_tbs(der(CA.intermediate))


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30", b"\x30\x80\x00\x00", b"\x31\x00", b"\x30\x03\x02\x01\x00", b"\x30\x81\x01\x00"],
)
def test_precert_tbs_refuses_non_der(data: bytes) -> None:
    with pytest.raises(FormatError):
        precert_tbs(data)


def test_precert_tbs_refuses_trailing_bytes() -> None:
    with pytest.raises(FormatError, match="not a DER certificate"):
        precert_tbs(make_precert(CA).chain[0] + b"\x00")


def test_poison_is_the_rfc_6962_extension() -> None:
    cert = make_precert(CA).cert
    poison = cert.extensions.get_extension_for_oid(OID_PRECERT_POISON)
    assert poison.critical
    assert isinstance(poison.value, x509.PrecertPoison)


# --------------------------------------------------------------------------- SCT encodings


def test_to_tls_layout() -> None:
    sct = _sct(extensions=b"\x01\x02")
    expected = (
        b"\x00"
        + sct.log_id
        + struct.pack(">QH", sct.timestamp, 2)
        + b"\x01\x02"
        + struct.pack(">BBH", 4, 3, len(sct.signature))
        + sct.signature
    )
    assert sct.to_tls() == expected
    assert SignedCertificateTimestamp.from_tls(expected) == sct


def test_sct_list_extension_parses_with_cryptography() -> None:
    sct = _sct()
    precert = make_precert(CA)
    final = precert.finish(sct)
    parsed = x509.load_der_x509_certificate(der(final))
    extension = parsed.extensions.get_extension_for_oid(OID_SCT_LIST)
    assert not extension.critical
    scts = parsed.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    assert len(scts) == 1
    (item,) = scts
    assert item.log_id == sct.log_id
    assert item.entry_type == LogEntryType.PRE_CERTIFICATE
    assert int(item.timestamp.timestamp() * 1000) == sct.timestamp
    assert item.signature == sct.signature
    assert item.extension_bytes == b""
    assert item.signature_hash_algorithm is not None
    assert item.signature_hash_algorithm.name == "sha256"


def test_sct_list_extension_needs_an_sct() -> None:
    with pytest.raises(FormatError):
        sct_list_extension([])


def test_json_round_trip() -> None:
    sct = _sct()
    document = sct.to_json()
    assert set(document) == {"sct_version", "id", "timestamp", "extensions", "signature"}
    assert document["sct_version"] == 0
    assert document["timestamp"] == sct.timestamp
    assert base64.b64decode(document["signature"])[:2] == b"\x04\x03"
    assert SignedCertificateTimestamp.from_json(document) == sct


def _doc(**changes: Any) -> dict[str, Any]:
    document = _sct().to_json()
    for key, value in changes.items():
        if value is _DROP:
            del document[key]
        else:
            document[key] = value
    return document


_DROP = object()


@pytest.mark.parametrize(
    ("document", "match"),
    [
        (_doc(extra=1), "unknown extra"),
        (_doc(id=_DROP), "missing id"),
        (_doc(sct_version=1), "sct_version"),
        (_doc(sct_version=True), "sct_version"),
        (_doc(sct_version="0"), "sct_version"),
        (_doc(timestamp=-1), "timestamp"),
        (_doc(timestamp=1 << 64), "timestamp"),
        (_doc(timestamp=True), "timestamp"),
        (_doc(timestamp="12"), "timestamp"),
        (_doc(timestamp=1.5), "timestamp"),
        (_doc(id=base64.b64encode(bytes(31)).decode()), "id"),
        (_doc(id="not base64!"), "id"),
        (_doc(extensions=None), "extensions"),
        (_doc(signature=base64.b64encode(b"\x04\x01\x00\x01\x00").decode()), "signature"),
        (_doc(signature=base64.b64encode(b"\x04\x03\x00\x09\x30").decode()), "signature"),
        (_doc(signature=base64.b64encode(b"\x04\x03\x00\x02\x30\x00").decode()), "signature"),
        (_doc(signature="AAA"), "signature"),
    ],
)
def test_from_json_is_strict(document: dict[str, Any], match: str) -> None:
    with pytest.raises(FormatError, match=match):
        SignedCertificateTimestamp.from_json(document)


def test_from_json_needs_an_object() -> None:
    with pytest.raises(FormatError, match="JSON object"):
        SignedCertificateTimestamp.from_json([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01" + bytes(50), b"\x00" + bytes(42) + b"\x00\x05", b"\x00" + bytes(42) + b"\x04"],
)
def test_from_tls_is_strict(data: bytes) -> None:
    with pytest.raises(FormatError):
        SignedCertificateTimestamp.from_tls(data)


def test_construction_checks_fields() -> None:
    signature = _sct().signature
    with pytest.raises(FormatError):
        SignedCertificateTimestamp(bytes(31), 0, signature)
    with pytest.raises(FormatError):
        SignedCertificateTimestamp(bytes(32), -1, signature)
    with pytest.raises(FormatError):
        SignedCertificateTimestamp(bytes(32), 0, b"\x30\x00")
    with pytest.raises(FormatError):
        SignedCertificateTimestamp(bytes(32), 0, signature, bytes(70000))


def test_digitally_signed_round_trip() -> None:
    signature = _sct().signature
    assert decode_digitally_signed(digitally_signed(signature)) == signature


# --------------------------------------------------------------------------- signed structs


def test_precert_signing_input_layout_matches_rfc_6962() -> None:
    tbs = b"\x30\x03\x02\x01\x01"
    key_hash = hashlib.sha256(b"issuer").digest()
    data = precert_signing_input(0x0102030405060708, key_hash, tbs, b"\xaa")
    assert data == (
        b"\x00\x00"  # v1, certificate_timestamp
        + bytes.fromhex("0102030405060708")
        + b"\x00\x01"  # precert_entry
        + key_hash
        + b"\x00\x00\x05"
        + tbs
        + b"\x00\x01\xaa"
    )


def test_merkle_tree_leaf_layout() -> None:
    tbs = b"\x30\x00"
    key_hash = bytes(32)
    leaf = merkle_tree_leaf(5, key_hash, tbs)
    assert (
        leaf
        == b"\x00\x00" + struct.pack(">QH", 5, 1) + key_hash + b"\x00\x00\x02" + tbs + b"\x00\x00"
    )
    assert merkle.leaf_hash(leaf) == hashlib.sha256(b"\x00" + leaf).digest()


def test_tree_head_signing_input_layout() -> None:
    root = hashlib.sha256(b"root").digest()
    assert tree_head_signing_input(9, 3, root) == b"\x00\x01" + struct.pack(">QQ", 9, 3) + root
    with pytest.raises(FormatError):
        tree_head_signing_input(9, 3, b"short")


def test_verify_sct_checks_the_entry() -> None:
    precert = make_precert(CA)
    tbs = precert_tbs(precert.chain[0])
    key_hash = issuer_key_hash(CA.intermediate)
    signature = KEY.sign(precert_signing_input(42, key_hash, tbs), ec.ECDSA(hashes.SHA256()))
    sct = SignedCertificateTimestamp(bytes(32), 42, signature)
    assert verify_sct(sct, KEY.public_key(), key_hash, tbs)
    assert not verify_sct(sct, KEY.public_key(), bytes(32), tbs)
    assert not verify_sct(
        SignedCertificateTimestamp(bytes(32), 43, signature), KEY.public_key(), key_hash, tbs
    )
