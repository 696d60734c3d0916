"""Tests for toolkit.merkle: RFC 6962 / RFC 9162 hashing, proofs and checks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from toolkit import merkle
from toolkit.errors import Check, VerificationError

# The leaves of the RFC 6962 / Certificate Transparency reference test tree.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]

# Roots of the first n CT leaves (Certificate Transparency / transparency-dev
# reference values). The size 8 root is the one the RFC 6962 test suite quotes.
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"

# (index, size, audit path) from the transparency-dev reference test vectors.
CT_INCLUSION = [
    (0, 8, [H_96A2, H_5F08, H_6B47]),
    (5, 8, [H_BC1A, H_CA85, CT_ROOTS[4]]),
    (2, 3, [CT_ROOTS[2]]),
    (1, 5, [CT_ROOTS[1], H_5F08, H_BC1A]),
    (0, 1, []),
]

# (size1, size2, proof) from the same reference vectors.
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [H_96A2, H_5F08, H_6B47]),
    (6, 8, [H_0EBC, H_CA85, CT_ROOTS[4]]),
    (2, 5, [H_5F08, H_BC1A]),
]


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


class PerfectOnlySource:
    """A HashSource that, like a tile store, only knows complete subtrees of one tree."""

    def __init__(self, leaves: Sequence[bytes], size: int) -> None:
        self.inner = merkle.ListHashSource(leaves)
        self.size = size
        self.requests: list[tuple[int, int]] = []

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.size, (level, index, self.size)
        self.requests.append((level, index))
        return self.inner.perfect_subtree_hash(level, index)


def _expect(check: Check, fn: object, *args: object) -> VerificationError:
    assert callable(fn)
    with pytest.raises(VerificationError) as info:
        fn(*args)
    assert info.value.check == check
    assert info.value.detail
    assert "\n" not in info.value.detail
    return info.value


# -- hashing -------------------------------------------------------------------


def test_hash_definitions() -> None:
    left, right = b"L" * 32, b"R" * 32
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_prebuilt_prefix_state_is_not_mutated() -> None:
    # The module copies a pre-hashed prefix; using it must never leak state.
    first = merkle.leaf_hash(b"x")
    merkle.node_hash(b"a" * 32, b"b" * 32)
    assert merkle.leaf_hash(b"x") == first


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_ct_reference_roots(size: int) -> None:
    expected = bytes.fromhex(CT_ROOTS[size])
    assert merkle.root_from_leaf_hashes(CT_LEAF_HASHES[:size]) == expected
    source = merkle.ListHashSource(CT_LEAF_HASHES)
    assert merkle.tree_root(size, source) == expected


def test_empty_tree_root() -> None:
    assert merkle.root_from_leaf_hashes([]) == merkle.EMPTY_ROOT
    assert merkle.tree_root(0, merkle.ListHashSource([])) == merkle.EMPTY_ROOT


def test_root_from_leaf_hashes_rejects_short_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.root_from_leaf_hashes([b"short"])


def test_root_matches_recursive_definition() -> None:
    def mth(hashes: list[bytes]) -> bytes:
        if len(hashes) == 1:
            return hashes[0]
        k = 1 << ((len(hashes) - 1).bit_length() - 1)
        return merkle.node_hash(mth(hashes[:k]), mth(hashes[k:]))

    for n in range(1, 70):
        leaves = _leaves(n)
        assert merkle.root_from_leaf_hashes(leaves) == mth(leaves), n


# -- inclusion: known answers and RFC 9162 edge cases ----------------------------


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_reference_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    source = merkle.ListHashSource(CT_LEAF_HASHES)
    proof = merkle.inclusion_proof(index, size, source)
    assert [h.hex() for h in proof] == path
    root = bytes.fromhex(CT_ROOTS[size])
    merkle.verify_inclusion(CT_LEAF_HASHES[index], index, size, proof, root)
    assert merkle.root_from_inclusion_proof(CT_LEAF_HASHES[index], index, size, proof) == root


@pytest.mark.parametrize("index", [3, 4, 100])
def test_inclusion_rejects_index_at_or_beyond_size(index: int) -> None:
    leaves = _leaves(4)
    root = merkle.root_from_leaf_hashes(leaves[:3])
    proof = merkle.inclusion_proof(2, 3, merkle.ListHashSource(leaves))
    err = _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaves[2], index, 3, proof, root)
    assert "not inside" in err.detail


def test_inclusion_rejects_negative_index() -> None:
    leaf = merkle.leaf_hash(b"a")
    _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaf, -1, 1, [], leaf)


def test_inclusion_in_empty_tree_is_impossible() -> None:
    leaf = merkle.leaf_hash(b"a")
    err = _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaf, 0, 0, [], merkle.EMPTY_ROOT)
    assert "size 0" in err.detail


def test_inclusion_size_one() -> None:
    leaf = merkle.leaf_hash(b"only")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    # A proof with any hash is too long for a one-leaf tree.
    err = _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaf, 0, 1, [leaf], leaf)
    assert "expected 0" in err.detail
    _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaf, 0, 1, [], _flip(leaf))


@pytest.mark.parametrize("k", [1, 2, 3, 5, 6])
def test_inclusion_power_of_two_and_one_more(k: int) -> None:
    for size in (2**k, 2**k + 1):
        leaves = _leaves(size)
        source = merkle.ListHashSource(leaves)
        root = merkle.root_from_leaf_hashes(leaves)
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, source)
            merkle.verify_inclusion(leaves[index], index, size, proof, root)
        if size == 2**k:
            assert all(len(merkle.inclusion_proof(i, size, source)) == k for i in range(size))
        else:
            # The extra leaf hangs directly off the root: its sibling is the
            # whole perfect left subtree.
            assert merkle.inclusion_proof(size - 1, size, source) == [
                merkle.tree_root(2**k, source)
            ]


def test_inclusion_rejects_wrong_proof_length() -> None:
    leaves = _leaves(11)
    source = merkle.ListHashSource(leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.inclusion_proof(6, 11, source)
    for bad in (proof[:-1], [*proof, proof[0]], [], [*proof, *proof]):
        err = _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaves[6], 6, 11, bad, root)
        assert f"has {len(bad)} hashes" in err.detail


def test_inclusion_rejects_proof_for_a_smaller_tree() -> None:
    # Older drafts accepted a proof whose walk ends before the root (final
    # sn != 0): the proof for leaf 0 of a 2-leaf tree "proves" leaf 0 of a
    # 3-leaf tree whose root is claimed to be the 2-leaf root.
    leaves = _leaves(3)
    root2 = merkle.root_from_leaf_hashes(leaves[:2])
    _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaves[0], 0, 3, [leaves[1]], root2)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_inclusion_rejects_hashes_of_wrong_size(bad: bytes) -> None:
    leaves = _leaves(4)
    source = merkle.ListHashSource(leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.inclusion_proof(1, 4, source)
    err = _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, bad, 1, 4, proof, root)
    assert "leaf hash" in err.detail
    err = _expect(
        Check.TLOG_INCLUSION, merkle.verify_inclusion, leaves[1], 1, 4, [proof[0], bad], root
    )
    assert "proof hash 1" in err.detail
    err = _expect(Check.TLOG_INCLUSION, merkle.verify_inclusion, leaves[1], 1, 4, proof, bad)
    assert "root hash" in err.detail


def test_inclusion_wrong_root_names_both_roots() -> None:
    leaves = _leaves(5)
    proof = merkle.inclusion_proof(2, 5, merkle.ListHashSource(leaves))
    root = merkle.root_from_leaf_hashes(leaves)
    err = _expect(
        Check.TLOG_INCLUSION, merkle.verify_inclusion, leaves[2], 2, 5, proof, _flip(root)
    )
    assert _flip(root).hex()[:16] in err.detail


def test_inclusion_brute_force_against_generation() -> None:
    # Every (index, size) up to 70: generated proofs verify; any tampering
    # (a flipped proof bit, another leaf, another index or size) is caught.
    max_size = 70
    leaves = _leaves(max_size + 1)
    roots = [merkle.root_from_leaf_hashes(leaves[:n]) for n in range(max_size + 2)]
    for size in range(1, max_size + 1):
        source = PerfectOnlySource(leaves, size)
        assert merkle.tree_root(size, source) == roots[size]
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, source)
            leaf = leaves[index]
            merkle.verify_inclusion(leaf, index, size, proof, roots[size])
            for i in range(len(proof)):
                tampered = [*proof[:i], _flip(proof[i], i % 8), *proof[i + 1 :]]
                _expect(
                    Check.TLOG_INCLUSION,
                    merkle.verify_inclusion,
                    leaf,
                    index,
                    size,
                    tampered,
                    roots[size],
                )
            _expect(
                Check.TLOG_INCLUSION,
                merkle.verify_inclusion,
                _flip(leaf),
                index,
                size,
                proof,
                roots[size],
            )
            if size > 1:
                other = (index + 1) % size
                _expect(
                    Check.TLOG_INCLUSION,
                    merkle.verify_inclusion,
                    leaf,
                    other,
                    size,
                    proof,
                    roots[size],
                )
            _expect(
                Check.TLOG_INCLUSION,
                merkle.verify_inclusion,
                leaf,
                index,
                size + 1,
                proof,
                roots[size + 1],
            )


# -- consistency ----------------------------------------------------------------


@pytest.mark.parametrize(("size1", "size2", "path"), CT_CONSISTENCY)
def test_ct_reference_consistency_proofs(size1: int, size2: int, path: list[str]) -> None:
    source = merkle.ListHashSource(CT_LEAF_HASHES)
    proof = merkle.consistency_proof(size1, size2, source)
    assert [h.hex() for h in proof] == path
    merkle.verify_consistency(
        size1, size2, proof, bytes.fromhex(CT_ROOTS[size1]), bytes.fromhex(CT_ROOTS[size2])
    )


def test_consistency_brute_force_against_generation() -> None:
    max_size = 40
    leaves = _leaves(max_size)
    roots = [merkle.root_from_leaf_hashes(leaves[:n]) for n in range(max_size + 1)]
    for size2 in range(max_size + 1):
        source = PerfectOnlySource(leaves, size2)
        for size1 in range(size2 + 1):
            proof = merkle.consistency_proof(size1, size2, source)
            merkle.verify_consistency(size1, size2, proof, roots[size1], roots[size2])
            if size1 in (0, size2):
                assert proof == []
                continue
            for i in range(len(proof)):
                tampered = [*proof[:i], _flip(proof[i]), *proof[i + 1 :]]
                _expect(
                    Check.TLOG_CONSISTENCY,
                    merkle.verify_consistency,
                    size1,
                    size2,
                    tampered,
                    roots[size1],
                    roots[size2],
                )
            for bad in (proof[:-1], [*proof, proof[-1]]):
                err = _expect(
                    Check.TLOG_CONSISTENCY,
                    merkle.verify_consistency,
                    size1,
                    size2,
                    bad,
                    roots[size1],
                    roots[size2],
                )
                assert "hashes, expected" in err.detail
            _expect(
                Check.TLOG_CONSISTENCY,
                merkle.verify_consistency,
                size1,
                size2,
                proof,
                _flip(roots[size1]),
                roots[size2],
            )
            _expect(
                Check.TLOG_CONSISTENCY,
                merkle.verify_consistency,
                size1,
                size2,
                proof,
                roots[size1],
                _flip(roots[size2]),
            )
            _expect(
                Check.TLOG_CONSISTENCY,
                merkle.verify_consistency,
                size2,
                size1,
                proof,
                roots[size2],
                roots[size1],
            )


def test_consistency_equal_sizes() -> None:
    leaves = _leaves(5)
    root = merkle.root_from_leaf_hashes(leaves)
    merkle.verify_consistency(5, 5, [], root, root)
    err = _expect(Check.TLOG_CONSISTENCY, merkle.verify_consistency, 5, 5, [], root, _flip(root))
    assert "different roots" in err.detail
    err = _expect(Check.TLOG_CONSISTENCY, merkle.verify_consistency, 5, 5, [root], root, root)
    assert "not empty" in err.detail


def test_consistency_from_empty_tree() -> None:
    root = merkle.root_from_leaf_hashes(_leaves(3))
    merkle.verify_consistency(0, 3, [], merkle.EMPTY_ROOT, root)
    merkle.verify_consistency(0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)
    err = _expect(
        Check.TLOG_CONSISTENCY, merkle.verify_consistency, 0, 3, [root], merkle.EMPTY_ROOT, root
    )
    assert "empty tree" in err.detail
    err = _expect(Check.TLOG_CONSISTENCY, merkle.verify_consistency, 0, 3, [], root, root)
    assert "empty tree" in err.detail


def test_consistency_rejects_shrinking_and_negative_sizes() -> None:
    root = merkle.root_from_leaf_hashes(_leaves(3))
    err = _expect(Check.TLOG_CONSISTENCY, merkle.verify_consistency, 4, 3, [], root, root)
    assert "backwards" in err.detail
    _expect(Check.TLOG_CONSISTENCY, merkle.verify_consistency, -1, 3, [], root, root)


def test_consistency_rejects_hashes_of_wrong_size() -> None:
    leaves = _leaves(8)
    source = merkle.ListHashSource(leaves)
    root3, root8 = merkle.tree_root(3, source), merkle.tree_root(8, source)
    proof = merkle.consistency_proof(3, 8, source)
    _expect(Check.TLOG_CONSISTENCY, merkle.verify_consistency, 3, 8, proof, root3[:31], root8)
    _expect(Check.TLOG_CONSISTENCY, merkle.verify_consistency, 3, 8, proof, root3, root8 + b"x")
    err = _expect(
        Check.TLOG_CONSISTENCY,
        merkle.verify_consistency,
        3,
        8,
        [proof[0][:16], *proof[1:]],
        root3,
        root8,
    )
    assert "proof hash 0" in err.detail


# -- generation ----------------------------------------------------------------


def test_list_hash_source_rejects_incomplete_subtrees() -> None:
    source = merkle.ListHashSource(_leaves(5))
    assert len(source) == 5
    assert source.perfect_subtree_hash(2, 0) == merkle.tree_root(4, source)
    with pytest.raises(ValueError, match="no perfect subtree"):
        source.perfect_subtree_hash(1, 2)
    with pytest.raises(ValueError, match="no perfect subtree"):
        source.perfect_subtree_hash(3, 0)
    with pytest.raises(ValueError, match="no perfect subtree"):
        source.perfect_subtree_hash(0, -1)
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.ListHashSource([b"x"])


def test_generation_rejects_impossible_requests() -> None:
    source = merkle.ListHashSource(_leaves(4))
    with pytest.raises(ValueError, match="not inside"):
        merkle.inclusion_proof(4, 4, source)
    with pytest.raises(ValueError, match="not inside"):
        merkle.inclusion_proof(0, 0, source)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(3, 2, source)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(-1, 2, source)
    with pytest.raises(ValueError, match="negative"):
        merkle.tree_root(-1, source)


def test_generation_reads_few_subtrees() -> None:
    # A tile-backed source pays per request: an inclusion proof needs one hash
    # per level plus the perfect pieces of at most one ragged right sibling.
    size = 2**12 - 3
    leaves = _leaves(size)
    source = PerfectOnlySource(leaves, size)
    root = merkle.root_from_leaf_hashes(leaves)
    for index in (0, 5, 2**11, size - 1):
        source.requests.clear()
        proof = merkle.inclusion_proof(index, size, source)
        merkle.verify_inclusion(leaves[index], index, size, proof, root)
        assert len(source.requests) <= 2 * 12
    source.requests.clear()
    proof = merkle.consistency_proof(1000, size, source)
    merkle.verify_consistency(1000, size, proof, merkle.tree_root(1000, source), root)
    assert len(source.requests) <= 3 * 12
