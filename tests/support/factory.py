"""A synthetic Sigstore instance in memory: CA, CT log, Rekor v1/v2 logs and a TSA.

:class:`FakeSigstore` holds every key of a small Sigstore deployment and signs
bundles the way the real services would, so tests can build valid bundles (and
break them one property at a time) without a network or fixtures on disk:

* a Fulcio-style CA: a P-384 self-signed root (no EKU) and a P-384 intermediate
  (keyCertSign + cRLSign, EKU codeSigning, pathlen 0) that issues 10-minute
  leaves with exactly one embedded SCT;
* a CT log (ECDSA P-256, log id = SHA-256 of the DER SPKI) signing RFC 6962 v1
  precertificate SCTs;
* a Rekor v1-style log (ECDSA P-256): hashedrekord 0.0.1 and dsse 0.0.1 bodies,
  integrated time, SET, inclusion proof and a checkpoint with origin
  ``"<host> - <tree id>"``;
* a Rekor v2-style log (Ed25519): hashedrekord 0.0.2 bodies (RFC 8785), inclusion
  proof and a C2SP checkpoint with origin = key name = host, no SET;
* an RFC 3161 TSA built with :mod:`tests.support.tsa_tokens`.

CA, CT and log keys are derived from a seed string, so one seed always yields
the same trusted root key ids; the TSA chain, ECDSA signatures and certificate
serials are random. Every time is an explicit argument (defaults around
:data:`DEFAULT_TIME`, 2025-06-01). Each log keeps its leaves in memory: a new
entry is appended after the previous ones and followed by a few filler leaves,
so inclusion proofs always have hashes on both sides.

Typical use::

    sigstore = FakeSigstore()
    signed = sigstore.sign_blob(b"hello", rekor="v2")
    Verifier(TrustedRoot.from_dict(signed.trusted_root)).verify(signed.json(), ...)

Bundles come back as proto3 JSON dicts (:attr:`SignedBundle.bundle`); tests edit
those dicts to tamper with a field after signing. Failures that need a different
*signer* (an unknown checkpoint key, an SET from another log, an untrusted CT
log, a rogue CA…) are made with the keyword arguments of :meth:`FakeSigstore.issue_leaf`,
:meth:`FakeSigstore.sign_blob`, :class:`LogTweaks`, or with a second instance
(``FakeSigstore(seed="rogue")``) whose keys nobody trusts.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support import tsa_tokens
from toolkit import merkle
from toolkit.encoding import b64encode, canonical_json
from toolkit.note import ECDSANoteSigner, Ed25519NoteSigner, NoteSigner, sign_note

__all__ = [
    "BUNDLE_V01",
    "BUNDLE_V02",
    "BUNDLE_V03",
    "BUNDLE_V03_ALT",
    "DEFAULT_EMAIL",
    "DEFAULT_ISSUER",
    "DEFAULT_TIME",
    "IN_TOTO_PAYLOAD_TYPE",
    "TRUSTED_ROOT_MEDIA_TYPE",
    "TRUST_START",
    "BodyHook",
    "CertificateAuthority",
    "FakeSigstore",
    "Leaf",
    "LogTweaks",
    "SignedBundle",
    "SyntheticLog",
    "in_toto_statement",
    "pae",
]

UTC = dt.UTC

BUNDLE_V01: Final = "application/vnd.dev.sigstore.bundle+json;version=0.1"
BUNDLE_V02: Final = "application/vnd.dev.sigstore.bundle+json;version=0.2"
BUNDLE_V03_ALT: Final = "application/vnd.dev.sigstore.bundle+json;version=0.3"
BUNDLE_V03: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
TRUSTED_ROOT_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_V1: Final = "https://in-toto.io/Statement/v1"

#: Default signing time; every generated certificate and key is valid then.
DEFAULT_TIME: Final = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
#: Start of every validity window in the trusted root.
TRUST_START: Final = dt.datetime(2024, 1, 1, tzinfo=UTC)
#: End of the CA certificates' validity (the trusted root windows stay open).
CA_NOT_AFTER: Final = dt.datetime(2035, 1, 1, tzinfo=UTC)
DEFAULT_EMAIL: Final = "signer@airseal.test"
DEFAULT_ISSUER: Final = "https://oidc.airseal.test"
LEAF_VALIDITY: Final = dt.timedelta(minutes=10)

OID_ISSUER_V1: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_SCT_LIST: Final = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=UTC)
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P384_ORDER: Final = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)

SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
#: Edits a log entry body (JSON dict) in place before it is logged.
BodyHook = Callable[[dict[str, Any]], None]


# --------------------------------------------------------------------------- small helpers


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def der_utf8string(text: str) -> bytes:
    """DER UTF8String of ``text`` (the encoding of Fulcio extensions .1.8 onwards)."""
    return _der(0x0C, text.encode("utf-8"))


def _spki(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _derive_ec(seed: str, label: str, curve: Literal["p256", "p384"]) -> ec.EllipticCurvePrivateKey:
    """A deterministic EC key from (seed, label): fixed key ids for a given seed."""
    if curve == "p256":
        digest = hashlib.sha256(f"{seed}/{label}".encode()).digest()
        return ec.derive_private_key(
            int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1()
        )
    digest = hashlib.sha384(f"{seed}/{label}".encode()).digest()
    return ec.derive_private_key(
        int.from_bytes(digest, "big") % (_P384_ORDER - 1) + 1, ec.SECP384R1()
    )


def _derive_ed25519(seed: str, label: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"{seed}/{label}".encode()).digest()
    )


def _millis(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airseal-test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def in_toto_statement(subjects: Mapping[str, bytes]) -> dict[str, Any]:
    """An in-toto v1 statement whose subjects are ``name -> artifact bytes`` (SHA-256)."""
    return {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [
            {"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}
            for name, data in subjects.items()
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://airseal.test/build/v1"}},
    }


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --------------------------------------------------------------------------- CA


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio-style CA: P-384 root and P-384 code-signing intermediate."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate

    @classmethod
    def create(
        cls,
        seed: str,
        *,
        not_before: dt.datetime = TRUST_START,
        not_after: dt.datetime = CA_NOT_AFTER,
    ) -> CertificateAuthority:
        """Build the root and the intermediate (keys derived from ``seed``)."""
        root_key = _derive_ec(seed, "ca-root", "p384")
        inter_key = _derive_ec(seed, "ca-intermediate", "p384")
        root_name = _name(f"airseal test CA root ({seed})")
        inter_name = _name(f"airseal test CA intermediate ({seed})")
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_key_usage(digital_signature=False, cert_sign=True), critical=True)
            .add_extension(root_ski, critical=False)
            .sign(root_key, hashes.SHA384())
        )
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(inter_name)
            .issuer_name(root_name)
            .public_key(inter_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(digital_signature=False, cert_sign=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                critical=False,
            )
            .sign(root_key, hashes.SHA384())
        )
        return cls(root_key, root, inter_key, intermediate)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Intermediate then root, as a trusted root lists them."""
        return (self.intermediate, self.root)


