"""Shared helpers of the TSA tests: TSAs over software keys, requests, decoded replies.

Requests are built with asn1crypto (not with the TSA's own encoder), and
replies are decoded with asn1crypto, so the tests do not grade the TSA's DER
with its own code.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from asn1crypto import algos, cms, core, tsp
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import tsa_tokens
from toolkit.services.tsa import TimestampAuthority
from toolkit.signing import Scheme, SoftwareSigner

Kind = Literal["p256", "p384", "rsa-pkcs1", "rsa-pss", "ed25519"]
KINDS: tuple[Kind, ...] = ("p256", "p384", "rsa-pkcs1", "rsa-pss", "ed25519")
#: Inside the validity of every generated chain (2024-2034).
NOW = dt.datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
POLICY = "1.3.6.1.4.1.57264.2"


def chain_for(kind: Kind, intermediate: bool = False) -> tsa_tokens.TsaChain:
    """A generated TSA chain for a key kind (cached: RSA-3072 keys are slow to make)."""
    # One RSA key signs with either padding.
    return _chain("rsa-pkcs1" if kind == "rsa-pss" else kind, intermediate)


@functools.cache
def _chain(kind: Kind, intermediate: bool) -> tsa_tokens.TsaChain:
    if kind == "ed25519":
        # The Web PKI chain profile has no Ed25519 CAs; an Ed25519 TSA leaf is fine.
        return tsa_tokens.make_chain("ed25519", root_key_type="p256", intermediate=intermediate)
    if not kind.startswith("rsa"):
        return tsa_tokens.make_chain(kind, intermediate=intermediate)  # type: ignore[arg-type]
    # tsa_tokens makes 2048-bit RSA keys; airseal signers start at 3072.
    original = tsa_tokens.new_key

    def new_key(key_type: tsa_tokens.KeyType) -> tsa_tokens.PrivateKey:
        if key_type == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=3072)
        return original(key_type)

    tsa_tokens.new_key = new_key
    try:
        return tsa_tokens.make_chain("rsa", root_key_type="p256", intermediate=intermediate)
    finally:
        tsa_tokens.new_key = original


def signer_for(kind: Kind, chain: tsa_tokens.TsaChain) -> SoftwareSigner:
    """A software signer over the chain's leaf key, with the kind's scheme."""
    scheme = Scheme.RSA_PSS_3072_SHA256 if kind == "rsa-pss" else None
    return SoftwareSigner(chain.leaf_key, scheme)


def authority(
    kind: Kind = "p256", intermediate: bool = False, **options: Any
) -> TimestampAuthority:
    """A TSA over the chain of ``kind`` (cached per arguments)."""
    return _authority(kind, intermediate, tuple(sorted(options.items())))


@functools.cache
def _authority(
    kind: Kind, intermediate: bool, options: tuple[tuple[str, Any], ...]
) -> TimestampAuthority:
    chain = chain_for(kind, intermediate)
    return TimestampAuthority(signer_for(kind, chain), chain.certificates, **dict(options))


def request(
    message: bytes = b"signature bytes",
    *,
    hash_algorithm: str = "sha256",
    digest: bytes | None = None,
    nonce: int | None = 0x1234_5678_9ABC_DEF0,
    cert_req: bool | None = True,
    policy: str | None = None,
    version: int = 1,
    parameters: bytes | None = None,
    extensions: bool = False,
) -> bytes:
    """A DER TimeStampReq built with asn1crypto.

    Args:
        message: Hashed into the imprint (unless ``digest`` is given).
        hash_algorithm: Imprint hash name or dotted OID.
        digest: The imprint digest as is.
        nonce: The nonce (None: absent).
        cert_req: certReq (None: absent; False: explicit FALSE, a BER nit).
        policy: reqPolicy (None: absent).
        version: The request version.
        parameters: DER of the hash algorithm's parameters (None: absent).
        extensions: Add one request extension.
    """
    if digest is None:
        digest = hashlib.new(hash_algorithm, message).digest()
    # Element by element with asn1crypto encoders: asn1crypto's TimeStampReq
    # would drop an explicit DEFAULT FALSE and refuse odd parameters.
    algorithm = algos.DigestAlgorithmId(hash_algorithm).dump() + (parameters or b"")
    content = core.Integer(version).dump() + tlv(
        0x30, tlv(0x30, algorithm) + core.OctetString(digest).dump()
    )
    if policy is not None:
        content += core.ObjectIdentifier(policy).dump()
    if nonce is not None:
        content += core.Integer(nonce).dump()
    if cert_req is not None:
        content += core.Boolean(cert_req).dump()
    if extensions:
        extension = tsp.Extensions(
            [{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}]
        ).dump()
        content += b"\xa0" + extension[1:]
    return tlv(0x30, content)


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


class _StatusOnly(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto spec
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True)
class Reply:
    """A decoded TimeStampResp."""

    status: int
    failures: frozenset[str]
    texts: tuple[str, ...]
    token: cms.ContentInfo | None

    @property
    def tst_info(self) -> tsp.TSTInfo:
        assert self.token is not None
        return self.token["content"]["encap_content_info"]["content"].parsed

    @property
    def signed_data(self) -> cms.SignedData:
        assert self.token is not None
        return self.token["content"]


def decode(der: bytes) -> Reply:
    """Decode a reply strictly: DER (re-encoding gives the same bytes), no trailing data."""
    parsed = _StatusOnly.load(der, strict=True)
    assert parsed.dump(force=True) == der, "reply is not DER"
    status = parsed["status"]
    token = parsed["time_stamp_token"] if parsed["time_stamp_token"].native is not None else None
    if token is not None:
        # Force a full parse of the token (lazy parsing would hide errors).
        assert token.dump(force=True) == parsed["time_stamp_token"].dump()
        _ = token.native
    fail = status["fail_info"].native if status["fail_info"].native is not None else set()
    texts = tuple(status["status_string"].native or ())
    return Reply(int(status["status"]), frozenset(fail), texts, token)
