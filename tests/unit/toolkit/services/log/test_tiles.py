"""Tests for toolkit.services.log.tiles: C2SP paths, bundles, tile growth and a tile HashSource."""

from __future__ import annotations

import random

import pytest

from toolkit import merkle
from toolkit.errors import FormatError
from toolkit.services.log import tiles
from toolkit.services.log.tiles import TileRef


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def tile_store(leaf_hashes: list[bytes], sizes: list[int]) -> dict[str, bytes]:
    """The tiles a log writes when its checkpoints have ``sizes``, in order."""
    source = merkle.ListHashSource(leaf_hashes)
    store: dict[str, bytes] = {}
    previous = 0
    for size in sizes:
        for ref in tiles.changed_tiles(previous, size):
            assert ref.level is not None
            first = ref.index * tiles.TILE_WIDTH
            data = b"".join(
                source.perfect_subtree_hash(tiles.TILE_HEIGHT * ref.level, first + i)
                for i in range(ref.width)
            )
            assert ref.path not in store
            store[ref.path] = data
        previous = size
    return store


# -- paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (2**64 - 1, "x018/x446/x744/x073/x709/x551/615"),
    ],
)
def test_encode_index(index: int, encoded: str) -> None:
    assert tiles.encode_index(index) == encoded


def test_paths() -> None:
    assert tiles.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tiles.tile_path(3, 5, 17) == "tile/3/005.p/17"
    assert tiles.tile_path(1, 5, 256) == "tile/1/005"
    assert tiles.entries_path(1234067) == "tile/entries/x001/x234/067"
    assert tiles.entries_path(0, 7) == "tile/entries/000.p/7"


@pytest.mark.parametrize(
    ("level", "index", "width"), [(-1, 0, None), (64, 0, None), (0, -1, None), (0, 2**64, None)]
)
def test_tile_path_out_of_range(level: int, index: int, width: int | None) -> None:
    with pytest.raises(ValueError, match=r"out of range|between"):
        tiles.tile_path(level, index, width)


@pytest.mark.parametrize("width", [0, 257, -3])
def test_width_out_of_range(width: int) -> None:
    with pytest.raises(ValueError, match="width"):
        tiles.entries_path(0, width)


@pytest.mark.parametrize(
    ("path", "ref"),
    [
        ("tile/0/000", TileRef(0, 0)),
        ("tile/0/x001/x234/067", TileRef(0, 1234067)),
        ("tile/2/005.p/255", TileRef(2, 5, 255)),
        ("tile/63/000.p/1", TileRef(63, 0, 1)),
        ("tile/entries/x001/000", TileRef(None, 1000)),
        ("tile/entries/000.p/7", TileRef(None, 0, 7)),
    ],
)
def test_parse_path(path: str, ref: TileRef) -> None:
    parsed = tiles.parse_path(path)
    assert parsed == ref
    assert parsed.path == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile/0/5",  # groups are three digits
        "tile/0/0005",
        "tile/00/000",  # leading zero in the level
        "tile/64/000",  # level above 63
        "tile/0/x000/005",  # a superfluous leading group
        "tile/0/001/000",  # a group without its x
        "tile/0/x001",  # the last group has no x
        "tile/0/000.p/0",
        "tile/0/000.p/256",  # a full tile has no width
        "tile/0/000.p/07",
        "tile/0/000.p/",
        "tile/0/000/",
        "/tile/0/000",
        "tile/0/../000",
        "tile/entries/000.p/300",
        "tile/entry/000",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2**64
        "tile/0/000\n",
        "tile/-1/000",
        "tile/0/X001/000",
    ],
)
def test_parse_path_is_strict(path: str) -> None:
    with pytest.raises(FormatError, match=r"not a .*tile path"):
        tiles.parse_path(path)