@dataclass(frozen=True)
class Leaf:
    """An issued Fulcio-style leaf and its ephemeral key.

    Attributes:
        key: The ephemeral P-256 signing key.
        cert: The final certificate (with the embedded SCT).
        precert_tbs: The TBS the SCT signs (the final TBS without the SCT extension).
        issuer_key_hash: SHA-256 of the issuing intermediate's SPKI (in the SCT).
    """

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    precert_tbs: bytes
    issuer_key_hash: bytes

    @property
    def der(self) -> bytes:
        """The certificate, DER."""
        return _cert_der(self.cert)

    @property
    def pem(self) -> bytes:
        """The certificate, PEM."""
        return _pem(self.cert)


def _sct_list(
    *,
    ct_key: ec.EllipticCurvePrivateKey,
    timestamp: dt.datetime,
    issuer_key_hash: bytes,
    tbs: bytes,
    tamper: bool,
) -> bytes:
    """A TLS-encoded SignedCertificateTimestampList holding one v1 precert SCT."""
    millis = _millis(timestamp)
    extensions = b""
    signed = b"".join(
        (
            struct.pack(">BBQH", 0, 0, millis, 1),  # v1, certificate_timestamp, precert_entry
            issuer_key_hash,
            len(tbs).to_bytes(3, "big"),
            tbs,
            struct.pack(">H", len(extensions)),
            extensions,
        )
    )
    signature = ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    if tamper:
        # Flip a bit inside the signature value (DER stays well formed).
        pos = len(signature) - 2
        signature = signature[:pos] + bytes([signature[pos] ^ 0x01]) + signature[pos + 1 :]
    log_id = hashlib.sha256(_spki(ct_key.public_key())).digest()
    sct = b"".join(
        (
            struct.pack(">B", 0),
            log_id,
            struct.pack(">QH", millis, len(extensions)),
            extensions,
            struct.pack(">BBH", 4, 3, len(signature)),  # sha256, ecdsa
            signature,
        )
    )
    item = struct.pack(">H", len(sct)) + sct
    return struct.pack(">H", len(item)) + item


