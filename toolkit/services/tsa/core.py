"""The RFC 3161 timestamp authority core: DER TimeStampReq in, DER TimeStampResp out.

:class:`TimestampAuthority` is pure apart from its :class:`~toolkit.signing.Signer`:
the time comes in as a parameter and nothing is stored. It answers every
input with a DER ``TimeStampResp``:

* a well-formed request gets status *granted* and a CMS ``SignedData`` token
  whose ``id-ct-TSTInfo`` content carries the policy, the request's message
  imprint (copied byte for byte), a random 126-bit serial number, ``genTime``
  (``now`` in whole seconds, UTC), the accuracy, the request's nonce and the
  TSA's name; the SignerInfo names the TSA certificate by issuer and serial
  and signs the attributes contentType, messageDigest and
  signingCertificateV2 (ESSCertIDv2: SHA-256 of the certificate and its
  issuerSerial). The TSA certificate (and any intermediates) are embedded
  only when the request sets ``certReq``;
* anything else gets status *rejection* with one PKIFailureInfo bit and a
  statusString, as OpenSSL's TSA assigns them: undecodable or oversized input
  and wrong imprint lengths are ``badDataFormat``, a version other than 1 is
  ``badRequest``, an imprint hash other than SHA-256/384/512 (or with
  parameters other than NULL) is ``badAlg``, a foreign ``reqPolicy`` is
  ``unacceptedPolicy`` and any request extension ``unacceptedExtension``;
* a signer failure, or a ``now`` outside the chain's validity, gets
  ``systemFailure``.

Why hand-built DER: the service must sign over a thousand timestamps a second
on a small machine, and asn1crypto spends far more time building and encoding
a token than the signature costs. So everything constant -- the encoded
certificates, the signer identifier, algorithm identifiers, the contentType
and ESSCertIDv2 attributes, the TSA name -- is encoded once with asn1crypto at
construction, and a response is a handful of byte concatenations around the
per-request parts (imprint, serial, genTime, nonce, digest, signature). The
request is read with a small strict DER reader (shortest-form definite
lengths, low tag numbers, minimal INTEGERs and OIDs, no trailing bytes).

Construction checks that the chain's leaf holds the signer's key and carries
a critical extendedKeyUsage of exactly timeStamping, that the chain verifies
as airseal's verifier will check it, and issues one self-test token that the
verifier must accept.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from toolkit._der import integer_content as _integer_content
from toolkit._der import length as _length
from toolkit._der import oid_content as _oid_content
from toolkit._der import tlv as _tlv
from toolkit.errors import FormatError, UsageError
from toolkit.signing import Scheme, Signer, spki_der

__all__ = [
    "DEFAULT_POLICY",
    "MAX_NONCE_OCTETS",
    "MAX_REQUEST_BYTES",
    "FailureInfo",
    "RequestRejectedError",
    "TimestampAuthority",
    "TimestampRequest",
    "parse_request",
    "rejection",
]

#: The Sigstore TSA policy OID (what sigstore's timestamp-authority uses).
DEFAULT_POLICY: Final = "1.3.6.1.4.1.57264.2"
#: Longest TimeStampReq accepted. A real one is under 120 bytes (SHA-512
#: imprint, policy, 64-bit nonce, certReq); the cap bounds parsing work.
MAX_REQUEST_BYTES: Final = 4096
#: Longest nonce echoed (airseal's verifier reads INTEGERs of up to 64 octets).
MAX_NONCE_OCTETS: Final = 64

_log = logging.getLogger("airseal.tsa")


class FailureInfo(enum.IntEnum):
    """PKIFailureInfo bits (RFC 3161 section 2.4.2)."""

    BAD_ALG = 0
    BAD_REQUEST = 2
    BAD_DATA_FORMAT = 5
    TIME_NOT_AVAILABLE = 14
    UNACCEPTED_POLICY = 15
    UNACCEPTED_EXTENSION = 16
    ADD_INFO_NOT_AVAILABLE = 17
    SYSTEM_FAILURE = 25


#: PKIStatus values.
GRANTED: Final = 0
REJECTION: Final = 2


class RequestRejectedError(FormatError):
    """A TimeStampReq the TSA refuses, with the PKIFailureInfo bit that says why.

    Args:
        failure: The failure bit.
        detail: The statusString (never longer than a line; quotes no input
            beyond numbers and OIDs).
    """

    def __init__(self, failure: FailureInfo, detail: str) -> None:
        super().__init__(detail, path="TimeStampReq")
        self.failure = failure
        self.detail = detail


# --------------------------------------------------------------------------- DER helpers


@functools.lru_cache(maxsize=16)
def _policy_content(policy: str) -> bytes:
    """The TSA policy's OID content octets (encoded once per policy)."""
    return _oid_content(policy)


