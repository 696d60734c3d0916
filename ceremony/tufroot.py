"""The first TUF root (``1.root.json``) of an airseal repository.

Built and checked with python-tuf's Metadata API. The root delegates itself
to the custodians' keys with threshold M of N, and the online roles (targets,
snapshot, timestamp) to the online keys. Custodians sign the canonical JSON of
the ``signed`` part; :func:`sign_root` returns the serialised document and
those exact bytes are what the ceremony ships: python-tuf does not promise
that ``to_bytes()`` of a re-parsed document gives the same bytes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Key, Signer, SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import TOP_LEVEL_ROLE_NAMES, Metadata, Root
from tuf.api.serialization import DeserializationError, SerializationError
from tuf.api.serialization.json import JSONSerializer

from ceremony.errors import TufRootError

__all__ = [
    "ROOT_FILENAME",
    "RoleSummary",
    "RootReport",
    "build_root",
    "sign_root",
    "to_tuf_key",
    "verify_root",
]

#: The name of the first root version, used in messages.
ROOT_FILENAME: Final = "1.root.json"

_CryptoKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
_ROLE_ORDER: Final = ("root", "targets", "snapshot", "timestamp")


@dataclass(frozen=True)
class RoleSummary:
    """One top-level role of a root: its keys and threshold."""

    name: str
    keyids: tuple[str, ...]
    threshold: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the transcript."""
        return {"keyids": list(self.keyids), "threshold": self.threshold}