# --------------------------------------------------------------------------- logs


@dataclass(frozen=True)
class LogTweaks:
    """Ways to make one log entry wrong while keeping every signature well formed.

    Attributes:
        set_key: Sign the SET (Rekor v1) with this key instead of the log's.
        checkpoint_key: Sign the checkpoint with this key instead of the log's.
        checkpoint_name: Key name on the checkpoint signature line (default: the log host).
        checkpoint_size: Tree size written in the checkpoint (default: the proof's).
        checkpoint_root: Root hash written in the checkpoint (default: the proof's).
        checkpoint_origin: Origin line of the checkpoint (default: the log's origin).
        trailing: Filler leaves appended after the entry (so it is not the last leaf).
    """

    set_key: SigningKey | None = None
    checkpoint_key: SigningKey | None = None
    checkpoint_name: str | None = None
    checkpoint_size: int | None = None
    checkpoint_root: bytes | None = None
    checkpoint_origin: str | None = None
    trailing: int = 5


@dataclass
class SyntheticLog:
    """One in-memory transparency log (Rekor v1 or v2 style) with its leaves.

    Attributes:
        version: ``"v1"`` (ECDSA P-256, SET, ``host - treeid`` origin) or ``"v2"`` (Ed25519).
        base_url: The log's base URL as the trusted root lists it.
        key: The log's private key.
        tree_id: The Rekor v1 tree id in the origin line.
        leaf_hashes: Every leaf hash so far, in log order.
    """

    version: Literal["v1", "v2"]
    base_url: str
    key: SigningKey
    tree_id: int = 0
    leaf_hashes: list[bytes] = field(default_factory=list)

    @property
    def host(self) -> str:
        """The host of the base URL: the checkpoint key name."""
        return self.base_url.split("://", 1)[-1].rstrip("/")

    @property
    def origin(self) -> str:
        """The checkpoint origin line."""
        if self.version == "v1":
            return f"{self.host} - {self.tree_id}"
        return self.host

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
        """The log's public key."""
        return self.key.public_key()

    @property
    def log_id(self) -> bytes:
        """The trusted-root log id: SHA-256(SPKI) (v1) or the Ed25519 note key id (v2)."""
        return self.note_signer().verifier.full_key_id

    @property
    def key_details(self) -> str:
        """``keyDetails`` of the log key in the trusted root."""
        return "PKIX_ECDSA_P256_SHA_256" if self.version == "v1" else "PKIX_ED25519"

    def note_signer(
        self, key: SigningKey | None = None, name: str | None = None
    ) -> ECDSANoteSigner | Ed25519NoteSigner:
        """A signed-note signer for this log (or an impostor with ``key``/``name``)."""
        key = key or self.key
        name = name or self.host
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return Ed25519NoteSigner(name, key)
        return ECDSANoteSigner(name, key)

    def fill(self, count: int) -> None:
        """Append ``count`` deterministic filler leaves."""
        start = len(self.leaf_hashes)
        for i in range(start, start + count):
            self.leaf_hashes.append(merkle.leaf_hash(f"{self.origin} filler {i}".encode()))

    def append(self, body: bytes, *, trailing: int) -> tuple[int, int]:
        """Append an entry body (then ``trailing`` fillers); return (index, tree size)."""
        index = len(self.leaf_hashes)
        self.leaf_hashes.append(merkle.leaf_hash(body))
        self.fill(trailing)
        return index, len(self.leaf_hashes)

    def prove(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """Root hash and inclusion proof of leaf ``index`` in the tree of ``size``."""
        source = merkle.ListHashSource(self.leaf_hashes[:size])
        return merkle.tree_root(size, source), merkle.inclusion_proof(index, size, source)

    def checkpoint(self, size: int, root: bytes, tweaks: LogTweaks) -> str:
        """A signed checkpoint note for (size, root), honouring the tweaks."""
        text = (
            f"{tweaks.checkpoint_origin or self.origin}\n"
            f"{size if tweaks.checkpoint_size is None else tweaks.checkpoint_size}\n"
            f"{b64encode(root if tweaks.checkpoint_root is None else tweaks.checkpoint_root)}\n"
        )
        signer: NoteSigner = self.note_signer(tweaks.checkpoint_key, tweaks.checkpoint_name)
        return sign_note(text, [signer]).to_text()

    def entry(
        self,
        body: bytes,
        *,
        kind: str,
        version: str,
        integrated_time: dt.datetime,
        tweaks: LogTweaks,
    ) -> dict[str, Any]:
        """Log ``body`` and return its ``TransparencyLogEntry`` (proto3 JSON)."""
        index, size = self.append(body, trailing=tweaks.trailing)
        root, proof = self.prove(index, size)
        entry: dict[str, Any] = {
            "logIndex": str(index),
            "logId": {"keyId": b64encode(self.log_id)},
            "kindVersion": {"kind": kind, "version": version},
        }
        if self.version == "v1":
            seconds = int(integrated_time.timestamp())
            entry["integratedTime"] = str(seconds)
            payload = canonical_json(
                {
                    "body": b64encode(body),
                    "integratedTime": seconds,
                    "logID": self.log_id.hex(),
                    "logIndex": index,
                }
            )
            set_key = tweaks.set_key or self.key
            if isinstance(set_key, ec.EllipticCurvePrivateKey):
                set_signature = set_key.sign(payload, ec.ECDSA(hashes.SHA256()))
            else:
                set_signature = set_key.sign(payload)
            entry["inclusionPromise"] = {"signedEntryTimestamp": b64encode(set_signature)}
        entry["inclusionProof"] = {
            "logIndex": str(index),
            "rootHash": b64encode(root),
            "treeSize": str(size),
            "hashes": [b64encode(h) for h in proof],
            "checkpoint": {"envelope": self.checkpoint(size, root, tweaks)},
        }
        entry["canonicalizedBody"] = b64encode(body)
        return entry

    def trusted_root_entry(self, start: dt.datetime, end: dt.datetime | None) -> dict[str, Any]:
        """This log as a ``tlogs[]`` item of a trusted root."""
        return _log_instance(
            self.base_url, self.public_key, self.key_details, self.log_id, start, end
        )


def _log_instance(
    base_url: str,
    key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
    key_details: str,
    log_id: bytes,
    start: dt.datetime,
    end: dt.datetime | None,
) -> dict[str, Any]:
    valid_for = {"start": _rfc3339(start)}
    if end is not None:
        valid_for["end"] = _rfc3339(end)
    return {
        "baseUrl": base_url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": b64encode(_spki(key)),
            "keyDetails": key_details,
            "validFor": valid_for,
        },
        "logId": {"keyId": b64encode(log_id)},
    }


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SignedBundle:
    """A bundle built by :class:`FakeSigstore` and what went into it.

    Attributes:
        bundle: The bundle, proto3 JSON as a dict (edit a deep copy to tamper).
        trusted_root: The trusted root of the instance that built it.
        artifact: The artifact the bundle covers (for DSSE: the first subject).
        identity: The leaf's SAN.
        issuer: The leaf's OIDC issuer.
        leaf: The signing certificate and key (None for managed-key bundles).
        signature: The signature bytes (message signature or DSSE signature).
        body: The canonicalized log entry body.
    """

    bundle: dict[str, Any]
    trusted_root: dict[str, Any]
    artifact: bytes
    identity: str
    issuer: str
    leaf: Leaf | None
    signature: bytes
    body: bytes

    def json(self) -> bytes:
        """The bundle as JSON bytes."""
        return json.dumps(self.bundle, indent=2).encode()

    def copy(self) -> dict[str, Any]:
        """A deep copy of the bundle dict, for tampering."""
        return copy.deepcopy(self.bundle)

    @property
    def entry(self) -> dict[str, Any]:
        """The (only) tlog entry of the bundle."""
        entry: dict[str, Any] = self.bundle["verificationMaterial"]["tlogEntries"][0]
        return entry


