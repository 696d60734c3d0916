"""Crash safety of the transparency log: kill -9 under load, 20 times.

Client threads submit entries without pause while the server is killed with
SIGKILL at random moments and started again on the same data. Afterwards:

* every acknowledged entry is in the log, at the index it was given, with
  the body it was given, and its acknowledged inclusion proof verifies
  against the checkpoint it came with;
* every checkpoint ever returned is consistent with the final one;
* the final checkpoint's root is recomputed from the served entry bundles
  alone, and its signature verifies with the log key.

The oracle here is independent of the server's tile code: it hashes the
entry bundles itself with ``toolkit.merkle``.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.support.log_server import LogServer, hashedrekord_request
from toolkit.merkle import (
    ListHashSource,
    consistency_proof,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from toolkit.note import Checkpoint, Ed25519NoteVerifier, Note
from toolkit.services.log.tiles import TILE_WIDTH, decode_bundle, entries_path

KILLS = 20
CLIENTS = 4
ORIGIN = "crash.airseal.test"


@dataclass(frozen=True)
class Ack:
    index: int
    body: bytes
    proof: tuple[bytes, ...]
    tree_size: int
    checkpoint: str


class Load:
    """Client threads that submit unique entries until stopped, keeping every ack."""

    def __init__(self, server: LogServer) -> None:
        self.server = server
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.acks: list[Ack] = []
        self.lock = threading.Lock()
        self.running = True
        self.counter = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(CLIENTS)]

    def next_artifact(self) -> bytes:
        with self.lock:
            self.counter += 1
            return f"crash artifact {self.counter}".encode()

    def run(self) -> None:
        while self.running:
            body = hashedrekord_request(self.key, None, self.next_artifact())
            try:
                status, entry = self.server.post(body, timeout=10)
            except OSError:
                # The server is down or was killed mid-request: not acknowledged.
                time.sleep(0.02)
                continue
            if status != 201:
                time.sleep(0.02)
                continue
            proof = entry["inclusionProof"]
            ack = Ack(
                index=int(entry["logIndex"]),
                body=base64.b64decode(entry["canonicalizedBody"]),
                proof=tuple(base64.b64decode(h) for h in proof.get("hashes", [])),
                tree_size=int(proof["treeSize"]),
                checkpoint=proof["checkpoint"]["envelope"],
            )
            with self.lock:
                self.acks.append(ack)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(timeout=30)


def _all_bodies(server: LogServer, size: int) -> list[bytes]:
    bodies: list[bytes] = []
    for tile in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
        path = entries_path(tile, None if width == TILE_WIDTH else width)
        data = server.get("/" + path)
        assert data is not None, path
        bodies.extend(decode_bundle(data))
    return bodies


def test_kill_9_under_load_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    server = LogServer(tmp_path / "data", ORIGIN).start()
    try:
        with Load(server) as load:
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.05, 0.6))
                server.kill()
                server.start()
            time.sleep(0.3)
        assert len(load.acks) > KILLS, "the load generator got almost nothing acknowledged"

        checkpoint_text = server.get("/checkpoint")
        assert checkpoint_text is not None
        key = serialization.load_pem_private_key(
            (tmp_path / "data" / "log-key.pem").read_bytes(), None
        )
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        verifier = Ed25519NoteVerifier(ORIGIN, key.public_key())
        note = Note.parse(checkpoint_text)
        note.verify([verifier])
        final = Checkpoint.from_text(note.text)

        bodies = _all_bodies(server, final.size)
        assert len(bodies) == final.size
        source = ListHashSource(leaf_hash(b) for b in bodies)
        assert tree_root(final.size, source) == final.root_hash

        seen: dict[str, Checkpoint] = {}
        for ack in load.acks:
            assert ack.index < final.size
            assert bodies[ack.index] == ack.body, f"entry {ack.index} changed"
            acked = Note.parse(ack.checkpoint)
            acked.verify([verifier])
            head = Checkpoint.from_text(acked.text)
            assert head.size == ack.tree_size
            verify_inclusion(leaf_hash(ack.body), ack.index, head.size, ack.proof, head.root_hash)
            seen[ack.checkpoint] = head
        for head in seen.values():
            proof = consistency_proof(head.size, final.size, source)
            verify_consistency(head.size, final.size, proof, head.root_hash, final.root_hash)
    finally:
        server.kill()
