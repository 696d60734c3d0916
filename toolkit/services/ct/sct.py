"""RFC 6962 encodings: SCTs, precertificate entries, Merkle leaves and tree heads.

Everything here is pure: bytes in, bytes out, no clock and no key storage.

* :class:`SignedCertificateTimestamp` -- an SCT v1, in its TLS form (as it sits
  inside a certificate's SCT list) and its JSON form (``add-pre-chain``).
* :func:`sct_list_extension` and :data:`PRECERT_POISON` -- the two X.509
  extensions of the precertificate flow.
* :func:`precert_tbs` -- the precertificate's TBSCertificate with the poison
  extension removed, which is what the SCT signs. A CA that builds the final
  certificate with the *same* extensions in the *same* order, the SCT list
  extension standing exactly where the poison stood, gets a certificate whose
  ``tbs_precertificate_bytes`` (cryptography's reconstruction, and every
  verifier's) equals it byte for byte. Simplest: add the poison last when
  building the precertificate, and the SCT list last when building the final
  certificate.
* :func:`precert_signing_input`, :func:`merkle_tree_leaf` and
  :func:`tree_head_signing_input` -- the ``digitally-signed`` structs of
  RFC 6962 §3.2 and §3.5 and the ``MerkleTreeLeaf`` of §3.4.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from toolkit.encoding import b64decode, b64encode, json_type_name
from toolkit.errors import FormatError

__all__ = [
    "HASH_SHA256",
    "OID_PRECERT_POISON",
    "OID_SCT_LIST",
    "PRECERT_POISON",
    "SIG_ECDSA",
    "SignedCertificateTimestamp",
    "decode_digitally_signed",
    "digitally_signed",
    "issuer_key_hash",
    "merkle_tree_leaf",
    "precert_signing_input",
    "precert_tbs",
    "sct_list_extension",
    "tree_head_signing_input",
    "verify_sct",
]

#: The embedded SCT list extension (RFC 6962 §3.3).
OID_SCT_LIST: Final = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
#: The precertificate poison extension (RFC 6962 §3.1).
OID_PRECERT_POISON: Final = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")
#: The poison's extnValue: a DER NULL.
_DER_NULL: Final = b"\x05\x00"
#: The poison extension; add it with ``critical=True`` (RFC 6962 requires it).
PRECERT_POISON: Final = x509.UnrecognizedExtension(OID_PRECERT_POISON, _DER_NULL)

#: TLS HashAlgorithm sha256 and SignatureAlgorithm ecdsa (RFC 5246 §7.4.1.4.1).
HASH_SHA256: Final = 4
SIG_ECDSA: Final = 3

_V1: Final = 0
_CERTIFICATE_TIMESTAMP: Final = 0
_TREE_HASH: Final = 1
_PRECERT_ENTRY: Final = 1
_TIMESTAMPED_ENTRY: Final = 0
_LOG_ID_SIZE: Final = 32
_MAX_U16: Final = 0xFFFF
_MAX_U24: Final = 0xFFFFFF
_MAX_U64: Final = (1 << 64) - 1
_JSON_KEYS: Final = frozenset({"sct_version", "id", "timestamp", "extensions", "signature"})


# --------------------------------------------------------------------------- TLS helpers


def digitally_signed(signature: bytes) -> bytes:
    """The TLS ``DigitallySigned`` struct of an ECDSA-SHA256 signature."""
    if len(signature) > _MAX_U16:
        raise FormatError("signature is too long for a TLS DigitallySigned struct")
    return struct.pack(">BBH", HASH_SHA256, SIG_ECDSA, len(signature)) + signature


def decode_digitally_signed(data: bytes, *, path: str | None = None) -> bytes:
    """The DER signature inside a ``DigitallySigned`` struct of ECDSA-SHA256.

    Raises:
        FormatError: Another algorithm, a wrong length, or not a DER ECDSA signature.
    """
    if len(data) < 4:
        raise FormatError("DigitallySigned struct is truncated", path=path)
    hash_alg, sig_alg, length = struct.unpack(">BBH", data[:4])
    if (hash_alg, sig_alg) != (HASH_SHA256, SIG_ECDSA):
        raise FormatError(
            f"signature algorithm is ({hash_alg}, {sig_alg}), not ECDSA with SHA-256 (4, 3)",
            path=path,
        )
    signature = data[4:]
    if len(signature) != length:
        raise FormatError(
            f"DigitallySigned length says {length} bytes, {len(signature)} follow", path=path
        )
    _check_der_ecdsa(signature, path)
    return signature


def _check_der_ecdsa(signature: bytes, path: str | None) -> None:
    # At most 72 bytes for P-256; anything else is not one of our SCTs.
    if not 8 <= len(signature) <= 72:
        raise FormatError("signature is not a DER ECDSA P-256 signature", path=path)
    try:
        decode_dss_signature(signature)
    except ValueError:
        raise FormatError("signature is not a DER ECDSA signature", path=path) from None


# --------------------------------------------------------------------------- the SCT


@dataclass(frozen=True)
class SignedCertificateTimestamp:
    """An RFC 6962 SCT v1, as a CT log returns it for a precertificate.

    Attributes:
        log_id: SHA-256 of the CT log key's DER SubjectPublicKeyInfo (32 bytes).
        timestamp: Milliseconds since the epoch.
        signature: DER ECDSA signature (P-256, SHA-256) over
            :func:`precert_signing_input`.
        extensions: The SCT's CtExtensions (empty in practice).

    Raises:
        FormatError: A field out of range.
    """

    log_id: bytes
    timestamp: int
    signature: bytes
    extensions: bytes = b""

    def __post_init__(self) -> None:
        if len(self.log_id) != _LOG_ID_SIZE:
            raise FormatError(f"SCT log id must be {_LOG_ID_SIZE} bytes, not {len(self.log_id)}")
        if isinstance(self.timestamp, bool) or not 0 <= self.timestamp <= _MAX_U64:
            raise FormatError("SCT timestamp must be an unsigned 64-bit integer")
        if len(self.extensions) > _MAX_U16:
            raise FormatError("SCT extensions are longer than 65535 bytes")
        _check_der_ecdsa(self.signature, None)

    def to_tls(self) -> bytes:
        """The serialized SCT, as one item of a ``SignedCertificateTimestampList``."""
        return b"".join(
            (
                struct.pack(">B", _V1),
                self.log_id,
                struct.pack(">QH", self.timestamp, len(self.extensions)),
                self.extensions,
                digitally_signed(self.signature),
            )
        )

    @classmethod
    def from_tls(cls, data: bytes) -> SignedCertificateTimestamp:
        """Parse a serialized SCT v1 (ECDSA-SHA256), the whole of ``data``.

        Raises:
            FormatError: Truncated, trailing bytes, another version or algorithm.
        """
        if len(data) < 1 + _LOG_ID_SIZE + 10 + 4:
            raise FormatError("SCT is truncated")
        if data[0] != _V1:
            raise FormatError(f"SCT version {data[0]} is not v1 (0)")
        log_id = data[1:33]
        timestamp, ext_len = struct.unpack(">QH", data[33:43])
        extensions = data[43 : 43 + ext_len]
        if len(extensions) != ext_len:
            raise FormatError("SCT extensions are truncated")
        return cls(log_id, timestamp, decode_digitally_signed(data[43 + ext_len :]), extensions)

    def to_json(self) -> dict[str, Any]:
        """The ``add-pre-chain`` response (RFC 6962 §4.1)."""
        return {
            "sct_version": _V1,
            "id": b64encode(self.log_id),
            "timestamp": self.timestamp,
            "extensions": b64encode(self.extensions),
            "signature": b64encode(digitally_signed(self.signature)),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SignedCertificateTimestamp:
        """Parse an ``add-pre-chain`` response strictly.

        Exactly the five RFC 6962 fields; ``sct_version`` 0; ``id`` 32 bytes;
        ``timestamp`` an unsigned 64-bit integer (a JSON number); canonical
        padded base64; the signature an ECDSA-SHA256 ``DigitallySigned``.

        Raises:
            FormatError: Anything else.
        """
        if not isinstance(doc, Mapping):
            raise FormatError(f"SCT must be a JSON object, got {json_type_name(doc)}")
        keys = set(doc)
        if keys != _JSON_KEYS:
            missing = sorted(_JSON_KEYS - keys)
            extra = sorted(str(key)[:40] for key in keys - _JSON_KEYS)
            raise FormatError(
                "SCT JSON must have exactly sct_version, id, timestamp, extensions, signature"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        version = doc["sct_version"]
        if isinstance(version, bool) or not isinstance(version, int) or version != _V1:
            raise FormatError("sct_version must be 0 (v1)", path="sct_version")
        timestamp = doc["timestamp"]
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise FormatError(
                f"expected an integer, got {json_type_name(timestamp)}", path="timestamp"
            )
        if not 0 <= timestamp <= _MAX_U64:
            raise FormatError("must be an unsigned 64-bit integer", path="timestamp")
        log_id = b64decode(doc["id"], path="id")
        if len(log_id) != _LOG_ID_SIZE:
            raise FormatError(f"must be {_LOG_ID_SIZE} bytes, not {len(log_id)}", path="id")
        extensions = b64decode(doc["extensions"], path="extensions")
        signature = decode_digitally_signed(
            b64decode(doc["signature"], path="signature"), path="signature"
        )
        try:
            return cls(log_id, timestamp, signature, extensions)
        except FormatError as exc:
            raise FormatError(f"invalid SCT: {exc.message}") from None


def sct_list_extension(scts: Sequence[SignedCertificateTimestamp]) -> x509.UnrecognizedExtension:
    """The embedded SCT list extension (add it with ``critical=False``).

    Its extnValue is a DER OCTET STRING holding the TLS
    ``SignedCertificateTimestampList`` (RFC 6962 §3.3).

    Raises:
        FormatError: No SCT, or a list too long for TLS.
    """
    if not scts:
        raise FormatError("an SCT list holds at least one SCT")
    items = []
    for sct in scts:
        data = sct.to_tls()
        items.append(struct.pack(">H", len(data)) + data)
    body = b"".join(items)
    if len(body) > _MAX_U16:
        raise FormatError("the SCT list is longer than 65535 bytes")
    tls = struct.pack(">H", len(body)) + body
    return x509.UnrecognizedExtension(OID_SCT_LIST, _der_tlv(0x04, tls))


# --------------------------------------------------------------------------- signing inputs


def issuer_key_hash(issuer: x509.Certificate) -> bytes:
    """SHA-256 of the issuer's DER SubjectPublicKeyInfo (RFC 6962 ``issuer_key_hash``)."""
    from cryptography.hazmat.primitives import serialization

    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def _precert_entry(timestamp: int, key_hash: bytes, tbs: bytes, extensions: bytes) -> bytes:
    if len(key_hash) != 32:
        raise FormatError("issuer key hash must be 32 bytes")
    if not 0 < len(tbs) <= _MAX_U24:
        raise FormatError("precertificate TBSCertificate is empty or longer than 2^24-1 bytes")
    if len(extensions) > _MAX_U16:
        raise FormatError("SCT extensions are longer than 65535 bytes")
    return b"".join(
        (
            struct.pack(">QH", timestamp, _PRECERT_ENTRY),
            key_hash,
            len(tbs).to_bytes(3, "big"),
            tbs,
            struct.pack(">H", len(extensions)),
            extensions,
        )
    )


