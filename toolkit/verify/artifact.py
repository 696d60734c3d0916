"""The thing a bundle is checked against: an artifact's bytes or its digest."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from toolkit.errors import Check, UsageError, VerificationError
from toolkit.models.common import HashAlgorithm
from toolkit.verify._keys import hash_function

__all__ = ["Artifact"]

_DIGEST_RE = re.compile(r"\Asha256:([0-9a-fA-F]{64})\Z")


@dataclass(frozen=True)
class Artifact:
    """An artifact to verify, known by its SHA-256 digest and optionally its bytes.

    The bytes are needed only for signature schemes that cannot sign a digest
    (pure Ed25519) and for digests other than SHA-256.

    Attributes:
        sha256: The SHA-256 digest of the artifact.
        data: The artifact itself, when the caller has it in memory.
    """

    sha256: bytes
    data: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.sha256) != 32:
            raise UsageError("an artifact SHA-256 digest is 32 bytes")

    @classmethod
    def from_bytes(cls, data: bytes) -> Artifact:
        """An artifact held in memory."""
        return cls(sha256=hashlib.sha256(data).digest(), data=data)

    @classmethod
    def from_digest(cls, text: str) -> Artifact:
        """An artifact known only as ``sha256:<64 hex digits>``.

        Raises:
            UsageError: The text is not a SHA-256 digest in that form.
        """
        m = _DIGEST_RE.match(text)
        if not m:
            raise UsageError(f"{text[:80]!r} is not a digest of the form sha256:<64 hex digits>")
        return cls(sha256=bytes.fromhex(m.group(1)))

    @staticmethod
    def looks_like_digest(text: str) -> bool:
        """Return True when ``text`` has the ``sha256:<hex>`` form."""
        return bool(_DIGEST_RE.match(text))

    def digest(self, algorithm: HashAlgorithm) -> bytes:
        """Return the artifact's digest with ``algorithm``.

        Raises:
            VerificationError: ``input`` when only the SHA-256 digest is known
                and another algorithm is asked for.
        """
        if algorithm is HashAlgorithm.SHA2_256:
            return self.sha256
        if self.data is None:
            raise VerificationError(
                Check.INPUT,
                f"the bundle uses {algorithm.value}; pass the artifact itself, not its SHA-256",
            )
        return hash_function(algorithm)(self.data)
