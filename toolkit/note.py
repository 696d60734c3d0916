"""C2SP signed notes and tlog checkpoints.

A signed note (C2SP ``signed-note``, the format of ``golang.org/x/mod/sumdb/note``)
is UTF-8 text ending in a newline, a blank line, and one or more signature
lines ``— <name> <base64(key hash[4] ‖ signature)>``. The signature covers the
text including its final newline. Transparency logs sign their checkpoints
(C2SP ``tlog-checkpoint``: origin, tree size, base64 root hash, optional
extension lines) as notes, and witnesses add cosignature lines to them.

Parsing is strict and keeps every signature line verbatim, so a note
round-trips byte for byte and lines from keys the caller does not know (witness
cosignatures, for example) survive re-serialisation. Parse failures raise
:class:`~toolkit.errors.FormatError` with ``Check.TLOG_CHECKPOINT``; signature
failures raise :class:`~toolkit.errors.VerificationError` with the same code.

Two key kinds are supported: Ed25519 note keys (Rekor v2 and most C2SP logs;
key hash = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]) and ECDSA keys as
Rekor v1 uses them (key hash = SHA-256(SPKI DER)[:4], DER ECDSA-SHA256
signature over the text).

Everything here is pure: no I/O and no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from toolkit.encoding import b64decode, b64encode
from toolkit.errors import Check, FormatError, VerificationError

__all__ = [
    "MAX_SIGNATURES",
    "Checkpoint",
    "ECDSANoteSigner",
    "ECDSANoteVerifier",
    "Ed25519NoteSigner",
    "Ed25519NoteVerifier",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "make_vkey",
    "parse_vkey",
    "sign_note",
]

#: Most signature lines a note may carry (the Go reference's limit).
MAX_SIGNATURES = 100

#: Algorithm byte of Ed25519 note keys in key hashes and vkeys.
_ALG_ED25519 = b"\x01"

_KEY_HASH_SIZE = 4
_ROOT_HASH_SIZE = 32
_SIG_PREFIX = "\u2014 "
# ASCII control characters other than newline; C2SP forbids them in notes.
_CONTROL_RE = re.compile("[\x00-\x09\x0b-\x1f]")
_SIZE_RE = re.compile(r"\A(?:0|[1-9][0-9]*)\Z")
_HEX8_RE = re.compile(r"\A[0-9a-fA-F]{8}\Z")


def _malformed(detail: str) -> FormatError:
    return FormatError(detail, check=Check.TLOG_CHECKPOINT)


def _name_problem(name: str) -> str | None:
    # C2SP key names: non-empty UTF-8 without Unicode spaces or "+"; "+"
    # separates the fields of a vkey and a space ends the name on a signature
    # line.
    if not name:
        return "key name is empty"
    if "+" in name:
        return f"key name {name[:60]!r} contains '+'"
    if any(ch.isspace() for ch in name):
        return f"key name {name[:60]!r} contains whitespace"
    if _CONTROL_RE.search(name):
        return f"key name {name[:60]!r} contains a control character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"key name {name[:60]!r} is not valid Unicode"
    return None


def _text_problem(text: str) -> str | None:
    if not text.endswith("\n"):
        return "note text does not end with a newline"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "note text is not valid Unicode"
    bad = _CONTROL_RE.search(text)
    if bad:
        return f"note text contains control character U+{ord(bad.group()):04X}"
    return None


def _check_name(name: str) -> None:
    problem = _name_problem(name)
    if problem:
        raise ValueError(problem)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note.

    Attributes:
        name: The key name (no whitespace, no '+').
        key_hash: The 4-byte key hash that picks the verifier key.
        signature: The signature bytes (algorithm-specific, non-empty).
    """

    name: str
    key_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.key_hash) != _KEY_HASH_SIZE:
            raise ValueError(f"key hash must be {_KEY_HASH_SIZE} bytes")
        if not self.signature:
            raise ValueError("signature is empty")

    def to_line(self) -> str:
        """Return the signature line, including its final newline."""
        return f"{_SIG_PREFIX}{self.name} {b64encode(self.key_hash + self.signature)}\n"

    @classmethod
    def _parse_line(cls, line: str, number: int) -> NoteSignature:
        where = f"signature line {number}"
        if not line.startswith(_SIG_PREFIX):
            raise _malformed(f"{where} does not start with an em dash and a space")
        name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        problem = _name_problem(name)
        if problem:
            raise _malformed(f"{where}: {problem}")
        if not space:
            raise _malformed(f"{where} has no signature after the key name")
        try:
            raw = b64decode(encoded)
        except FormatError:
            raise _malformed(f"{where}: signature is not canonical base64") from None
        if len(raw) <= _KEY_HASH_SIZE:
            raise _malformed(f"{where}: signature is shorter than 5 bytes")
        return cls(name, raw[:_KEY_HASH_SIZE], raw[_KEY_HASH_SIZE:])