def precert_signing_input(
    timestamp: int, key_hash: bytes, tbs: bytes, extensions: bytes = b""
) -> bytes:
    """What an SCT for a precertificate signs (RFC 6962 §3.2).

    Args:
        timestamp: The SCT timestamp, ms since the epoch.
        key_hash: :func:`issuer_key_hash` of the precertificate's issuer.
        tbs: :func:`precert_tbs` of the precertificate (equivalently, the final
            certificate's ``tbs_precertificate_bytes``).
        extensions: The SCT's extensions.
    """
    return struct.pack(">BB", _V1, _CERTIFICATE_TIMESTAMP) + _precert_entry(
        timestamp, key_hash, tbs, extensions
    )


def merkle_tree_leaf(timestamp: int, key_hash: bytes, tbs: bytes, extensions: bytes = b"") -> bytes:
    """The ``MerkleTreeLeaf`` of a precertificate entry (RFC 6962 §3.4): the log's entry body."""
    return struct.pack(">BB", _V1, _TIMESTAMPED_ENTRY) + _precert_entry(
        timestamp, key_hash, tbs, extensions
    )


def tree_head_signing_input(timestamp: int, tree_size: int, root_hash: bytes) -> bytes:
    """What an STH signature signs: the ``TreeHeadSignature`` struct (RFC 6962 §3.5)."""
    if len(root_hash) != 32:
        raise FormatError("root hash must be 32 bytes")
    return struct.pack(">BBQQ", _V1, _TREE_HASH, timestamp, tree_size) + root_hash


