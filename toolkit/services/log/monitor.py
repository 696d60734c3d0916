"""A monitor for C2SP tiled logs: is the log still one append-only tree?

:func:`monitor` fetches a log's ``/checkpoint`` and tiles over HTTP and checks,
in this order:

1. ``log.signature`` -- the checkpoint is a well-formed C2SP signed note,
   signed by the given verifier key, whose origin is the key's name.
2. ``log.rollback`` -- the tree is not smaller than the last one this
   monitor saw (kept in a state file).
3. ``log.tile`` -- every hash tile that appeared since the last run is
   consistent with the tiles above it (a full tile hashes to its entry one
   level up), optionally every new entry bundle hashes to its level-0 tile,
   and the root recomputed from the tiles alone is the checkpoint's root.
   A tile that the signed tree needs but the log does not serve (404) is a
   ``log.tile`` failure too: a log must publish its tiles before the
   checkpoint that covers them.
4. ``log.fork`` -- a consistency proof built from the tiles proves that the
   new tree extends the saved one (same size: same root).

Only then is the new checkpoint written to the state file (atomically: temp
file, fsync, rename, directory fsync). The first run has no state and audits
the whole log; later runs fetch only what is new, plus the right-hand edge
tile of each level.

Networking is the standard library's ``urllib`` with a timeout and a size
cap on every response; a peer that cannot be reached or answers an HTTP error
other than a missing tile is a :class:`~toolkit.errors.TransportError`.
Tiles are read through :mod:`toolkit.services.log.tiles` (paths, contents and
:class:`~toolkit.services.log.tiles.TileHashSource`), the same code the log
serves them with.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from toolkit import __version__, merkle
from toolkit._fs import write_durably
from toolkit.encoding import b64decode, b64encode, load_json
from toolkit.errors import (
    EnvironmentSetupError,
    Error,
    FormatError,
    TransportError,
    UsageError,
    VerificationError,
)
from toolkit.models.rekor import MAX_CHECKPOINT_BYTES
from toolkit.note import Checkpoint, Ed25519NoteVerifier, Note, parse_vkey
from toolkit.services.log import tiles

__all__ = [
    "DEFAULT_TIMEOUT",
    "FORK",
    "ROLLBACK",
    "SIGNATURE",
    "TILE",
    "MonitorError",
    "MonitorReport",
    "MonitorState",
    "load_state",
    "monitor",
    "save_state",
]

MonitorCode = Literal["log.signature", "log.tile", "log.fork", "log.rollback"]

#: The checkpoint is malformed, not signed by the key, or names another origin.
SIGNATURE: Final[MonitorCode] = "log.signature"
#: A tile or entry bundle is missing, malformed, or does not produce the signed root.
TILE: Final[MonitorCode] = "log.tile"
#: The new tree does not extend the saved one.
FORK: Final[MonitorCode] = "log.fork"
#: The new tree is smaller than the saved one.
ROLLBACK: Final[MonitorCode] = "log.rollback"

#: Seconds to wait for a connection or a read.
DEFAULT_TIMEOUT: Final = 10.0

_FULL_TILE_BYTES: Final = tiles.TILE_WIDTH * merkle.HASH_SIZE
_MAX_BUNDLE_BYTES: Final = tiles.TILE_WIDTH * (2 + tiles.MAX_ENTRY_SIZE)
_MAX_STATE_BYTES: Final = 1 << 20
_STATE_KEYS: Final = frozenset({"origin", "size", "root", "checkpoint"})
_EVIDENCE_HINT: Final = (
    "keep the state file and the log's current /checkpoint: two checkpoints signed by "
    "the same key that do not fit one tree prove the log misbehaved"
)


class MonitorError(Error):
    """The log is not what its signed checkpoints say (exit 1).

    Args:
        code: ``log.signature``, ``log.tile``, ``log.fork`` or ``log.rollback``.
        detail: One line saying what was wrong.
        hint: Optional advice.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, code: MonitorCode, detail: str, *, hint: str | None = None) -> None:
        super().__init__(detail, hint=hint)
        self._code: MonitorCode = code
        self.detail = detail

    @property
    def code(self) -> MonitorCode:
        """The failure kind, e.g. ``log.fork``."""
        return self._code

    def __repr__(self) -> str:
        return f"MonitorError({self._code!r}, {self.detail!r})"