def test_path_round_trip_random() -> None:
    rng = random.Random(4)
    for _ in range(500):
        level = rng.choice([None, 0, 1, 2, rng.randrange(64)])
        index = rng.choice([0, rng.randrange(1000), rng.randrange(2**40), rng.randrange(2**64)])
        width = rng.choice([256, rng.randrange(1, 257)])
        ref = TileRef(level, index, width)
        assert tiles.parse_path(ref.path) == ref


# -- bundles ------------------------------------------------------------------------


def test_bundle_round_trip() -> None:
    bodies = [b"a", b"\x00" * 300, b"x" * tiles.MAX_ENTRY_SIZE, b'{"kind":"hashedrekord"}']
    data = tiles.encode_bundle(bodies)
    assert data[:3] == b"\x00\x01a"
    assert data[3:5] == (300).to_bytes(2, "big")
    assert tiles.decode_bundle(data) == bodies
    assert tiles.decode_bundle(b"") == []


@pytest.mark.parametrize("body", [b"", b"x" * (tiles.MAX_ENTRY_SIZE + 1)])
def test_bundle_refuses_entries_it_cannot_carry(body: bytes) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        tiles.encode_bundle([b"ok", body])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00", "inside a length prefix"),
        (b"\x00\x01a\x00", "inside a length prefix"),
        (b"\x00\x05abc", "truncated"),
        (b"\x00\x00", "empty"),
        (b"\x00\x01a" * 257, "more than 256"),
    ],
)
def test_decode_bundle_is_strict(data: bytes, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        tiles.decode_bundle(data)


# -- growth ---------------------------------------------------------------------------


def test_changed_tiles_small_steps() -> None:
    assert tiles.changed_tiles(0, 0) == []
    assert tiles.changed_tiles(0, 1) == [TileRef(0, 0, 1)]
    assert tiles.changed_tiles(1, 3) == [TileRef(0, 0, 3)]
    assert tiles.changed_tiles(255, 256) == [TileRef(0, 0), TileRef(1, 0, 1)]
    assert tiles.changed_tiles(256, 257) == [TileRef(0, 1, 1)]
    assert tiles.changed_tiles(200, 70000) == [
        *(TileRef(0, i) for i in range(273)),
        TileRef(0, 273, 112),
        TileRef(1, 0),
        TileRef(1, 1, 17),
        TileRef(2, 0, 1),
    ]
    assert tiles.changed_bundles(200, 700) == [
        TileRef(None, 0),
        TileRef(None, 1),
        TileRef(None, 2, 188),
    ]
    assert tiles.changed_bundles(5, 5) == []


def test_changed_tiles_refuses_shrinking() -> None:
    with pytest.raises(ValueError, match="cannot grow"):
        tiles.changed_tiles(5, 4)
    with pytest.raises(ValueError, match="cannot grow"):
        tiles.changed_bundles(5, 4)


def test_tile_ref_for_size() -> None:
    assert tiles.tile_ref(0, 0, 300) == TileRef(0, 0)
    assert tiles.tile_ref(0, 1, 300) == TileRef(0, 1, 44)
    assert tiles.tile_ref(1, 0, 300) == TileRef(1, 0, 1)
    with pytest.raises(ValueError, match="no tile"):
        tiles.tile_ref(0, 2, 300)
    with pytest.raises(ValueError, match="no tile"):
        tiles.tile_ref(1, 0, 255)


def test_tiles_for_size_is_every_tile_once() -> None:
    refs = tiles.tiles_for_size(256 * 256 + 3)
    assert len(refs) == 259
    assert refs[-3:] == [TileRef(0, 256, 3), TileRef(1, 0), TileRef(2, 0, 1)]
    assert len({r.path for r in refs}) == len(refs)


def test_growth_writes_each_path_once_and_covers_the_tree() -> None:
    # Whatever the checkpoint sizes, no path is written twice (tiles are
    # immutable) and the final tree's tiles are all there.
    rng = random.Random(11)
    hashes = leaves(70_000)
    sizes = [*sorted(rng.sample(range(1, 70_001), 40)), 70_000]
    store = tile_store(hashes, sizes)
    for ref in tiles.tiles_for_size(70_000):
        assert ref.path in store


@pytest.mark.parametrize("seed", range(6))
def test_root_from_tiles_alone(seed: int) -> None:
    rng = random.Random(seed)
    total = rng.choice([1, 255, 256, 257, 65_536, 66_000 + rng.randrange(3000)])
    hashes = leaves(total)
    sizes = sorted({rng.randrange(1, total + 1) for _ in range(5)} | {total})
    store = tile_store(hashes, sizes)
    for size in sizes:
        # Recompute each checkpoint root from the tiles a reader would fetch.
        source = tiles.TileHashSource(size, store.get)
        expected = merkle.root_from_leaf_hashes(hashes[:size])
        assert merkle.tree_root(size, source) == expected


def test_hash_source_gives_the_same_proofs() -> None:
    rng = random.Random(3)
    hashes = leaves(66_000)
    sizes = [1, 2, 3, 255, 256, 257, 1000, 65_535, 65_536, 65_537, 66_000]
    store = tile_store(hashes, sizes)
    for size in sizes:
        reference = merkle.ListHashSource(hashes[:size])
        source = tiles.TileHashSource(size, store.get)
        for index in {0, size - 1, rng.randrange(size), rng.randrange(size)}:
            assert merkle.inclusion_proof(index, size, source) == merkle.inclusion_proof(
                index, size, reference
            )
        for old in {1, size // 2 or 1, rng.randrange(1, size + 1)}:
            assert merkle.consistency_proof(old, size, source) == merkle.consistency_proof(
                old, size, reference
            )


def test_hash_source_reads_only_tiles_of_its_size() -> None:
    hashes = leaves(600)
    store = tile_store(hashes, [600])
    source = tiles.TileHashSource(600, store.get)
    merkle.inclusion_proof(599, 600, source)
    # The leaf's own tile, and the roots of the two full tiles on its left.
    assert sorted(source.paths_read) == ["tile/0/002.p/88", "tile/1/000.p/2"]


def test_hash_source_rejects_missing_and_bad_tiles() -> None:
    hashes = leaves(300)
    store = tile_store(hashes, [300])
    missing = dict(store)
    del missing["tile/0/001.p/44"]
    with pytest.raises(FormatError, match=r"tile tile/0/001.p/44 is missing"):
        merkle.tree_root(300, tiles.TileHashSource(300, missing.get))
    short = dict(store)
    short["tile/0/000"] = store["tile/0/000"][:-1]
    with pytest.raises(FormatError, match=r"tile/0/000: .*expected 256 hashes"):
        merkle.inclusion_proof(0, 300, tiles.TileHashSource(300, short.get))
    with pytest.raises(ValueError, match="no perfect subtree"):
        tiles.TileHashSource(300, store.get).perfect_subtree_hash(9, 0)
    with pytest.raises(ValueError, match="negative"):
        tiles.TileHashSource(-1, store.get)


def test_split_tile() -> None:
    assert tiles.split_tile(b"\x01" * 64, 2) == [b"\x01" * 32] * 2
    with pytest.raises(FormatError, match="expected 3 hashes"):
        tiles.split_tile(b"\x01" * 64, 3)


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 65_535, 65_536, 65_537, 70_000])
def test_build_tiles_is_the_tree_of_the_last_size(size: int) -> None:
    hashes = leaves(size)
    built = tiles.build_tiles(hashes)
    assert sorted(built) == sorted(ref.path for ref in tiles.tiles_for_size(size))
    grown = tile_store(hashes, [size] if size else [])
    assert all(built[path] == data for path, data in grown.items())
    source = tiles.TileHashSource(size, built.get)
    assert source.root() == merkle.root_from_leaf_hashes(hashes)
