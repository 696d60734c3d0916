"""The log's HTTP edge, called in-process over ASGI: answers, problems, reads and metrics."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Callable, Coroutine, Iterable, MutableMapping
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from starlette.applications import Starlette

from tests.support.log_server import ed25519_request, hashedrekord_document
from toolkit import merkle
from toolkit.encoding import b64encode, canonical_json
from toolkit.errors import UsageError
from toolkit.models.rekor import TransparencyLogEntry
from toolkit.note import Checkpoint, ECDSANoteVerifier, Note, parse_vkey
from toolkit.services.log import tiles
from toolkit.services.log.app import ENTRIES_PATH, create_app
from toolkit.services.log.engine import LogEngine
from toolkit.services.log.hashedrekord import MAX_REQUEST_BYTES, PROBLEM_BASE, set_payload
from toolkit.services.log.storage import MemoryCoordinator, MemoryTileStore
from toolkit.signing import KeyAlgorithm, SoftwareSigner

ORIGIN = "log.airseal.test"
T = TypeVar("T")
CLIENT_KEY = ec.generate_private_key(ec.SECP256R1())
LOG_KEY = SoftwareSigner.generate(KeyAlgorithm.ED25519)
V1_KEY = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)

Reply = tuple[int, dict[str, str], bytes]


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def request_doc(artifact: bytes) -> dict[str, Any]:
    """A request signed by this module's client key, as a document a test may change."""
    return hashedrekord_document(CLIENT_KEY, None, artifact)


def request_bytes(artifact: bytes) -> bytes:
    return json.dumps(request_doc(artifact)).encode()


