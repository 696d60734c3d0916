"""The log engine over in-memory storage: rounds, proofs, checkpoints, duplicates, recovery."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from toolkit import merkle
from toolkit.errors import FormatError, UsageError
from toolkit.note import Checkpoint, ECDSANoteVerifier, Ed25519NoteVerifier, Note, parse_vkey
from toolkit.services.log import tiles
from toolkit.services.log.engine import (
    Accepted,
    IntegrityError,
    LogEngine,
    LogUnavailableError,
    PoolFullError,
)
from toolkit.services.log.hashedrekord import set_payload
from toolkit.services.log.storage import (
    LogState,
    MemoryCoordinator,
    MemoryTileStore,
    NewEntry,
    StorageError,
)
from toolkit.signing import KeyAlgorithm, SoftwareSigner

ORIGIN = "log.airseal.test"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


T = TypeVar("T")

ED25519 = SoftwareSigner.generate(KeyAlgorithm.ED25519)
P256 = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def submit_once(eng: LogEngine, new: NewEntry) -> Accepted:
    """Start the engine, submit one entry, stop it; the answer."""

    async def scenario() -> Accepted:
        await eng.start()
        try:
            return await eng.submit(new)
        finally:
            await eng.stop()

    return run(scenario)


def entry(i: int | str) -> NewEntry:
    body = f'{{"entry":"{i}"}}'.encode()
    return NewEntry(merkle.leaf_hash(body), body)


def engine(
    coordinator: MemoryCoordinator | None = None,
    store: MemoryTileStore | None = None,
    signer: SoftwareSigner = ED25519,
    **kwargs: Any,
) -> LogEngine:
    kwargs.setdefault("max_wait", 0.005)
    return LogEngine(
        coordinator if coordinator is not None else MemoryCoordinator(),
        store if store is not None else MemoryTileStore(),
        signer,
        ORIGIN,
        **kwargs,
    )


def verify_accepted(accepted: Accepted, eng: LogEngine) -> Checkpoint:
    """Check an answer the way a client does: proof, then the signed checkpoint."""
    merkle.verify_inclusion(
        merkle.leaf_hash(accepted.body),
        accepted.index,
        accepted.tree_size,
        accepted.proof,
        accepted.root_hash,
    )
    note = Note.parse(accepted.checkpoint.decode())
    vkey = eng.vkey
    verifier = parse_vkey(vkey) if vkey else ECDSANoteVerifier(ORIGIN, P256.public_key)  # type: ignore[arg-type]
    note.verify([verifier])
    checkpoint = Checkpoint.from_text(note.text)
    assert checkpoint == Checkpoint(ORIGIN, accepted.tree_size, accepted.root_hash)
    return checkpoint


def store_root(store: MemoryTileStore, size: int) -> bytes:
    return merkle.tree_root(size, tiles.TileHashSource(size, store.get))


def all_bodies(store: MemoryTileStore, size: int) -> list[bytes]:
    bodies: list[bytes] = []
    for index in range((size + 255) // 256):
        ref = tiles.TileRef(None, index, min(256, size - 256 * index))
        data = store.get(ref.path)
        assert data is not None, ref.path
        bodies.extend(tiles.decode_bundle(data))
    return bodies


async def submit_all(eng: LogEngine, entries: Sequence[NewEntry]) -> list[Accepted]:
    return list(await asyncio.gather(*(eng.submit(e) for e in entries)))


# -- rounds and proofs --------------------------------------------------------------------


def test_batches_indices_proofs_and_checkpoints() -> None:
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    eng = engine(coordinator, store, batch_size=10, max_wait=30)

    async def scenario() -> list[Accepted]:
        await eng.start()
        try:
            # 30 submissions at once fill three batches: no round waits 30 s.
            return await submit_all(eng, [entry(i) for i in range(30)])
        finally:
            await eng.stop()

    accepted = run(scenario)
    assert [a.index for a in accepted] == list(range(30))
    assert [a.tree_size for a in accepted] == [10] * 10 + [20] * 10 + [30] * 10
    assert not any(a.duplicate for a in accepted)
    for a in accepted:
        verify_accepted(a, eng)
    assert eng.metrics()["rounds"] == 3
    assert eng.metrics()["batch_entries_sum"] == 30
    assert eng.metrics()["tree_size"] == 30
    state = coordinator.state()
    assert state is not None and state.size == 30
    assert eng.checkpoint() == state.checkpoint == accepted[-1].checkpoint
    # The published tiles alone give the checkpoint's root and the bodies.
    assert store_root(store, 30) == state.root_hash
    assert all_bodies(store, 30) == [entry(i).body for i in range(30)]


def test_signed_checkpoint_and_key_ids() -> None:
    eng = engine()

    accepted = submit_once(eng, entry("only"))
    assert (accepted.index, accepted.tree_size, accepted.proof) == (0, 1, ())
    verifier = Ed25519NoteVerifier(ORIGIN, ED25519.public_key)  # type: ignore[arg-type]
    note = Note.parse(accepted.checkpoint.decode())
    note.verify([verifier])
    assert note.text == f"{ORIGIN}\n1\n{_b64(accepted.root_hash)}\n"
    assert eng.log_id == verifier.full_key_id
    raw = ED25519.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert eng.log_id == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()
    assert eng.vkey is not None and parse_vkey(eng.vkey).full_key_id == eng.log_id
    assert eng.origin == ORIGIN


def test_checkpoints_are_consistent_across_rounds() -> None:
    store = MemoryTileStore()
    eng = engine(store=store, batch_size=37)

    async def scenario() -> list[Accepted]:
        await eng.start()
        out: list[Accepted] = []
        try:
            # Sizes cross tile boundaries (256) at uneven points.
            for start in range(0, 700, 111):
                out.extend(await submit_all(eng, [entry(i) for i in range(start, start + 111)]))
        finally:
            await eng.stop()
        return out

    accepted = run(scenario)
    final = accepted[-1]
    assert final.tree_size == 777
    source = tiles.TileHashSource(final.tree_size, store.get)
    seen = {a.tree_size: a.root_hash for a in accepted}
    for size, root in sorted(seen.items()):
        proof = merkle.consistency_proof(size, final.tree_size, source)
        merkle.verify_consistency(size, final.tree_size, proof, root, final.root_hash)
    for a in accepted[::50]:
        verify_accepted(a, eng)


def test_a_tree_past_the_first_level_one_tile() -> None:
    # 66,000 entries: full level-1 tiles and a level-2 tile. Sequenced directly
    # (as a crash would leave them) so that recovery integrates them.
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    bodies = [entry(i) for i in range(66_000)]
    coordinator.sequence(bodies)
    eng = engine(coordinator, store, batch_size=4096)

    async def scenario() -> list[Accepted]:
        await eng.start()
        try:
            assert eng.tree_size() == 66_000
            return await submit_all(eng, [entry(i) for i in range(66_000, 66_100)])
        finally:
            await eng.stop()

    accepted = run(scenario)
    for a in accepted[::9]:
        verify_accepted(a, eng)
    hashes = [merkle.leaf_hash(e.body) for e in bodies] + [
        merkle.leaf_hash(a.body) for a in accepted
    ]
    assert accepted[-1].root_hash == merkle.root_from_leaf_hashes(hashes)
    assert store.get("tile/2/000.p/1") is not None
    assert store_root(store, 66_100) == accepted[-1].root_hash


# -- duplicates and pushback ------------------------------------------------------------


def test_duplicates_get_the_existing_entry_with_a_current_proof() -> None:
    eng = engine()

    async def scenario() -> tuple[list[Accepted], list[Accepted]]:
        await eng.start()
        try:
            first = await submit_all(eng, [entry(i) for i in range(5)])
            # Same round: a new entry, its duplicate, and an older duplicate.
            second = await submit_all(eng, [entry("new"), entry("new"), entry(2)])
            return first, second
        finally:
            await eng.stop()

    first, second = run(scenario)
    new, again, old = second
    assert (new.index, new.duplicate) == (5, False)
    assert (again.index, again.duplicate) == (5, True)
    assert (old.index, old.duplicate, old.body) == (2, True, first[2].body)
    assert old.tree_size == 6 > first[2].tree_size
    for a in second:
        verify_accepted(a, eng)
    assert eng.metrics()["duplicates"] == 2


def test_pool_full_pushes_back_and_stop_flushes() -> None:
    eng = engine(max_pending=3, batch_size=100, max_wait=30)

    async def scenario() -> tuple[PoolFullError, list[Accepted]]:
        await eng.start()
        waiting = [asyncio.ensure_future(eng.submit(entry(i))) for i in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(PoolFullError) as caught:
            await eng.submit(entry("one too many"))
        # Stopping does not wait for the 30 s batch window: it flushes.
        await eng.stop()
        return caught.value, list(await asyncio.gather(*waiting))

    error, accepted = run(scenario)
    assert error.retry_after >= 1
    assert "3 submissions are waiting" in error.message
    assert [a.index for a in accepted] == [0, 1, 2]
    assert eng.metrics()["pool_full"] == 1


def test_submissions_outside_the_engine_lifetime_are_refused() -> None:
    eng = engine()

    async def scenario() -> None:
        with pytest.raises(LogUnavailableError, match="not running"):
            await eng.submit(entry(0))
        await eng.start()
        await eng.stop()
        with pytest.raises(LogUnavailableError, match="not running"):
            await eng.submit(entry(0))

    run(scenario)
    with pytest.raises(LogUnavailableError, match="not started"):
        engine().checkpoint()


def test_entries_an_entry_bundle_cannot_carry_are_refused() -> None:
    eng = engine()

    async def scenario() -> None:
        await eng.start()
        try:
            big = b"x" * (tiles.MAX_ENTRY_SIZE + 1)
            with pytest.raises(FormatError, match="does not fit"):
                await eng.submit(NewEntry(merkle.leaf_hash(big), big))
            with pytest.raises(FormatError, match="identity"):
                await eng.submit(NewEntry(b"short", b"body"))
        finally:
            await eng.stop()

    run(scenario)


# -- recovery and restarts ----------------------------------------------------------------


def test_recovery_integrates_sequenced_entries() -> None:
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    first = engine(coordinator, store)

    async def phase1() -> Accepted:
        await first.start()
        try:
            return (await submit_all(first, [entry(i) for i in range(300)]))[-1]
        finally:
            await first.stop()

    before = run(phase1)
    # A crash after sequencing, before the checkpoint: entries are in the
    # coordinator but in no checkpoint and no tile.
    coordinator.sequence([entry(i) for i in range(300, 520)])
    state = coordinator.state()
    assert state is not None and state.size == 300
    second = engine(coordinator, store)

    async def phase2() -> Accepted:
        await second.start()
        try:
            assert second.tree_size() == 520
            return await second.submit(entry(400))
        finally:
            await second.stop()

    dup = run(phase2)
    assert (dup.index, dup.duplicate, dup.tree_size) == (400, True, 520)
    verify_accepted(dup, second)
    source = tiles.TileHashSource(520, store.get)
    proof = merkle.consistency_proof(300, 520, source)
    merkle.verify_consistency(300, 520, proof, before.root_hash, dup.root_hash)
    assert all_bodies(store, 520) == [entry(i).body for i in range(520)]


def test_recovery_before_the_first_checkpoint() -> None:
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    coordinator.sequence([entry(i) for i in range(3)])
    eng = engine(coordinator, store)

    async def scenario() -> None:
        await eng.start()
        await eng.stop()

    run(scenario)
    state = coordinator.state()
    assert state is not None and state.size == 3
    assert state.root_hash == merkle.root_from_leaf_hashes(
        merkle.leaf_hash(entry(i).body) for i in range(3)
    )


def test_an_empty_log_signs_the_empty_checkpoint() -> None:
    coordinator = MemoryCoordinator()
    eng = engine(coordinator)

    async def scenario() -> None:
        await eng.start()
        await eng.stop()

    run(scenario)
    state = coordinator.state()
    assert state is not None
    assert (state.size, state.root_hash) == (0, merkle.EMPTY_ROOT)
    assert Note.parse(state.checkpoint.decode()).text == f"{ORIGIN}\n0\n{_b64(merkle.EMPTY_ROOT)}\n"


def test_restart_continues_the_same_tree() -> None:
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    results: list[Accepted] = []
    for round_no in range(3):
        eng = engine(coordinator, store)

        async def scenario(eng: LogEngine = eng, round_no: int = round_no) -> list[Accepted]:
            await eng.start()
            try:
                return await submit_all(
                    eng, [entry(f"{round_no}-{i}") for i in range(round_no * 100 + 50)]
                )
            finally:
                await eng.stop()

        results.extend(run(scenario))
    final = results[-1]
    assert final.tree_size == 50 + 150 + 250
    hashes = [merkle.leaf_hash(a.body) for a in results]
    assert final.root_hash == merkle.root_from_leaf_hashes(hashes)


def test_a_store_of_another_log_is_refused() -> None:
    coordinator = MemoryCoordinator()

    async def start(eng: LogEngine) -> None:
        await eng.start()
        await eng.stop()

    run(lambda: start(engine(coordinator)))
    with pytest.raises(StorageError, match="belongs to"):
        run(
            lambda: start(engine(coordinator, signer=SoftwareSigner.generate(KeyAlgorithm.ED25519)))
        )
    other = LogEngine(coordinator, MemoryTileStore(), ED25519, "other.test")
    with pytest.raises(StorageError, match="belongs to"):
        run(lambda: start(other))


# -- integrity ------------------------------------------------------------------------------


def test_tiles_that_do_not_match_the_checkpoint_stop_the_start() -> None:
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    eng = engine(coordinator, store)

    async def fill(eng: LogEngine) -> None:
        await eng.start()
        try:
            await submit_all(eng, [entry(i) for i in range(10)])
        finally:
            await eng.stop()

    run(lambda: fill(eng))
    # Rewrite the partial tile behind the store's back.
    objects: dict[str, bytes] = store._objects
    path = "tile/0/000.p/10"
    objects[path] = objects[path][:32] + b"\x00" * 32 + objects[path][64:]
    with pytest.raises(IntegrityError, match="do not reproduce the root"):
        run(lambda: fill(engine(coordinator, store)))
    del objects[path]
    with pytest.raises(StorageError, match=r"tile/0/000.p/10 is missing"):
        run(lambda: fill(engine(coordinator, store)))


def test_a_checkpoint_not_signed_by_the_log_key_stops_the_start() -> None:
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    run(lambda: _start_stop(engine(coordinator, store)))
    state = coordinator.state()
    assert state is not None
    forged = engine(MemoryCoordinator(), signer=SoftwareSigner.generate(KeyAlgorithm.ED25519))
    forged_note = forged._sign_checkpoint(state.size, state.root_hash)
    assert coordinator.compare_and_swap(0, LogState(0, state.root_hash, forged_note))
    with pytest.raises(IntegrityError, match="not one of this log's"):
        run(lambda: _start_stop(engine(coordinator, store)))


async def _start_stop(eng: LogEngine) -> None:
    await eng.start()
    await eng.stop()


def test_never_signs_a_checkpoint_that_does_not_extend_the_last() -> None:
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    eng = engine(coordinator, store)

    async def scenario() -> None:
        await eng.start()
        try:
            await submit_all(eng, [entry(i) for i in range(5)])
            good = coordinator.state()
            assert good is not None
            # The engine's memory of the last checkpoint goes wrong: the next
            # tree cannot be proven to extend it, so nothing may be signed.
            eng._state = LogState(good.size, b"\x11" * 32, good.checkpoint)
            with pytest.raises(IntegrityError, match="does not extend"):
                await eng.submit(entry("next"))
            assert coordinator.state() == good
            assert eng.halted is not None
            assert eng.metrics()["halted"] == 1
            with pytest.raises(LogUnavailableError, match="halted"):
                await eng.submit(entry("after"))
        finally:
            await eng.stop()

    run(scenario)


class FlakyStore(MemoryTileStore):
    """Fails the next ``failures`` puts."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def put(self, path: str, data: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageError(f"disk full writing {path}")
        super().put(path, data)


