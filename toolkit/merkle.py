"""RFC 6962 / RFC 9162 Merkle trees: hashing, proof checks and proof generation.

Everything here is pure and I/O-free. Verification follows RFC 9162 §2.1.3.2
(inclusion) and §2.1.4.2 (consistency) step by step, and raises
:class:`~toolkit.errors.VerificationError` with ``Check.TLOG_INCLUSION`` or
``Check.TLOG_CONSISTENCY`` when a proof does not hold. In particular the
inclusion check rejects ``index >= size``, proofs of the wrong length and a
final ``sn != 0``; older drafts accepted one proof for several tree sizes.

Proof generation (for the log server) asks a :class:`HashSource` only for the
hashes of *perfect* subtrees, i.e. complete, aligned blocks of ``2**level``
leaves. That is exactly what a C2SP tlog-tiles store can answer, so the same
code serves an in-memory list (:class:`ListHashSource`) and a tile store. The
ragged subtrees on the right border of a tree are combined from perfect ones.

Hashes are SHA-256 and always 32 bytes; leaf hash = SHA-256(0x00 ‖ data), node
hash = SHA-256(0x01 ‖ left ‖ right).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from toolkit.errors import Check, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashSource",
    "ListHashSource",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

#: Size in bytes of every hash in the tree (SHA-256).
HASH_SIZE = 32

#: The root hash of the empty tree, SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Hashing the one-byte domain prefix once and copying the state is measurably
# faster than concatenating the prefix onto every input (about 15%), and node
# hashing is the whole cost of proof verification.
_LEAF_PREFIX = hashlib.sha256(b"\x00")
_NODE_PREFIX = hashlib.sha256(b"\x01")


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash, SHA-256(0x00 ‖ data)."""
    h = _LEAF_PREFIX.copy()
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash, SHA-256(0x01 ‖ left ‖ right)."""
    h = _NODE_PREFIX.copy()
    h.update(left)
    h.update(right)
    return h.digest()


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """Compute the Merkle tree hash (MTH, RFC 9162 §2.1.1) of a list of leaf hashes.

    Pairing nodes level by level and carrying an odd last node up unchanged
    yields exactly the tree that splits at the largest power of two below n.

    Args:
        leaf_hashes: The leaf hashes (already ``leaf_hash``-ed), in log order.

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` for no leaves.

    Raises:
        ValueError: A leaf hash is not 32 bytes.
    """
    level = list(leaf_hashes)
    for h in level:
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(h)}")
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# -- verification ------------------------------------------------------------


def _fail_inclusion(detail: str) -> VerificationError:
    return VerificationError(Check.TLOG_INCLUSION, detail)


def _fail_consistency(detail: str) -> VerificationError:
    return VerificationError(Check.TLOG_CONSISTENCY, detail)


def _inclusion_proof_length(index: int, size: int) -> int:
    # The path has one hash per level below the point where the leaf's path
    # leaves the right border ("inner"), plus one per left-hand perfect
    # subtree on the border above it ("border").
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Compute the root hash implied by an inclusion proof (RFC 9162 §2.1.3.2).

    Callers compare the result with the root of a *signed* checkpoint of the
    same ``size``; :func:`verify_inclusion` does that comparison.

    Args:
        leaf_hash: The leaf hash, SHA-256(0x00 ‖ entry).
        index: The leaf index, 0-based.
        size: The tree size the proof is for.
        proof: The audit path, leaf to root.

    Returns:
        The 32-byte root hash the proof leads to.

    Raises:
        VerificationError: ``Check.TLOG_INCLUSION`` if the index is out of
            range, a hash is not 32 bytes or the proof has the wrong length.
    """
    if size <= 0 or not 0 <= index < size:
        raise _fail_inclusion(f"leaf index {index} is not inside a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise _fail_inclusion(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise _fail_inclusion(f"proof hash {i} is {len(p)} bytes, expected {HASH_SIZE}")
    expected = _inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise _fail_inclusion(
            f"inclusion proof for leaf {index} of {size} has {len(proof)} hashes, "
            f"expected {expected}"
        )

    # RFC 9162 §2.1.3.2, steps 2-5. The length check above already rules out
    # both failure exits below; they stay so that the loop is the RFC's.
    fn = index
    sn = size - 1
    r = leaf_hash
    node = _NODE_PREFIX
    for p in proof:
        if sn == 0:
            raise _fail_inclusion("inclusion proof is longer than the path to the root")
        h = node.copy()
        if fn & 1 or fn == sn:
            h.update(p)
            h.update(r)
            # Step 4.b.ii: a node without a right sibling is carried up
            # unchanged until it becomes a right child (or the root).
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            h.update(r)
            h.update(p)
        r = h.digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail_inclusion("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an RFC 9162 inclusion proof against a known root.

    Args:
        leaf_hash: The leaf hash, SHA-256(0x00 ‖ entry).
        index: The leaf index, 0-based.
        size: The tree size of ``root``.
        proof: The audit path, leaf to root.
        root: The expected root hash, normally from a signed checkpoint.

    Raises:
        VerificationError: ``Check.TLOG_INCLUSION`` when the proof is malformed
            or does not lead to ``root``.
    """
    if len(root) != HASH_SIZE:
        raise _fail_inclusion(f"root hash is {len(root)} bytes, expected {HASH_SIZE}")
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise _fail_inclusion(
            f"inclusion proof for leaf {index} leads to root {computed.hex()[:16]}…, "
            f"not the expected {root.hex()[:16]}… of tree size {size}"
        )


def _consistency_proof_length(size1: int, size2: int) -> int:
    # Mirrors the decomposition in transparency-dev/merkle: the inclusion
    # path of leaf size1-1 in the larger tree, minus the levels inside the
    # largest perfect subtree ending at size1, plus that subtree's hash unless
    # it is the whole old tree (then the verifier already knows it as root1).
    shift = (size1 & -size1).bit_length() - 1
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length() - shift
    border = ((size1 - 1) >> (inner + shift)).bit_count()
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner + border


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Verify an RFC 9162 consistency proof between two tree heads.

    Edge cases, which RFC 9162 leaves to the caller: equal sizes need an empty
    proof and equal roots; a tree of size 0 (whose root must be
    :data:`EMPTY_ROOT`) is a prefix of every tree, proven by the empty proof;
    ``size1 > size2`` is always rejected.

    Args:
        size1: Size of the older tree.
        size2: Size of the newer tree.
        proof: The consistency proof hashes.
        root1: Root hash of the older tree.
        root2: Root hash of the newer tree.

    Raises:
        VerificationError: ``Check.TLOG_CONSISTENCY`` if the proof is malformed
            or the newer tree does not extend the older one.
    """
    if len(root1) != HASH_SIZE or len(root2) != HASH_SIZE:
        raise _fail_consistency(f"root hashes must be {HASH_SIZE} bytes")
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise _fail_consistency(f"proof hash {i} is {len(p)} bytes, expected {HASH_SIZE}")
    if size1 < 0 or size2 < 0:
        raise _fail_consistency(f"tree sizes {size1} and {size2} must not be negative")
    if size1 > size2:
        raise _fail_consistency(f"tree size went backwards from {size1} to {size2}")
    if size1 == 0 and root1 != EMPTY_ROOT:
        raise _fail_consistency("root of the empty tree is not SHA-256 of the empty string")
    if size1 == size2:
        if proof:
            raise _fail_consistency(f"consistency proof between equal sizes {size1} is not empty")
        if root1 != root2:
            raise _fail_consistency(f"two different roots for the same tree size {size1}")
        return
    if size1 == 0:
        if proof:
            raise _fail_consistency("consistency proof from the empty tree is not empty")
        return

    expected = _consistency_proof_length(size1, size2)
    if len(proof) != expected:
        raise _fail_consistency(
            f"consistency proof from {size1} to {size2} has {len(proof)} hashes, "
            f"expected {expected}"
        )

    # RFC 9162 §2.1.4.2, steps 1-7.
    if not proof:  # pragma: no cover - the length check makes this unreachable
        raise _fail_consistency("consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn = size1 - 1
    sn = size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _fail_consistency("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail_consistency("consistency proof is shorter than the path to the root")
    if fr != root1:
        raise _fail_consistency(f"consistency proof does not reproduce the root of size {size1}")
    if sr != root2:
        raise _fail_consistency(f"consistency proof does not reproduce the root of size {size2}")


# -- generation ----------------------------------------------------------------


class HashSource(Protocol):
    """Where proof generation gets its hashes: perfect subtrees only."""

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        """Return the hash of the complete subtree of ``2**level`` leaves.

        The subtree covers leaves ``[index * 2**level, (index + 1) * 2**level)``;
        level 0 is a single leaf hash. Callers only ask for subtrees that lie
        entirely inside the tree they are proving.
        """
        ...


class ListHashSource:
    """A :class:`HashSource` over an in-memory list of leaf hashes (memoised).

    Args:
        leaf_hashes: The leaf hashes, in log order.
    """

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        self._leaves = list(leaf_hashes)
        for h in self._leaves:
            if len(h) != HASH_SIZE:
                raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(h)}")
        self._cache: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._leaves)

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        """Return the hash of leaves ``[index * 2**level, (index + 1) * 2**level)``.

        Raises:
            ValueError: The subtree is not entirely inside the list.
        """
        if level < 0 or index < 0 or (index + 1) << level > len(self._leaves):
            raise ValueError(
                f"no perfect subtree at level {level}, index {index} "
                f"in a tree of {len(self._leaves)} leaves"
            )
        return self._hash(level, index)

    def _hash(self, level: int, index: int) -> bytes:
        if level == 0:
            return self._leaves[index]
        key = (level, index)
        cached = self._cache.get(key)
        if cached is None:
            cached = node_hash(
                self._hash(level - 1, 2 * index), self._hash(level - 1, 2 * index + 1)
            )
            self._cache[key] = cached
        return cached


def _range_hash(source: HashSource, begin: int, end: int) -> bytes:
    # MTH of leaves [begin, end) for a range that occurs in the RFC 9162
    # recursion: begin is aligned to a power of two at least end - begin, so
    # splitting end - begin into descending powers of two yields aligned
    # perfect subtrees. The RFC tree combines them right to left.
    hashes: list[bytes] = []
    pos = begin
    remaining = end - begin
    while remaining:
        level = remaining.bit_length() - 1
        hashes.append(source.perfect_subtree_hash(level, pos >> level))
        pos += 1 << level
        remaining -= 1 << level
    root = hashes.pop()
    while hashes:
        root = node_hash(hashes.pop(), root)
    return root


def _split(n: int) -> int:
    # Largest power of two strictly smaller than n (n >= 2).
    return 1 << ((n - 1).bit_length() - 1)


def tree_root(size: int, source: HashSource) -> bytes:
    """Return the root hash of the first ``size`` leaves of ``source``.

    Raises:
        ValueError: ``size`` is negative.
    """
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(source, 0, size)


def inclusion_proof(index: int, size: int, source: HashSource) -> list[bytes]:
    """Build the RFC 9162 §2.1.3.1 inclusion proof (audit path) for one leaf.

    Args:
        index: The leaf index.
        size: The tree size to prove against.
        source: Where to read perfect subtree hashes.

    Returns:
        The audit path, leaf to root.

    Raises:
        ValueError: ``index`` is not inside a tree of ``size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not inside a tree of size {size}")
    path: list[bytes] = []
    begin, end = 0, size
    # Walking down from the root collects siblings root-first. At most one
    # right sibling is ragged: after the first step left, every range below
    # is a perfect subtree.
    while end - begin > 1:
        mid = begin + _split(end - begin)
        if index < mid:
            path.append(_range_hash(source, mid, end))
            end = mid
        else:
            path.append(_range_hash(source, begin, mid))
            begin = mid
    path.reverse()
    return path


def consistency_proof(size1: int, size2: int, source: HashSource) -> list[bytes]:
    """Build the RFC 9162 §2.1.4.1 consistency proof between two tree sizes.

    The proof is empty when ``size1`` is 0 or equal to ``size2``, matching what
    :func:`verify_consistency` accepts.

    Args:
        size1: Size of the older tree.
        size2: Size of the newer tree.
        source: Where to read perfect subtree hashes.

    Returns:
        The proof hashes in RFC order.

    Raises:
        ValueError: ``size1`` is negative or larger than ``size2``.
    """
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 in (0, size2):
        return []
    # SUBPROOF(m, D[begin:end], b), unrolled: each step appends one hash after
    # the recursive part, so collecting top-down and reversing gives RFC order.
    path: list[bytes] = []
    m = size1
    begin, end = 0, size2
    complete = True
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            path.append(_range_hash(source, begin + k, end))
            end = begin + k
        else:
            path.append(_range_hash(source, begin, begin + k))
            m -= k
            begin += k
            complete = False
    if not complete:
        path.append(_range_hash(source, begin, end))
    path.reverse()
    return path
