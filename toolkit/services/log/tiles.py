"""C2SP tlog-tiles: tile paths, tile contents and entry bundles (pure, no I/O).

A tiled log publishes its Merkle tree as immutable *tiles*. A tile at level
``L`` holds the hashes of up to 256 consecutive tree nodes of Merkle level
``8·L``: level-0 tiles hold leaf hashes, a level-1 tile holds the roots of 256
full level-0 tiles, and so on. A tile with fewer than 256 hashes is *partial*
and its path says its width. Entry bundles hold the entries themselves, 256
per bundle, each as ``uint16 BE length ‖ entry``.

Paths (https://c2sp.org/tlog-tiles): ``tile/<L>/<N>[.p/<W>]`` and
``tile/entries/<N>[.p/<W>]``, where ``<N>`` is written in groups of three
digits, every group but the last prefixed with ``x``: index 1234067 is
``x001/x234/067``. :func:`parse_path` accepts exactly the strings the encoder
produces, so one object never has two names.

:class:`TileHashSource` answers :class:`toolkit.merkle.HashSource` queries from
tiles alone, so the same proof code that serves the log lets a monitor
recompute a checkpoint's root from the published tiles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from toolkit.errors import FormatError
from toolkit.merkle import HASH_SIZE, node_hash, tree_root

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileHashSource",
    "TileRef",
    "build_tiles",
    "changed_bundles",
    "changed_tiles",
    "decode_bundle",
    "encode_bundle",
    "encode_index",
    "entries_path",
    "parse_path",
    "split_tile",
    "subtree_hash",
    "tile_path",
    "tile_ref",
    "tiles_for_size",
]

#: Merkle levels per tile level: a level-L tile holds nodes of Merkle level 8·L.
TILE_HEIGHT = 8
#: Hashes in a full tile (entries in a full bundle).
TILE_WIDTH = 1 << TILE_HEIGHT
#: Highest tile level C2SP allows in a path.
MAX_LEVEL = 63
#: Largest entry an entry bundle can carry (its length prefix is a uint16).
MAX_ENTRY_SIZE = 0xFFFF
#: Indices are below 2**64: tree sizes are uint64.
_MAX_INDEX = (1 << 64) - 1

# One path, strictly: level without leading zeros, index groups, optional width.
_PATH_RE = re.compile(
    r"\Atile/(?:(?P<level>0|[1-9][0-9]?)|(?P<entries>entries))"
    r"/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?\Z"
)


def encode_index(index: int) -> str:
    """Encode a tile index as C2SP path elements (1234067 → ``x001/x234/067``).

    Raises:
        ValueError: ``index`` is negative or not below 2**64.
    """
    if not 0 <= index <= _MAX_INDEX:
        raise ValueError(f"tile index {index} is out of range")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _suffix(width: int | None) -> str:
    if width is None or width == TILE_WIDTH:
        return ""
    if not 1 <= width < TILE_WIDTH:
        raise ValueError(f"tile width {width} is not between 1 and {TILE_WIDTH}")
    return f".p/{width}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """Return the path of a hash tile, ``tile/<L>/<N>[.p/<W>]``.

    Args:
        level: The tile level (0 holds leaf hashes).
        index: The tile index within its level.
        width: Number of hashes, 1-256; None or 256 for a full tile.

    Raises:
        ValueError: A value is out of range.
    """
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"tile level {level} is not between 0 and {MAX_LEVEL}")
    return f"tile/{level}/{encode_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int | None = None) -> str:
    """Return the path of an entry bundle, ``tile/entries/<N>[.p/<W>]``.

    Raises:
        ValueError: A value is out of range.
    """
    return f"tile/entries/{encode_index(index)}{_suffix(width)}"


@dataclass(frozen=True)
class TileRef:
    """A tile or entry bundle, as named by its path.

    Attributes:
        level: The tile level, or None for an entry bundle.
        index: The index within the level.
        width: Number of hashes (entries), 1-256; 256 is a full tile.
    """

    level: int | None
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.level is not None and not 0 <= self.level <= MAX_LEVEL:
            raise ValueError(f"tile level {self.level} is not between 0 and {MAX_LEVEL}")
        if not 0 <= self.index <= _MAX_INDEX:
            raise ValueError(f"tile index {self.index} is out of range")
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"tile width {self.width} is not between 1 and {TILE_WIDTH}")

    @property
    def is_full(self) -> bool:
        """True for a full (256-wide) tile, whose contents never change."""
        return self.width == TILE_WIDTH

    @property
    def is_entries(self) -> bool:
        """True for an entry bundle."""
        return self.level is None

    @property
    def path(self) -> str:
        """The C2SP path."""
        if self.level is None:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)

    def end(self) -> int:
        """Index (at this tile's node level) just past the last node it holds."""
        return self.index * TILE_WIDTH + self.width


def parse_path(path: str) -> TileRef:
    """Parse a tile or entry-bundle path, accepting only what the encoder writes.

    Raises:
        FormatError: Anything else: leading zeros, a missing or superfluous
            ``x`` group, a width of 0 or 256 and above, a level above 63, an
            index not below 2**64.
    """
    match = _PATH_RE.match(path)
    if match is None:
        raise FormatError(f"{path[:100]!r} is not a tile path")
    index = int(match["index"].replace("x", "").replace("/", ""))
    width = int(match["width"]) if match["width"] else TILE_WIDTH
    level = None if match["entries"] else int(match["level"])
    try:
        ref = TileRef(level, index, width)
        # Re-encoding rejects the spellings the regex lets through, such as
        # "x000/005" for 5 or a width of 256 written out.
        canonical = ref.path
    except ValueError as exc:
        raise FormatError(f"{path[:100]!r} is not a tile path: {exc}") from None
    if canonical != path:
        raise FormatError(f"{path[:100]!r} is not a canonical tile path")
    return ref


# -- entry bundles -------------------------------------------------------------


def encode_bundle(bodies: Iterable[bytes]) -> bytes:
    """Serialise entries as an entry bundle: ``uint16 BE length ‖ entry``, repeated.

    Raises:
        ValueError: An entry is empty or longer than 65535 bytes.
    """
    out = bytearray()
    for body in bodies:
        size = len(body)
        if not 0 < size <= MAX_ENTRY_SIZE:
            raise ValueError(f"entry of {size} bytes does not fit an entry bundle")
        out += size.to_bytes(2, "big")
        out += body
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    """Split an entry bundle into its entries.

    Raises:
        FormatError: A length prefix or entry is truncated, an entry is empty,
            or there are more than 256 entries.
    """
    out: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 2:
            raise FormatError("entry bundle ends inside a length prefix")
        size = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if size == 0:
            raise FormatError(f"entry {len(out)} of the bundle is empty")
        if end - pos < size:
            raise FormatError(f"entry {len(out)} of the bundle is truncated")
        out.append(bytes(data[pos : pos + size]))
        pos += size
        if len(out) > TILE_WIDTH:
            raise FormatError(f"entry bundle holds more than {TILE_WIDTH} entries")
    return out


# -- which tiles a tree has ----------------------------------------------------


def tile_ref(level: int, index: int, size: int) -> TileRef:
    """The tile ``(level, index)`` as it is in a tree of ``size`` leaves (full or partial).

    Raises:
        ValueError: The tree has no node in that tile.
    """
    nodes = size >> (TILE_HEIGHT * level)
    width = min(TILE_WIDTH, nodes - index * TILE_WIDTH)
    if width <= 0:
        raise ValueError(f"a tree of size {size} has no tile {index} at level {level}")
    return TileRef(level, index, width)


def _growth(old_size: int, new_size: int, level: int) -> list[TileRef]:
    refs: list[TileRef] = []
    shift = TILE_HEIGHT * level
    old_nodes, new_nodes = old_size >> shift, new_size >> shift
    # The tile holding the first new node is the first to change; every
    # tile up to the last full one is new and full, the last may be partial.
    first, full_end = old_nodes >> TILE_HEIGHT, new_nodes >> TILE_HEIGHT
    for index in range(first, full_end):
        refs.append(TileRef(level, index))
    remainder = new_nodes % TILE_WIDTH
    if remainder:
        refs.append(TileRef(level, full_end, remainder))
    return refs


def changed_tiles(old_size: int, new_size: int) -> list[TileRef]:
    """The hash tiles a tree growing from ``old_size`` to ``new_size`` must write.

    These are, at every level, the tiles that became full and the final
    partial tile, lowest level first. Tiles of the old tree are never
    rewritten: a partial tile of the new tree has a new width, hence a new path.

    Raises:
        ValueError: ``old_size`` is negative or above ``new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"a tree cannot grow from size {old_size} to {new_size}")
    refs: list[TileRef] = []
    level = 0
    # A level with no new node has no new node above it either.
    while old_size >> (TILE_HEIGHT * level) != new_size >> (TILE_HEIGHT * level):
        refs.extend(_growth(old_size, new_size, level))
        level += 1
    return refs


def changed_bundles(old_size: int, new_size: int) -> list[TileRef]:
    """The entry bundles a log growing from ``old_size`` to ``new_size`` must write.

    Raises:
        ValueError: ``old_size`` is negative or above ``new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"a log cannot grow from size {old_size} to {new_size}")
    if old_size == new_size:
        return []
    return [TileRef(None, ref.index, ref.width) for ref in _growth(old_size, new_size, 0)]


