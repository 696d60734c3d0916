"""Transparency log entries as carried in bundles (``dev.sigstore.rekor.v1``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.encoding import b64decode
from toolkit.errors import FormatError
from toolkit.models._base import Reader, compact, to_b64
from toolkit.models.common import LogId

__all__ = [
    "Checkpoint",
    "InclusionPromise",
    "InclusionProof",
    "KindVersion",
    "TransparencyLogEntry",
]

#: An inclusion proof in a tree of 2^64 leaves has at most 64 hashes.
MAX_PROOF_HASHES = 64
#: Canonicalized bodies above this size are refused before any parsing.
MAX_BODY_BYTES = 1 << 20
#: Signed notes larger than this are not checkpoints.
MAX_CHECKPOINT_BYTES = 1 << 16


@dataclass(frozen=True)
class KindVersion:
    """The Rekor entry type, e.g. ``hashedrekord`` ``0.0.2``."""

    kind: str
    version: str

    def __post_init__(self) -> None:
        if not self.kind or not self.version:
            raise FormatError("kind and version must both be set")

    @classmethod
    def from_dict(cls, data: Any, path: str = "kindVersion") -> KindVersion:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        kind = r.string("kind", required=True)
        version = r.string("version", required=True)
        return r.build(cls, kind=kind, version=version)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"kind": self.kind, "version": self.version}


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint: the full C2SP signed-note text."""

    envelope: str

    def __post_init__(self) -> None:
        if not self.envelope:
            raise FormatError("checkpoint envelope must not be empty")
        if len(self.envelope) > MAX_CHECKPOINT_BYTES:
            raise FormatError("checkpoint envelope is too large")

    @classmethod
    def from_dict(cls, data: Any, path: str = "checkpoint") -> Checkpoint:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        envelope = r.string("envelope", required=True)
        return r.build(cls, envelope=envelope)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"envelope": self.envelope}


@dataclass(frozen=True)
class InclusionProof:
    """A Merkle inclusion proof and the checkpoint whose root it reaches."""

    log_index: int
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: Checkpoint | None = None

    def __post_init__(self) -> None:
        if self.log_index < 0 or self.tree_size < 0:
            raise FormatError("logIndex and treeSize must not be negative")
        if self.log_index >= self.tree_size:
            raise FormatError(f"logIndex {self.log_index} is not below treeSize {self.tree_size}")
        if len(self.root_hash) != 32:
            raise FormatError(f"rootHash must be 32 bytes, got {len(self.root_hash)}")
        if any(len(h) != 32 for h in self.hashes):
            raise FormatError("every proof hash must be 32 bytes")

    @classmethod
    def from_dict(cls, data: Any, path: str = "inclusionProof") -> InclusionProof:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        log_index = r.int64("logIndex", minimum=0)
        root_hash = r.bytes_("rootHash", required=True)
        tree_size = r.int64("treeSize", minimum=0)
        hashes = r.repeated("hashes", _proof_hash, max_items=MAX_PROOF_HASHES)
        checkpoint = r.opt_message("checkpoint", Checkpoint.from_dict)
        return r.build(
            cls,
            log_index=log_index,
            root_hash=root_hash,
            tree_size=tree_size,
            hashes=hashes,
            checkpoint=checkpoint,
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return compact(
            {
                "logIndex": str(self.log_index),
                "rootHash": to_b64(self.root_hash),
                "treeSize": str(self.tree_size),
                "hashes": [to_b64(h) for h in self.hashes],
                "checkpoint": self.checkpoint.to_dict() if self.checkpoint else None,
            }
        )


def _proof_hash(value: Any, path: str) -> bytes:
    return b64decode(value, path=path)


@dataclass(frozen=True)
class InclusionPromise:
    """A Rekor v1 signed entry timestamp (SET)."""

    signed_entry_timestamp: bytes

    def __post_init__(self) -> None:
        if not self.signed_entry_timestamp:
            raise FormatError("signedEntryTimestamp must not be empty")

    @classmethod
    def from_dict(cls, data: Any, path: str = "inclusionPromise") -> InclusionPromise:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        set_bytes = r.bytes_("signedEntryTimestamp", required=True)
        return r.build(cls, signed_entry_timestamp=set_bytes)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON."""
        return {"signedEntryTimestamp": to_b64(self.signed_entry_timestamp)}


@dataclass(frozen=True)
class TransparencyLogEntry:
    """One log entry with the evidence that it is in the log.

    ``integrated_time`` is 0 when the log did not state one (Rekor v2).
    """

    log_index: int
    log_id: LogId
    kind_version: KindVersion
    canonicalized_body: bytes
    integrated_time: int = 0
    inclusion_promise: InclusionPromise | None = None
    inclusion_proof: InclusionProof | None = None

    def __post_init__(self) -> None:
        if self.log_index < 0:
            raise FormatError("logIndex must not be negative")
        if self.integrated_time < 0:
            raise FormatError("integratedTime must not be negative")
        if not self.canonicalized_body:
            raise FormatError("canonicalizedBody must not be empty")
        if len(self.canonicalized_body) > MAX_BODY_BYTES:
            raise FormatError("canonicalizedBody is too large")

    @classmethod
    def from_dict(cls, data: Any, path: str = "tlogEntries[]") -> TransparencyLogEntry:
        """Parse from proto3 JSON."""
        r = Reader(data, path)
        log_index = r.int64("logIndex", minimum=0)
        log_id = r.message("logId", LogId.from_dict)
        kind_version = r.message("kindVersion", KindVersion.from_dict)
        integrated_time = r.int64("integratedTime", minimum=0)
        promise = r.opt_message("inclusionPromise", InclusionPromise.from_dict)
        proof = r.opt_message("inclusionProof", InclusionProof.from_dict)
        body = r.bytes_("canonicalizedBody", required=True)
        return r.build(
            cls,
            log_index=log_index,
            log_id=log_id,
            kind_version=kind_version,
            canonicalized_body=body,
            integrated_time=integrated_time,
            inclusion_promise=promise,
            inclusion_proof=proof,
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise to proto3 JSON (logIndex is always written, even when 0)."""
        return compact(
            {
                "logIndex": str(self.log_index),
                "logId": self.log_id.to_dict(),
                "kindVersion": self.kind_version.to_dict(),
                "integratedTime": str(self.integrated_time) if self.integrated_time else None,
                "inclusionPromise": (
                    self.inclusion_promise.to_dict() if self.inclusion_promise else None
                ),
                "inclusionProof": self.inclusion_proof.to_dict() if self.inclusion_proof else None,
                "canonicalizedBody": to_b64(self.canonicalized_body),
            }
        )
