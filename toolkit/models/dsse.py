"""The DSSE envelope (``io.intoto.Envelope``) carried by attestation bundles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.errors import FormatError
from toolkit.models._base import Reader, compact, to_b64

__all__ = ["Envelope", "Signature", "pae"]

#: Bound on signatures per envelope; Sigstore envelopes carry exactly one.
MAX_DSSE_SIGNATURES = 16


def pae(payload_type: str, payload: bytes) -> bytes:
    """Return the DSSE v1 pre-authentication encoding of a payload.

    ``PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body`` where lengths
    are ASCII decimal byte counts.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    """One DSSE signature with its optional, unauthenticated key id."""

    sig: bytes
    keyid: str = ""

    def __post_init__(self) -> None:
        if not self.sig:
            raise FormatError("sig must not be empty")

    @classmethod
    def from_dict(cls, data: Any, path: str = "signatures[]") -> Signature:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        sig = r.bytes_("sig", required=True)
        keyid = r.string("keyid")
        return r.build(cls, sig=sig, keyid=keyid)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact({"sig": to_b64(self.sig), "keyid": self.keyid or None})


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: a typed payload and its signatures."""

    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def __post_init__(self) -> None:
        if not self.payload_type:
            raise FormatError("payloadType must not be empty")
        if not self.signatures:
            raise FormatError("envelope has no signatures")

    def pae(self) -> bytes:
        """The bytes the envelope's signatures cover."""
        return pae(self.payload_type, self.payload)

    @classmethod
    def from_dict(cls, data: Any, path: str = "dsseEnvelope") -> Envelope:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        payload = r.bytes_("payload", required=True)
        payload_type = r.string("payloadType", required=True)
        signatures = r.repeated("signatures", Signature.from_dict, max_items=MAX_DSSE_SIGNATURES)
        return r.build(cls, payload=payload, payload_type=payload_type, signatures=signatures)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {
            "payload": to_b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [s.to_dict() for s in self.signatures],
        }