@dataclass(frozen=True)
class RootReport:
    """What :func:`verify_root` established about a root.

    Attributes:
        version: The root's version.
        keyids: The root role's key ids.
        threshold: The root role's threshold.
        signatures: Valid signatures by root keys (at least ``threshold``).
        signed_keyids: The root keys whose signatures verified.
        expires: Expiry, RFC 3339 in UTC (``2027-12-01T00:00:00Z``).
        expires_at: The same as a datetime.
        consistent_snapshot: The root's ``consistent_snapshot`` flag.
        roles: Every top-level role, root first.
    """

    version: int
    keyids: tuple[str, ...]
    threshold: int
    signatures: int
    signed_keyids: tuple[str, ...]
    expires: str
    expires_at: datetime
    consistent_snapshot: bool
    roles: tuple[RoleSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the transcript."""
        return {
            "version": self.version,
            "threshold": self.threshold,
            "signatures": self.signatures,
            "signed_keyids": list(self.signed_keyids),
            "expires": self.expires,
            "consistent_snapshot": self.consistent_snapshot,
            "roles": {r.name: r.to_dict() for r in self.roles},
        }


def to_tuf_key(key: Key | _CryptoKey) -> Key:
    """A securesystemslib key for a cryptography public key (keys pass through).

    Ed25519 keys get scheme ``ed25519``, P-256 ``ecdsa-sha2-nistp256`` and
    P-384 ``ecdsa-sha2-nistp384``; the key id is securesystemslib's default
    (SHA-256 of the canonical key JSON).
    """
    if isinstance(key, Key):
        return key
    return SSlibKey.from_crypto(key)


def build_root(
    *,
    root_keys: Sequence[Key | _CryptoKey],
    root_threshold: int,
    targets_keys: Sequence[Key | _CryptoKey],
    targets_threshold: int,
    snapshot_keys: Sequence[Key | _CryptoKey],
    snapshot_threshold: int,
    timestamp_keys: Sequence[Key | _CryptoKey],
    timestamp_threshold: int,
    expires: datetime,
    consistent_snapshot: bool,
) -> Metadata[Root]:
    """Build version 1 of the root metadata, unsigned.

    Args:
        root_keys: The custodians' keys.
        root_threshold: How many custodians must sign a root (M of N).
        targets_keys: Keys of the targets role.
        targets_threshold: Threshold of the targets role.
        snapshot_keys: Keys of the snapshot role.
        snapshot_threshold: Threshold of the snapshot role.
        timestamp_keys: Keys of the timestamp role.
        timestamp_threshold: Threshold of the timestamp role.
        expires: When the root expires (timezone-aware; whole seconds are kept).
        consistent_snapshot: The repository's consistent-snapshot flag.

    Returns:
        The root metadata with no signatures.

    Raises:
        TufRootError: A threshold cannot be met, a role lists a key twice, or
            ``expires`` has no timezone.
    """
    if expires.tzinfo is None:
        raise TufRootError("the root expiry must be timezone-aware")
    root = Root(
        version=1,
        expires=expires.astimezone(UTC),
        consistent_snapshot=consistent_snapshot,
    )
    roles = {
        "root": (root_keys, root_threshold),
        "targets": (targets_keys, targets_threshold),
        "snapshot": (snapshot_keys, snapshot_threshold),
        "timestamp": (timestamp_keys, timestamp_threshold),
    }
    for role, (keys, threshold) in roles.items():
        tuf_keys = [to_tuf_key(k) for k in keys]
        keyids = [k.keyid for k in tuf_keys]
        if len(set(keyids)) != len(keyids):
            raise TufRootError(f"role {role} lists the same key more than once")
        if not 1 <= threshold <= len(tuf_keys):
            raise TufRootError(
                f"role {role}: threshold {threshold} cannot be met by {len(tuf_keys)} key(s)"
            )
        for key in tuf_keys:
            root.add_key(key, role)
        root.roles[role].threshold = threshold
    return Metadata(root)


def sign_root(md: Metadata[Root], signers: Sequence[Signer]) -> bytes:
    """Add one signature per signer and serialise the root.

    Each signer must hold a root key; each new signature is verified before it
    is kept. The threshold is not required here (see :func:`verify_root`).

    Args:
        md: The root metadata (existing signatures are kept).
        signers: securesystemslib signers of root keys, e.g. ``TufSigner``.

    Returns:
        The signed document (indented JSON). Ship these exact bytes.

    Raises:
        TufRootError: A signer holds no root key, fails to sign or produces a
            signature that does not verify.
    """
    root = md.signed
    root_keyids = set(root.roles["root"].keyids)
    payload = md.signed_bytes
    for signer in signers:
        keyid = signer.public_key.keyid
        if keyid not in root_keyids:
            raise TufRootError(f"key {keyid[:16]}… is not one of the root's keys")
        try:
            signature = md.sign(signer, append=True)
        except UnsignedMetadataError as exc:
            raise TufRootError(f"key {keyid[:16]}… failed to sign the root: {exc}") from None
        try:
            root.get_key(keyid).verify_signature(signature, payload)
        except UnverifiedSignatureError:
            # Drop it so that the metadata object is left as it was.
            del md.signatures[signature.keyid]
            raise TufRootError(
                f"key {keyid[:16]}… returned a root signature that does not verify; "
                "it was discarded",
                hint="the token or its PKCS#11 module returned a bad signature",
            ) from None
    try:
        return md.to_bytes(JSONSerializer(compact=False))
    except SerializationError as exc:
        raise TufRootError(f"cannot serialise the root: {exc}") from None


def verify_root(
    data: bytes,
    *,
    name: str = ROOT_FILENAME,
    expected_version: int | None = 1,
    now: datetime | None = None,
) -> RootReport:
    """Load a root and check that it is signed by a threshold of its own keys.

    The threshold is established by python-tuf (``Root.verify_delegate``), the
    same check its ``Updater`` runs on a bootstrap root. On top of it, every
    signature present must verify and come from a root key, and every role's
    threshold must be reachable with its keys.

    Args:
        data: The root document's bytes.
        name: The file name used in messages.
        expected_version: The version the root must have (None: any).
        now: If given, the root must not have expired at this time.

    Returns:
        The report for the transcript.

    Raises:
        TufRootError: Naming the problem, e.g.
            ``1.root.json: 1 of 2 required root signatures``.
    """
    try:
        md: Metadata[Any] = Metadata.from_bytes(data)
    except DeserializationError as exc:
        raise TufRootError(f"{name}: not valid TUF metadata: {exc}") from None
    root = md.signed
    if not isinstance(root, Root):
        raise TufRootError(f"{name}: is {root.type} metadata, not root")
    if expected_version is not None and root.version != expected_version:
        raise TufRootError(f"{name}: version {root.version}, expected {expected_version}")

    roles = tuple(
        RoleSummary(name=r, keyids=tuple(root.roles[r].keyids), threshold=root.roles[r].threshold)
        for r in _ROLE_ORDER
    )
    assert set(_ROLE_ORDER) == TOP_LEVEL_ROLE_NAMES
    for role in roles:
        missing = [k for k in role.keyids if k not in root.keys]
        if missing:
            raise TufRootError(f"{name}: role {role.name} names unknown key {missing[0][:16]}…")
        if role.threshold > len(role.keyids):
            raise TufRootError(
                f"{name}: role {role.name} needs {role.threshold} signatures "
                f"but has {len(role.keyids)} key(s)"
            )

    payload = md.signed_bytes
    result = root.get_verification_result("root", payload, md.signatures)
    root_role = root.roles["root"]
    for keyid in md.signatures:
        if keyid not in root_role.keyids:
            raise TufRootError(f"{name}: signature by {keyid[:16]}…, which is not a root key")
        if keyid not in result.signed:
            raise TufRootError(f"{name}: the signature by root key {keyid[:16]}… does not verify")
    if not result.verified:
        raise TufRootError(
            f"{name}: {len(result.signed)} of {result.threshold} required root signatures",
            hint=f"{result.missing} more custodian(s) must sign",
        )
    # python-tuf's own threshold check, as its Updater applies it to a
    # bootstrap root; it must agree with the count above.
    try:
        root.verify_delegate("root", payload, md.signatures)
    except UnsignedMetadataError as exc:
        raise TufRootError(f"{name}: python-tuf rejects the root signatures: {exc}") from None

    if now is not None and root.is_expired(now):
        raise TufRootError(f"{name}: expired at {_iso(root.expires)}")
    return RootReport(
        version=root.version,
        keyids=tuple(root_role.keyids),
        threshold=root_role.threshold,
        signatures=len(result.signed),
        signed_keyids=tuple(k for k in root_role.keyids if k in result.signed),
        expires=_iso(root.expires),
        expires_at=root.expires,
        consistent_snapshot=bool(root.consistent_snapshot),
        roles=roles,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
