"""Property tests for toolkit.note: parsers return a value or FormatError, nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import note
from toolkit.encoding import b64encode
from toolkit.errors import Check, FormatError

FAST = settings(max_examples=300, deadline=None)

EM = "\u2014"
# Pieces that matter to the grammar, so random notes get past the first checks.
PIECES = [
    "\n",
    "\n\n",
    " ",
    f"{EM} ",
    EM,
    "+",
    "=",
    "AQIDBAU=",
    "AQIDBAUG",
    "log.example",
    "0",
    "12",
    "\t",
    "\u3000",
    "é",
    "A",
]
grammarish = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)
names = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="+ \u0085"
    ),
    min_size=1,
    max_size=20,
)
texts = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20), max_size=5
).map(lambda lines: "".join(line + "\n" for line in lines) or "\n")


def _parse_or_format_error(data: bytes | str) -> None:
    try:
        parsed = note.Note.parse(data)
    except FormatError as exc:
        assert exc.check == Check.TLOG_CHECKPOINT
    else:
        text = data.decode() if isinstance(data, bytes) else data
        assert parsed.to_text() == text


@FAST
@given(st.binary(max_size=300))
def test_note_parse_bytes(data: bytes) -> None:
    _parse_or_format_error(data)


@FAST
@given(st.one_of(st.text(max_size=200), grammarish))
def test_note_parse_text(data: str) -> None:
    _parse_or_format_error(data)


@FAST
@given(
    text=texts,
    sigs=st.lists(
        st.tuples(names, st.binary(min_size=4, max_size=4), st.binary(min_size=1, max_size=80)),
        min_size=1,
        max_size=5,
    ),
)
def test_valid_notes_round_trip(text: str, sigs: list[tuple[str, bytes, bytes]]) -> None:
    n = note.Note(text, tuple(note.NoteSignature(*sig) for sig in sigs))
    encoded = n.to_text().encode()
    assert note.Note.parse(encoded) == n
    assert note.Note.parse(encoded).to_text().encode() == encoded


@FAST
@given(st.one_of(st.text(max_size=200), grammarish))
def test_checkpoint_from_text(text: str) -> None:
    try:
        checkpoint = note.Checkpoint.from_text(text)
    except FormatError as exc:
        assert exc.check == Check.TLOG_CHECKPOINT
    else:
        assert checkpoint.to_text() == text


@FAST
@given(
    origin=names,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1),
        max_size=3,
    ),
)
def test_checkpoints_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = note.Checkpoint(origin, size, root, tuple(extensions))
    text = checkpoint.to_text()
    assert note.Checkpoint.from_text(text) == checkpoint
    assert text.splitlines()[2] == b64encode(root)