def test_a_failed_round_is_retried_by_the_next() -> None:
    coordinator, store = MemoryCoordinator(), FlakyStore()
    eng = engine(coordinator, store)

    async def scenario() -> tuple[Accepted, Accepted]:
        await eng.start()
        try:
            await submit_all(eng, [entry(i) for i in range(3)])
            store.failures = 1
            with pytest.raises(StorageError, match="disk full"):
                await eng.submit(entry("lost"))
            # Sequenced but not integrated: the next round takes it along, and
            # a retry is answered as a duplicate.
            fresh = await eng.submit(entry("fresh"))
            retry = await eng.submit(entry("lost"))
            return fresh, retry
        finally:
            await eng.stop()

    fresh, retry = run(scenario)
    assert (retry.index, retry.duplicate) == (3, True)
    assert (fresh.index, fresh.tree_size) == (4, 5)
    verify_accepted(fresh, eng)
    verify_accepted(retry, eng)
    assert eng.metrics()["round_errors"] == 1


def test_two_front_ends_share_one_log() -> None:
    # Both engines sequence into one coordinator and race on the checkpoint:
    # the loser reloads and answers against the winner's checkpoint.
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    a = engine(coordinator, store, batch_size=7)
    b = engine(coordinator, store, batch_size=5)

    async def scenario() -> list[Accepted]:
        await a.start()
        await b.start()
        try:
            jobs = []
            for i in range(200):
                jobs.append((a if i % 2 else b).submit(entry(i)))
            return list(await asyncio.gather(*jobs))
        finally:
            await a.stop()
            await b.stop()

    accepted = run(scenario)
    assert sorted(x.index for x in accepted) == list(range(200))
    for x in accepted:
        verify_accepted(x, a)
    state = coordinator.state()
    assert state is not None and state.size == 200
    # Whichever signed last, both serve the newest checkpoint.
    assert a.latest_checkpoint() == b.latest_checkpoint() == state.checkpoint
    assert store_root(store, 200) == state.root_hash
    source = tiles.TileHashSource(200, store.get)
    for x in accepted:
        proof = merkle.consistency_proof(x.tree_size, 200, source)
        merkle.verify_consistency(x.tree_size, 200, proof, x.root_hash, state.root_hash)


