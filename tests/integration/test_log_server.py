"""``airseal serve log`` as a real server on 127.0.0.1, with SQLite and files.

Every test starts the ``airseal`` command as a subprocess on a free port
(:class:`~tests.support.log_server.LogServer`: ``--listen 127.0.0.1:0``, the
ready line names the port), talks to it over HTTP with urllib, and stops it
with SIGTERM. Checked: answers that prove themselves, checkpoints signed by
the printed vkey, a root recomputed from the served tiles and from the tile
files alone, state that survives a restart, a data directory that refuses
another log, problem documents for malformed requests, and a bundle assembled
from an answer that the offline verifier accepts.
"""

from __future__ import annotations

import concurrent.futures
import copy
import datetime as dt
import hashlib
import json
import signal
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.support.factory import (
    DEFAULT_EMAIL,
    DEFAULT_ISSUER,
    DEFAULT_TIME,
    TRUST_START,
    FakeSigstore,
    _log_instance,
)
from tests.support.log_server import (
    AIRSEAL,
    LogServer,
    ed25519_request,
    hashedrekord_document,
    hashedrekord_request,
    log_bundle,
    logged_signature,
)
from toolkit import merkle
from toolkit.encoding import b64encode
from toolkit.errors import VerificationError
from toolkit.models.rekor import TransparencyLogEntry
from toolkit.models.trustroot import TrustedRoot
from toolkit.note import Checkpoint, Note, parse_vkey
from toolkit.services.log import tiles
from toolkit.services.log.hashedrekord import PROBLEM_BASE
from toolkit.verify import Artifact, IdentityPolicy, Verifier

ORIGIN = "log.airseal.test"
CLIENT_KEY = ec.generate_private_key(ec.SECP256R1())
STARTUP_TIMEOUT = 60.0


def run_airseal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRSEAL, *args], capture_output=True, text=True, timeout=STARTUP_TIMEOUT, check=False
    )