def verify_sct(
    sct: SignedCertificateTimestamp,
    public_key: ec.EllipticCurvePublicKey,
    key_hash: bytes,
    tbs: bytes,
) -> bool:
    """True when ``sct`` is a valid signature of ``public_key`` over this precertificate entry."""
    signed = precert_signing_input(sct.timestamp, key_hash, tbs, sct.extensions)
    try:
        public_key.verify(sct.signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# --------------------------------------------------------------------------- DER


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_read(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """One DER element at ``pos``: (tag, content start, content end). Strict lengths."""
    if pos + 2 > end:
        raise FormatError("DER element is truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise FormatError("DER high tag numbers are not used in certificates")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise FormatError("DER length is indefinite or too long")
        if pos + count > end:
            raise FormatError("DER length is truncated")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise FormatError("DER length is not minimal")
        pos += count
    if pos + length > end:
        raise FormatError("DER element is longer than its container")
    return tag, pos, pos + length


def precert_tbs(precert_der: bytes) -> bytes:
    """The TBSCertificate of a precertificate, without its poison extension, as DER.

    Every other byte of the TBSCertificate is kept as it is; only the
    lengths around the removed extension change. When the poison was the only
    extension, an empty ``[3] SEQUENCE {}`` remains, exactly as cryptography's
    ``tbs_precertificate_bytes`` leaves it when the SCT list was the only one.

    Raises:
        FormatError: Not a DER certificate, or no (or more than one) poison extension.
    """
    tag, start, end = _der_read(precert_der, 0, len(precert_der))
    if tag != 0x30 or end != len(precert_der):
        raise FormatError("not a DER certificate")
    tag, tbs_start, tbs_end = _der_read(precert_der, start, end)
    if tag != 0x30:
        raise FormatError("certificate does not start with a TBSCertificate")
    # Walk the TBSCertificate's fields up to the [3] extensions (always last).
    pos = tbs_start
    fields: list[tuple[int, int, int, int]] = []  # (tag, element start, content start, end)
    while pos < tbs_end:
        tag, content, stop = _der_read(precert_der, pos, tbs_end)
        fields.append((tag, pos, content, stop))
        pos = stop
    if not fields or fields[-1][0] != 0xA3:
        raise FormatError("precertificate has no extensions")
    _, ext_elem, ext_content, ext_end = fields[-1]
    tag, seq_start, seq_end = _der_read(precert_der, ext_content, ext_end)
    if tag != 0x30 or seq_end != ext_end:
        raise FormatError("precertificate extensions are malformed")
    kept: list[bytes] = []
    poisons = 0
    pos = seq_start
    while pos < seq_end:
        tag, content, stop = _der_read(precert_der, pos, seq_end)
        if tag != 0x30:
            raise FormatError("precertificate extension is not a SEQUENCE")
        oid_tag, oid_start, oid_end = _der_read(precert_der, content, stop)
        if oid_tag != 0x06:
            raise FormatError("precertificate extension does not start with an OID")
        if precert_der[oid_start:oid_end] == _POISON_OID_CONTENT:
            poisons += 1
        else:
            kept.append(precert_der[pos:stop])
        pos = stop
    if poisons != 1:
        raise FormatError(f"precertificate carries {poisons} poison extensions, not exactly one")
    extensions = _der_tlv(0xA3, _der_tlv(0x30, b"".join(kept)))
    body = precert_der[tbs_start:ext_elem] + extensions
    return _der_tlv(0x30, body)


#: The DER contents of the poison OID 1.3.6.1.4.1.11129.2.4.3.
_POISON_OID_CONTENT: Final = bytes.fromhex("2b06010401d679020403")
