"""Tests for toolkit.note: C2SP signed notes, vkeys and tlog checkpoints."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from tests.conftest import require_vectors
from toolkit import merkle, note
from toolkit.encoding import b64decode, b64encode
from toolkit.errors import Check, FormatError, VerificationError

EM = "\u2014"

# C2SP signed-note example verifier key.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"

# The example of golang.org/x/mod/sumdb/note (ExampleOpen / ExampleSign).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG_LINE = (
    f"{EM} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# A corrupted copy of that line that circulates (same key hash and R prefix,
# different tail); it must not verify.
GO_SIG_LINE_CORRUPT = (
    f"{EM} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNs4w0QSMnr5GaOtuo7QXfJqDSJ4DWWoLqPYp5yNTwAHYbAY=\n"
)

ROOT = bytes(range(32))


def _ed_signer(name: str = "log.example") -> note.Ed25519NoteSigner:
    return note.Ed25519NoteSigner(name, Ed25519PrivateKey.generate())


def _checkpoint_text(size: int = 5) -> str:
    return note.Checkpoint("log.example", size, ROOT).to_text()


def _raises_format(data: bytes | str) -> FormatError:
    with pytest.raises(FormatError) as info:
        note.Note.parse(data)
    assert info.value.check == Check.TLOG_CHECKPOINT
    assert info.value.code == "tlog.checkpoint"
    return info.value


def _raises_verification(n: note.Note, verifiers: list[note.NoteVerifier]) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        n.verify(verifiers)
    assert info.value.check == Check.TLOG_CHECKPOINT
    return info.value


# -- vkeys -----------------------------------------------------------------------


def test_c2sp_vkey_parses_and_hash_recomputes() -> None:
    verifier = note.parse_vkey(C2SP_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_hash.hex() == "530d903a"
    key = b64decode(C2SP_VKEY.split("+", 2)[2])
    assert hashlib.sha256(b"example.com/foo\n" + key).digest()[:4].hex() == "530d903a"
    assert verifier.full_key_id[:4] == verifier.key_hash
    assert note.make_vkey(verifier.name, verifier.public_key) == C2SP_VKEY


def test_vkey_accepts_upper_case_hash_like_go() -> None:
    name, hash_hex, key = C2SP_VKEY.split("+", 2)
    assert note.parse_vkey(f"{name}+{hash_hex.upper()}+{key}").key_hash.hex() == hash_hex


def _vkey_with(name: str, key: bytes) -> str:
    key_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    return f"{name}+{key_hash.hex()}+{b64encode(key)}"


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        ("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match"),
        ("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match"),
        ("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "empty"),
        ("a b+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "whitespace"),
        ("example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "8 hexadecimal"),
        ("example.com/foo+530d903a", "key is empty"),
        ("example.com/foo+530d903a+Aeky eRrm", "base64"),
        ("example.com/foo", "8 hexadecimal"),
        (_vkey_with("n", b""), "empty"),
        (_vkey_with("n", b"\x02" + bytes(32)), "unsupported key algorithm 0x02"),
        (_vkey_with("n", b"\x01" + bytes(31)), "expected 32"),
    ],
)
def test_bad_vkeys_rejected(vkey: str, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        note.parse_vkey(vkey)


def test_make_vkey_round_trip_and_name_check() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    vkey = note.make_vkey("witness.example/w1", key)
    parsed = note.parse_vkey(vkey)
    assert parsed.key_hash == note.Ed25519NoteVerifier("witness.example/w1", key).key_hash
    with pytest.raises(ValueError, match=r"\+"):
        note.make_vkey("a+b", key)


# -- the golang.org/x/mod/sumdb/note example ----------------------------------------


def test_go_example_note_verifies() -> None:
    verifier = note.parse_vkey(GO_VKEY)
    msg = GO_TEXT + "\n" + GO_SIG_LINE
    n = note.Note.parse(msg.encode())
    assert n.text == GO_TEXT
    verified = n.verify([verifier])
    assert [(s.name, s.key_hash.hex()) for s in verified] == [("PeterNeumann", "c74f20a3")]
    assert n.to_text() == msg


def test_go_example_signing_key_reproduces_the_signature() -> None:
    # Ed25519 is deterministic, so signing with the example's private key
    # must give the published line byte for byte.
    seed = b64decode(GO_SKEY_B64)
    assert seed[0] == 1
    signer = note.Ed25519NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:]))
    assert note.make_vkey(signer.name, signer.verifier.public_key) == GO_VKEY
    assert note.sign_note(GO_TEXT, [signer]).to_text() == GO_TEXT + "\n" + GO_SIG_LINE


def test_go_example_rejects_tampering() -> None:
    verifier = note.parse_vkey(GO_VKEY)
    corrupt = note.Note.parse(GO_TEXT + "\n" + GO_SIG_LINE_CORRUPT)
    err = _raises_verification(corrupt, [verifier])
    assert "PeterNeumann" in err.detail
    altered = note.Note.parse(GO_TEXT.replace("answer", "Answer") + "\n" + GO_SIG_LINE)
    _raises_verification(altered, [verifier])


# -- signing and verifying ------------------------------------------------------------


def test_ed25519_round_trip() -> None:
    signer = _ed_signer()
    n = note.sign_note(_checkpoint_text(), [signer])
    parsed = note.Note.parse(n.to_text().encode())
    assert parsed == n
    assert parsed.verify([signer.verifier]) == n.signatures
    assert n.signatures[0].key_hash == signer.key_hash
    assert len(n.signatures[0].signature) == 64


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_ecdsa_round_trip(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    signer = note.ECDSANoteSigner("rekor.example", key)
    n = note.sign_note(_checkpoint_text(), [signer])
    verifier = note.ECDSANoteVerifier("rekor.example", key.public_key())
    assert note.Note.parse(n.to_text()).verify([verifier]) == n.signatures
    spki = verifier.full_key_id
    assert verifier.key_hash == spki[:4] == signer.key_hash
    # DER ECDSA signatures start with a SEQUENCE tag.
    assert n.signatures[0].signature[0] == 0x30


def test_verify_needs_a_trusted_signature() -> None:
    signer = _ed_signer()
    n = note.sign_note(_checkpoint_text(), [signer])
    stranger = _ed_signer()
    err = _raises_verification(n, [stranger.verifier])
    assert "not signed by a trusted key" in err.detail
    _raises_verification(n, [])
    # Same name, different key: the key hash differs, so the line is not
    # "from" that verifier and the note counts as unsigned.
    impostor = note.Ed25519NoteVerifier(signer.name, Ed25519PrivateKey.generate().public_key())
    err = _raises_verification(n, [impostor])
    assert "not signed by a trusted key" in err.detail


def test_verify_rejects_bad_signature_from_known_key() -> None:
    good = _ed_signer("log.example")
    other = _ed_signer("witness.example")
    n = note.sign_note(_checkpoint_text(), [good, other])
    sig = n.signatures[1]
    forged = note.NoteSignature(sig.name, sig.key_hash, bytes(64))
    bad = note.Note(n.text, (n.signatures[0], forged))
    # The log's good signature does not excuse a bad line from a known witness.
    err = _raises_verification(bad, [good.verifier, other.verifier])
    assert "witness.example" in err.detail
    assert "invalid" in err.detail
    # With only the log trusted, the witness line is an unknown line: ignored.
    assert bad.verify([good.verifier]) == (n.signatures[0],)


def test_verify_short_signature_is_invalid_not_a_crash() -> None:
    signer = _ed_signer()
    text = _checkpoint_text()
    short = note.Note(text, (note.NoteSignature(signer.name, signer.key_hash, b"\x01"),))
    _raises_verification(short, [signer.verifier])
    ecdsa = note.ECDSANoteSigner("r.example", ec.generate_private_key(ec.SECP256R1()))
    garbled = note.Note(text, (note.NoteSignature(ecdsa.name, ecdsa.key_hash, b"\x30\x00"),))
    _raises_verification(garbled, [ecdsa.verifier])


def test_cosignature_lines_are_kept_and_round_trip() -> None:
    log = _ed_signer("log.example")
    n = note.sign_note(_checkpoint_text(), [log])
    timestamped = bytes.fromhex("12345678") + bytes(8) + bytes(64)
    other = bytes.fromhex("9abcdef0") + b"\xff" * 72
    cosig = (
        f"{EM} witness.example/w1 {b64encode(timestamped)}\n"
        f"{EM} witness.example/w2 {b64encode(other)}\n"
    )
    msg = n.to_text() + cosig
    parsed = note.Note.parse(msg)
    assert [s.name for s in parsed.signatures] == [
        "log.example",
        "witness.example/w1",
        "witness.example/w2",
    ]
    assert parsed.to_text() == msg
    assert parsed.verify([log.verifier]) == (parsed.signatures[0],)


def test_sign_note_keeps_existing_and_replaces_same_key() -> None:
    log = _ed_signer("log.example")
    witness = _ed_signer("witness.example")
    text = _checkpoint_text()
    first = note.sign_note(text, [log])
    cosigned = note.sign_note(text, [witness], existing=first.signatures)
    assert [s.name for s in cosigned.signatures] == ["log.example", "witness.example"]
    assert cosigned.verify([log.verifier, witness.verifier]) == cosigned.signatures
    stale = note.NoteSignature(witness.name, witness.key_hash, b"old")
    resigned = note.sign_note(text, [witness], existing=(*first.signatures, stale))
    assert [s.signature for s in resigned.signatures if s.name == witness.name] != [b"old"]
    assert len(resigned.signatures) == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no newline", "newline"),
        ("tab\there\n", "control character"),
        ("cr\r\n", "control character"),
    ],
)
def test_sign_note_rejects_bad_text(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        note.sign_note(text, [_ed_signer()])


def test_sign_note_needs_a_signature() -> None:
    with pytest.raises(ValueError, match="at least one"):
        note.sign_note(_checkpoint_text(), [])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\tname", "nbsp\u00a0name"])
def test_invalid_key_names_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="key name"):
        note.Ed25519NoteSigner(name, Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="key name"):
        note.NoteSignature(name, b"1234", b"s")


def test_signature_and_note_constructors_validate() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        note.NoteSignature("n", b"123", b"s")
    with pytest.raises(ValueError, match="empty"):
        note.NoteSignature("n", b"1234", b"")
    sig = note.NoteSignature("n", b"1234", b"s")
    with pytest.raises(ValueError, match="at most 100"):
        note.Note("t\n", (sig,) * 101)
    assert len(note.Note("t\n", (sig,) * 100).signatures) == 100


# -- malformed notes ---------------------------------------------------------------


def _sig_line(name: str = "log.example", raw: bytes = b"\x01\x02\x03\x04sig") -> str:
    return f"{EM} {name} {b64encode(raw)}\n"


GOOD_TEXT = "log.example\n5\n" + b64encode(ROOT) + "\n"


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (GOOD_TEXT + _sig_line(), "no blank line"),
        ("no newline at all", "no blank line"),
        (GOOD_TEXT + "\n" + _sig_line().rstrip("\n"), "does not end with a newline"),
        (GOOD_TEXT + "\n", "no signature lines"),
        (GOOD_TEXT + "\n" + _sig_line("a+b"), "contains '+'"),
        (GOOD_TEXT + "\n" + _sig_line(""), "key name is empty"),
        (GOOD_TEXT + "\n" + f"{EM}  {b64encode(b'12345')}\n", "key name is empty"),
        (GOOD_TEXT + "\n" + f"{EM} name\u3000x {b64encode(b'12345')}\n", "whitespace"),
        ("ctrl\x01char\n\n" + _sig_line(), "control character U+0001"),
        ("crlf\r\n\r\n" + _sig_line(), "control character U+000D"),
        (GOOD_TEXT + "\n" + _sig_line() + "\t\n", "control character U+0009"),
        (GOOD_TEXT + "\n" + f"{EM} log.example !!!!\n", "canonical base64"),
        (GOOD_TEXT + "\n" + f"{EM} log.example AQIDBAV=\n", "canonical base64"),
        (GOOD_TEXT + "\n" + f"{EM} log.example AQIDBA==\n", "shorter than 5 bytes"),
        (GOOD_TEXT + "\n" + f"{EM} log.example\n", "no signature after the key name"),
        (GOOD_TEXT + "\n" + f"- log.example {b64encode(b'12345')}\n", "em dash"),
        (GOOD_TEXT + "\n" + f"{EM}log.example {b64encode(b'12345')}\n", "em dash"),
        (GOOD_TEXT + "\n" + _sig_line() + "trailing\n", "signature line 2"),
        (GOOD_TEXT + "\n" + _sig_line() * 101, "101 signature lines"),
    ],
)
def test_malformed_notes_rejected(msg: str, reason: str) -> None:
    err = _raises_format(msg)
    assert reason in err.detail
    err = _raises_format(msg.encode())
    assert reason in err.detail


def test_hundred_signatures_are_allowed() -> None:
    msg = GOOD_TEXT + "\n" + _sig_line() * 100
    assert len(note.Note.parse(msg).signatures) == 100


def test_invalid_utf8_rejected() -> None:
    err = _raises_format(b"caf\xc3(\n\n" + _sig_line().encode())
    assert "not UTF-8" in err.detail
    err = _raises_format("lone \ud800 surrogate\n\n" + _sig_line())
    assert "not valid Unicode" in err.detail


def test_text_may_contain_blank_lines() -> None:
    # The signature block starts after the *last* blank line.
    msg = "para one\n\npara two\n\n\n" + _sig_line()
    n = note.Note.parse(msg)
    assert n.text == "para one\n\npara two\n\n"
    assert n.to_text() == msg


def test_unicode_text_and_names_round_trip() -> None:
    msg = "héllo wörld ✓\n\n" + _sig_line("名前.example")
    n = note.Note.parse(msg.encode())
    assert n.signatures[0].name == "名前.example"
    assert n.to_text().encode() == msg.encode()


# -- checkpoints ----------------------------------------------------------------------


def test_checkpoint_round_trip() -> None:
    cp = note.Checkpoint("example.com/log", 42, ROOT, ("Timestamp: 1", "x y z"))
    text = cp.to_text()
    assert text == f"example.com/log\n42\n{b64encode(ROOT)}\nTimestamp: 1\nx y z\n"
    assert note.Checkpoint.from_text(text) == cp
    zero = note.Checkpoint.from_text(f"o\n0\n{b64encode(merkle.EMPTY_ROOT)}\n")
    assert zero.size == 0
    assert zero.extensions == ()
    top = note.Checkpoint.from_text(f"o\n{2**64 - 1}\n{b64encode(ROOT)}\n")
    assert top.size == 2**64 - 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"o\n1\n{b64encode(ROOT)}", "does not end with a newline"),
        ("o\n1\n", "needs origin, size and root hash"),
        (f"\n1\n{b64encode(ROOT)}\n", "origin line is empty"),
        (f"o\n01\n{b64encode(ROOT)}\n", "not a decimal number"),
        (f"o\n-1\n{b64encode(ROOT)}\n", "not a decimal number"),
        (f"o\n+1\n{b64encode(ROOT)}\n", "not a decimal number"),
        (f"o\n 1\n{b64encode(ROOT)}\n", "not a decimal number"),
        (f"o\n\u0661\n{b64encode(ROOT)}\n", "not a decimal number"),
        (f"o\n\n{b64encode(ROOT)}\n", "not a decimal number"),
        (f"o\n{2**64}\n{b64encode(ROOT)}\n", "uint64"),
        (f"o\n1\n{b64encode(ROOT[:31])}\n", "31 bytes"),
        ("o\n1\nnot base64!\n", "canonical base64"),
        (f"o\n1\n{b64encode(ROOT)}\n\n", "extension line 1 is empty"),
        (f"o\n1\n{b64encode(ROOT)}\next\n\n", "extension line 2 is empty"),
        (f"o\x00\n1\n{b64encode(ROOT)}\n", "control character"),
    ],
)
def test_bad_checkpoints_rejected(text: str, reason: str) -> None:
    with pytest.raises(FormatError) as info:
        note.Checkpoint.from_text(text)
    assert info.value.check == Check.TLOG_CHECKPOINT
    assert reason in info.value.detail


def test_checkpoint_constructor_validates() -> None:
    with pytest.raises(ValueError, match="origin"):
        note.Checkpoint("", 1, ROOT)
    with pytest.raises(ValueError, match="uint64"):
        note.Checkpoint("o", -1, ROOT)
    with pytest.raises(ValueError, match="newline"):
        note.Checkpoint("o", 1, ROOT, ("a\nb",))


# -- real checkpoints from the shared Sigstore vectors -------------------------------


@dataclass(frozen=True)
class LoggedEntry:
    entry: dict[str, Any]
    tlog: dict[str, Any]

    @property
    def proof(self) -> dict[str, Any]:
        value: dict[str, Any] = self.entry["inclusionProof"]
        return value

    @property
    def envelope(self) -> str:
        value: str = self.proof["checkpoint"]["envelope"]
        return value

    @property
    def host(self) -> str:
        url: str = self.tlog["baseUrl"]
        host = urlsplit(url).hostname
        assert host
        return host

    def public_key_der(self) -> bytes:
        raw: str = self.tlog["publicKey"]["rawBytes"]
        return b64decode(raw)


def _load_case(case: str, base_url: str) -> LoggedEntry:
    folder: Path = require_vectors() / case
    bundle = json.loads((folder / "bundle.sigstore.json").read_text())
    trusted_root = json.loads((folder / "trusted_root.json").read_text())
    (entry,) = bundle["verificationMaterial"]["tlogEntries"]
    (tlog,) = [t for t in trusted_root["tlogs"] if t["baseUrl"] == base_url]
    assert entry["logId"]["keyId"] == tlog["logId"]["keyId"]
    return LoggedEntry(entry, tlog)


def _check_inclusion(logged: LoggedEntry, checkpoint: note.Checkpoint) -> None:
    proof = logged.proof
    assert checkpoint.size == int(proof["treeSize"])
    assert checkpoint.root_hash == b64decode(proof["rootHash"])
    leaf = merkle.leaf_hash(b64decode(logged.entry["canonicalizedBody"]))
    hashes = [b64decode(h) for h in proof["hashes"]]
    index = int(proof["logIndex"])
    merkle.verify_inclusion(leaf, index, checkpoint.size, hashes, checkpoint.root_hash)
    with pytest.raises(VerificationError) as info:
        merkle.verify_inclusion(
            merkle.leaf_hash(b"other"), index, checkpoint.size, hashes, checkpoint.root_hash
        )
    assert info.value.check == Check.TLOG_INCLUSION


def _ed25519_verifier(logged: LoggedEntry) -> note.Ed25519NoteVerifier:
    key = load_der_public_key(logged.public_key_der())
    assert isinstance(key, Ed25519PublicKey)
    verifier = note.Ed25519NoteVerifier(logged.host, key)
    assert verifier.full_key_id == b64decode(logged.tlog["logId"]["keyId"])
    return verifier


def test_rekor_v2_checkpoint_from_vectors() -> None:
    logged = _load_case("staging-rekor2-tsa-happy", "https://log2025-alpha1.rekor.sigstage.dev")
    n = note.Note.parse(logged.envelope)
    assert n.to_text() == logged.envelope
    checkpoint = note.Checkpoint.from_text(n.text)
    assert checkpoint.origin == "log2025-alpha1.rekor.sigstage.dev"
    assert checkpoint.extensions == ()
    assert checkpoint.to_text() == n.text
    verifier = _ed25519_verifier(logged)
    assert [s.name for s in n.verify([verifier])] == [logged.host]
    _check_inclusion(logged, checkpoint)
    # A checkpoint whose size was altered no longer verifies.
    tampered = note.Note(n.text.replace("\n646\n", "\n647\n"), n.signatures)
    with pytest.raises(VerificationError) as info:
        tampered.verify([verifier])
    assert info.value.check == Check.TLOG_CHECKPOINT


def test_rekor_v2_checkpoint_with_witness_cosignatures() -> None:
    logged = _load_case("staging-rekor2-dsse-happy", "https://log2025-alpha3.rekor.sigstage.dev")
    n = note.Note.parse(logged.envelope.encode())
    assert n.to_text() == logged.envelope
    assert len(n.signatures) == 4
    assert [s.name for s in n.signatures[1:]] == [
        "witness.stagemole.eu",
        "staging.witness.transparency.goog/ring-any-bells",
        "witness.navigli.sunlight.geomys.org",
    ]
    verified = n.verify([_ed25519_verifier(logged)])
    assert verified == (n.signatures[0],)
    checkpoint = note.Checkpoint.from_text(n.text)
    _check_inclusion(logged, checkpoint)


def test_rekor_v1_checkpoint_from_vectors() -> None:
    logged = _load_case("staging-v0.1-happy", "https://rekor.sigstage.dev")
    n = note.Note.parse(logged.envelope)
    assert n.to_text() == logged.envelope
    checkpoint = note.Checkpoint.from_text(n.text)
    assert checkpoint.origin == "rekor.sigstage.dev - 8050909264565447525"
    assert checkpoint.extensions == ("Timestamp: 1682468469199678948",)
    assert checkpoint.to_text() == n.text
    key = load_der_public_key(logged.public_key_der())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    verifier = note.ECDSANoteVerifier("rekor.sigstage.dev", key)
    assert verifier.key_hash == hashlib.sha256(logged.public_key_der()).digest()[:4]
    assert verifier.full_key_id == b64decode(logged.tlog["logId"]["keyId"])
    assert n.verify([verifier]) == n.signatures
    # For Rekor v1 the key name is the host, not the origin, which is not even
    # a valid key name.
    with pytest.raises(ValueError, match="whitespace"):
        note.ECDSANoteVerifier(checkpoint.origin, key)
    _check_inclusion(logged, checkpoint)
