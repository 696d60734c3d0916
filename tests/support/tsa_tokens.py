"""Throwaway RFC 3161 timestamp authorities and tokens, with knobs to break them.

:func:`make_chain` builds a TSA certificate chain (root [+ intermediate] + TSA
leaf) with ``cryptography``; :func:`issue_token` issues an RFC 3161
``TimeStampResp`` (DER) over a message with ``asn1crypto``. Every keyword
argument of both defaults to a well-formed, verifiable result, and each one
breaks exactly one thing, so a negative test names the defect it exercises.

:func:`load_authorities` and :func:`load_bundle_timestamps` read the TSAs and
timestamps of the shared Sigstore vectors (read at run time, never copied).

:class:`Der` is a tiny DER tree (parse, edit, re-encode) for tests that need a
token whose encoding, not its content, is wrong: non-minimal or indefinite
lengths, trailing bytes inside a structure, and so on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from toolkit.encoding import b64decode, parse_rfc3339
from toolkit.verify._rfc3161 import TimestampAuthority

KeyType = Literal["p256", "p384", "rsa", "ed25519"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

UTC = dt.UTC
#: Default validity of every generated certificate.
NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = dt.datetime(2034, 1, 1, tzinfo=UTC)
#: A genTime inside the default validity.
GEN_TIME = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
POLICY = "1.3.6.1.4.1.57264.2"
OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,  # only to build tokens that must be rejected
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


# --------------------------------------------------------------------------- vector readers


def load_authorities(trusted_root: Path) -> list[TimestampAuthority]:
    """The ``timestampAuthorities`` of a trusted_root.json (parsed directly)."""
    root = json.loads(trusted_root.read_text())
    out = []
    for entry in root["timestampAuthorities"]:
        certs = tuple(
            x509.load_der_x509_certificate(b64decode(c["rawBytes"]))
            for c in entry["certChain"]["certificates"]
        )
        valid_for = entry["validFor"]
        out.append(
            TimestampAuthority(
                certificates=certs,
                valid_from=parse_rfc3339(valid_for["start"]),
                valid_until=parse_rfc3339(valid_for["end"]) if "end" in valid_for else None,
                name=entry.get("subject", {}).get("commonName", ""),
            )
        )
    return out


def load_bundle_timestamps(bundle: Path) -> tuple[list[bytes], bytes]:
    """(signedTimestamp DERs, the signature bytes they cover) of a bundle."""
    doc = json.loads(bundle.read_text())
    if "messageSignature" in doc:
        message = b64decode(doc["messageSignature"]["signature"])
    else:
        message = b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"])
    stamps = doc["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    return [b64decode(t["signedTimestamp"]) for t in stamps], message


# --------------------------------------------------------------------------- generation


def new_key(key_type: KeyType) -> PrivateKey:
    """Generate a private key of the given type."""
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def _cert_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airseal-test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ca_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, _cert_hash(issuer_key))


@dataclass(frozen=True)
class TsaChain:
    """A generated TSA: keys and certificates, leaf first."""

    leaf_key: PrivateKey
    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The chain as a trusted root lists it: leaf, intermediates, root."""
        return (self.leaf, *self.intermediates, self.root)

    def authority(
        self,
        valid_from: dt.datetime = NOT_BEFORE,
        valid_until: dt.datetime | None = None,
        name: str = "test-tsa",
    ) -> TimestampAuthority:
        """This chain as a trusted-root timestamp authority."""
        return TimestampAuthority(
            certificates=self.certificates,
            valid_from=valid_from,
            valid_until=valid_until,
            name=name,
        )