# -- ECDSA keys, v1 SETs, reads, parameters -----------------------------------------------------


def test_ecdsa_log_with_sets() -> None:
    eng = engine(signer=P256, v1_set=True)

    accepted = submit_once(eng, entry("v1"))
    verify_accepted(accepted, eng)
    spki = P256.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert eng.log_id == hashlib.sha256(spki).digest()
    assert eng.vkey is None and eng.v1_set
    assert accepted.signed_entry_timestamp is not None
    payload = set_payload(accepted.body, accepted.integrated_time, eng.log_id, accepted.index)
    public = P256.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(accepted.signed_entry_timestamp, payload, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    ("signer", "kwargs", "reason"),
    [
        (ED25519, {"v1_set": True}, "ECDSA P-256"),
        (SoftwareSigner.generate(KeyAlgorithm.ECDSA_P384), {"v1_set": True}, "ECDSA P-256"),
        (SoftwareSigner.generate(KeyAlgorithm.RSA_3072), {}, "Ed25519 or ECDSA"),
        (ED25519, {"batch_size": 0}, "batch size"),
        (ED25519, {"max_wait": -1}, "max wait"),
        (ED25519, {"max_pending": 0}, "max pending"),
    ],
)
def test_bad_parameters(signer: SoftwareSigner, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        engine(signer=signer, **kwargs)


def test_origin_must_be_a_note_key_name() -> None:
    with pytest.raises(UsageError, match="cannot name a note key"):
        LogEngine(MemoryCoordinator(), MemoryTileStore(), ED25519, "bad origin")


def test_read_serves_stored_tiles_by_canonical_path() -> None:
    store = MemoryTileStore()
    eng = engine(store=store)

    async def scenario() -> None:
        await eng.start()
        try:
            await submit_all(eng, [entry(i) for i in range(260)])
        finally:
            await eng.stop()

    run(scenario)
    size = eng.tree_size()
    assert size == 260
    assert eng.read("tile/0/000") == store.get("tile/0/000")
    assert eng.read("tile/0/001.p/4") == store.get("tile/0/001.p/4") is not None
    assert eng.read("tile/1/000.p/1") is not None
    assert tiles.decode_bundle(eng.read("tile/entries/001.p/4") or b"")[0] == entry(256).body
    for path in (
        "tile/0/001.p/5",
        "tile/0/001",
        "tile/entries/001",
        "tile/1/000",
        "tile/0/x000/000",
        "x",
    ):
        assert eng.read(path) is None, path


def test_proofs_are_the_reference_proofs() -> None:
    # The engine walks its own border table; it must give exactly the RFC 9162
    # audit paths of toolkit.merkle, for every index and many tree sizes.
    eng = engine(batch_size=1000)
    steps = [1, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 256, 1, 377]

    async def scenario() -> list[list[Accepted]]:
        await eng.start()
        out: list[list[Accepted]] = []
        try:
            count = 0
            for step in steps:
                batch = [entry(i) for i in range(count, count + step)]
                # Old entries again: proofs for indices far from the new leaves.
                batch += [entry(i) for i in range(0, count, 7)]
                out.append(await submit_all(eng, batch))
                count += step
        finally:
            await eng.stop()
        return out

    rounds = run(scenario)
    hashes = [merkle.leaf_hash(entry(i).body) for i in range(sum(steps))]
    for accepted in rounds:
        size = accepted[0].tree_size
        reference = merkle.ListHashSource(hashes[:size])
        for a in accepted:
            assert a.tree_size == size
            assert list(a.proof) == merkle.inclusion_proof(a.index, size, reference)


# -- deleting superseded partial tiles ---------------------------------------------------------


def c2sp_reader(read: Callable[[str], bytes | None]) -> Callable[[str], bytes | None]:
    """A reader that, like C2SP clients, falls back to the full tile for a missing partial."""

    def get(path: str) -> bytes | None:
        data = read(path)
        if data is not None or ".p/" not in path:
            return data
        full, width = path.split(".p/")
        data = read(full)
        if data is None:
            return None
        if full.startswith("tile/entries/"):
            return tiles.encode_bundle(tiles.decode_bundle(data)[: int(width)])
        return data[: int(width) * merkle.HASH_SIZE]

    return get


def partials(store: MemoryTileStore, full: str) -> list[str]:
    return [path for path in store._objects if path.startswith(full + ".p/")]


def test_completed_tiles_lose_their_partials() -> None:
    store = MemoryTileStore()
    eng = engine(store=store, batch_size=1000)
    # Small rounds, as at a low rate: each writes new partials of tile 0.
    steps = [1, 2, 3, 50, 100, 100, 44]

    async def scenario() -> list[list[Accepted]]:
        await eng.start()
        out: list[list[Accepted]] = []
        try:
            count = 0
            for step in steps:
                out.append(await submit_all(eng, [entry(i) for i in range(count, count + step)]))
                count += step
                if count < 256:
                    # Before the tile is full, its partials are what is served.
                    assert partials(store, "tile/0/000") != []
        finally:
            await eng.stop()
        return out

    rounds = run(scenario)
    final = rounds[-1][-1]
    assert final.tree_size == 300
    # Tile 0 and bundle 0 are full: their partials are gone, the full ones stay.
    assert partials(store, "tile/0/000") == partials(store, "tile/entries/000") == []
    assert store.get("tile/0/000") is not None and store.get("tile/entries/000") is not None
    assert eng.read("tile/0/000") == store.get("tile/0/000")
    assert eng.read("tile/0/000.p/6") is None
    # The right edge keeps its partials: tile 1 of level 0, tile 0 of level 1.
    assert store.get("tile/0/001.p/44") is not None
    assert store.get("tile/entries/001.p/44") is not None
    assert store.get("tile/1/000.p/1") is not None
    assert eng.metrics()["partials_gc_failures"] == 0
    assert eng.metrics()["partials_deleted"] == 2
    # Every answer still verifies, and every older tree is still readable
    # (partials from the full tile) and consistent with the final one.
    source = tiles.TileHashSource(300, store.get)
    for accepted in rounds:
        for a in accepted:
            verify_accepted(a, eng)
        size, root = accepted[0].tree_size, accepted[0].root_hash
        old = tiles.TileHashSource(size, c2sp_reader(store.get))
        assert merkle.tree_root(size, old) == root
        proof = merkle.consistency_proof(size, 300, source)
        merkle.verify_consistency(size, 300, proof, root, final.root_hash)
    assert all_bodies(store, 300) == [entry(i).body for i in range(300)]


class NoDeleteStore(MemoryTileStore):
    """A store whose partial tiles cannot be deleted."""

    def delete_partials(self, path: str) -> None:
        raise StorageError(f"permission denied deleting the partials of {path}")


def test_a_failed_partial_deletion_never_fails_the_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    coordinator, store = MemoryCoordinator(), NoDeleteStore()
    eng = engine(coordinator, store, batch_size=1000)

    async def scenario() -> list[Accepted]:
        await eng.start()
        try:
            await submit_all(eng, [entry(i) for i in range(200)])
            return await submit_all(eng, [entry(i) for i in range(200, 300)])
        finally:
            await eng.stop()

    accepted = run(scenario)
    for a in accepted:
        verify_accepted(a, eng)
    metrics = eng.metrics()
    assert (metrics["round_errors"], metrics["partials_gc_failures"]) == (0, 2)
    assert "could not delete the partial tiles of tile/entries/000: permission denied" in (
        caplog.text
    )
    # The leftovers are harmless: they agree with the full tile.
    full = store.get("tile/0/000")
    assert full is not None and store.get("tile/0/000.p/200") == full[: 200 * 32]


def test_start_reads_the_edge_from_the_full_tile_when_its_partial_is_gone() -> None:
    # Another front-end completed tile 0 and deleted its partials after this
    # one read the checkpoint of size 200: the full tile holds the same prefix.
    coordinator, store = MemoryCoordinator(), MemoryTileStore()
    first = engine(coordinator, store)

    async def grow(eng: LogEngine, start: int, end: int) -> list[Accepted]:
        await eng.start()
        try:
            return await submit_all(eng, [entry(i) for i in range(start, end)])
        finally:
            await eng.stop()

    run(lambda: grow(first, 0, 200))
    bodies = [entry(i).body for i in range(256)]
    built = tiles.build_tiles([merkle.leaf_hash(body) for body in bodies])
    store.put("tile/0/000", built["tile/0/000"])
    store.put("tile/entries/000", tiles.encode_bundle(bodies))
    store.delete_partials("tile/0/000")
    store.delete_partials("tile/entries/000")
    assert store.get("tile/0/000.p/200") is None

    second = engine(coordinator, store)
    accepted = run(lambda: grow(second, 200, 300))
    assert accepted[-1].tree_size == 300
    for a in accepted:
        verify_accepted(a, second)
    assert store_root(store, 300) == accepted[-1].root_hash