def _serve_log(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``airseal serve log`` run to completion: for starts that must be refused."""
    return run_airseal("serve", "log", "--data", str(data), "--listen", "127.0.0.1:0", *args)


# -- HTTP ------------------------------------------------------------------------------------

Reply = tuple[int, dict[str, str], bytes]


def http(
    url: str, body: bytes | None = None, content_type: str | None = "application/json"
) -> Reply:
    headers = {"Content-Type": content_type} if body is not None and content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def request_doc(artifact: bytes) -> dict[str, Any]:
    """A request signed by this module's client key, as a document a test may change."""
    return hashedrekord_document(CLIENT_KEY, None, artifact)


def post(server: LogServer, document: dict[str, Any] | bytes) -> Reply:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return http(server.url + "/api/v2/log/entries", body)


def checked_entry(reply: Reply, vkey: str) -> TransparencyLogEntry:
    status, headers, body = reply
    assert status == 201, body
    assert headers["content-type"] == "application/json"
    entry = TransparencyLogEntry.from_dict(json.loads(body))
    proof = entry.inclusion_proof
    assert proof is not None and proof.checkpoint is not None
    merkle.verify_inclusion(
        merkle.leaf_hash(entry.canonicalized_body),
        entry.log_index,
        proof.tree_size,
        proof.hashes,
        proof.root_hash,
    )
    verifier = parse_vkey(vkey)
    note = Note.parse(proof.checkpoint.envelope)
    note.verify([verifier])
    assert Checkpoint.from_text(note.text) == Checkpoint(ORIGIN, proof.tree_size, proof.root_hash)
    assert entry.log_id.key_id == verifier.full_key_id
    return entry


def current_checkpoint(server: LogServer) -> Checkpoint:
    status, headers, body = http(server.url + "/checkpoint")
    assert status == 200
    assert headers["cache-control"] == "no-cache"
    note = Note.parse(body.decode())
    note.verify([parse_vkey(server.vkey)])
    return Checkpoint.from_text(note.text)


def served(server: LogServer) -> TileFetcher:
    return TileFetcher(server.url)


class TileFetcher:
    """Reads tiles over HTTP, remembering what it fetched."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fetched: dict[str, Reply] = {}

    def __call__(self, path: str) -> bytes | None:
        reply = http(f"{self.url}/{path}")
        self.fetched[path] = reply
        return reply[2] if reply[0] == 200 else None


def problem(reply: Reply, status: int, slug: str) -> dict[str, Any]:
    code, headers, body = reply
    assert code == status, body
    assert headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = json.loads(body)
    assert document["type"] == PROBLEM_BASE + slug
    assert document["status"] == status
    assert document["title"] and document["detail"]
    return document


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogServer]:
    """A server for the tests that only read or get refused."""
    with LogServer(tmp_path_factory.mktemp("shared"), ORIGIN, ("--max-wait", "0.01")) as server:
        yield server


# -- the life of a log ---------------------------------------------------------------------


def test_a_log_serves_survives_a_restart_and_keeps_its_tiles(tmp_path: Path) -> None:
    data = tmp_path / "log"
    first = LogServer(data, ORIGIN, ("--max-wait", "0.02", "--batch-size", "64")).start()
    try:
        assert first.output[0] == f"created log key {data / 'log-key.pem'}"
        assert stat.S_IMODE((data / "log-key.pem").stat().st_mode) == 0o600
        vkey = first.vkey
        assert parse_vkey(vkey).name == ORIGIN
        assert json.loads((data / "log.json").read_text())["origin"] == ORIGIN

        # 300 entries from 16 clients at once: several rounds, a full tile.
        documents = [request_doc(b"artifact %d" % i) for i in range(300)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda d: post(first, d), documents))
        entries = [checked_entry(reply, vkey) for reply in replies]
        assert sorted(e.log_index for e in entries) == list(range(300))

        # A duplicate is the existing entry, proven against the current tree.
        again = checked_entry(post(first, documents[7]), vkey)
        assert again.log_index == entries[7].log_index
        assert again.canonicalized_body == entries[7].canonicalized_body

        checkpoint = current_checkpoint(first)
        assert checkpoint.size == 300
        fetch = served(first)
        assert merkle.tree_root(300, tiles.TileHashSource(300, fetch)) == checkpoint.root_hash
        assert fetch.fetched["tile/1/000.p/1"][0] == 200
        full = http(first.url + "/tile/0/000")
        assert full[1]["cache-control"] == "public, max-age=31536000, immutable"
        assert full[1]["content-type"] == "application/octet-stream"
        partial = http(first.url + "/tile/0/001.p/44")
        assert partial[0] == 200 and partial[1]["cache-control"] == "public, max-age=60"
        bodies = tiles.decode_bundle(http(first.url + "/tile/entries/000")[2])
        bodies += tiles.decode_bundle(http(first.url + "/tile/entries/001.p/44")[2])
        by_index = {e.log_index: e.canonicalized_body for e in entries}
        assert bodies == [by_index[i] for i in range(300)]
        problem(http(first.url + "/tile/0/001.p/45"), 404, "not-found")
        assert first.stop() == 0
    finally:
        first.kill()

    # The tile files alone give the checkpoint's root (C2SP layout on disk).
    on_disk = tiles.TileHashSource(
        300,
        lambda path: (
            (data / "tiles" / path).read_bytes() if (data / "tiles" / path).is_file() else None
        ),
    )
    assert merkle.tree_root(300, on_disk) == checkpoint.root_hash

    # Restart without --origin: the data directory knows its log.
    second = LogServer(data, None, ("--max-wait", "0.02")).start()
    try:
        assert second.vkey == vkey
        assert not any(line.startswith("created") for line in second.output)
        assert current_checkpoint(second) == checkpoint
        duplicate = checked_entry(post(second, documents[299]), vkey)
        assert duplicate.log_index == entries[-1].log_index
        fresh = checked_entry(post(second, request_doc(b"after the restart")), vkey)
        assert fresh.log_index == 300
        assert fresh.inclusion_proof is not None
        size = fresh.inclusion_proof.tree_size
        source = tiles.TileHashSource(size, served(second))
        proof = merkle.consistency_proof(300, size, source)
        merkle.verify_consistency(
            300, size, proof, checkpoint.root_hash, fresh.inclusion_proof.root_hash
        )
        assert second.stop(signal.SIGINT) == 0
    finally:
        second.kill()


def test_a_data_directory_refuses_another_log(tmp_path: Path) -> None:
    data = tmp_path / "log"
    with LogServer(data, ORIGIN) as server:
        assert server.stop() == 0
    other_origin = _serve_log(data, "--origin", "other.test")
    assert other_origin.returncode == 2
    assert other_origin.stderr.strip().splitlines() == [
        f"error: data directory {str(data)!r} belongs to the log {ORIGIN!r}, not 'other.test'"
    ]
    key = tmp_path / "other-key.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    other_key = _serve_log(data, "--key", f"file:{key}")
    assert other_key.returncode == 2
    assert len(other_key.stderr.strip().splitlines()) == 1
    assert "belongs to the log key" in other_key.stderr
    # Without the identity file, the database itself refuses the other origin.
    (data / "log.json").unlink()
    storage = _serve_log(data, "--origin", "other.test")
    assert storage.returncode == 2
    assert len(storage.stderr.strip().splitlines()) == 1
    assert storage.stderr.startswith(
        f"error: the log's storage belongs to another log: store belongs to {ORIGIN} ("
    )


def test_first_start_needs_an_origin_and_a_listen_address(tmp_path: Path) -> None:
    no_origin = _serve_log(tmp_path / "a")
    assert no_origin.returncode == 2
    assert "--origin is required" in no_origin.stderr
    assert not (tmp_path / "a" / "log-key.pem").exists()
    bad_listen = run_airseal(
        "serve", "log", "--data", str(tmp_path / "b"), "--listen", "localhost", "--origin", ORIGIN
    )
    assert bad_listen.returncode == 2
    assert "is not HOST:PORT" in bad_listen.stderr


# -- problems --------------------------------------------------------------------------------


def _mutated(path: tuple[str, ...], value: Any) -> bytes:
    document = request_doc(b"mutated")
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(document).encode()


SIGNATURE = ("hashedRekordRequestV002", "signature")


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        pytest.param(b'{"hashedRekordRequestV002":', 400, "malformed-json", id="bad-json"),
        pytest.param(b"\xff\xfe{}", 400, "malformed-json", id="not-utf8"),
        pytest.param(
            _mutated(("hashedRekordRequestV002", "digest"), 42), 400, "invalid-request", id="type"
        ),
        pytest.param(
            _mutated((*SIGNATURE, "content"), ["x"]), 400, "invalid-request", id="type-list"
        ),
        pytest.param(
            _mutated(("hashedRekordRequestV002", "extra"), "x"), 400, "invalid-request", id="field"
        ),
        pytest.param(_mutated(("dsse",), {}), 400, "invalid-request", id="top-level-field"),
        pytest.param(
            _mutated((*SIGNATURE, "verifier", "keyDetails"), KeyError),
            400,
            "invalid-request",
            id="missing",
        ),
        pytest.param(b"{" + b" " * 70_000 + b"}", 413, "request-too-large", id="too-large"),
        pytest.param(
            _mutated(
                ("hashedRekordRequestV002", "digest"), b64encode(hashlib.sha256(b"other").digest())
            ),
            422,
            "invalid-signature",
            id="bad-signature",
        ),
        pytest.param(
            ed25519_request(CLIENT_KEY, b"ed25519"), 422, "unsupported-key", id="unsupported-key"
        ),
    ],
)
def test_malformed_requests_get_problems(
    shared: LogServer, body: bytes, status: int, slug: str
) -> None:
    problem(post(shared, body), status, slug)


def test_other_problems(shared: LogServer) -> None:
    url = shared.url
    problem(http(url + "/api/v2/log/entries", b"{}", "text/plain"), 415, "unsupported-media-type")
    problem(http(url + "/api/v2/log/entries"), 405, "method-not-allowed")
    problem(http(url + "/nowhere"), 404, "not-found")
    problem(http(url + "/tile/0/x000/000"), 404, "not-found")
    problem(http(url + "/tile/../log.db"), 404, "not-found")


def test_healthz_and_metrics(shared: LogServer) -> None:
    checked_entry(post(shared, request_doc(b"counted")), shared.vkey)
    problem(post(shared, b"{"), 400, "malformed-json")
    status, headers, body = http(shared.url + "/healthz")
    assert status == 200 and headers["content-type"] == "application/json"
    health = json.loads(body)
    assert health["status"] == "ok" and health["origin"] == ORIGIN and health["treeSize"] >= 1
    status, headers, body = http(shared.url + "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values["airseal_log_submissions_total"] >= 1
    assert values["airseal_log_rounds_total"] >= 1
    assert values["airseal_log_tree_size"] == health["treeSize"]
    assert values['airseal_log_rejections_total{reason="malformed-json"}'] >= 1
    assert values["airseal_log_round_seconds_count"] >= 1


# -- interop with the verifier ---------------------------------------------------------------


def test_an_answer_makes_a_bundle_the_verifier_accepts(shared: LogServer) -> None:
    fake = FakeSigstore(seed="log-server")
    leaf = fake.issue_leaf()
    artifact = b"an artifact logged by airseal serve log\n"
    status, entry = shared.post(hashedrekord_request(leaf.key, leaf.cert, artifact))
    assert status == 201, entry
    signature = logged_signature(entry)
    token = fake.timestamp(signature, DEFAULT_TIME + dt.timedelta(seconds=20))
    bundle = log_bundle(leaf.der, entry, artifact, signature, token)
    log_key = parse_vkey(shared.vkey)
    root = fake.trusted_root(tlogs=())
    root["tlogs"] = [
        _log_instance(
            f"https://{ORIGIN}",
            log_key.public_key,
            "PKIX_ED25519",
            log_key.full_key_id,
            TRUST_START,
            None,
        )
    ]
    verifier = Verifier(TrustedRoot.from_dict(root))
    policy = IdentityPolicy(issuer=DEFAULT_ISSUER, identity=DEFAULT_EMAIL)
    result = verifier.verify(
        json.dumps(bundle), Artifact.from_bytes(artifact), policy, now=dt.datetime.now(dt.UTC)
    )
    assert result.identity == DEFAULT_EMAIL
    assert result.log_index == int(entry["logIndex"])
    # The same bundle under a trusted root that does not list this log fails.
    stranger = copy.deepcopy(root)
    stranger["tlogs"] = [fake.rekor_v2.trusted_root_entry(TRUST_START, None)]
    with pytest.raises(VerificationError, match="not in the trusted root"):
        Verifier(TrustedRoot.from_dict(stranger)).verify(
            json.dumps(bundle), Artifact.from_bytes(artifact), policy, now=dt.datetime.now(dt.UTC)
        )


def test_v1_mode_answers_a_set(tmp_path: Path) -> None:
    data = tmp_path / "v1"
    with LogServer(data, ORIGIN, ("--v1", "--max-wait", "0.01")) as server:
        assert not any(line.startswith("vkey ") for line in server.output)
        status, _, body = post(server, request_doc(b"v1"))
        assert status == 201, body
        entry = TransparencyLogEntry.from_dict(json.loads(body))
        # Rekor v1 entries: the only kind a SET lends a trusted time to.
        assert (entry.kind_version.kind, entry.kind_version.version) == ("hashedrekord", "0.0.1")
        spec = json.loads(entry.canonicalized_body)["spec"]
        assert spec["data"] == {
            "hash": {"algorithm": "sha256", "value": hashlib.sha256(b"v1").hexdigest()}
        }
        pem = CLIENT_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert spec["signature"]["publicKey"] == {"content": b64encode(pem)}
        assert entry.integrated_time > 0 and entry.inclusion_promise is not None
        pem = (data / "log-key.pem").read_bytes()
        key = serialization.load_pem_private_key(pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert entry.log_id.key_id == hashlib.sha256(spki).digest()
        payload = json.dumps(
            {
                "body": b64encode(entry.canonicalized_body),
                "integratedTime": entry.integrated_time,
                "logID": entry.log_id.key_id.hex(),
                "logIndex": entry.log_index,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        key.public_key().verify(
            entry.inclusion_promise.signed_entry_timestamp, payload, ec.ECDSA(hashes.SHA256())
        )
        # SHA-384 digests cannot be recorded as this log's 0.0.1 entries.
        p384 = ec.generate_private_key(ec.SECP384R1())
        digest = hashlib.sha384(b"p384").digest()
        p384_doc = request_doc(b"p384")
        p384_doc["hashedRekordRequestV002"]["digest"] = b64encode(digest)
        p384_doc["hashedRekordRequestV002"]["signature"] = {
            "content": b64encode(p384.sign(digest, ec.ECDSA(Prehashed(hashes.SHA384())))),
            "verifier": {
                "publicKey": {
                    "rawBytes": b64encode(
                        p384.public_key().public_bytes(
                            serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo,
                        )
                    )
                },
                "keyDetails": "PKIX_ECDSA_P384_SHA_384",
            },
        }
        assert "SHA2_384" in problem(post(server, p384_doc), 422, "unsupported-digest")["detail"]
        assert server.stop() == 0
    assert json.loads((data / "log.json").read_text())["mode"] == "v1"


def test_a_log_keeps_its_mode_for_life(tmp_path: Path) -> None:
    v1_dir, v2_dir = tmp_path / "v1", tmp_path / "v2"
    with LogServer(v1_dir, ORIGIN, ("--v1", "--max-wait", "0.01")) as v1_log:
        assert post(v1_log, request_doc(b"first v1 entry"))[0] == 201
        assert v1_log.stop() == 0
    with LogServer(v2_dir, ORIGIN, ("--max-wait", "0.01")) as v2_log:
        assert post(v2_log, request_doc(b"first v2 entry"))[0] == 201
        assert v2_log.stop() == 0
    assert json.loads((v2_dir / "log.json").read_text())["mode"] == "v2"

    without = _serve_log(v1_dir)
    assert without.returncode == 2
    assert without.stderr.strip().splitlines() == [
        f"error: data directory {str(v1_dir)!r} holds a v1 log "
        "(hashedrekord 0.0.1 entries with SETs); start it with --v1"
    ]
    with_v1 = _serve_log(v2_dir, "--v1")
    assert with_v1.returncode == 2
    assert with_v1.stderr.strip().splitlines() == [
        f"error: data directory {str(v2_dir)!r} holds a v2 log "
        "(hashedrekord 0.0.2 entries); start it without --v1"
    ]

    # Without log.json the entries themselves tell the mode, and a refused
    # start does not write a log.json of the wrong mode.
    (v1_dir / "log.json").unlink()
    lost = _serve_log(v1_dir, "--origin", ORIGIN)
    assert lost.returncode == 2
    assert lost.stderr.strip().splitlines() == [
        "error: the log's storage holds a v1 log (hashedrekord 0.0.1 entries with SETs); "
        "start it with --v1"
    ]
    assert not (v1_dir / "log.json").exists()
    with LogServer(v1_dir, ORIGIN, ("--v1",)) as again:
        assert again.stop() == 0
    assert json.loads((v1_dir / "log.json").read_text())["mode"] == "v1"

    # An identity file from before the mode was recorded is a v2 log's.
    (v2_dir / "log.json").write_text(
        json.dumps(
            {k: v for k, v in json.loads((v2_dir / "log.json").read_text()).items() if k != "mode"}
        )
    )
    legacy = _serve_log(v2_dir, "--v1")
    assert legacy.returncode == 2 and "holds a v2 log" in legacy.stderr
    (v2_dir / "log.json").write_text(json.dumps({"origin": ORIGIN, "keyId": "x", "mode": "v3"}))
    unknown = _serve_log(v2_dir)
    assert unknown.returncode == 3
    assert "names an unknown log mode 'v3'" in unknown.stderr


def test_the_process_listens_only_where_told(shared: LogServer) -> None:
    port = shared.port
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = [line.split()[1] for line in listening if line.split()[3] == "0A"]
    # 0100007F is 127.0.0.1 in /proc/net/tcp's byte order.
    assert f"0100007F:{port:04X}" in local
    assert f"00000000:{port:04X}" not in local


def test_serve_and_log_are_built_in() -> None:
    # main() skips the plugin lookup for built-in commands and groups.
    from toolkit.cli import _builtin_names

    assert {"serve", "log"} <= _builtin_names()


def test_two_front_ends_share_one_postgres_log(tmp_path: Path, fresh_postgres_dsn: str) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    common = ("--postgres", fresh_postgres_dsn, "--max-wait", "0.02")
    with LogServer(first_dir, ORIGIN, common) as a:
        key = f"file:{first_dir / 'log-key.pem'}"
        with LogServer(second_dir, ORIGIN, (*common, "--key", key)) as b:
            assert b.vkey == a.vkey
            documents = [request_doc(b"shared %d" % i) for i in range(120)]
            servers = (a, b)
            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                replies = list(
                    pool.map(lambda item: post(servers[item[0] % 2], item[1]), enumerate(documents))
                )
            entries = [checked_entry(reply, a.vkey) for reply in replies]
            assert sorted(e.log_index for e in entries) == list(range(120))
            final = current_checkpoint(a)
            assert current_checkpoint(b) == final
            # Both front-ends serve the same tiles; every answer is a prefix of the final tree.
            source = tiles.TileHashSource(final.size, served(b))
            assert source.root() == final.root_hash
            for entry in entries:
                proof = entry.inclusion_proof
                assert proof is not None
                path = merkle.consistency_proof(proof.tree_size, final.size, source)
                merkle.verify_consistency(
                    proof.tree_size, final.size, path, proof.root_hash, final.root_hash
                )
            assert b.stop() == 0
        assert a.stop() == 0