def make_chain(
    key_type: KeyType = "p256",
    *,
    root_key_type: KeyType | None = None,
    intermediate: bool = False,
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.TIME_STAMPING,),
    eku_critical: bool = True,
    leaf_not_before: dt.datetime = NOT_BEFORE,
    leaf_not_after: dt.datetime = NOT_AFTER,
    rogue_issuer: bool = False,
) -> TsaChain:
    """Build a TSA chain.

    Args:
        key_type: The TSA (leaf) key type.
        root_key_type: The CA key type (defaults to ``key_type``).
        intermediate: Put an intermediate CA between the root and the leaf.
        eku: The leaf's extendedKeyUsage purposes; None leaves the extension out.
        eku_critical: Whether the leaf's EKU extension is critical.
        leaf_not_before: Leaf notBefore.
        leaf_not_after: Leaf notAfter.
        rogue_issuer: Sign the leaf with a stranger's key that uses the root's
            name, so the listed root does not actually vouch for the leaf.
    """
    ca_type = root_key_type or key_type
    root_key = new_key(ca_type)
    root_name = _name("airseal test TSA root")
    root = _ca_cert(root_name, root_key, root_name, root_key, NOT_BEFORE, NOT_AFTER)
    issuer_key, issuer_name = root_key, root_name
    intermediates: tuple[x509.Certificate, ...] = ()
    if intermediate:
        inter_key = new_key(ca_type)
        inter_name = _name("airseal test TSA intermediate")
        inter = _ca_cert(inter_name, inter_key, root_name, root_key, NOT_BEFORE, NOT_AFTER)
        intermediates = (inter,)
        issuer_key, issuer_name = inter_key, inter_name
    if rogue_issuer:
        issuer_key = new_key(ca_type)

    leaf_key = new_key(key_type)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("airseal test TSA"))
        .issuer_name(issuer_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf_not_before)
        .not_valid_after(leaf_not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=eku_critical)
    leaf = builder.sign(issuer_key, _cert_hash(issuer_key))
    return TsaChain(leaf_key=leaf_key, leaf=leaf, intermediates=intermediates, root=root)


class _StatusOnlyResp(core.Sequence):  # type: ignore[misc]
    """A TimeStampResp without a token (asn1crypto marks the token mandatory)."""

    _fields = [("status", tsp.PKIStatusInfo)]  # noqa: RUF012 - asn1crypto spec


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _sig_algorithm(key: PrivateKey, digest: str, *, plain_oid: bool, pss: bool) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"algorithm": "1.2.840.10045.4" if plain_oid else f"{digest}_ecdsa"}
    if isinstance(key, rsa.RSAPrivateKey):
        if pss:
            return {
                "algorithm": "rsassa_pss",
                "parameters": {
                    "hash_algorithm": {"algorithm": digest},
                    "mask_gen_algorithm": {
                        "algorithm": "mgf1",
                        "parameters": {"algorithm": digest},
                    },
                    "salt_length": _HASHES[digest].digest_size,
                    "trailer_field": "trailer_field_bc",
                },
            }
        return {"algorithm": "rsassa_pkcs1v15" if plain_oid else f"{digest}_rsa"}
    return {"algorithm": "ed25519"}


def _sign(key: PrivateKey, data: bytes, digest: str, *, pss: bool) -> bytes:
    algorithm = _HASHES[digest]()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        if pss:
            pad: padding.AsymmetricPadding = padding.PSS(
                mgf=padding.MGF1(_HASHES[digest]()), salt_length=algorithm.digest_size
            )
        else:
            pad = padding.PKCS1v15()
        return key.sign(data, pad, algorithm)
    return key.sign(data)