def tiles_for_size(size: int) -> list[TileRef]:
    """Every hash tile of a tree of ``size`` leaves (what a full mirror fetches)."""
    return changed_tiles(0, size)


def build_tiles(leaf_hashes: Sequence[bytes]) -> dict[str, bytes]:
    """Every hash tile of the tree over ``leaf_hashes``, by path (for mirrors, tests, benchmarks).

    The nodes of each tile level are the roots of the full tiles one level
    down; a level's last tile is partial unless its nodes fill it.
    """
    out: dict[str, bytes] = {}
    nodes = list(leaf_hashes)
    level = 0
    while nodes:
        above: list[bytes] = []
        for index in range(0, len(nodes), TILE_WIDTH):
            chunk = nodes[index : index + TILE_WIDTH]
            out[tile_path(level, index // TILE_WIDTH, len(chunk))] = b"".join(chunk)
            if len(chunk) == TILE_WIDTH:
                above.append(subtree_hash(chunk))
        nodes = above
        level += 1
    return out


def split_tile(data: bytes, width: int) -> list[bytes]:
    """Split tile contents into hashes, checking there are exactly ``width``.

    Raises:
        FormatError: The data is not ``width`` 32-byte hashes.
    """
    if len(data) != width * HASH_SIZE:
        raise FormatError(
            f"tile holds {len(data)} bytes, expected {width} hashes ({width * HASH_SIZE} bytes)"
        )
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def subtree_hash(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree over ``hashes`` (a power-of-two count)."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class TileHashSource:
    """A :class:`toolkit.merkle.HashSource` that reads tiles of a tree of ``size``.

    Every tile is read at the width it has in that tree (full, or the partial
    width of the last tile of a level), once, and checked for length. Subtrees
    below a tile's level are hashed from the tile's nodes.

    Args:
        size: The tree size the queries are about.
        read: Returns the bytes at a tile path, or None when it is missing.
    """

    def __init__(self, size: int, read: Callable[[str], bytes | None]) -> None:
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        self._size = size
        self._read = read
        self._tiles: dict[tuple[int, int], list[bytes]] = {}
        self._memo: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        """The tree size."""
        return self._size

    def root(self) -> bytes:
        """The root hash of the tree, from its tiles.

        Raises:
            FormatError: A tile is missing or malformed.
        """
        return tree_root(self._size, self)

    @property
    def paths_read(self) -> list[str]:
        """Paths of the tiles read so far (each once)."""
        return [tile_ref(level, index, self._size).path for level, index in self._tiles]

    def tile(self, level: int, index: int) -> list[bytes]:
        """The hashes of tile ``(level, index)`` of the tree.

        Raises:
            FormatError: The tile is missing or has the wrong length.
            ValueError: The tree has no such tile.
        """
        key = (level, index)
        hashes = self._tiles.get(key)
        if hashes is None:
            ref = tile_ref(level, index, self._size)
            data = self._read(ref.path)
            if data is None:
                raise FormatError(f"tile {ref.path} is missing")
            try:
                hashes = split_tile(data, ref.width)
            except FormatError as exc:
                raise FormatError(f"tile {ref.path}: {exc.detail}") from None
            self._tiles[key] = hashes
        return hashes

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        """See :meth:`toolkit.merkle.HashSource.perfect_subtree_hash`.

        Raises:
            ValueError: The subtree is not inside the tree.
            FormatError: A tile is missing or malformed.
        """
        if level < 0 or index < 0 or (index + 1) << level > self._size:
            raise ValueError(
                f"no perfect subtree at level {level}, index {index} in a tree of {self._size}"
            )
        tile_level, sub = divmod(level, TILE_HEIGHT)
        if sub == 0:
            return self.tile(tile_level, index >> TILE_HEIGHT)[index % TILE_WIDTH]
        key = (level, index)
        cached = self._memo.get(key)
        if cached is None:
            first = index << sub
            hashes = self.tile(tile_level, first >> TILE_HEIGHT)
            start = first % TILE_WIDTH
            cached = subtree_hash(hashes[start : start + (1 << sub)])
            self._memo[key] = cached
        return cached