def _dotted(content: bytes) -> str:
    """The dotted form of (already validated) OID content octets."""
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _oid(dotted: str) -> bytes:
    """A DER OBJECT IDENTIFIER element (module constants)."""
    return _tlv(0x06, _oid_content(dotted))


_OID_SIGNED_DATA: Final = _oid("1.2.840.113549.1.7.2")
_OID_TST_INFO: Final = _oid("1.2.840.113549.1.9.16.1.4")
_NULL: Final = b"\x05\x00"

# Imprint hashes: OID content octets -> (name, digest size).
_IMPRINT_HASHES: Final = {
    _oid_content("2.16.840.1.101.3.4.2.1"): ("sha256", 32),
    _oid_content("2.16.840.1.101.3.4.2.2"): ("sha384", 48),
    _oid_content("2.16.840.1.101.3.4.2.3"): ("sha512", 64),
}
_HASH_OID: Final = {
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
_HASH_NEW: Final[dict[str, Callable[[bytes], Any]]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

# --------------------------------------------------------------------------- request


@dataclass(frozen=True)
class TimestampRequest:
    """A parsed, accepted TimeStampReq.

    Attributes:
        hash_algorithm: ``sha256``, ``sha384`` or ``sha512``.
        hashed_message: The imprint's digest.
        imprint_der: The request's ``messageImprint`` element, copied into the
            TSTInfo byte for byte (RFC 3161 requires the same imprint).
        policy: The requested policy (dotted), or None.
        nonce: The nonce, or None.
        nonce_der: The nonce's INTEGER element (empty without a nonce).
        cert_req: Whether the client asked for the TSA certificate.
    """

    hash_algorithm: str
    hashed_message: bytes
    imprint_der: bytes
    policy: str | None
    nonce: int | None
    nonce_der: bytes
    cert_req: bool


def _malformed(detail: str) -> RequestRejectedError:
    return RequestRejectedError(FailureInfo.BAD_DATA_FORMAT, f"malformed TimeStampReq: {detail}")


def _read(d: bytes, pos: int, end: int, what: str) -> tuple[int, int, int]:
    """One DER element at ``pos`` inside ``d[:end]``: (tag, content start, content end)."""
    if end - pos < 2:
        raise _malformed(f"{what} is truncated")
    tag = d[pos]
    if tag & 0x1F == 0x1F:
        raise _malformed(f"{what} uses a high tag number")
    n = d[pos + 1]
    pos += 2
    if n >= 0x80:
        count = n & 0x7F
        if count == 0:
            raise _malformed(f"{what} has an indefinite length (BER, not DER)")
        if count > 2:  # the request cap is far below 64 KiB
            raise _malformed(f"{what} length is too large")
        if end - pos < count:
            raise _malformed(f"{what} is truncated")
        n = int.from_bytes(d[pos : pos + count], "big")
        if n < 0x80 or d[pos] == 0:
            raise _malformed(f"{what} length is not minimally encoded")
        pos += count
    if n > end - pos:
        raise _malformed(f"{what} is truncated")
    return tag, pos, pos + n


def _expect(d: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    found, start, stop = _read(d, pos, end, what)
    if found != tag:
        raise _malformed(f"{what}: expected tag 0x{tag:02x}, found 0x{found:02x}")
    return start, stop


def _check_integer(d: bytes, start: int, stop: int, what: str) -> None:
    if start == stop:
        raise _malformed(f"{what} is an empty INTEGER")
    if stop - start > 1:
        first, second = d[start], d[start + 1]
        if (first == 0 and second < 0x80) or (first == 0xFF and second >= 0x80):
            raise _malformed(f"{what} is not a minimally encoded INTEGER")


def _check_oid(content: bytes, what: str) -> None:
    if not content or content[-1] & 0x80 or len(content) > 64:
        raise _malformed(f"{what} is not a valid OBJECT IDENTIFIER")
    fresh = True
    for byte in content:
        if fresh and byte == 0x80:
            raise _malformed(f"{what} is not a minimally encoded OBJECT IDENTIFIER")
        fresh = byte < 0x80


def parse_request(der: bytes, *, policy: str = DEFAULT_POLICY) -> TimestampRequest:
    """Parse and check a DER TimeStampReq (RFC 3161 section 2.4.1).

    Args:
        der: The request bytes.
        policy: The TSA's policy: a ``reqPolicy``, if present, must be this.

    Returns:
        The accepted request.

    Raises:
        RequestRejectedError: With the PKIFailureInfo bit for the first problem
            (structure first, then version, algorithm, digest size, policy,
            extensions).
    """
    d = bytes(der)
    end = len(d)
    if end == 0:
        raise _malformed("the request is empty")
    if end > MAX_REQUEST_BYTES:
        raise RequestRejectedError(
            FailureInfo.BAD_DATA_FORMAT,
            f"TimeStampReq is {end} bytes, more than the {MAX_REQUEST_BYTES} accepted",
        )
    start, stop = _expect(d, 0, end, 0x30, "TimeStampReq")
    if stop != end:
        raise _malformed("unexpected bytes after the TimeStampReq")
    # version INTEGER
    at, pos = _expect(d, start, stop, 0x02, "version")
    _check_integer(d, at, pos, "version")
    version = int.from_bytes(d[at:pos], "big", signed=True) if pos - at <= 8 else -1
    # messageImprint SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
    imprint_start = pos
    at, imprint_end = _expect(d, pos, stop, 0x30, "messageImprint")
    alg_start, alg_end = _expect(d, at, imprint_end, 0x30, "hashAlgorithm")
    oid_start, oid_end = _expect(d, alg_start, alg_end, 0x06, "hashAlgorithm OID")
    hash_oid = d[oid_start:oid_end]
    _check_oid(hash_oid, "hashAlgorithm OID")
    params_ok = True
    if oid_end != alg_end:
        _, _, params_end = _read(d, oid_end, alg_end, "hashAlgorithm parameters")
        if params_end != alg_end:
            raise _malformed("unexpected bytes in hashAlgorithm")
        params_ok = d[oid_end:alg_end] == _NULL
    hashed_start, hashed_end = _expect(d, alg_end, imprint_end, 0x04, "hashedMessage")
    if hashed_end != imprint_end:
        raise _malformed("unexpected bytes in messageImprint")
    pos = imprint_end
    # reqPolicy OID OPTIONAL, nonce INTEGER OPTIONAL, certReq BOOLEAN DEFAULT FALSE,
    # extensions [0] IMPLICIT Extensions OPTIONAL -- in this order.
    req_policy: bytes | None = None
    nonce_der = b""
    cert_req = False
    extensions = False
    if pos < stop and d[pos] == 0x06:
        at, nxt = _expect(d, pos, stop, 0x06, "reqPolicy")
        req_policy = d[at:nxt]
        _check_oid(req_policy, "reqPolicy")
        pos = nxt
    if pos < stop and d[pos] == 0x02:
        at, nxt = _expect(d, pos, stop, 0x02, "nonce")
        _check_integer(d, at, nxt, "nonce")
        if nxt - at > MAX_NONCE_OCTETS:
            raise RequestRejectedError(
                FailureInfo.BAD_DATA_FORMAT,
                f"nonce is {nxt - at} octets, more than the {MAX_NONCE_OCTETS} accepted",
            )
        nonce_der = d[pos:nxt]
        pos = nxt
    if pos < stop and d[pos] == 0x01:
        at, nxt = _expect(d, pos, stop, 0x01, "certReq")
        if nxt - at != 1 or d[at] not in (0x00, 0xFF):
            raise _malformed("certReq is not a DER BOOLEAN")
        # An explicit FALSE is BER for the DEFAULT; it means the same, so
        # it is accepted rather than failing a client over an encoding nit.
        cert_req = d[at] == 0xFF
        pos = nxt
    if pos < stop and d[pos] == 0xA0:
        _, _, pos = _read(d, pos, stop, "extensions")
        extensions = True
    if pos != stop:
        raise _malformed(f"unexpected field with tag 0x{d[pos]:02x}")

    if version != 1:
        shown = str(version) if version >= 0 else "(out of range)"
        raise RequestRejectedError(
            FailureInfo.BAD_REQUEST, f"unsupported TimeStampReq version {shown}; only 1 is"
        )
    known = _IMPRINT_HASHES.get(hash_oid)
    if known is None:
        raise RequestRejectedError(
            FailureInfo.BAD_ALG,
            f"message imprint hash {_dotted(hash_oid)} is not supported "
            "(use SHA-256, SHA-384 or SHA-512)",
        )
    if not params_ok:
        raise RequestRejectedError(
            FailureInfo.BAD_ALG, "message imprint hash algorithm has parameters other than NULL"
        )
    name, size = known
    if hashed_end - hashed_start != size:
        raise RequestRejectedError(
            FailureInfo.BAD_DATA_FORMAT,
            f"message imprint is {hashed_end - hashed_start} bytes, not a {name} digest",
        )
    if req_policy is not None and req_policy != _policy_content(policy):
        raise RequestRejectedError(
            FailureInfo.UNACCEPTED_POLICY,
            f"requested policy {_dotted(req_policy)} is not supported (this TSA: {policy})",
        )
    if extensions:
        raise RequestRejectedError(
            FailureInfo.UNACCEPTED_EXTENSION, "request extensions are not supported"
        )
    # At most 64 content octets: the nonce's header is always two octets.
    nonce = int.from_bytes(nonce_der[2:], "big", signed=True) if nonce_der else None
    return TimestampRequest(
        hash_algorithm=name,
        hashed_message=d[hashed_start:hashed_end],
        imprint_der=d[imprint_start:imprint_end],
        policy=_dotted(req_policy) if req_policy is not None else None,
        nonce=nonce,
        nonce_der=nonce_der,
        cert_req=cert_req,
    )


# --------------------------------------------------------------------------- responses


def _fail_info(bit: FailureInfo) -> bytes:
    """The PKIFailureInfo BIT STRING with one named bit set (DER: no trailing zero bits)."""
    octets = bytearray(bit // 8 + 1)
    octets[bit // 8] = 0x80 >> (bit % 8)
    return _tlv(0x03, bytes((7 - bit % 8,)) + bytes(octets))


def rejection(failure: FailureInfo, text: str) -> bytes:
    """A DER TimeStampResp with status rejection, one statusString and ``failure``."""
    text = " ".join(text.split())[:200] or "rejected"
    status = _tlv(
        0x30,
        b"\x02\x01\x02" + _tlv(0x30, _tlv(0x0C, text.encode("utf-8"))) + _fail_info(failure),
    )
    return _tlv(0x30, status)


_GRANTED_STATUS: Final = b"\x30\x03\x02\x01\x00"


def _hash_algorithm_id(name: str) -> bytes:
    # RFC 5754: SHA-2 AlgorithmIdentifiers are generated with absent parameters.
    return _tlv(0x30, _oid(_HASH_OID[name]))


def _signature_algorithm(scheme: Scheme) -> tuple[str, bytes]:
    """(digest algorithm name, DER signatureAlgorithm) for a signing scheme."""
    if scheme is Scheme.ECDSA_P256_SHA256:
        return "sha256", _tlv(0x30, _oid("1.2.840.10045.4.3.2"))
    if scheme is Scheme.ECDSA_P384_SHA384:
        return "sha384", _tlv(0x30, _oid("1.2.840.10045.4.3.3"))
    if scheme is Scheme.ED25519:
        # RFC 8419: with signed attributes, Ed25519 SignerInfos digest with SHA-512.
        return "sha512", _tlv(0x30, _oid("1.3.101.112"))
    if scheme.pss:
        from asn1crypto import algos

        pss = algos.SignedDigestAlgorithm(
            {
                "algorithm": "rsassa_pss",
                "parameters": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "mask_gen_algorithm": {
                        "algorithm": "mgf1",
                        "parameters": {"algorithm": "sha256"},
                    },
                    "salt_length": 32,
                    "trailer_field": "trailer_field_bc",
                },
            }
        )
        return "sha256", bytes(pss.dump())
    if scheme in (Scheme.RSA_PKCS1V15_3072_SHA256, Scheme.RSA_PKCS1V15_4096_SHA256):
        # RFC 4055: sha256WithRSAEncryption carries NULL parameters.
        return "sha256", _tlv(0x30, _oid("1.2.840.113549.1.1.11") + _NULL)
    raise UsageError(f"the TSA cannot sign with scheme {scheme.value}")  # pragma: no cover


def _check_leaf(leaf: x509.Certificate) -> None:
    """The TSA certificate profile of RFC 3161 section 2.3 (as OpenSSL enforces it)."""
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise UsageError("the TSA certificate has no extendedKeyUsage extension") from None
    except ValueError as exc:
        raise UsageError(f"the TSA certificate's extensions are malformed: {exc}") from None
    if not eku.critical:
        raise UsageError("the TSA certificate's extendedKeyUsage is not critical")
    if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise UsageError("the TSA certificate's extendedKeyUsage is not exactly timeStamping")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    others = (
        usage.key_encipherment,
        usage.data_encipherment,
        usage.key_agreement,
        usage.key_cert_sign,
        usage.crl_sign,
    )
    if not usage.digital_signature or any(others):
        raise UsageError("the TSA certificate's keyUsage must be digitalSignature only")


class TimestampAuthority:
    """An RFC 3161 TSA over one key and its certificate chain.

    Args:
        signer: The TSA key (ECDSA P-256 for the ceremony's key; P-384 and
            RSA PKCS#1 v1.5 work everywhere; RSA-PSS and Ed25519 tokens verify
            in airseal's verifier but not in OpenSSL-based ones, so a warning
            is logged).
        chain: The TSA certificate first, then any intermediates, the root
            last (at least the TSA certificate and the root).
        policy: The TSA policy OID put in every TSTInfo.
        accuracy_ms: The TSTInfo accuracy in milliseconds (0 leaves it out).
        embed_chain: With ``certReq``, embed the intermediates too (the TSA
            certificate is always embedded then; the root never is).
        self_test: Issue one token at construction and verify it with
            airseal's verifier (one signature).

    Raises:
        UsageError: The chain does not fit the key, lacks the TSA certificate
            profile, does not verify, or the policy or accuracy is invalid.
    """

    def __init__(
        self,
        signer: Signer,
        chain: Sequence[x509.Certificate],
        *,
        policy: str = DEFAULT_POLICY,
        accuracy_ms: int = 1000,
        embed_chain: bool = True,
        self_test: bool = True,
    ) -> None:
        from asn1crypto import (
            cms,
            tsp,  # noqa: F401 - registers id-ct-TSTInfo and ESS types with cms
        )
        from asn1crypto import x509 as a_x509

        chain = tuple(chain)
        if len(chain) < 2:
            raise UsageError(
                f"the TSA chain has {len(chain)} certificate(s); it needs the TSA "
                "certificate and the root (leaf first)"
            )
        try:
            policy_content = _oid_content(policy)
        except ValueError as exc:
            raise UsageError(f"TSA policy: {exc}") from None
        if not 0 <= accuracy_ms <= 3_600_000:
            raise UsageError(f"TSA accuracy must be 0 to 3600000 ms, not {accuracy_ms}")
        leaf = chain[0]
        if spki_der(signer.public_key) != leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise UsageError("the TSA certificate does not hold the TSA key's public key")
        _check_leaf(leaf)
        self._check_chain(chain)
        if signer.scheme.pss or signer.scheme is Scheme.ED25519:
            # OpenSSL's PKCS#7 layer -- under `openssl ts` and rfc3161-client,
            # hence sigstore-python -- verifies neither; airseal's verifier does.
            _log.warning(
                "TSA key scheme %s: openssl ts and sigstore-python cannot verify its "
                "tokens; use ECDSA or RSA PKCS#1 v1.5 for a TSA stock clients trust",
                signer.scheme.value,
            )

        self._signer = signer
        self._chain = chain
        self._policy = policy
        self._policy_content = policy_content
        self._accuracy_ms = accuracy_ms
        self._not_before = max(c.not_valid_before_utc for c in chain)
        self._not_after = min(c.not_valid_after_utc for c in chain)

        ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
        leaf_a = a_x509.Certificate.load(ders[0])
        tbs = leaf_a["tbs_certificate"]
        issuer_der = bytes(tbs["issuer"].dump())
        serial_der = bytes(tbs["serial_number"].dump())
        subject_der = bytes(tbs["subject"].dump())

        # TSTInfo parts that never change.
        self._tst_head = b"\x02\x01\x01" + _oid(policy)
        accuracy = b""
        if accuracy_ms:
            seconds, millis = divmod(accuracy_ms, 1000)
            if seconds:
                accuracy += _tlv(0x02, _integer_content(seconds))
            if millis:
                accuracy += _tlv(0x80, _integer_content(millis))
            accuracy = _tlv(0x30, accuracy)
        self._accuracy = accuracy
        # tsa [0] EXPLICIT GeneralName: directoryName [4] EXPLICIT Name.
        self._tsa_name = _tlv(0xA0, _tlv(0xA4, subject_der))

        # SignerInfo parts.
        digest_name, signature_algorithm = _signature_algorithm(signer.scheme)
        self._digest = _HASH_NEW[digest_name]
        digest_id = _hash_algorithm_id(digest_name)
        digest_size = _HASH_NEW[digest_name](b"").digest_size
        content_type_attr = bytes(
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump()
        )
        ess_attr = bytes(
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [
                        {
                            "certs": [
                                {
                                    # hashAlgorithm left out: DER omits the sha256 DEFAULT.
                                    "cert_hash": hashlib.sha256(ders[0]).digest(),
                                    "issuer_serial": {
                                        "issuer": [
                                            a_x509.GeneralName(
                                                name="directory_name", value=tbs["issuer"]
                                            )
                                        ],
                                        "serial_number": tbs["serial_number"].native,
                                    },
                                }
                            ]
                        }
                    ],
                }
            ).dump()
        )
        placeholder = b"\x00" * digest_size
        md_attr = bytes(
            cms.CMSAttribute({"type": "message_digest", "values": [placeholder]}).dump()
        )
        # DER orders SET OF members by their encodings. The messageDigest
        # attribute differs from the others inside its OID, so its place is
        # the same whatever the digest: find it once, with a placeholder.
        ordered = sorted([content_type_attr, md_attr, ess_attr])
        attrs = b"".join(ordered)
        split = attrs.index(md_attr) + len(md_attr) - digest_size
        header = _length(len(attrs))
        self._attrs_head = b"\x31" + header + attrs[:split]
        self._attrs_tail = attrs[split + digest_size :]
        self._si_head = b"\x02\x01\x01" + _tlv(0x30, issuer_der + serial_der) + digest_id
        self._si_signature_algorithm = signature_algorithm

        # SignedData parts: version 3 (eContentType is not id-data).
        self._sd_head = b"\x02\x01\x03" + _tlv(0x31, digest_id)
        embedded = ders[:-1] if embed_chain else ders[:1]
        # certificates [0] IMPLICIT SET OF: DER orders the members too.
        self._certificates = _tlv(0xA0, b"".join(sorted(embedded)))

        self._pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        if self_test:
            self._self_test()

    @staticmethod
    def _check_chain(chain: tuple[x509.Certificate, ...]) -> None:
        """The chain must verify as airseal's verifier checks trusted-root TSAs."""
        from toolkit.verify._rfc3161 import TimestampAuthority as TrustedAuthority
        from toolkit.verify._rfc3161 import TimestampVerifier

        start = max(c.not_valid_before_utc for c in chain)
        verifier = TimestampVerifier([TrustedAuthority(chain, start, None, "tsa")])
        for problem in verifier.problems.values():
            raise UsageError(f"the TSA chain is not usable: {problem}")

    def _self_test(self) -> None:
        """Issue one token and have airseal's verifier accept it."""
        from toolkit.errors import Error
        from toolkit.verify._rfc3161 import TimestampAuthority as TrustedAuthority
        from toolkit.verify._rfc3161 import (
            TimestampVerifier,
            parse_timestamp_response,
        )

        message = b"airseal TSA self-test"
        request = _tlv(
            0x30,
            b"\x02\x01\x01"
            + _tlv(
                0x30, _hash_algorithm_id("sha256") + _tlv(0x04, hashlib.sha256(message).digest())
            )
            + b"\x02\x01\x2a\x01\x01\xff",
        )
        moment = self._not_before
        answer = self.respond(request, moment)
        verifier = TimestampVerifier([TrustedAuthority(self._chain, moment, None, "tsa")])
        try:
            token = parse_timestamp_response(answer)
            verifier.verify(token, message)
        except Error as exc:
            raise UsageError(f"the TSA's self-test token does not verify: {exc}") from None
        if token.nonce != 42:
            raise UsageError("the TSA's self-test token lost its nonce")

    # -- the service ------------------------------------------------------------

    @property
    def policy(self) -> str:
        """The TSA policy OID (dotted)."""
        return self._policy

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The chain, TSA certificate first."""
        return self._chain

    @property
    def accuracy_ms(self) -> int:
        """The accuracy put in every TSTInfo, in milliseconds."""
        return self._accuracy_ms

    def chain_pem(self) -> bytes:
        """The chain as concatenated PEM, TSA certificate first."""
        return self._pem

    def respond(self, request: bytes, now: datetime) -> bytes:
        """Answer one TimeStampReq with a DER TimeStampResp; never raises for bad input.

        Args:
            request: The DER TimeStampReq as received.
            now: The time to stamp (aware; kept to the millisecond).

        Returns:
            A granted response with a token, or a rejection with the
            PKIFailureInfo bit for the problem.

        Raises:
            UsageError: ``now`` is naive (the caller's bug, not the client's).
        """
        if now.tzinfo is None:
            raise UsageError("TimestampAuthority.respond needs an aware datetime")
        try:
            parsed = parse_request(request, policy=self._policy)
        except RequestRejectedError as exc:
            return rejection(exc.failure, exc.detail)
        except Exception as exc:  # pragma: no cover - the reader raises only RequestRejectedError
            _log.error("unexpected error parsing a request: %s", type(exc).__name__)
            return rejection(FailureInfo.BAD_DATA_FORMAT, "malformed TimeStampReq")
        if not self._not_before <= now <= self._not_after:
            return rejection(
                FailureInfo.SYSTEM_FAILURE, "the TSA certificate is not valid at the current time"
            )
        try:
            return self._grant(parsed, now)
        except Exception as exc:
            # The signer's messages name tokens and keys, never PINs; still,
            # only the type goes to the log.
            _log.error("signing a timestamp failed: %s", type(exc).__name__)
            return rejection(FailureInfo.SYSTEM_FAILURE, "the TSA could not sign the timestamp")

    def _grant(self, request: TimestampRequest, now: datetime) -> bytes:
        # Whole seconds, as Sigstore's timestamp authority writes them: DER
        # drops a fraction's trailing zeros, and sigstore-js 5 reads only no
        # fraction or exactly three digits, so "…45.78Z" would be refused.
        # The accuracy field covers the truncation.
        gen_time = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        serial = bytearray(os.urandom(16))
        # 126 random bits in exactly 16 octets: positive and minimally encoded.
        serial[0] = (serial[0] & 0x3F) | 0x40
        tst_info = _tlv(
            0x30,
            self._tst_head
            + request.imprint_der
            + b"\x02\x10"
            + serial
            + _tlv(0x18, gen_time.encode("ascii") + b"Z")
            + self._accuracy
            + request.nonce_der
            + self._tsa_name,
        )
        signed = self._attrs_head + self._digest(tst_info).digest() + self._attrs_tail
        signature = self._signer.sign(signed)
        signer_info = _tlv(
            0x30,
            self._si_head
            + b"\xa0"
            + signed[1:]
            + self._si_signature_algorithm
            + _tlv(0x04, signature),
        )
        encap = _tlv(0x30, _OID_TST_INFO + _tlv(0xA0, _tlv(0x04, tst_info)))
        signed_data = _tlv(
            0x30,
            self._sd_head
            + encap
            + (self._certificates if request.cert_req else b"")
            + _tlv(0x31, signer_info),
        )
        token = _tlv(0x30, _OID_SIGNED_DATA + _tlv(0xA0, signed_data))
        return _tlv(0x30, _GRANTED_STATUS + token)