def issue_token(
    chain: TsaChain,
    message: bytes,
    *,
    gen_time: dt.datetime = GEN_TIME,
    status: int = 0,
    imprint_hash: str = "sha256",
    wrong_imprint: bool = False,
    gen_time_der: bytes | None = None,
    digest: str = "sha256",
    wrong_message_digest: bool = False,
    content_type_attr: str = OID_TST_INFO,
    ess: Literal["v2", "v1", "both", "none"] = "v2",
    ess_hash: str | None = "sha256",
    ess_wrong_cert: bool = False,
    ess_issuer_serial: bool = True,
    ess_wrong_serial: bool = False,
    signer_id: Literal["issuer_serial", "ski"] = "issuer_serial",
    wrong_signer_serial: bool = False,
    signer_key: PrivateKey | None = None,
    tamper_signature: bool = False,
    plain_sig_oid: bool = False,
    pss: bool = False,
    embed_certs: bool = True,
    nonce: int | None = None,
    tst_version: int = 1,
    two_signer_infos: bool = False,
) -> bytes:
    """Issue an RFC 3161 TimeStampResp (DER) over ``message``.

    Args:
        chain: The issuing TSA.
        message: The timestamped bytes (hashed into the message imprint).
        gen_time: TSTInfo genTime.
        status: PKIStatus; anything but 0/1 yields a token-less rejection response.
        imprint_hash: Message imprint hash algorithm.
        wrong_imprint: Hash a different message into the imprint.
        gen_time_der: Raw GeneralizedTime content octets to use instead of
            ``gen_time`` (e.g. ``b"20250601120000.50Z"``, which is not DER).
        digest: SignerInfo digestAlgorithm (messageDigest and signature hash).
        wrong_message_digest: Put a wrong messageDigest signed attribute.
        content_type_attr: The contentType signed attribute (dotted OID).
        ess: Which ESS signing-certificate attribute(s) to include.
        ess_hash: ESSCertIDv2 hash algorithm; None omits it (DEFAULT sha256).
        ess_wrong_cert: Hash the root certificate instead of the leaf.
        ess_issuer_serial: Include issuerSerial in the ESSCertID(v2).
        ess_wrong_serial: Put a wrong serial number in issuerSerial.
        signer_id: How the SignerInfo names its certificate.
        wrong_signer_serial: Name a different serial in issuerAndSerialNumber.
        signer_key: Sign with this key instead of the leaf's.
        tamper_signature: Sign different bytes than the signed attributes.
        plain_sig_oid: Use the hash-less signature OID (``ecdsa`` / ``rsaEncryption``).
        pss: Use RSASSA-PSS (RSA chains only).
        embed_certs: Embed the chain's certificates in the SignedData.
        nonce: TSTInfo nonce (random when None).
        tst_version: TSTInfo version.
        two_signer_infos: Repeat the SignerInfo (only one is allowed).
    """
    if status not in (0, 1):
        rejected: bytes = _StatusOnlyResp(
            {
                "status": {
                    "status": status,
                    "status_string": ["request refused by test TSA"],
                    "fail_info": {"bad_request"},
                }
            }
        ).dump()
        return rejected

    imprinted = message + b"!" if wrong_imprint else message
    tst_info = tsp.TSTInfo(
        {
            "version": tst_version,
            "policy": POLICY,
            "message_imprint": {
                "hash_algorithm": {"algorithm": imprint_hash},
                "hashed_message": hashlib.new(imprint_hash, imprinted).digest(),
            },
            "serial_number": secrets.randbits(64),
            "gen_time": gen_time,
            "accuracy": {"seconds": 1},
            "nonce": secrets.randbits(63) if nonce is None else nonce,
        }
    )
    if gen_time_der is not None:
        tst_info["gen_time"] = core.GeneralizedTime(contents=gen_time_der)
    tst_der = tst_info.dump()

    leaf_der = _der(chain.leaf)
    a_leaf = a_x509.Certificate.load(leaf_der)
    hashed_cert = _der(chain.root) if ess_wrong_cert else leaf_der
    issuer_serial = {
        "issuer": [a_x509.GeneralName(name="directory_name", value=a_leaf.issuer)],
        "serial_number": a_leaf.serial_number + (1 if ess_wrong_serial else 0),
    }
    attrs: list[dict[str, Any]] = [
        {"type": "content_type", "values": [content_type_attr]},
        {"type": "signing_time", "values": [cms.Time(name="utc_time", value=gen_time)]},
        {
            "type": "message_digest",
            "values": [
                hashlib.new(digest, tst_der + (b"!" if wrong_message_digest else b"")).digest()
            ],
        },
    ]
    if ess in ("v1", "both"):
        v1: dict[str, Any] = {"cert_hash": hashlib.sha1(hashed_cert).digest()}
        if ess_issuer_serial:
            v1["issuer_serial"] = issuer_serial
        attrs.append({"type": "signing_certificate", "values": [{"certs": [v1]}]})
    if ess in ("v2", "both"):
        v2: dict[str, Any] = {"cert_hash": hashlib.new(ess_hash or "sha256", hashed_cert).digest()}
        if ess_hash is not None:
            v2["hash_algorithm"] = {"algorithm": ess_hash}
        if ess_issuer_serial:
            v2["issuer_serial"] = issuer_serial
        attrs.append({"type": "signing_certificate_v2", "values": [{"certs": [v2]}]})
    signed_attrs = cms.CMSAttributes(attrs)
    to_sign = signed_attrs.dump()  # the SET OF encoding (tag 0x31) is what gets signed

    key = signer_key or chain.leaf_key
    signature = _sign(key, to_sign + (b"!" if tamper_signature else b""), digest, pss=pss)

    if signer_id == "ski":
        ski = chain.leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        sid = cms.SignerIdentifier(name="subject_key_identifier", value=ski.digest)
        version = "v3"
    else:
        sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={
                "issuer": a_leaf.issuer,
                "serial_number": a_leaf.serial_number + (1 if wrong_signer_serial else 0),
            },
        )
        version = "v1"
    signer_info = cms.SignerInfo(
        {
            "version": version,
            "sid": sid,
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": signed_attrs,
            "signature_algorithm": _sig_algorithm(
                chain.leaf_key, digest, plain_oid=plain_sig_oid, pss=pss
            ),
            "signature": signature,
        }
    )
    signed_data: dict[str, Any] = {
        "version": "v3",
        "digest_algorithms": [{"algorithm": digest}],
        "encap_content_info": {
            "content_type": "tst_info",
            "content": core.ParsableOctetString(tst_der),
        },
        "signer_infos": [signer_info, signer_info] if two_signer_infos else [signer_info],
    }
    if embed_certs:
        signed_data["certificates"] = [a_x509.Certificate.load(_der(c)) for c in chain.certificates]
    token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    granted = "granted" if status == 0 else "granted_with_mods"
    response: bytes = tsp.TimeStampResp(
        {"status": {"status": granted}, "time_stamp_token": token}
    ).dump()
    return response


