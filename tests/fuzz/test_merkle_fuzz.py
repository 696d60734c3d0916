"""Property tests for toolkit.merkle: checks never crash, valid proofs always verify."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import merkle
from toolkit.errors import Check, VerificationError

FAST = settings(max_examples=250, deadline=None)

# Mostly well-sized hashes, sometimes not, so both the length checks and the
# hashing loop get exercised.
hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
sizes = st.one_of(
    st.integers(min_value=-3, max_value=300), st.integers(min_value=0, max_value=2**64)
)


PERIOD_LEVEL = 8


class PeriodicTree:
    """A consistent tree of any size whose leaves repeat every 256 entries.

    Leaf i is the leaf hash of ``i mod 256``, so every perfect subtree of 256
    or more leaves at one level has the same hash, and any subtree hash of a
    tree with 2**48 leaves costs a few node hashes. Exhaustive unit tests
    cover position mix-ups inside small trees; this covers the big shapes.
    """

    def __init__(self) -> None:
        self.cache: dict[tuple[int, int], bytes] = {}

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        assert level >= 0
        assert index >= 0
        key = (
            (level, 0) if level >= PERIOD_LEVEL else (level, index % (1 << (PERIOD_LEVEL - level)))
        )
        cached = self.cache.get(key)
        if cached is None:
            lvl, idx = key
            if lvl == 0:
                cached = merkle.leaf_hash(idx.to_bytes(2, "big"))
            else:
                cached = merkle.node_hash(
                    self.perfect_subtree_hash(lvl - 1, 2 * idx),
                    self.perfect_subtree_hash(lvl - 1, 2 * idx + 1),
                )
            self.cache[key] = cached
        return cached


@FAST
@given(leaf=hashes, index=sizes, size=sizes, proof=st.lists(hashes, max_size=70), root=hashes)
def test_verify_inclusion_never_crashes(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
    except VerificationError as exc:
        assert exc.check == Check.TLOG_INCLUSION
    else:
        # Random data only passes when it is a genuine path to root.
        assert merkle.root_from_inclusion_proof(leaf, index, size, proof) == root


@FAST
@given(
    size1=sizes,
    size2=sizes,
    proof=st.lists(hashes, max_size=70),
    root1=hashes,
    root2=hashes,
)
def test_verify_consistency_never_crashes(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    try:
        merkle.verify_consistency(size1, size2, proof, root1, root2)
    except VerificationError as exc:
        assert exc.check == Check.TLOG_CONSISTENCY
    else:
        # Only the trivial cases can pass on random input.
        assert size1 == 0 or (size1 == size2 and root1 == root2)


@FAST
@given(data=st.data(), size=st.integers(min_value=1, max_value=2**48))
def test_generated_inclusion_proofs_verify(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    tree = PeriodicTree()
    proof = merkle.inclusion_proof(index, size, tree)
    root = merkle.tree_root(size, tree)
    leaf = tree.perfect_subtree_hash(0, index)
    merkle.verify_inclusion(leaf, index, size, proof, root)


@FAST
@given(data=st.data(), size2=st.integers(min_value=0, max_value=2**48))
def test_generated_consistency_proofs_verify(data: st.DataObject, size2: int) -> None:
    size1 = data.draw(st.integers(min_value=0, max_value=size2))
    tree = PeriodicTree()
    proof = merkle.consistency_proof(size1, size2, tree)
    merkle.verify_consistency(
        size1, size2, proof, merkle.tree_root(size1, tree), merkle.tree_root(size2, tree)
    )


@FAST
@given(leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=80), data=st.data())
def test_small_trees_agree_with_root_from_leaf_hashes(
    leaves: list[bytes], data: st.DataObject
) -> None:
    hashed = [merkle.leaf_hash(leaf) for leaf in leaves]
    source = merkle.ListHashSource(hashed)
    root = merkle.root_from_leaf_hashes(hashed)
    assert merkle.tree_root(len(hashed), source) == root
    index = data.draw(st.integers(min_value=0, max_value=len(hashed) - 1))
    proof = merkle.inclusion_proof(index, len(hashed), source)
    merkle.verify_inclusion(hashed[index], index, len(hashed), proof, root)


@FAST
@given(
    data=st.data(),
    size=st.integers(min_value=1, max_value=2**40),
    mutation=st.sampled_from(["index", "size", "drop", "extend", "flip", "swap"]),
)
def test_mutated_proofs_fail_cleanly(data: st.DataObject, size: int, mutation: str) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    tree = PeriodicTree()
    proof = merkle.inclusion_proof(index, size, tree)
    root = merkle.tree_root(size, tree)
    leaf = tree.perfect_subtree_hash(0, index)
    if mutation == "index":
        index = data.draw(
            st.integers(min_value=-1, max_value=size + 1).filter(lambda i: i != index)
        )
    elif mutation == "size":
        size = data.draw(st.integers(min_value=0, max_value=2**41).filter(lambda s: s != size))
    elif mutation == "drop" and proof:
        proof.pop(data.draw(st.integers(min_value=0, max_value=len(proof) - 1)))
    elif mutation == "extend":
        proof.append(data.draw(st.binary(min_size=32, max_size=32)))
    elif mutation == "flip" and proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        proof[i] = bytes([proof[i][0] ^ 1]) + proof[i][1:]
    elif mutation == "swap" and len(proof) > 1 and proof[0] != proof[1]:
        proof[0], proof[1] = proof[1], proof[0]
    else:
        leaf = bytes([leaf[0] ^ 0x80]) + leaf[1:]
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
    except VerificationError as exc:
        assert exc.check == Check.TLOG_INCLUSION
    else:
        # Only a new index or size can pass. The proof does not bind the
        # size on its own (the signed root does), so a neighbouring size may
        # share the hashing pattern, and the periodic tree repeats leaves, so
        # another index may share the leaf and the path.
        assert mutation in ("index", "size")