@dataclass(frozen=True)
class Note:
    """A C2SP signed note: text plus signature lines, kept in order.

    Attributes:
        text: The signed text, ending in a newline.
        signatures: Every signature line, known or not (1 to 100 of them).
    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        problem = _text_problem(self.text)
        if problem:
            raise ValueError(problem)
        if not self.signatures:
            raise ValueError("a note needs at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise ValueError(f"a note may carry at most {MAX_SIGNATURES} signatures")

    @classmethod
    def parse(cls, data: bytes | str) -> Note:
        """Parse a signed note strictly.

        Args:
            data: The whole note, as UTF-8 bytes or text.

        Returns:
            The note; :meth:`to_text` reproduces ``data`` exactly.

        Raises:
            FormatError: With ``Check.TLOG_CHECKPOINT``, on any malformation:
                invalid UTF-8, control characters, no blank line before the
                signatures, no final newline, a bad signature line, or more than
                100 signatures.
        """
        if isinstance(data, bytes):
            try:
                msg = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _malformed(f"signed note is not UTF-8 (byte {exc.start})") from None
        else:
            msg = data
            try:
                msg.encode("utf-8")
            except UnicodeEncodeError:
                raise _malformed("signed note is not valid Unicode text") from None
        bad = _CONTROL_RE.search(msg)
        if bad:
            raise _malformed(
                f"signed note contains control character U+{ord(bad.group()):04X} "
                f"at offset {bad.start()}"
            )
        # The signature block follows the last blank line: the text may itself
        # contain blank lines, signature lines never do.
        split = msg.rfind("\n\n")
        if split < 0:
            raise _malformed("signed note has no blank line before its signatures")
        text, block = msg[: split + 1], msg[split + 2 :]
        if not block:
            raise _malformed("signed note has no signature lines")
        if not block.endswith("\n"):
            raise _malformed("signed note does not end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise _malformed(
                f"signed note has {len(lines)} signature lines, at most {MAX_SIGNATURES} allowed"
            )
        signatures = tuple(NoteSignature._parse_line(line, i + 1) for i, line in enumerate(lines))
        return cls(text, signatures)

    def to_text(self) -> str:
        """Serialise the note: text, blank line, signature lines."""
        return self.text + "\n" + "".join(sig.to_line() for sig in self.signatures)

    def verify(self, verifiers: Iterable[NoteVerifier]) -> tuple[NoteSignature, ...]:
        """Check the signatures made by known keys.

        A signature line belongs to a verifier when both its name and its key
        hash match. Lines from unknown keys are ignored (they stay in the note).

        Args:
            verifiers: The trusted keys.

        Returns:
            The signatures that verified, in note order (at least one).

        Raises:
            VerificationError: With ``Check.TLOG_CHECKPOINT`` if a line from a
                known key does not verify, or if no known key signed the note.
        """
        known: dict[tuple[str, bytes], list[NoteVerifier]] = {}
        for verifier in verifiers:
            known.setdefault((verifier.name, bytes(verifier.key_hash)), []).append(verifier)
        msg = self.text.encode("utf-8")
        verified: list[NoteSignature] = []
        for sig in self.signatures:
            candidates = known.get((sig.name, sig.key_hash))
            if not candidates:
                continue
            # Two trusted keys may share a name and a 4-byte hash; the line
            # is good if either of them made it.
            if not any(v.verify(msg, sig.signature) for v in candidates):
                raise VerificationError(
                    Check.TLOG_CHECKPOINT,
                    f"note signature by {sig.name} (key hash {sig.key_hash.hex()}) is invalid",
                )
            verified.append(sig)
        if not verified:
            trusted = ", ".join(sorted({f"{n}+{h.hex()}" for n, h in known})) or "none"
            found = ", ".join(f"{s.name}+{s.key_hash.hex()}" for s in self.signatures)
            raise VerificationError(
                Check.TLOG_CHECKPOINT,
                f"note is not signed by a trusted key (trusted: {trusted}; found: {found})",
            )
        return tuple(verified)


# -- keys --------------------------------------------------------------------


class NoteVerifier(Protocol):
    """A public key that checks note signatures."""

    @property
    def name(self) -> str:
        """The key name expected on signature lines."""
        ...

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key hash expected on signature lines."""
        ...

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return whether ``sig`` is a valid signature of ``msg``."""
        ...


class NoteSigner(Protocol):
    """A private key that signs notes."""

    @property
    def name(self) -> str:
        """The key name written on signature lines."""
        ...

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key hash written on signature lines."""
        ...

    def sign(self, msg: bytes) -> bytes:
        """Return the signature of ``msg``."""
        ...