# --------------------------------------------------------------------------- DER trees


@dataclass
class Der:
    """One DER element: a tag with either content octets or child elements.

    Parse with :meth:`parse`, edit in place, and :meth:`encode` again. The
    ``length_form`` knob re-encodes this element's length in a form DER forbids.
    """

    tag: int
    content: bytes = b""
    children: list[Der] | None = None
    length_form: Literal["der", "long", "padded", "indefinite"] = "der"

    @classmethod
    def parse(cls, data: bytes) -> Der:
        """Parse exactly one DER element (constructed ones recursively)."""
        node, end = cls._parse_at(data, 0)
        if end != len(data):
            raise ValueError("trailing bytes")
        return node

    @classmethod
    def _parse_at(cls, data: bytes, pos: int) -> tuple[Der, int]:
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        content = data[pos : pos + length]
        if not tag & 0x20:
            return cls(tag, content), pos + length
        children, at = [], 0
        while at < len(content):
            child, at = cls._parse_at(content, at)
            children.append(child)
        return cls(tag, children=children), pos + length

    def encode(self) -> bytes:
        """The element's encoding (DER unless ``length_form`` says otherwise)."""
        body = (
            self.content if self.children is None else b"".join(c.encode() for c in self.children)
        )
        size = len(body)
        if self.length_form == "indefinite":
            return bytes([self.tag, 0x80]) + body + b"\x00\x00"
        raw = size.to_bytes(max(1, (size.bit_length() + 7) // 8), "big")
        if self.length_form == "der":
            header = bytes([size]) if size < 0x80 else bytes([0x80 | len(raw)]) + raw
        elif self.length_form == "long" and size < 0x80:  # long form for a short length
            header = bytes([0x81, size])
        else:  # "padded" (or "long" for a long length): a leading zero length octet
            header = bytes([0x81 + len(raw), 0]) + raw
        return bytes([self.tag]) + header + body

    def at(self, *path: int) -> Der:
        """The descendant at ``path`` (child indices)."""
        node = self
        for index in path:
            assert node.children is not None
            node = node.children[index]
        return node

    def walk(self, path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], Der]]:
        """Every element with its path, this one first."""
        out = [(path, self)]
        for i, child in enumerate(self.children or ()):
            out.extend(child.walk((*path, i)))
        return out
