"""Fuzz RFC 3161 parsing and verification with mutated real timestamp tokens.

Whatever the bytes, :func:`parse_timestamp_response` and
:meth:`TimestampVerifier.verify` may only fail with the toolkit's own
``FormatError`` / ``VerificationError`` (check ``time.tsa``). The DER reader
(``_parse``) is called directly, without the public function's catch-all
safety net, so any other exception it lets escape fails the test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import require_vectors
from tests.support.tsa_tokens import Der, load_authorities, load_bundle_timestamps
from toolkit.errors import Check, FormatError, VerificationError
from toolkit.verify._rfc3161 import TimestampVerifier, _parse, parse_timestamp_response


@dataclass(frozen=True)
class Corpus:
    tokens: tuple[tuple[bytes, bytes], ...]  # (TimeStampResp DER, timestamped message)
    verifier: TimestampVerifier


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    vectors = require_vectors()
    authorities = []
    tokens: list[tuple[bytes, bytes]] = []
    for case in (
        "staging-rekor2-tsa-happy",
        "staging-rekor2-dsse-happy",
        "tsa-local-extra-bad-timestamp",
    ):
        authorities.extend(load_authorities(vectors / case / "trusted_root.json"))
        ders, message = load_bundle_timestamps(vectors / case / "bundle.sigstore.json")
        tokens.extend((der, message) for der in ders)
    return Corpus(tuple(tokens), TimestampVerifier(authorities))


@st.composite
def mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, int]]:
    ops = st.tuples(
        st.sampled_from(["flip", "set", "delete", "insert", "truncate"]),
        st.integers(0, size - 1),
        st.integers(0, 255),
    )
    return draw(st.lists(ops, min_size=1, max_size=4))


def mutate(der: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(der)
    for op, where, value in ops:
        if not data:
            break
        pos = where % len(data)
        if op == "flip":
            data[pos] ^= 1 << (value % 8)
        elif op == "set":
            data[pos] = value
        elif op == "delete":
            del data[pos]
        elif op == "insert":
            data.insert(pos, value)
        else:
            del data[pos:]
    return bytes(data)


def check(corpus: Corpus, der: bytes, message: bytes) -> None:
    try:
        ts = _parse(der)  # the reader itself: nothing but our errors may escape
        corpus.verifier.verify(ts, message)
    except (FormatError, VerificationError) as exc:
        assert exc.check == Check.TIME_TSA
        assert "\n" not in exc.message
        with pytest.raises(type(exc)):  # the public entry point agrees
            corpus.verifier.verify(parse_timestamp_response(der), message)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_tokens_fail_cleanly(corpus: Corpus, data: st.DataObject) -> None:
    der, message = data.draw(st.sampled_from(corpus.tokens))
    ops = data.draw(mutations(len(der)))
    check(corpus, mutate(der, ops), message)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_spliced_tokens_fail_cleanly(corpus: Corpus, data: st.DataObject) -> None:
    (a, message), (b, _) = (data.draw(st.sampled_from(corpus.tokens)) for _ in range(2))
    cut_a = data.draw(st.integers(0, len(a)))
    cut_b = data.draw(st.integers(0, len(b)))
    check(corpus, a[:cut_a] + b[cut_b:], message)


@st.composite
def structural_edits(draw: st.DrawFn, tree: Der) -> Der:
    """Edit a few elements of a DER tree: lengths, tags, children, contents."""
    for _ in range(draw(st.integers(1, 3))):
        nodes = tree.walk()
        _, node = draw(st.sampled_from(nodes))
        op = draw(st.sampled_from(["length", "tag", "drop", "dup", "insert", "content", "unwrap"]))
        if op == "length":
            node.length_form = draw(st.sampled_from(["long", "padded", "indefinite"]))
        elif op == "tag":
            node.tag = draw(st.integers(0, 255))
        elif op == "content":
            node.content = draw(st.binary(max_size=24))
            node.children = None
        elif node.children:
            i = draw(st.integers(0, len(node.children) - 1))
            if op == "drop":
                del node.children[i]
            elif op == "dup":
                node.children.insert(i, node.children[i])
            elif op == "insert":
                node.children.insert(i, Der(draw(st.integers(0, 255)), draw(st.binary(max_size=8))))
            else:  # unwrap: replace a child by its own children
                grandchildren = node.children[i].children or []
                node.children[i : i + 1] = grandchildren
    return tree


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_structurally_edited_tokens_fail_cleanly(corpus: Corpus, data: st.DataObject) -> None:
    der, message = data.draw(st.sampled_from(corpus.tokens))
    tree = data.draw(structural_edits(Der.parse(der)))
    try:
        edited = tree.encode()
    except (ValueError, OverflowError):  # e.g. a tag byte the encoder cannot write
        return
    check(corpus, edited, message)


def test_unmutated_corpus_verifies(corpus: Corpus) -> None:
    ok = 0
    for der, message in corpus.tokens:
        try:
            corpus.verifier.verify(parse_timestamp_response(der), message)
            ok += 1
        except VerificationError:
            pass
    assert ok == 3  # the local vector's second token is over another message