@dataclass(frozen=True)
class MonitorState:
    """The last checkpoint a monitor verified, as kept in its state file.

    Attributes:
        origin: The log's origin line.
        size: The tree size.
        root_hash: The 32-byte root hash.
        checkpoint: The signed checkpoint note, verbatim (evidence).
    """

    origin: str
    size: int
    root_hash: bytes
    checkpoint: str

    def to_json(self) -> bytes:
        """The state file contents: ``{origin, size, root (base64), checkpoint}``."""
        document = {
            "origin": self.origin,
            "size": self.size,
            "root": b64encode(self.root_hash),
            "checkpoint": self.checkpoint,
        }
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class MonitorReport:
    """What one successful monitor run established.

    Attributes:
        url: The log's base URL.
        origin: The checkpoint origin.
        size: The verified tree size.
        root_hash: The verified root hash.
        checkpoint: The verified checkpoint note.
        previous_size: The saved tree size it is consistent with (None on a first run).
        requests: HTTP requests made.
        tiles_checked: Hash tiles checked against the tiles above them.
        entries_checked: Entries hashed and compared with level-0 tiles.
        state_written: Whether the state file was updated.
    """

    url: str
    origin: str
    size: int
    root_hash: bytes
    checkpoint: str
    previous_size: int | None
    requests: int
    tiles_checked: int
    entries_checked: int
    state_written: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``airseal log monitor --json``."""
        return {
            "ok": True,
            "check": None,
            "message": "log is consistent",
            "url": self.url,
            "origin": self.origin,
            "treeSize": self.size,
            "rootHash": b64encode(self.root_hash),
            "previousTreeSize": self.previous_size,
            "requests": self.requests,
            "tilesChecked": self.tiles_checked,
            "entriesChecked": self.entries_checked,
            "stateWritten": self.state_written,
        }


# -- HTTP ------------------------------------------------------------------------------


class _Client:
    """GETs below a base URL with a timeout and a size cap, counting requests."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"log URL {base_url[:100]!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise UsageError(f"log URL {base_url[:100]!r} must not have a query or fragment")
        self.base = base_url.rstrip("/")
        self._timeout = timeout
        self.requests = 0

    def get(self, path: str, limit: int) -> bytes | None:
        """The body at ``path``, None on 404; at most ``limit + 1`` bytes are read.

        Raises:
            TransportError: No connection, a timeout, or an HTTP error other than 404.
        """
        url = f"{self.base}/{path}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url, headers={"User-Agent": f"airseal-monitor/{__version__}"}
        )
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                data: bytes = response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return None
            raise TransportError(f"GET {url}: HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise TransportError(f"GET {url} failed: {_reason(exc.reason)}") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(f"GET {url} failed: {_reason(exc)}") from None
        return data


def _reason(exc: object) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


class _TileReader:
    """Reads tiles and entry bundles through a :class:`_Client`.

    A missing partial tile is read from the full tile instead, and a path
    served with two different contents in one run is refused. Only a SHA-256
    per path is remembered, so that auditing a large log does not hold every
    tile in memory.
    """

    def __init__(self, client: _Client) -> None:
        self._client = client
        self._seen: dict[str, bytes] = {}
        self.tiles_read = 0

    def read(self, path: str) -> bytes | None:
        ref = tiles.parse_path(path)
        limit = _MAX_BUNDLE_BYTES if ref.is_entries else _FULL_TILE_BYTES
        data = self._client.get(path, limit)
        if data is None and not ref.is_full:
            # C2SP: a client may read the full tile instead of a partial one
            # (logs may delete partial tiles once the full one exists).
            full = tiles.TileRef(ref.level, ref.index).path
            data = self._client.get(full, limit)
            if data is not None:
                data = self._prefix(full, data, ref)
        if data is None:
            return None
        if len(data) > limit:
            raise MonitorError(TILE, f"{path} is larger than {limit} bytes")
        digest = hashlib.sha256(data).digest()
        if self._seen.setdefault(path, digest) != digest:
            raise MonitorError(TILE, f"the log served two different contents for {path}")
        self.tiles_read += 1
        return data

    @staticmethod
    def _prefix(full: str, data: bytes, ref: tiles.TileRef) -> bytes:
        if ref.is_entries:
            try:
                bodies = tiles.decode_bundle(data)
            except FormatError as exc:
                raise MonitorError(TILE, f"{full}: {exc.detail}") from None
            if len(bodies) != tiles.TILE_WIDTH:
                raise MonitorError(
                    TILE, f"{full} holds {len(bodies)} entries, not {tiles.TILE_WIDTH}"
                )
            return tiles.encode_bundle(bodies[: ref.width])
        if len(data) != _FULL_TILE_BYTES:
            raise MonitorError(TILE, f"{full} holds {len(data)} bytes, not {_FULL_TILE_BYTES}")
        return data[: ref.width * merkle.HASH_SIZE]

    def hashes(self, ref: tiles.TileRef) -> list[bytes]:
        data = self.read(ref.path)
        if data is None:
            raise MonitorError(TILE, f"tile {ref.path} is missing (HTTP 404)")
        try:
            return tiles.split_tile(data, ref.width)
        except FormatError as exc:
            raise MonitorError(TILE, f"tile {ref.path}: {exc.detail}") from None


# -- checks ----------------------------------------------------------------------------


def _verify_checkpoint(data: bytes, verifier: Ed25519NoteVerifier) -> tuple[Checkpoint, str]:
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise MonitorError(SIGNATURE, f"checkpoint is larger than {MAX_CHECKPOINT_BYTES} bytes")
    try:
        note = Note.parse(data)
    except FormatError as exc:
        raise MonitorError(SIGNATURE, f"checkpoint is not a signed note: {exc.detail}") from None
    try:
        note.verify([verifier])
    except VerificationError as exc:
        raise MonitorError(SIGNATURE, exc.detail) from None
    try:
        checkpoint = Checkpoint.from_text(note.text)
    except FormatError as exc:
        raise MonitorError(SIGNATURE, f"signed note is not a checkpoint: {exc.detail}") from None
    if checkpoint.origin != verifier.name:
        raise MonitorError(
            SIGNATURE,
            f"checkpoint origin {checkpoint.origin[:80]!r} is not the key name {verifier.name!r}",
        )
    return checkpoint, note.to_text()


def _audit(reader: _TileReader, old_size: int, size: int, entries: bool) -> tuple[int, int]:
    """Check every tile (and entry bundle) that appeared after ``old_size``.

    Each level is swept left to right; a full tile's subtree hash must be the
    hash the level above holds for it. Hashes that precede ``old_size`` were
    checked on an earlier run.

    Returns:
        (tiles checked, entries checked).
    """
    tiles_checked = entries_checked = 0
    expected: dict[int, bytes] = {}  # node index at this level -> hash computed from below
    level = 0
    while (nodes := size >> (tiles.TILE_HEIGHT * level)) > 0:
        first = (old_size >> (tiles.TILE_HEIGHT * level)) >> tiles.TILE_HEIGHT
        last = (nodes - 1) >> tiles.TILE_HEIGHT
        above: dict[int, bytes] = {}
        for index in range(first, last + 1):
            ref = tiles.tile_ref(level, index, size)
            hashes = reader.hashes(ref)
            base = index * tiles.TILE_WIDTH
            for offset, served in enumerate(hashes):
                computed = expected.pop(base + offset, None)
                if computed is not None and computed != served:
                    below = tiles.tile_path(level - 1, base + offset)
                    raise MonitorError(
                        TILE,
                        f"hash {offset} of tile {ref.path} is not the hash of tile {below}",
                    )
            if level == 0 and entries:
                entries_checked += _check_entries(reader, ref, hashes)
            if ref.is_full:
                above[index] = tiles.subtree_hash(hashes)
            tiles_checked += 1
        assert not expected, "every computed hash has a tile above it"
        expected = above
        level += 1
    return tiles_checked, entries_checked


def _check_entries(reader: _TileReader, ref: tiles.TileRef, hashes: list[bytes]) -> int:
    path = tiles.entries_path(ref.index, ref.width)
    data = reader.read(path)
    if data is None:
        raise MonitorError(TILE, f"entry bundle {path} is missing (HTTP 404)")
    try:
        bodies = tiles.decode_bundle(data)
    except FormatError as exc:
        raise MonitorError(TILE, f"entry bundle {path}: {exc.detail}") from None
    if len(bodies) != ref.width:
        raise MonitorError(TILE, f"entry bundle {path} holds {len(bodies)} entries")
    for offset, (body, leaf) in enumerate(zip(bodies, hashes, strict=True)):
        if merkle.leaf_hash(body) != leaf:
            raise MonitorError(
                TILE,
                f"entry {ref.index * tiles.TILE_WIDTH + offset} in {path} does not hash to "
                f"leaf {offset} of tile {ref.path}",
            )
    return len(bodies)


def _tree_root(source: tiles.TileHashSource, size: int) -> bytes:
    try:
        return merkle.tree_root(size, source)
    except FormatError as exc:
        raise MonitorError(TILE, exc.detail) from None


def _check_consistency(
    source: tiles.TileHashSource, saved: MonitorState, size: int, root: bytes
) -> None:
    try:
        proof = merkle.consistency_proof(saved.size, size, source)
        merkle.verify_consistency(saved.size, size, proof, saved.root_hash, root)
    except FormatError as exc:
        raise MonitorError(TILE, exc.detail) from None
    except VerificationError as exc:
        raise MonitorError(
            FORK,
            f"the tree of size {size} does not extend the saved tree of size {saved.size}: "
            f"{exc.detail}",
            hint=_EVIDENCE_HINT,
        ) from None


# -- state file ------------------------------------------------------------------------


def load_state(path: Path, verifier: Ed25519NoteVerifier) -> MonitorState | None:
    """Read a state file (None when it does not exist yet).

    The saved checkpoint must verify with ``verifier`` and agree with the
    saved size and root, so a state file of another log, or one edited by
    hand, is refused rather than silently trusted.

    Raises:
        FormatError: The file is not a valid state file.
        UsageError: The state belongs to another log or key.
        EnvironmentSetupError: The file cannot be read.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot read state file {str(path)!r}: {exc.strerror}"
        ) from None
    hint = "the state file is written by `airseal log monitor`; do not edit it"
    if len(data) > _MAX_STATE_BYTES:
        raise FormatError(f"state file {str(path)!r} is too large", hint=hint)
    document = load_json(data, what=f"state file {str(path)!r}")
    if not isinstance(document, dict) or set(document) != _STATE_KEYS:
        raise FormatError(
            f"state file {str(path)!r} must be an object with {sorted(_STATE_KEYS)}", hint=hint
        )
    origin, size, root, text = (document[k] for k in ("origin", "size", "root", "checkpoint"))
    if not (
        isinstance(origin, str)
        and isinstance(size, int)
        and not isinstance(size, bool)
        and isinstance(text, str)
    ):
        raise FormatError(f"state file {str(path)!r} has fields of the wrong type", hint=hint)
    root_hash = b64decode(root, path="root")
    try:
        note = Note.parse(text)
        note.verify([verifier])
        checkpoint = Checkpoint.from_text(note.text)
    except (FormatError, VerificationError) as exc:
        raise UsageError(
            f"state file {str(path)!r} holds a checkpoint this key did not sign ({exc.message})",
            hint="use one state file per log; pass the --vkey the state was written with",
        ) from None
    if (checkpoint.origin, checkpoint.size, checkpoint.root_hash) != (origin, size, root_hash):
        raise FormatError(
            f"state file {str(path)!r} does not match the checkpoint it holds", hint=hint
        )
    if origin != verifier.name:
        raise UsageError(f"state file {str(path)!r} is for origin {origin!r}")
    return MonitorState(origin, size, root_hash, note.to_text())


def save_state(path: Path, state: MonitorState) -> None:
    """Write the state file atomically: temp file, fsync, rename, directory fsync.

    Raises:
        EnvironmentSetupError: The file cannot be written.
    """
    try:
        # Owner-only, the mode the state file has always had (it was mkstemp's).
        write_durably(path, state.to_json(), 0o600)
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot write state file {str(path)!r}: {exc.strerror}"
        ) from None


# -- the monitor -----------------------------------------------------------------------


def monitor(
    url: str,
    vkey: str,
    state: Path | None,
    *,
    entries: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> MonitorReport:
    """Check a tiled log once and remember its checkpoint.

    Args:
        url: The log's base URL (``/checkpoint`` and ``/tile/...`` live below it).
        vkey: The log's C2SP verifier key, ``name+hash+base64(0x01 ‖ key)``.
        state: Where the last verified checkpoint is kept; None checks without
            remembering (then there is no fork or rollback protection).
        entries: Also fetch the new entry bundles and check every entry hashes
            to its leaf.
        timeout: Seconds per connection and read.

    Returns:
        What was verified.

    Raises:
        MonitorError: The log is inconsistent (exit 1).
        TransportError: The log could not be reached (exit 3).
        FormatError, UsageError: Bad vkey, URL or state file (exit 2).
    """
    verifier = parse_vkey(vkey)
    client = _Client(url, timeout)
    saved = load_state(state, verifier) if state is not None else None
    raw = client.get("checkpoint", MAX_CHECKPOINT_BYTES)
    if raw is None:
        raise TransportError(f"GET {client.base}/checkpoint: HTTP 404")
    checkpoint, text = _verify_checkpoint(raw, verifier)
    size, root = checkpoint.size, checkpoint.root_hash
    if saved is not None and saved.size > size:
        raise MonitorError(
            ROLLBACK,
            f"the log's tree has {size} entries, but it had {saved.size} when last checked",
            hint=_EVIDENCE_HINT,
        )
    old_size = saved.size if saved is not None else 0
    reader = _TileReader(client)
    tiles_checked, entries_checked = _audit(reader, old_size, size, entries)
    source = tiles.TileHashSource(size, reader.read)
    computed = _tree_root(source, size)
    if computed != root:
        raise MonitorError(
            TILE,
            f"the tiles give root {computed.hex()[:16]}… for size {size}, "
            f"but the signed checkpoint says {root.hex()[:16]}…",
        )
    if saved is not None:
        _check_consistency(source, saved, size, root)
    written = False
    if state is not None and (saved is None or (saved.size, saved.root_hash) != (size, root)):
        save_state(state, MonitorState(checkpoint.origin, size, root, text))
        written = True
    return MonitorReport(
        url=client.base,
        origin=checkpoint.origin,
        size=size,
        root_hash=root,
        checkpoint=text,
        previous_size=saved.size if saved is not None else None,
        requests=client.requests,
        tiles_checked=tiles_checked,
        entries_checked=entries_checked,
        state_written=written,
    )
