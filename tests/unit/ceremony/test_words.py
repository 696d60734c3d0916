"""Tests for ceremony.words: the PGP word list."""

from __future__ import annotations

import pytest

from ceremony.words import EVEN_WORDS, ODD_WORDS, hash_lines, hex_to_words, to_words


def test_lists_have_256_distinct_words_each() -> None:
    assert len(EVEN_WORDS) == 256
    assert len(ODD_WORDS) == 256
    assert len(set(EVEN_WORDS)) == 256
    assert len(set(ODD_WORDS)) == 256
    # A word must tell its position's parity on its own.
    assert not {w.lower() for w in EVEN_WORDS} & {w.lower() for w in ODD_WORDS}


def test_even_list_is_in_alphabetical_order() -> None:
    # The published even list is alphabetical; a slip when copying it would show here.
    lowered = [w.lower() for w in EVEN_WORDS]
    assert lowered == sorted(lowered)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\x00", ["aardvark", "adroitness"]),
        (b"\xff\xff", ["Zulu", "Yucatan"]),
        (b"\x00\xff\xff\x00", ["aardvark", "Yucatan", "Zulu", "adroitness"]),
        (b"", []),
    ],
)
def test_known_values(data: bytes, words: list[str]) -> None:
    assert to_words(data) == words


def test_published_example_fingerprint() -> None:
    # The example fingerprint the PGP word list is usually illustrated with.
    fingerprint = "E582 94F2 E9A2 2748 6E8B 061B 31CC 528F D7FA 3F19".replace(" ", "")
    assert hex_to_words(fingerprint) == (
        "topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator goldfish Medusa "
        "afflict bravado chatter revolver Dupont midsummer stopwatch whimsical cowbell bottomless"
    )


def test_hex_case_does_not_matter() -> None:
    assert hex_to_words("00ff") == hex_to_words("00FF") == "aardvark Yucatan"


@pytest.mark.parametrize("bad", ["0", "zz", "00 ff", "0x00", "abc"])
def test_hex_to_words_rejects_non_hex(bad: str) -> None:
    with pytest.raises(ValueError, match="hex digits"):
        hex_to_words(bad)


def test_hash_lines_groups_hex_and_words() -> None:
    lines = hash_lines("00ff" * 16)
    assert len(lines) == 8
    assert lines[0] == "00ff00ff  aardvark Yucatan aardvark Yucatan"
    assert hash_lines("ABCD", group=1) == ["ab  rhythm", "cd  sandalwood"]
    with pytest.raises(ValueError, match="group"):
        hash_lines("00", group=0)