# --------------------------------------------------------------------------- the instance


class FakeSigstore:
    """A whole synthetic Sigstore instance.

    Args:
        seed: Derives the CA, CT and log keys: two instances with the same seed
            share their keys (and key ids); a different seed gives strangers.
        host: Domain under which the services live (``rekor.<host>`` and so on).
        prefill: Filler leaves already in each log before the first entry.
    """

    def __init__(self, seed: str = "airseal", *, host: str = "airseal.test", prefill: int = 37):
        self.seed = seed
        self.domain = host
        self.prefill = prefill

    # -- keys and services (built lazily, once per instance) -----------------

    @cached_property
    def ca(self) -> CertificateAuthority:
        """The Fulcio-style CA."""
        return CertificateAuthority.create(self.seed)

    @cached_property
    def ct_key(self) -> ec.EllipticCurvePrivateKey:
        """The CT log key (ECDSA P-256)."""
        return _derive_ec(self.seed, "ctlog", "p256")

    @property
    def ct_log_id(self) -> bytes:
        """RFC 6962 log id of the CT log: SHA-256 of its DER SPKI."""
        return hashlib.sha256(_spki(self.ct_key.public_key())).digest()

    @cached_property
    def rekor_v1(self) -> SyntheticLog:
        """The Rekor v1-style log."""
        log = SyntheticLog(
            version="v1",
            base_url=f"https://rekor.{self.domain}",
            key=_derive_ec(self.seed, "rekor-v1", "p256"),
            tree_id=int.from_bytes(
                hashlib.sha256(f"{self.seed}/tree".encode()).digest()[:7], "big"
            ),
        )
        log.fill(self.prefill)
        return log

    @cached_property
    def rekor_v2(self) -> SyntheticLog:
        """The Rekor v2-style log."""
        log = SyntheticLog(
            version="v2",
            base_url=f"https://log2025-1.rekor.{self.domain}",
            key=_derive_ed25519(self.seed, "rekor-v2"),
        )
        log.fill(self.prefill)
        return log

    @cached_property
    def tsa(self) -> tsa_tokens.TsaChain:
        """The timestamp authority (leaf + root; random keys)."""
        return tsa_tokens.make_chain("p256")

    @property
    def fulcio_url(self) -> str:
        """The CA's URL."""
        return f"https://fulcio.{self.domain}"

    @property
    def tsa_url(self) -> str:
        """The TSA's URL."""
        return f"https://tsa.{self.domain}/api/v1/timestamp"

    @property
    def ctlog_url(self) -> str:
        """The CT log's URL."""
        return f"https://ctfe.{self.domain}/2025"

    def log(self, rekor: Literal["v1", "v2"]) -> SyntheticLog:
        """The log of a Rekor API version."""
        return self.rekor_v1 if rekor == "v1" else self.rekor_v2

    # -- trusted root ----------------------------------------------------------

    def trusted_root(
        self,
        *,
        start: dt.datetime = TRUST_START,
        tlogs: Sequence[Literal["v1", "v2"]] = ("v1", "v2"),
        tsa: bool = True,
        tsa_valid_for: tuple[dt.datetime, dt.datetime | None] | None = None,
    ) -> dict[str, Any]:
        """The instance's Sigstore TrustedRoot v0.1 (proto3 JSON dict).

        Args:
            start: ``validFor.start`` of every key and authority.
            tlogs: Which logs to list.
            tsa: List the TSA.
            tsa_valid_for: The TSA's validity window (default: from ``start``, open).
        """

        def chain(certs: Sequence[x509.Certificate]) -> dict[str, Any]:
            return {"certificates": [{"rawBytes": b64encode(_cert_der(c))} for c in certs]}

        root: dict[str, Any] = {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [self.log(v).trusted_root_entry(start, None) for v in tlogs],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "airseal-test", "commonName": "airseal test CA"},
                    "uri": self.fulcio_url,
                    "certChain": chain(self.ca.chain),
                    "validFor": {"start": _rfc3339(start)},
                }
            ],
            "ctlogs": [
                _log_instance(
                    self.ctlog_url,
                    self.ct_key.public_key(),
                    "PKIX_ECDSA_P256_SHA_256",
                    self.ct_log_id,
                    start,
                    None,
                )
            ],
            "timestampAuthorities": [],
        }
        if tsa:
            tsa_start, tsa_end = tsa_valid_for or (start, None)
            valid_for = {"start": _rfc3339(tsa_start)}
            if tsa_end is not None:
                valid_for["end"] = _rfc3339(tsa_end)
            root["timestampAuthorities"].append(
                {
                    "subject": {"organization": "airseal-test", "commonName": "airseal test TSA"},
                    "uri": self.tsa_url,
                    "certChain": chain(self.tsa.certificates),
                    "validFor": valid_for,
                }
            )
        return root

    # -- certificates ----------------------------------------------------------

    def issue_leaf(
        self,
        identity: str = DEFAULT_EMAIL,
        issuer: str = DEFAULT_ISSUER,
        *,
        not_before: dt.datetime = DEFAULT_TIME,
        validity: dt.timedelta = LEAF_VALIDITY,
        key: ec.EllipticCurvePrivateKey | None = None,
        ct_key: ec.EllipticCurvePrivateKey | None = None,
        sct_time: dt.datetime | None = None,
        tamper_sct: bool = False,
        issuer_v1: str | None = None,
        issuer_v2: str | None = None,
    ) -> Leaf:
        """Issue a Fulcio-profile leaf with one embedded SCT.

        Args:
            identity: The SAN: an e-mail address, or a URI when it contains ``://``.
            issuer: The OIDC issuer, written into both .1.1 and .1.8.
            not_before: Start of the leaf's validity.
            validity: Length of the leaf's validity.
            key: The ephemeral key (generated when None).
            ct_key: Sign the SCT with this CT key instead of the instance's.
            sct_time: The SCT timestamp (default: ``not_before``).
            tamper_sct: Corrupt the SCT signature.
            issuer_v1: Override the .1.1 value ("" leaves the extension out).
            issuer_v2: Override the .1.8 value ("" leaves the extension out).
        """
        ca = self.ca
        key = key or ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        issuer_public = ca.intermediate_key.public_key()
        san: x509.GeneralName
        if "://" in identity:
            san = x509.UniformResourceIdentifier(identity)
        else:
            san = x509.RFC822Name(identity)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca.intermediate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + validity)
            .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        )
        v1 = issuer if issuer_v1 is None else issuer_v1
        v2 = issuer if issuer_v2 is None else issuer_v2
        if v1:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V1, v1.encode("utf-8")), critical=False
            )
        if v2:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V2, der_utf8string(v2)), critical=False
            )
        # The precertificate: the final certificate without the SCT list. Its TBS
        # is what the CT log signs; verifiers rebuild it from the final
        # certificate (cryptography's tbs_precertificate_bytes).
        precert_tbs = builder.sign(ca.intermediate_key, hashes.SHA384()).tbs_certificate_bytes
        issuer_key_hash = hashlib.sha256(_spki(issuer_public)).digest()
        sct_list = _sct_list(
            ct_key=ct_key or self.ct_key,
            timestamp=sct_time or not_before,
            issuer_key_hash=issuer_key_hash,
            tbs=precert_tbs,
            tamper=tamper_sct,
        )
        cert = builder.add_extension(
            x509.UnrecognizedExtension(OID_SCT_LIST, _der(0x04, sct_list)), critical=False
        ).sign(ca.intermediate_key, hashes.SHA384())
        return Leaf(key=key, cert=cert, precert_tbs=precert_tbs, issuer_key_hash=issuer_key_hash)

    # -- timestamps --------------------------------------------------------------

    def timestamp(
        self,
        message: bytes,
        gen_time: dt.datetime,
        *,
        chain: tsa_tokens.TsaChain | None = None,
    ) -> bytes:
        """An RFC 3161 TimeStampResp (DER) over ``message``."""
        return tsa_tokens.issue_token(chain or self.tsa, message, gen_time=gen_time)

    # -- bundles -----------------------------------------------------------------

    def sign_blob(
        self,
        artifact: bytes,
        identity: str = DEFAULT_EMAIL,
        issuer: str = DEFAULT_ISSUER,
        *,
        rekor: Literal["v1", "v2"] = "v1",
        tsa: bool | None = None,
        media_type: str = BUNDLE_V03,
        at: dt.datetime = DEFAULT_TIME,
        integrated_time: dt.datetime | None = None,
        tsa_time: dt.datetime | None = None,
        tsa_chain: tsa_tokens.TsaChain | None = None,
        tsa_message: bytes | None = None,
        leaf: Leaf | None = None,
        sign_over: bytes | None = None,
        tweaks: LogTweaks | None = None,
        body_hook: BodyHook | None = None,
    ) -> SignedBundle:
        """Sign an artifact, log it and return the bundle.

        Args:
            artifact: The artifact bytes (the log body records their SHA-256).
            identity: The leaf's SAN (e-mail, or URI when it contains ``://``).
            issuer: The leaf's OIDC issuer.
            rekor: ``"v1"`` (hashedrekord 0.0.1, SET) or ``"v2"`` (hashedrekord 0.0.2).
            tsa: Add an RFC 3161 timestamp (default: only for ``rekor="v2"``).
            media_type: The bundle media type; 0.1/0.2 carry an x509CertificateChain,
                0.3 a single certificate.
            at: The signing time: leaf notBefore (when ``leaf`` is not given).
            integrated_time: The Rekor v1 integrated time (default ``at`` + 30 s).
            tsa_time: The TSA genTime (default ``at`` + 20 s).
            tsa_chain: Timestamp with this TSA instead of the instance's.
            tsa_message: Timestamp these bytes instead of the signature.
            leaf: Sign with this leaf instead of issuing a fresh one.
            sign_over: Sign these bytes instead of the artifact (the body still
                records the artifact's digest).
            tweaks: Ways to break the log entry.
            body_hook: Edit the log entry body (a JSON dict) before it is
                canonicalised and logged; the entry, SET and checkpoint then cover
                the edited body, as if the log had accepted it.
        """
        leaf = leaf or self.issue_leaf(identity, issuer, not_before=at)
        digest = hashlib.sha256(artifact).digest()
        signature = leaf.key.sign(
            artifact if sign_over is None else sign_over, ec.ECDSA(hashes.SHA256())
        )
        if rekor == "v1":
            body_doc = _hashedrekord_v001(digest, signature, leaf.pem)
        else:
            body_doc = _hashedrekord_v002(
                digest, signature, "PKIX_ECDSA_P256_SHA_256", "x509Certificate", leaf.der
            )
        return self._log_and_bundle(
            body_doc,
            _message_signature(digest, signature),
            rekor=rekor,
            media_type=media_type,
            leaf=leaf,
            identity=identity,
            issuer=issuer,
            signature=signature,
            artifact=artifact,
            at=at,
            tsa=tsa,
            tsa_time=tsa_time,
            tsa_chain=tsa_chain,
            tsa_message=tsa_message,
            integrated_time=integrated_time,
            tweaks=tweaks,
            body_hook=body_hook,
        )

    def sign_dsse(
        self,
        statement: Mapping[str, Any] | bytes,
        identity: str = DEFAULT_EMAIL,
        issuer: str = DEFAULT_ISSUER,
        *,
        artifact: bytes = b"",
        payload_type: str = IN_TOTO_PAYLOAD_TYPE,
        rekor: Literal["v1", "v2"] = "v2",
        tsa: bool | None = None,
        media_type: str = BUNDLE_V03,
        at: dt.datetime = DEFAULT_TIME,
        integrated_time: dt.datetime | None = None,
        tsa_time: dt.datetime | None = None,
        tsa_chain: tsa_tokens.TsaChain | None = None,
        leaf: Leaf | None = None,
        tweaks: LogTweaks | None = None,
        body_hook: BodyHook | None = None,
    ) -> SignedBundle:
        """Sign a DSSE envelope (in-toto by default), log it and return the bundle.

        With ``rekor="v2"`` the log records hashedrekord 0.0.2 over SHA-256(PAE)
        with the DSSE signature; with ``rekor="v1"`` a dsse 0.0.1 body.

        Args:
            statement: The payload: a JSON object (serialised compactly) or raw bytes.
            artifact: Recorded as :attr:`SignedBundle.artifact` (the subject tests verify).
            Others: as for :meth:`sign_blob`.
        """
        if isinstance(statement, bytes):
            payload = statement
        else:
            payload = json.dumps(statement, separators=(",", ":")).encode()
        leaf = leaf or self.issue_leaf(identity, issuer, not_before=at)
        encoded = pae(payload_type, payload)
        signature = leaf.key.sign(encoded, ec.ECDSA(hashes.SHA256()))
        envelope = {
            "payload": b64encode(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": b64encode(signature)}],
        }
        body_doc: dict[str, Any]
        if rekor == "v1":
            body_doc = {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(canonical_json(envelope)).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [
                        {"signature": b64encode(signature), "verifier": b64encode(leaf.pem)}
                    ],
                },
            }
        else:
            body_doc = _hashedrekord_v002(
                hashlib.sha256(encoded).digest(),
                signature,
                "PKIX_ECDSA_P256_SHA_256",
                "x509Certificate",
                leaf.der,
            )
        return self._log_and_bundle(
            body_doc,
            {"dsseEnvelope": envelope},
            rekor=rekor,
            media_type=media_type,
            leaf=leaf,
            identity=identity,
            issuer=issuer,
            signature=signature,
            artifact=artifact,
            at=at,
            tsa=tsa,
            tsa_time=tsa_time,
            tsa_chain=tsa_chain,
            tsa_message=None,
            integrated_time=integrated_time,
            tweaks=tweaks,
            body_hook=body_hook,
        )

    def sign_blob_with_key(
        self,
        artifact: bytes,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        *,
        hint: str = "",
        rekor: Literal["v1", "v2"] = "v2",
        tsa: bool | None = None,
        at: dt.datetime = DEFAULT_TIME,
        sign_over: bytes | None = None,
        pss: bool = False,
        logged_details: str | None = None,
    ) -> SignedBundle:
        """Sign with a managed key: a v0.3 bundle whose key material is a ``publicKey`` hint.

        The log body records the public key (a PEM key for hashedrekord 0.0.1, the
        DER SPKI for 0.0.2) instead of a certificate.

        Args:
            pss: Sign an RSA key with RSASSA-PSS (SHA-256, MGF1-SHA-256, salt of
                the digest length) and log it as ``PKIX_RSA_PSS_<bits>_SHA256``.
            logged_details: Record this ``keyDetails`` in a 0.0.2 body instead of
                the one that matches the signature (to build confused entries).
        """
        digest = hashlib.sha256(artifact).digest()
        message = artifact if sign_over is None else sign_over
        if isinstance(key, ec.EllipticCurvePrivateKey):
            details = {
                "secp256r1": "PKIX_ECDSA_P256_SHA_256",
                "secp384r1": "PKIX_ECDSA_P384_SHA_384",
            }[key.curve.name]
            signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
        elif pss:
            details = f"PKIX_RSA_PSS_{key.key_size}_SHA256"
            pad = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
            signature = key.sign(message, pad, hashes.SHA256())
        else:
            details = f"PKIX_RSA_PKCS1V15_{key.key_size}_SHA256"
            signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        details = logged_details or details
        public = key.public_key()
        if rekor == "v1":
            pem = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            body_doc = _hashedrekord_v001(digest, signature, pem)
        else:
            spki = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            body_doc = _hashedrekord_v002(digest, signature, details, "publicKey", spki)
        return self._log_and_bundle(
            body_doc,
            _message_signature(digest, signature),
            rekor=rekor,
            media_type=BUNDLE_V03,
            leaf=None,
            key_material={"publicKey": {"hint": hint} if hint else {}},
            signature=signature,
            artifact=artifact,
            at=at,
            tsa=tsa,
        )

    # -- internals -----------------------------------------------------------------

    def _log_and_bundle(
        self,
        body_doc: dict[str, Any],
        content: dict[str, Any],
        *,
        rekor: Literal["v1", "v2"],
        media_type: str,
        leaf: Leaf | None,
        signature: bytes,
        artifact: bytes,
        at: dt.datetime,
        tsa: bool | None,
        key_material: dict[str, Any] | None = None,
        identity: str = "",
        issuer: str = "",
        tsa_time: dt.datetime | None = None,
        tsa_chain: tsa_tokens.TsaChain | None = None,
        tsa_message: bytes | None = None,
        integrated_time: dt.datetime | None = None,
        tweaks: LogTweaks | None = None,
        body_hook: BodyHook | None = None,
    ) -> SignedBundle:
        """Log a body, build the bundle around the entry and timestamp it."""
        if body_hook is not None:
            body_hook(body_doc)
        body = canonical_json(body_doc)
        entry = self.log(rekor).entry(
            body,
            kind=body_doc["kind"],
            version=body_doc["apiVersion"],
            integrated_time=integrated_time or at + dt.timedelta(seconds=30),
            tweaks=tweaks or LogTweaks(),
        )
        if key_material is None:
            assert leaf is not None
            cert = {"rawBytes": b64encode(leaf.der)}
            if media_type in (BUNDLE_V01, BUNDLE_V02):
                key_material = {"x509CertificateChain": {"certificates": [cert]}}
            else:
                key_material = {"certificate": cert}
        material: dict[str, Any] = {**key_material, "tlogEntries": [entry]}
        if rekor == "v2" if tsa is None else tsa:
            token = self.timestamp(
                signature if tsa_message is None else tsa_message,
                tsa_time or at + dt.timedelta(seconds=20),
                chain=tsa_chain,
            )
            material["timestampVerificationData"] = {
                "rfc3161Timestamps": [{"signedTimestamp": b64encode(token)}]
            }
        return SignedBundle(
            bundle={"mediaType": media_type, "verificationMaterial": material, **content},
            trusted_root=self.trusted_root(),
            artifact=artifact,
            identity=identity,
            issuer=issuer,
            leaf=leaf,
            signature=signature,
            body=body,
        )


def _hashedrekord_v001(digest: bytes, signature: bytes, pem: bytes) -> dict[str, Any]:
    """A Rekor v1 hashedrekord body over a SHA-256 digest; ``pem`` is a cert or key."""
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
            "signature": {
                "content": b64encode(signature),
                "publicKey": {"content": b64encode(pem)},
            },
        },
    }


def _hashedrekord_v002(
    digest: bytes, signature: bytes, key_details: str, material: str, raw: bytes
) -> dict[str, Any]:
    """A Rekor v2 hashedrekord body; ``material`` is x509Certificate or publicKey."""
    return {
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {
            "hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": b64encode(digest)},
                "signature": {
                    "content": b64encode(signature),
                    "verifier": {"keyDetails": key_details, material: {"rawBytes": b64encode(raw)}},
                },
            }
        },
    }


def _message_signature(digest: bytes, signature: bytes) -> dict[str, Any]:
    return {
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64encode(digest)},
            "signature": b64encode(signature),
        }
    }