def _ed25519_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ALG_ED25519 + raw).digest()


class _NoteKey:
    """What every note key has: a name and a key id whose first 4 bytes are the hint."""

    __slots__ = ("_key_id", "_name")

    def __init__(self, name: str, key_id: bytes) -> None:
        _check_name(name)
        self._name = name
        self._key_id = key_id

    @property
    def name(self) -> str:
        """The key name."""
        return self._name

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key hash that starts each signature."""
        return self._key_id[:_KEY_HASH_SIZE]

    @property
    def full_key_id(self) -> bytes:
        """The full key id: the trusted root's log id for Rekor logs."""
        return self._key_id


class Ed25519NoteVerifier(_NoteKey):
    """An Ed25519 note key (C2SP signed-note algorithm 0x01).

    The key id is SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key), the Rekor v2 log id.

    Args:
        name: The key name; for Rekor v2 the host of the log's base URL.
        public_key: The Ed25519 public key.

    Raises:
        ValueError: The name is not a valid key name.
    """

    __slots__ = ("_public_key",)

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        super().__init__(name, _ed25519_key_id(name, public_key))
        self._public_key = public_key

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public key."""
        return self._public_key

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return whether ``sig`` is a valid Ed25519 signature of ``msg``."""
        try:
            self._public_key.verify(sig, msg)
        except (InvalidSignature, ValueError):
            return False
        return True


class ECDSANoteVerifier(_NoteKey):
    """An ECDSA note key as Rekor v1 uses it (DER signature, SHA-256).

    The key id is SHA-256(SPKI DER), the Rekor v1 log id.

    Args:
        name: The key name; for Rekor v1 the host of the log's base URL.
        public_key: The EC public key.

    Raises:
        ValueError: The name is not a valid key name.
    """

    __slots__ = ("_public_key",)

    def __init__(self, name: str, public_key: ec.EllipticCurvePublicKey) -> None:
        spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        super().__init__(name, hashlib.sha256(spki).digest())
        self._public_key = public_key

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key."""
        return self._public_key

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return whether ``sig`` is a valid DER ECDSA-SHA256 signature of ``msg``."""
        try:
            self._public_key.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


