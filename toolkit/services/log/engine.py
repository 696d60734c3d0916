"""The log engine: one sequencer that batches submissions into rounds.

Every submission waits in a pool. One asyncio task takes up to ``batch_size``
of them -- waiting at most ``max_wait`` seconds after the oldest arrived --
and runs a *round* in a dedicated worker thread:

1. ``coordinator.sequence`` gives the batch its indices, durably, in one
   transaction (duplicates get their existing index);
2. the leaves are appended to the in-memory right edge of the tree, and the
   tiles and entry bundles that changed are put to the tile store;
3. the new checkpoint is checked to extend the previous one (a consistency
   proof between them must verify against the *signed* previous root), then
   signed as a C2SP note with the log key;
4. ``coordinator.compare_and_swap`` publishes it -- the moment the entries
   are committed -- and only then are the submissions answered, each with an
   inclusion proof against that checkpoint;
5. the partial versions of every tile and bundle the round completed are
   deleted (C2SP allows it once the full tile exists, and readers fall back
   to it). A failed deletion is logged and counted, never fails the round.

So a round costs one sequencing transaction, a handful of tile writes and one
signature, whatever the batch size: batching is what makes a durable log fast.

The engine keeps the right edge of the tree in memory (:class:`_Tree`): the
last, partial tile of every level and the last partial entry bundle, which is
all it takes to extend the tree and write the next partial tiles, plus the
tiles completed in the current round and a small cache of recent full tiles,
so proofs for a round's entries are computed without reading storage. The
edge is loaded from the tiles of the stored checkpoint at start (and after
another front-end won a compare-and-swap), and its root is checked against
that checkpoint before anything is appended.

Crash recovery: entries sequenced but not yet covered by the checkpoint (a
crash between steps 1 and 4) are integrated at start, before any new
submission. Tiles are immutable and a function of the log's entries, so
rewriting the tiles of an interrupted round is a no-op. A crash between a
round's checkpoint and its deletion of partials leaves those partials on
storage for good: harmless (a few files, consistent with the full tile), so
start-up does not look for them.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from toolkit import merkle
from toolkit.errors import Error, FormatError, UsageError, VerificationError
from toolkit.note import (
    Checkpoint,
    ECDSANoteSigner,
    Ed25519NoteSigner,
    Note,
    make_vkey,
    sign_note,
)
from toolkit.services.log import tiles
from toolkit.services.log.storage import (
    Coordinator,
    LogIdentity,
    LogState,
    NewEntry,
    SequencedEntry,
    StorageError,
    TileStore,
)
from toolkit.signing import Scheme, Signer

__all__ = [
    "Accepted",
    "IntegrityError",
    "LogEngine",
    "LogUnavailableError",
    "PoolFullError",
]

_log = logging.getLogger("airseal.log")

#: Full tiles (read from storage or completed by a round) kept in memory.
_CACHED_TILES = 512
#: Compare-and-swap losses in a row after which a round gives up.
_MAX_CAS_ATTEMPTS = 16
#: Longest Retry-After the engine suggests, in seconds.
_MAX_RETRY_AFTER = 60


class LogUnavailableError(Error):
    """The log cannot take submissions now (stopping, or halted by a fault)."""

    exit_code: ClassVar[int] = 3


class PoolFullError(LogUnavailableError):
    """Too many submissions wait already: the client should retry later.

    Attributes:
        retry_after: Suggested wait in whole seconds (at least 1).
    """

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(
            f"the log is busy: {waiting} submissions are waiting",
            hint=f"retry in {retry_after} s",
        )
        self.retry_after = retry_after


class IntegrityError(Error):
    """The log's state contradicts itself; the engine halts rather than sign.

    Raised when a new tree does not extend the signed previous checkpoint,
    when the stored tiles do not reproduce the stored checkpoint's root, or
    when a stored checkpoint is not signed by this log's key.
    """

    exit_code: ClassVar[int] = 3


@dataclass(frozen=True)
class Accepted:
    """A submission that is in the log, with the evidence.

    Attributes:
        index: The entry's log index.
        body: The logged body (for a duplicate: the stored one).
        duplicate: True when the entry had been logged before.
        tree_size: Size of the checkpoint the proof is for.
        root_hash: Root hash of that checkpoint.
        proof: Inclusion proof of the entry in that tree, leaf to root.
        checkpoint: The signed checkpoint note, exactly as ``/checkpoint`` serves it.
        integrated_time: Seconds since the epoch when the round ran.
        signed_entry_timestamp: The Rekor v1-style SET (v1 mode only).
    """

    index: int
    body: bytes
    duplicate: bool
    tree_size: int
    root_hash: bytes
    proof: tuple[bytes, ...]
    checkpoint: bytes
    integrated_time: int
    signed_entry_timestamp: bytes | None = None


class _Tree:
    """The right edge of the Merkle tree in memory, over a tile store.

    A :class:`toolkit.merkle.HashSource` for the tree of the current ``size``.
    Tile hashes come from, in order: the edge (the partial tile of each
    level), the tiles completed in the current round, a cache of recent full
    tiles, and finally the tile store. Perfect subtrees between tile levels
    are memoised for the current round.

    Only the engine's worker thread touches it.
    """

    def __init__(self, store: TileStore) -> None:
        self._store = store
        self.size = 0
        #: edge[L]: hashes of the last, partial tile of level L (may be empty).
        self.edge: list[list[bytes]] = [[]]
        #: Bodies of the last, partial entry bundle.
        self.bodies: list[bytes] = []
        self._round_tiles: dict[tuple[int, int], list[bytes]] = {}
        self._round_bundles: dict[int, list[bytes]] = {}
        self._cache: collections.OrderedDict[tuple[int, int], list[bytes]] = (
            collections.OrderedDict()
        )
        self._memo: dict[tuple[int, int], bytes] = {}

    # -- loading ----------------------------------------------------------------

    def load(self, size: int) -> None:
        """Reset to the tree of ``size`` from the partial tiles in the store.

        Raises:
            StorageError: A tile or bundle of that tree is missing or malformed.
        """
        try:
            self._load(size)
        except FormatError as exc:
            raise StorageError(f"the tiles of tree size {size} are malformed: {exc}") from None

    def _load(self, size: int) -> None:
        self.size = size
        self.edge = []
        self._round_tiles.clear()
        self._round_bundles.clear()
        self._memo.clear()
        level = 0
        while True:
            nodes = size >> (tiles.TILE_HEIGHT * level)
            width = nodes % tiles.TILE_WIDTH
            hashes: list[bytes] = []
            if width:
                data = self._get_partial(tiles.TileRef(level, nodes >> tiles.TILE_HEIGHT, width))
                hashes = tiles.split_tile(data, width)
            self.edge.append(hashes)
            if nodes < tiles.TILE_WIDTH:
                break
            level += 1
        self.bodies = []
        width = size % tiles.TILE_WIDTH
        if width:
            ref = tiles.TileRef(None, size >> tiles.TILE_HEIGHT, width)
            path = ref.path
            bodies = tiles.decode_bundle(self._get_partial(ref))
            if len(bodies) != width:
                raise StorageError(f"{path} holds {len(bodies)} entries, expected {width}")
            self.bodies = bodies

    def _get_partial(self, ref: tiles.TileRef) -> bytes:
        """The partial tile or bundle ``ref``, else its prefix cut from the full one.

        Another front-end may complete the tile, and delete its partials,
        between our reading the checkpoint and reading its edge: the full
        tile then starts with the same hashes (entries), which is how C2SP
        readers use it too.

        Raises:
            StorageError: Neither is in the store, or the full bundle is malformed.
        """
        data = self._store.get(ref.path)
        if data is not None:
            return data
        full = tiles.TileRef(ref.level, ref.index)
        data = self._store.get(full.path)
        if data is None:
            raise StorageError(f"tile {ref.path} is missing from the tile store")
        if not ref.is_entries:
            return data[: ref.width * merkle.HASH_SIZE]
        try:
            return tiles.encode_bundle(tiles.decode_bundle(data)[: ref.width])
        except FormatError as exc:
            raise StorageError(f"{full.path}: {exc.detail}") from None

    def _get(self, path: str) -> bytes:
        data = self._store.get(path)
        if data is None:
            raise StorageError(f"tile {path} is missing from the tile store")
        return data

    # -- growing ------------------------------------------------------------------

    def begin_round(self) -> None:
        """Forget what the previous round memoised (it may be for a reloaded tree)."""
        self._memo.clear()
        self._round_tiles.clear()
        self._round_bundles.clear()

    def append(self, leaf_hash: bytes, body: bytes) -> None:
        """Append one leaf."""
        self._push(0, self.size, leaf_hash)
        self.bodies.append(body)
        if len(self.bodies) == tiles.TILE_WIDTH:
            self._round_bundles[self.size >> tiles.TILE_HEIGHT] = self.bodies
            self.bodies = []
        self.size += 1

    def _push(self, level: int, index: int, node: bytes) -> None:
        # ``index`` is the node's index at Merkle level 8·level.
        if level == len(self.edge):
            self.edge.append([])
        edge = self.edge[level]
        edge.append(node)
        if len(edge) < tiles.TILE_WIDTH:
            return
        tile = index >> tiles.TILE_HEIGHT
        self._round_tiles[(level, tile)] = edge
        self.edge[level] = []
        self._push(level + 1, tile, self._hash_tile(level, tile, edge))

    def _hash_tile(self, level: int, tile: int, hashes: list[bytes]) -> bytes:
        # The inner nodes are exactly what this round's proofs will ask for.
        nodes = hashes
        base = tile << tiles.TILE_HEIGHT
        merkle_level = tiles.TILE_HEIGHT * level
        for _ in range(tiles.TILE_HEIGHT):
            nodes = [merkle.node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
            base >>= 1
            merkle_level += 1
            for i, node in enumerate(nodes):
                self._memo[(merkle_level, base + i)] = node
        return nodes[0]

    def writes(self, old_size: int) -> list[tuple[str, bytes]]:
        """The tiles and bundles that changed since ``old_size``, as (path, data)."""
        out: list[tuple[str, bytes]] = []
        for ref in tiles.changed_bundles(old_size, self.size):
            bodies = self.bodies if not ref.is_full else self._round_bundles[ref.index]
            assert len(bodies) == ref.width
            out.append((ref.path, tiles.encode_bundle(bodies)))
        for ref in tiles.changed_tiles(old_size, self.size):
            assert ref.level is not None
            hashes = self.tile(ref.level, ref.index)
            assert len(hashes) == ref.width
            out.append((ref.path, b"".join(hashes)))
        return out

    def commit(self) -> None:
        """Keep this round's full tiles in the cache of recent tiles."""
        for key, hashes in self._round_tiles.items():
            self._remember(key, hashes)
        self._round_tiles.clear()
        self._round_bundles.clear()

    def _remember(self, key: tuple[int, int], hashes: list[bytes]) -> None:
        self._cache[key] = hashes
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHED_TILES:
            self._cache.popitem(last=False)

    # -- reading --------------------------------------------------------------------

    def tile(self, level: int, index: int) -> list[bytes]:
        """The hashes of tile ``(level, index)`` in the tree of the current size.

        Raises:
            StorageError: A tile the store should have is missing or malformed.
        """
        nodes = self.size >> (tiles.TILE_HEIGHT * level)
        if index == nodes >> tiles.TILE_HEIGHT:
            return self.edge[level]
        key = (level, index)
        hashes = self._round_tiles.get(key)
        if hashes is not None:
            return hashes
        hashes = self._cache.get(key)
        if hashes is not None:
            self._cache.move_to_end(key)
            return hashes
        # Only full tiles lie left of the edge.
        path = tiles.tile_path(level, index)
        try:
            hashes = tiles.split_tile(self._get(path), tiles.TILE_WIDTH)
        except FormatError as exc:
            raise StorageError(f"{path}: {exc.detail}") from None
        self._remember(key, hashes)
        return hashes

    def border(self) -> list[bytes]:
        """The hashes of the right border: item ``l`` is the last node of Merkle level ``l``.

        That node covers leaves ``[((size - 1) >> l) << l, size)`` and is
        ragged unless the size is a multiple of ``2**l``; the last item is the
        root. Computing them once per round makes every proof of the round a
        walk of table lookups.
        """
        if not self.size:
            return [merkle.EMPTY_ROOT]
        last = self.size - 1
        node = self.perfect_subtree_hash(0, last)
        out = [node]
        level = 0
        while last:
            if last & 1:
                node = merkle.node_hash(self.perfect_subtree_hash(level, last - 1), node)
            last >>= 1
            level += 1
            out.append(node)
        return out

    def inclusion_proof(self, index: int, border: Sequence[bytes]) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf ``index`` in the tree of the current size.

        Walking up from the leaf, each level contributes its sibling: on the
        left always a perfect subtree; on the right a perfect subtree, or the
        (possibly ragged) border node; none when the node is the border node
        itself (it is carried up unchanged).

        Args:
            index: The leaf index, below the size.
            border: :meth:`border` of the current size.
        """
        path: list[bytes] = []
        node_of = self.perfect_subtree_hash
        last = self.size - 1
        level = 0
        while last:
            if index & 1:
                path.append(node_of(level, index - 1))
            elif index + 1 < last:
                path.append(node_of(level, index + 1))
            elif index + 1 == last:
                path.append(border[level])
            index >>= 1
            last >>= 1
            level += 1
        return path

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        """See :meth:`toolkit.merkle.HashSource.perfect_subtree_hash`."""
        tile_level, sub = divmod(level, tiles.TILE_HEIGHT)
        if not sub:
            return self.tile(tile_level, index >> tiles.TILE_HEIGHT)[index % tiles.TILE_WIDTH]
        key = (level, index)
        node = self._memo.get(key)
        if node is None:
            node = merkle.node_hash(
                self.perfect_subtree_hash(level - 1, 2 * index),
                self.perfect_subtree_hash(level - 1, 2 * index + 1),
            )
            self._memo[key] = node
        return node


def _note_signer(origin: str, signer: Signer) -> Ed25519NoteSigner | ECDSANoteSigner:
    key = signer.private_key()
    try:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return Ed25519NoteSigner(origin, key)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return ECDSANoteSigner(origin, key)
    except ValueError as exc:
        raise UsageError(f"log origin {origin[:80]!r} cannot name a note key: {exc}") from None
    raise UsageError(
        f"a log key must be Ed25519 or ECDSA, not {signer.scheme.value}",
        hint="generate an Ed25519 key (Rekor v2 logs) or an ECDSA P-256 key (v1 mode)",
    )


class LogEngine:
    """The sequencer of one log: batches, integration, checkpoints and proofs.

    Args:
        coordinator: Sequencing and checkpoint state.
        tiles: The tile store.
        signer: The log key (Ed25519, or ECDSA for Rekor v1-style logs).
        origin: The checkpoint origin and note key name (host of the log's URL).
        batch_size: Most entries per round.
        max_wait: Longest time in seconds a submission waits for its round to start.
        max_pending: Submissions in flight beyond which new ones are refused.
        v1_set: Also sign a Rekor v1-style SET for each entry (needs an ECDSA key).

    Raises:
        UsageError: A parameter is out of range, the key cannot sign notes,
            or ``v1_set`` with a key that is not ECDSA.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        tiles: TileStore,
        signer: Signer,
        origin: str,
        *,
        batch_size: int = 1024,
        max_wait: float = 0.25,
        max_pending: int = 20000,
        v1_set: bool = False,
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, not {batch_size}")
        if not 0 <= max_wait <= 60:
            raise UsageError(f"max wait must lie between 0 and 60 seconds, not {max_wait}")
        if max_pending < 1:
            raise UsageError(f"max pending must be at least 1, not {max_pending}")
        self._coordinator = coordinator
        self._store = tiles
        self._signer = signer
        self._origin = origin
        self._note_signer = _note_signer(origin, signer)
        if v1_set and signer.scheme is not Scheme.ECDSA_P256_SHA256:
            raise UsageError(
                f"a v1 log signs SETs with ECDSA P-256 and SHA-256, not {signer.scheme.value}",
                hint="give an ECDSA P-256 key with --key",
            )
        self._batch_size = batch_size
        self._max_wait = max_wait
        self._max_pending = max_pending
        self._v1_set = v1_set
        self._tree = _Tree(tiles)
        # Only the worker thread writes these; other threads read whole objects.
        self._state: LogState | None = None
        self._hot: dict[str, bytes] = {}
        self._dirty = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._pending: collections.deque[tuple[NewEntry, asyncio.Future[Accepted], float]] = (
            collections.deque()
        )
        self._outstanding = 0
        self._closing = False
        self._halted: Error | None = None
        self._last_round = 0.0
        self._counters: dict[str, float] = dict.fromkeys(
            (
                "submissions",
                "duplicates",
                "integrated",
                "pool_full",
                "rounds",
                "round_errors",
                "round_seconds_sum",
                "round_seconds_count",
                "batch_entries_sum",
                "partials_deleted",
                "partials_gc_failures",
            ),
            0.0,
        )

    # -- properties ------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The checkpoint origin."""
        return self._origin

    @property
    def log_id(self) -> bytes:
        """The 32-byte log id a trusted root names this log by.

        Ed25519: SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ public key), the Rekor v2 note
        key id; ECDSA: SHA-256 of the DER SPKI, as Rekor v1.
        """
        return self._note_signer.verifier.full_key_id

    @property
    def vkey(self) -> str | None:
        """The C2SP verifier key of an Ed25519 log (None for ECDSA keys)."""
        verifier = self._note_signer.verifier
        if isinstance(verifier.public_key, ed25519.Ed25519PublicKey):
            return make_vkey(self._origin, verifier.public_key)
        return None

    @property
    def v1_set(self) -> bool:
        """True when every accepted entry carries a Rekor v1-style SET."""
        return self._v1_set

    @property
    def halted(self) -> Error | None:
        """Why the engine stopped taking submissions after a fault, if it did."""
        return self._halted

    def checkpoint(self) -> bytes:
        """The current signed checkpoint.

        Raises:
            LogUnavailableError: The engine has not started.
        """
        state = self._state
        if state is None:
            raise LogUnavailableError("the log has not started")
        return state.checkpoint

    def tree_size(self) -> int:
        """Size of the current checkpoint (0 before start)."""
        state = self._state
        return state.size if state is not None else 0

    def latest_checkpoint(self) -> bytes:
        """The newest checkpoint in storage, which another front-end may have signed.

        This blocks on storage: call it from a thread.

        Raises:
            LogUnavailableError: The engine has not started.
            StorageError: The coordinator failed.
        """
        local = self._state
        if local is None:
            raise LogUnavailableError("the log has not started")
        stored = self._coordinator.state()
        if stored is None or stored.size <= local.size:
            return local.checkpoint
        return stored.checkpoint

    def read(self, path: str) -> bytes | None:
        """A tile or entry bundle, or None when there is none at ``path``.

        Anything in the store is served, including tiles that another
        front-end wrote for a checkpoint this one has not seen yet: tiles are
        a function of the sequenced entries, so they never contradict a
        checkpoint. Paths that are not canonical C2SP paths are None. This may
        block on storage: call it from a thread.

        Raises:
            StorageError: The store failed.
        """
        try:
            tiles.parse_path(path)
        except FormatError:
            return None
        data = self._hot.get(path)
        if data is not None:
            return data
        return self._store.get(path)

    def metrics(self) -> dict[str, float]:
        """Counters and gauges for ``/metrics``."""
        out = dict(self._counters)
        out["tree_size"] = float(self.tree_size())
        out["pending"] = float(self._outstanding)
        out["halted"] = 1.0 if self._halted is not None else 0.0
        return out

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Claim the store, recover, sign the first checkpoint if none, start sequencing.

        Raises:
            StorageError: The store belongs to another origin or key, or failed.
            IntegrityError: The stored checkpoint and tiles disagree.
        """
        if self._executor is not None:
            raise UsageError("the log engine is already started")
        loop = asyncio.get_running_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="log-sequencer"
        )
        try:
            await loop.run_in_executor(self._executor, self._start_sync)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name="log-sequencer")

    async def stop(self) -> None:
        """Stop taking submissions, finish every waiting one, and stop the worker."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, entry: NewEntry) -> Accepted:
        """Log ``entry`` (or find it) and return it with its proof.

        Returns only after the checkpoint covering the entry is durable.

        Raises:
            FormatError: The entry is empty or too large for an entry bundle.
            PoolFullError: Too many submissions are waiting.
            LogUnavailableError: The engine is not running or has halted.
            StorageError: The round failed in storage (the entry may be logged
                later; a retry is answered as a duplicate).
        """
        if self._halted is not None:
            raise LogUnavailableError(f"the log has halted: {self._halted.message}")
        if self._closing or self._wakeup is None:
            raise LogUnavailableError("the log is not running")
        if not 0 < len(entry.body) <= tiles.MAX_ENTRY_SIZE:
            raise FormatError(
                f"entry of {len(entry.body)} bytes does not fit a log entry "
                f"(1 to {tiles.MAX_ENTRY_SIZE} bytes)"
            )
        if len(entry.identity) != merkle.HASH_SIZE:
            raise FormatError(f"entry identity must be {merkle.HASH_SIZE} bytes")
        if self._outstanding >= self._max_pending:
            self._counters["pool_full"] += 1
            raise PoolFullError(self._outstanding, self._retry_after())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        if not self._pending or len(self._pending) + 1 >= self._batch_size:
            # The loop sleeps until the first entry arrives or a batch is full.
            self._wakeup.set()
        self._pending.append((entry, future, loop.time()))
        self._outstanding += 1
        self._counters["submissions"] += 1
        return await future

    def _retry_after(self) -> int:
        rounds = self._outstanding / self._batch_size
        seconds = rounds * max(self._last_round, self._max_wait)
        return max(1, min(_MAX_RETRY_AFTER, math.ceil(seconds)))

    # -- the round loop (event loop side) ------------------------------------------------

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._pending[0][2] + self._max_wait
            while len(self._pending) < self._batch_size and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            count = min(len(self._pending), self._batch_size)
            batch = [self._pending.popleft() for _ in range(count)]
            await self._run_round(loop, batch)

    async def _run_round(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[NewEntry, asyncio.Future[Accepted], float]],
    ) -> None:
        started = time.perf_counter()
        try:
            if self._halted is not None:
                raise LogUnavailableError(f"the log has halted: {self._halted.message}")
            results = await loop.run_in_executor(
                self._executor, self._round, [entry for entry, _, _ in batch]
            )
        except BaseException as exc:  # every waiting client must hear about it
            self._counters["round_errors"] += 1
            error: BaseException = exc
            if isinstance(exc, IntegrityError):
                self._halted = exc
                _log.critical("log halted: %s", exc)
            elif isinstance(exc, Error | StorageError):
                _log.error("round of %d entries failed: %s", len(batch), exc)
            else:
                # A bug: keep the traceback for the operator, not for clients.
                _log.error("round of %d entries failed", len(batch), exc_info=exc)
                error = LogUnavailableError(f"the round failed: {type(exc).__name__}")
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(error)
                    # A client that went away never retrieves it: not a bug.
                    future.exception()
            self._outstanding -= len(batch)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            return
        elapsed = time.perf_counter() - started
        self._last_round = elapsed
        self._counters["rounds"] += 1
        self._counters["round_seconds_sum"] += elapsed
        self._counters["round_seconds_count"] += 1
        self._counters["batch_entries_sum"] += len(batch)
        for (_, future, _), accepted in zip(batch, results, strict=True):
            if accepted.duplicate:
                self._counters["duplicates"] += 1
            if not future.done():
                future.set_result(accepted)
        self._outstanding -= len(batch)

    # -- the worker thread ------------------------------------------------------------------

    def _start_sync(self) -> None:
        identity = LogIdentity(self._origin, self._signer.key_id)
        self._coordinator.claim(identity)
        self._resync()
        if self._state is None and self._coordinator.size() == 0:
            self._integrate(0, {})
        # Crash recovery: whatever was sequenced but never checkpointed goes in
        # first, in chunks so that a long backlog does not make one huge round.
        chunk = max(self._batch_size, tiles.TILE_WIDTH)
        while True:
            sequenced = self._coordinator.size()
            if self._state is not None and self._tree.size >= sequenced:
                break
            self._integrate(min(sequenced, self._tree.size + chunk), {})

    def _resync(self) -> None:
        """Reload the checkpoint and the tree's edge from storage, and check them."""
        self._dirty = True
        state = self._coordinator.state()
        if state is None:
            self._tree.load(0)
        else:
            self._check_stored(state)
            self._tree.load(state.size)
            root = merkle.tree_root(state.size, self._tree)
            if root != state.root_hash:
                raise IntegrityError(
                    f"the stored tiles of tree size {state.size} do not reproduce the "
                    "root hash of the stored checkpoint"
                )
        self._state = state
        self._dirty = False

    def _check_stored(self, state: LogState) -> None:
        try:
            note = Note.parse(state.checkpoint.decode("utf-8"))
            note.verify([self._note_signer.verifier])
            checkpoint = Checkpoint.from_text(note.text)
        except (UnicodeDecodeError, FormatError, VerificationError) as exc:
            raise IntegrityError(f"the stored checkpoint is not one of this log's: {exc}") from None
        if (checkpoint.origin, checkpoint.size, checkpoint.root_hash) != (
            self._origin,
            state.size,
            state.root_hash,
        ):
            raise IntegrityError("the stored checkpoint does not match its recorded size and root")

    def _round(self, entries: Sequence[NewEntry]) -> list[Accepted]:
        if self._dirty:
            self._resync()
        results = self._coordinator.sequence(entries)
        integrated_time = int(time.time())
        target = max(result.index for result in results) + 1
        known = {result.index: result.body for result in results}
        attempts = 0
        while self._tree.size < target:
            attempts += 1
            if attempts > _MAX_CAS_ATTEMPTS:
                raise StorageError(
                    f"gave up after losing {_MAX_CAS_ATTEMPTS} checkpoint updates to other writers"
                )
            self._integrate(target, known)
        state = self._state
        assert state is not None
        border = self._tree.border()
        return [self._accept(result, state, integrated_time, border) for result in results]

    def _integrate(self, target: int, known: dict[int, bytes]) -> None:
        """Extend the tree to ``target`` entries and publish its checkpoint.

        On a lost compare-and-swap the tree is reloaded from the winner's
        checkpoint, which may already cover ``target``; the caller loops.
        """
        tree = self._tree
        state = self._state
        old_size = tree.size
        old_root = state.root_hash if state is not None else merkle.EMPTY_ROOT
        bodies: list[bytes] = []
        for index in range(old_size, target):
            body = known.get(index)
            if body is None:
                # Entries sequenced by someone else (another front-end, or a
                # round that crashed): read them all at once.
                bodies = self._coordinator.bodies(old_size, target)
                break
            bodies.append(body)
        # From here until the checkpoint is stored, memory is ahead of storage.
        self._dirty = True
        tree.begin_round()
        for body in bodies:
            tree.append(merkle.leaf_hash(body), body)
        root = tree.border()[-1]
        # Never sign a checkpoint that does not extend the signed previous one.
        proof = merkle.consistency_proof(old_size, target, tree)
        try:
            merkle.verify_consistency(old_size, target, proof, old_root, root)
        except VerificationError as exc:
            raise IntegrityError(
                f"refusing to sign tree size {target}: it does not extend the checkpoint "
                f"of size {old_size} ({exc.detail})"
            ) from None
        writes = tree.writes(old_size)
        for path, data in writes:
            self._store.put(path, data)
        new = LogState(target, root, self._sign_checkpoint(target, root))
        if not self._coordinator.compare_and_swap(state.size if state is not None else None, new):
            self._resync()
            return
        tree.commit()
        self._state = new
        self._hot = dict(writes)
        self._dirty = False
        self._counters["integrated"] += target - old_size
        self._delete_partials(old_size, target)

    def _delete_partials(self, old_size: int, new_size: int) -> None:
        """Delete the partials of the tiles and bundles completed growing to ``new_size``.

        Called only after the checkpoint is stored, when the full tiles are
        durable and this front-end won the compare-and-swap (so exactly one
        front-end deletes). A failure leaves superseded partials behind,
        which is harmless -- they agree with the full tile -- so it is
        logged and counted instead of failing a round whose entries are
        already committed.
        """
        completed = [
            ref.path
            for ref in (
                *tiles.changed_bundles(old_size, new_size),
                *tiles.changed_tiles(old_size, new_size),
            )
            if ref.is_full
        ]
        for path in completed:
            try:
                self._store.delete_partials(path)
            except StorageError as exc:
                self._counters["partials_gc_failures"] += 1
                _log.warning("could not delete the partial tiles of %s: %s", path, exc)
            else:
                self._counters["partials_deleted"] += 1

    def _sign_checkpoint(self, size: int, root: bytes) -> bytes:
        text = Checkpoint(self._origin, size, root).to_text()
        note = sign_note(text, [self._note_signer])
        # Checked like every other signature a key makes: the note signer
        # works on the raw private key, past the Signer's own check.
        message = text.encode("utf-8")
        if not self._note_signer.verifier.verify(message, note.signatures[0].signature):
            raise IntegrityError("the log key made an invalid checkpoint signature")
        return note.to_text().encode("utf-8")

    def _accept(
        self,
        result: SequencedEntry,
        state: LogState,
        integrated_time: int,
        border: Sequence[bytes],
    ) -> Accepted:
        proof = self._tree.inclusion_proof(result.index, border)
        signed_entry_timestamp = None
        if self._v1_set:
            from toolkit.services.log.hashedrekord import set_payload

            payload = set_payload(result.body, integrated_time, self.log_id, result.index)
            signed_entry_timestamp = self._signer.sign(payload)
        return Accepted(
            index=result.index,
            body=result.body,
            duplicate=result.duplicate,
            tree_size=state.size,
            root_hash=state.root_hash,
            proof=tuple(proof),
            checkpoint=state.checkpoint,
            integrated_time=integrated_time,
            signed_entry_timestamp=signed_entry_timestamp,
        )