async def call(
    app: Starlette,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (("content-type", "application/json"),),
    chunks: int = 1,
) -> Reply:
    """One HTTP exchange over ASGI, the way uvicorn drives the app."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }
    step = max(1, -(-len(body) // chunks))
    parts = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    incoming = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    reply_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], reply_headers, b"".join(m.get("body", b"") for m in sent[1:])


async def post(app: Starlette, body: bytes, **kwargs: Any) -> Reply:
    return await call(app, "POST", ENTRIES_PATH, body, **kwargs)


def problem(reply: Reply, status: int, slug: str) -> dict[str, Any]:
    code, headers, body = reply
    assert code == status, body
    assert headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = json.loads(body)
    assert set(document) == {"type", "title", "status", "detail"}
    assert document["type"] == PROBLEM_BASE + slug
    assert document["status"] == status
    assert "Traceback" not in document["detail"]
    return document


class Log:
    """An engine over memory storage and its app, started inside a scenario."""

    def __init__(self, signer: SoftwareSigner = LOG_KEY, v1: bool = False, **kwargs: Any):
        kwargs.setdefault("max_wait", 0.005)
        self.v1 = v1
        self.store = MemoryTileStore()
        self.engine = LogEngine(
            MemoryCoordinator(), self.store, signer, ORIGIN, v1_set=v1, **kwargs
        )
        self.app = create_app(self.engine, v1_mode=v1)


def check_entry(body: bytes, log: Log) -> TransparencyLogEntry:
    """The answer is proto3 JSON of a TransparencyLogEntry that proves itself."""
    document = json.loads(body)
    entry = TransparencyLogEntry.from_dict(document)
    # Written directly, but exactly what the model would write.
    assert entry.to_dict() == document
    assert entry.log_id.key_id == log.engine.log_id
    # A v1-mode log records Rekor v1 bodies and says so.
    version = "0.0.1" if log.v1 else "0.0.2"
    assert (entry.kind_version.kind, entry.kind_version.version) == ("hashedrekord", version)
    assert json.loads(entry.canonicalized_body)["apiVersion"] == version
    proof = entry.inclusion_proof
    assert proof is not None and proof.checkpoint is not None
    assert proof.log_index == entry.log_index
    merkle.verify_inclusion(
        merkle.leaf_hash(entry.canonicalized_body),
        proof.log_index,
        proof.tree_size,
        proof.hashes,
        proof.root_hash,
    )
    note = Note.parse(proof.checkpoint.envelope)
    vkey = log.engine.vkey
    public = V1_KEY.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    note.verify([parse_vkey(vkey) if vkey else ECDSANoteVerifier(ORIGIN, public)])
    assert Checkpoint.from_text(note.text) == Checkpoint(ORIGIN, proof.tree_size, proof.root_hash)
    return entry


# -- POST ----------------------------------------------------------------------------------


def test_entries_are_created_and_proven() -> None:
    log = Log()

    async def scenario() -> list[Reply]:
        await log.engine.start()
        try:
            # ECDSA signatures are randomised: the same request bytes twice.
            same = request_bytes(b"one")
            first = await post(log.app, same)
            more = await asyncio.gather(
                *(post(log.app, request_bytes(b"%d" % i)) for i in range(5))
            )
            again = await post(log.app, same, chunks=7)
            return [first, *more, again]
        finally:
            await log.engine.stop()

    replies = run(scenario)
    entries = []
    for status, headers, body in replies:
        assert status == 201, body
        assert headers["content-type"] == "application/json"
        entries.append(check_entry(body, log))
    assert sorted(e.log_index for e in entries[:-1]) == list(range(6))
    # The duplicate is the first entry, proven in the current tree.
    assert entries[-1].log_index == entries[0].log_index == 0
    assert entries[-1].canonicalized_body == entries[0].canonicalized_body
    assert entries[-1].inclusion_proof is not None
    assert entries[-1].inclusion_proof.tree_size == 6
    assert entries[0].integrated_time == 0 and entries[0].inclusion_promise is None


def test_v1_mode_adds_integrated_time_and_a_set() -> None:
    log = Log(signer=V1_KEY, v1=True)

    async def scenario() -> Reply:
        await log.engine.start()
        try:
            return await post(log.app, request_bytes(b"v1"))
        finally:
            await log.engine.stop()

    status, _, body = run(scenario)
    assert status == 201
    entry = check_entry(body, log)
    assert entry.integrated_time > 0 and entry.inclusion_promise is not None
    # The body is the Rekor v1 hashedrekord 0.0.1 one, byte for byte. ECDSA
    # signatures are randomised: the recorded one is checked to verify below.
    logged = json.loads(entry.canonicalized_body)["spec"]["signature"]["content"]
    pem = CLIENT_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert entry.canonicalized_body == canonical_json(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {
                    "hash": {"algorithm": "sha256", "value": hashlib.sha256(b"v1").hexdigest()}
                },
                "signature": {"content": logged, "publicKey": {"content": b64encode(pem)}},
            },
        }
    )
    CLIENT_KEY.public_key().verify(
        base64.b64decode(logged),
        hashlib.sha256(b"v1").digest(),
        ec.ECDSA(Prehashed(hashes.SHA256())),
    )
    payload = set_payload(
        entry.canonicalized_body, entry.integrated_time, log.engine.log_id, entry.log_index
    )
    public = V1_KEY.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        entry.inclusion_promise.signed_entry_timestamp, payload, ec.ECDSA(hashes.SHA256())
    )


def test_v1_mode_refuses_digests_it_cannot_record() -> None:
    # P-384 keys sign SHA-384 digests; a 0.0.1 entry of this log holds SHA-256 only.
    log = Log(signer=V1_KEY, v1=True)
    p384 = ec.generate_private_key(ec.SECP384R1())
    digest = hashlib.sha384(b"p384").digest()
    spki = p384.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    document = {
        "hashedRekordRequestV002": {
            "digest": b64encode(digest),
            "signature": {
                "content": b64encode(p384.sign(digest, ec.ECDSA(Prehashed(hashes.SHA384())))),
                "verifier": {
                    "publicKey": {"rawBytes": b64encode(spki)},
                    "keyDetails": "PKIX_ECDSA_P384_SHA_384",
                },
            },
        }
    }

    async def scenario() -> tuple[Reply, Reply]:
        await log.engine.start()
        try:
            refused = await post(log.app, json.dumps(document).encode())
            return refused, await call(log.app, "GET", "/metrics")
        finally:
            await log.engine.stop()

    refused, metrics = run(scenario)
    detail = problem(refused, 422, "unsupported-digest")["detail"]
    assert "SHA2_384" in detail and "hashedrekord 0.0.1" in detail
    assert 'airseal_log_rejections_total{reason="unsupported-digest"} 1' in metrics[2].decode()
    assert log.engine.tree_size() == 0


def test_v1_mode_needs_an_engine_that_signs_sets() -> None:
    with pytest.raises(UsageError, match="SETs"):
        create_app(LogEngine(MemoryCoordinator(), MemoryTileStore(), LOG_KEY, ORIGIN), v1_mode=True)


def _unknown_field() -> bytes:
    doc = request_doc(b"x")
    doc["hashedRekordRequestV002"]["extra"] = 1
    return json.dumps(doc).encode()


def _wrong_type() -> bytes:
    doc = request_doc(b"x")
    doc["hashedRekordRequestV002"]["digest"] = 12
    return json.dumps(doc).encode()


def _bad_signature() -> bytes:
    doc = request_doc(b"x")
    doc["hashedRekordRequestV002"]["digest"] = b64encode(hashlib.sha256(b"y").digest())
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b"{", 400, "malformed-json"),
        (b"", 400, "malformed-json"),
        (b"\xff\xfe", 400, "malformed-json"),
        (b"[]", 400, "invalid-request"),
        (b"{}", 400, "invalid-request"),
        (_unknown_field(), 400, "invalid-request"),
        (_wrong_type(), 400, "invalid-request"),
        (_bad_signature(), 422, "invalid-signature"),
        (ed25519_request(CLIENT_KEY, b"x"), 422, "unsupported-key"),
        (b" " * (MAX_REQUEST_BYTES + 1), 413, "request-too-large"),
    ],
)
def test_malformed_requests_get_problems(body: bytes, status: int, slug: str) -> None:
    log = Log()

    async def scenario() -> Reply:
        await log.engine.start()
        try:
            return await post(log.app, body, chunks=3)
        finally:
            await log.engine.stop()

    problem(run(scenario), status, slug)
    assert log.engine.metrics()["submissions"] == 0


def test_declared_oversize_and_wrong_media_type() -> None:
    log = Log()

    async def scenario() -> tuple[Reply, Reply, Reply]:
        await log.engine.start()
        try:
            declared = await post(
                log.app,
                b"{}",
                headers=[("content-length", str(MAX_REQUEST_BYTES + 1))],
            )
            text = await post(
                log.app, request_bytes(b"a"), headers=[("content-type", "text/plain")]
            )
            charset = await post(
                log.app,
                request_bytes(b"a"),
                headers=[("content-type", "application/json; charset=utf-8")],
            )
            return declared, text, charset
        finally:
            await log.engine.stop()

    declared, text, charset = run(scenario)
    problem(declared, 413, "request-too-large")
    problem(text, 415, "unsupported-media-type")
    assert charset[0] == 201


def test_pool_full_is_503_with_retry_after() -> None:
    log = Log(max_pending=1, max_wait=30, batch_size=10)

    async def scenario() -> tuple[Reply, Reply, Reply]:
        await log.engine.start()
        first = asyncio.ensure_future(post(log.app, request_bytes(b"first")))
        while log.engine.metrics()["pending"] < 1:
            await asyncio.sleep(0)
        second = await post(log.app, request_bytes(b"second"))
        await log.engine.stop()
        metrics = await call(log.app, "GET", "/metrics")
        return await first, second, metrics

    first, second, metrics = run(scenario)
    assert first[0] == 201
    document = problem(second, 503, "pool-full")
    assert "busy" in document["detail"]
    assert int(second[1]["retry-after"]) >= 1
    assert 'airseal_log_rejections_total{reason="pool-full"} 1' in metrics[2].decode()


def test_a_stopped_or_halted_log_is_503() -> None:
    log = Log()

    async def scenario() -> tuple[Reply, Reply, Reply]:
        before = await call(log.app, "GET", "/checkpoint")
        unstarted = await post(log.app, request_bytes(b"a"))
        await log.engine.start()
        await log.engine.stop()
        stopped = await post(log.app, request_bytes(b"a"))
        return before, unstarted, stopped

    before, unstarted, stopped = run(scenario)
    problem(before, 503, "log-unavailable")
    problem(unstarted, 503, "log-unavailable")
    problem(stopped, 503, "log-unavailable")
    assert stopped[1]["retry-after"] == "5"


# -- reads -----------------------------------------------------------------------------------


def test_checkpoint_tiles_and_bundles() -> None:
    log = Log(batch_size=300)

    async def scenario() -> dict[str, Reply]:
        await log.engine.start()
        try:
            await asyncio.gather(*(post(log.app, request_bytes(b"%d" % i)) for i in range(260)))
            paths = [
                "/checkpoint",
                "/tile/0/000",
                "/tile/0/001.p/4",
                "/tile/1/000.p/1",
                "/tile/entries/000",
                "/tile/entries/001.p/4",
                "/tile/0/001.p/5",
                "/tile/0/x000/001",
                "/tile/",
                "/tile/../log.db",
                "/elsewhere",
            ]
            return {p: await call(log.app, "GET", p) for p in paths}
        finally:
            await log.engine.stop()

    replies = run(scenario)
    status, headers, body = replies["/checkpoint"]
    assert status == 200 and headers["cache-control"] == "no-cache"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body == log.engine.checkpoint()
    checkpoint = Checkpoint.from_text(Note.parse(body.decode()).text)
    assert checkpoint.size == 260

    def fetch(path: str) -> bytes | None:
        reply = replies.get("/" + path)
        return reply[2] if reply and reply[0] == 200 else None

    # The root from the served tiles alone is the checkpoint's.
    assert merkle.tree_root(260, tiles.TileHashSource(260, fetch)) == checkpoint.root_hash
    assert replies["/tile/0/000"][1]["cache-control"] == "public, max-age=31536000, immutable"
    assert replies["/tile/0/001.p/4"][1]["cache-control"] == "public, max-age=60"
    assert replies["/tile/0/000"][1]["content-type"] == "application/octet-stream"
    assert len(tiles.decode_bundle(replies["/tile/entries/000"][2])) == 256
    assert len(tiles.decode_bundle(replies["/tile/entries/001.p/4"][2])) == 4
    for path in ("/tile/0/001.p/5", "/tile/0/x000/001", "/tile/", "/tile/../log.db", "/elsewhere"):
        problem(replies[path], 404, "not-found")


def test_wrong_methods_are_405_problems() -> None:
    log = Log()

    async def scenario() -> tuple[Reply, Reply]:
        return (
            await call(log.app, "GET", ENTRIES_PATH),
            await call(log.app, "DELETE", "/checkpoint"),
        )

    listing, delete = run(scenario)
    problem(listing, 405, "method-not-allowed")
    assert listing[1]["allow"] == "POST"
    problem(delete, 405, "method-not-allowed")


def test_healthz_and_metrics() -> None:
    log = Log()

    async def scenario() -> tuple[Reply, Reply]:
        await log.engine.start()
        try:
            same = request_bytes(b"a")
            await post(log.app, same)
            await post(log.app, same)
            await post(log.app, b"{")
            return await call(log.app, "GET", "/healthz"), await call(log.app, "GET", "/metrics")
        finally:
            await log.engine.stop()

    health, metrics = run(scenario)
    assert health[0] == 200
    assert json.loads(health[2]) == {"status": "ok", "origin": ORIGIN, "treeSize": 1}
    text = metrics[2].decode()
    assert metrics[1]["content-type"].startswith("text/plain; version=0.0.4")
    for line in (
        "airseal_log_submissions_total 2",
        "airseal_log_duplicates_total 1",
        "airseal_log_rounds_total 2",
        "airseal_log_tree_size 1",
        "airseal_log_round_seconds_count 2",
        'airseal_log_rejections_total{reason="malformed-json"} 1',
        "# TYPE airseal_log_round_seconds summary",
    ):
        assert line in text.splitlines(), line
    assert any(line.startswith("airseal_log_round_seconds_sum ") for line in text.splitlines())


def test_unexpected_errors_are_bare_500_problems(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log()

    def explode(path: str) -> bytes:
        raise RuntimeError("secret detail /etc/key.pem")

    monkeypatch.setattr(log.engine, "read", explode)

    async def scenario() -> Reply:
        return await call(log.app, "GET", "/tile/0/000")

    with caplog.at_level(logging.ERROR, logger="airseal.log"):
        reply = run(scenario)
    document = problem(reply, 500, "internal-error")
    assert "secret" not in json.dumps(document)
    assert [r.getMessage() for r in caplog.records] == [
        "internal error on GET /tile/0/000: RuntimeError"
    ]


def test_a_request_without_content_type_is_accepted() -> None:
    log = Log()

    async def scenario() -> Reply:
        await log.engine.start()
        try:
            return await post(log.app, request_bytes(b"bare"), headers=())
        finally:
            await log.engine.stop()

    status, headers, body = run(scenario)
    assert status == 201, body
    assert headers["content-length"] == str(len(body))
    check_entry(body, log)


def test_unexpected_errors_on_the_post_path_are_bare_500_problems(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log()

    async def explode(entry: object) -> None:
        raise KeyError("secret")

    monkeypatch.setattr(log.engine, "submit", explode)

    async def scenario() -> Reply:
        return await post(log.app, request_bytes(b"boom"))

    with caplog.at_level(logging.ERROR, logger="airseal.log"):
        reply = run(scenario)
    document = problem(reply, 500, "internal-error")
    assert "secret" not in json.dumps(document)
    assert [r.getMessage() for r in caplog.records] == [
        f"internal error on POST {ENTRIES_PATH}: KeyError"
    ]


def test_a_client_that_goes_away_gets_no_entry() -> None:
    log = Log()
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        await log.engine.start()
        try:
            scope = {
                "type": "http",
                "method": "POST",
                "path": ENTRIES_PATH,
                "headers": [(b"content-type", b"application/json")],
            }

            async def receive() -> dict[str, Any]:
                return {"type": "http.disconnect"}

            async def send(message: MutableMapping[str, Any]) -> None:
                sent.append(dict(message))

            await log.app(scope, receive, send)
        finally:
            await log.engine.stop()

    run(scenario)
    assert sent[0]["status"] == 400
    assert log.engine.metrics()["submissions"] == 0