class _NoteSignerBase:
    """Name and key hash of a signer come from its matching verifier."""

    __slots__ = ("_verifier",)

    _verifier: Ed25519NoteVerifier | ECDSANoteVerifier

    @property
    def name(self) -> str:
        """The key name."""
        return self._verifier.name

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key hash."""
        return self._verifier.key_hash


class Ed25519NoteSigner(_NoteSignerBase):
    """Signs notes with an Ed25519 private key.

    Args:
        name: The key name.
        private_key: The Ed25519 private key.

    Raises:
        ValueError: The name is not a valid key name.
    """

    __slots__ = ("_private_key",)

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._verifier: Ed25519NoteVerifier = Ed25519NoteVerifier(name, private_key.public_key())

    @property
    def verifier(self) -> Ed25519NoteVerifier:
        """The matching verifier."""
        return self._verifier

    def sign(self, msg: bytes) -> bytes:
        """Return the Ed25519 signature of ``msg``."""
        return self._private_key.sign(msg)


class ECDSANoteSigner(_NoteSignerBase):
    """Signs notes with an ECDSA private key, Rekor v1 style.

    Args:
        name: The key name.
        private_key: The EC private key.

    Raises:
        ValueError: The name is not a valid key name.
    """

    __slots__ = ("_private_key",)

    def __init__(self, name: str, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key
        self._verifier: ECDSANoteVerifier = ECDSANoteVerifier(name, private_key.public_key())

    @property
    def verifier(self) -> ECDSANoteVerifier:
        """The matching verifier."""
        return self._verifier

    def sign(self, msg: bytes) -> bytes:
        """Return the DER ECDSA-SHA256 signature of ``msg``."""
        return self._private_key.sign(msg, ec.ECDSA(hashes.SHA256()))


def sign_note(
    text: str, signers: Iterable[NoteSigner], existing: Iterable[NoteSignature] = ()
) -> Note:
    """Sign ``text`` and return the note.

    As in the Go reference, existing signatures come first and a new signature
    replaces an existing one with the same name and key hash.

    Args:
        text: The text to sign; must end with a newline.
        signers: The keys to sign with.
        existing: Signatures to keep, such as earlier cosignatures.

    Returns:
        The signed note.

    Raises:
        ValueError: Invalid text, a signer with an invalid name, no signature at
            all, or more than 100.
    """
    problem = _text_problem(text)
    if problem:
        raise ValueError(problem)
    msg = text.encode("utf-8")
    fresh = [NoteSignature(s.name, bytes(s.key_hash), s.sign(msg)) for s in signers]
    replaced = {(sig.name, sig.key_hash) for sig in fresh}
    kept = [sig for sig in existing if (sig.name, sig.key_hash) not in replaced]
    return Note(text, (*kept, *fresh))


# -- vkeys -------------------------------------------------------------------


def _bad_vkey(detail: str) -> FormatError:
    return FormatError(f"verifier key: {detail}")


def parse_vkey(vkey: str) -> Ed25519NoteVerifier:
    """Parse a C2SP verifier key ``name+hexhash+base64(0x01 ‖ key)``.

    Args:
        vkey: The verifier key string.

    Returns:
        The verifier.

    Raises:
        FormatError: Malformed string, an algorithm other than Ed25519, or a
            key hash that does not match the name and key.
    """
    name, _, rest = vkey.partition("+")
    hash_hex, _, key_b64 = rest.partition("+")
    problem = _name_problem(name)
    if problem:
        raise _bad_vkey(problem)
    if not _HEX8_RE.match(hash_hex):
        raise _bad_vkey("key hash is not 8 hexadecimal digits")
    try:
        key = b64decode(key_b64)
    except FormatError:
        raise _bad_vkey("key is not canonical base64") from None
    if not key:
        raise _bad_vkey("key is empty")
    computed = hashlib.sha256(name.encode("utf-8") + b"\n" + key).digest()[:_KEY_HASH_SIZE]
    if computed != bytes.fromhex(hash_hex):
        raise _bad_vkey(f"key hash {hash_hex} does not match the key (expected {computed.hex()})")
    if key[:1] != _ALG_ED25519:
        raise _bad_vkey(f"unsupported key algorithm 0x{key[0]:02x}")
    if len(key) != 33:
        raise _bad_vkey(f"Ed25519 key is {len(key) - 1} bytes, expected 32")
    return Ed25519NoteVerifier(name, Ed25519PublicKey.from_public_bytes(key[1:]))


def make_vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """Return the C2SP verifier key string for an Ed25519 note key.

    Raises:
        ValueError: The name is not a valid key name.
    """
    verifier = Ed25519NoteVerifier(name, public_key)
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{name}+{verifier.key_hash.hex()}+{b64encode(_ALG_ED25519 + raw)}"


# -- checkpoints ---------------------------------------------------------------


def _checkpoint_problem(
    origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...]
) -> str | None:
    if not origin:
        return "checkpoint origin line is empty"
    if not 0 <= size < 2**64:
        return f"checkpoint tree size {size} is outside the uint64 range"
    if len(root_hash) != _ROOT_HASH_SIZE:
        return f"checkpoint root hash is {len(root_hash)} bytes, expected {_ROOT_HASH_SIZE}"
    for i, ext in enumerate(extensions):
        if not ext:
            return f"checkpoint extension line {i + 1} is empty"
    for line in (origin, *extensions):
        if "\n" in line:
            return "checkpoint line contains a newline"
        if _CONTROL_RE.search(line):
            return "checkpoint line contains a control character"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the body of a log's signed tree head.

    Attributes:
        origin: The log's origin line (Rekor v2: host of its base URL).
        size: The tree size.
        root_hash: The 32-byte SHA-256 root hash.
        extensions: Further non-empty lines (Rekor v1 adds ``Timestamp: …``).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _checkpoint_problem(self.origin, self.size, self.root_hash, self.extensions)
        if problem:
            raise ValueError(problem)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse checkpoint text (a note's text, including its final newline).

        Raises:
            FormatError: With ``Check.TLOG_CHECKPOINT`` if the text is not a
                checkpoint: fewer than three lines, a size with leading zeros or
                out of range, a root hash that is not base64 of 32 bytes, or an
                empty extension line.
        """
        problem = _text_problem(text)
        if problem:
            raise _malformed(problem.replace("note text", "checkpoint"))
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise _malformed("checkpoint needs origin, size and root hash lines")
        origin, size_line, root_line, *extensions = lines
        if not _SIZE_RE.match(size_line):
            raise _malformed(f"checkpoint tree size {size_line[:30]!r} is not a decimal number")
        size = int(size_line)
        try:
            root_hash = b64decode(root_line)
        except FormatError:
            raise _malformed("checkpoint root hash is not canonical base64") from None
        problem = _checkpoint_problem(origin, size, root_hash, tuple(extensions))
        if problem:
            raise _malformed(problem)
        return cls(origin, size, root_hash, tuple(extensions))

    def to_text(self) -> str:
        """Serialise as note text, ending in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)
