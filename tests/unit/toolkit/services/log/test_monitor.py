"""The log monitor against a static C2SP log served from a directory on 127.0.0.1.

The tiles here are built independently of ``toolkit.services.log.tiles``
(from :mod:`toolkit.merkle` and a path encoder of its own), so these tests
also cross-check the layout the monitor reads.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from toolkit import merkle
from toolkit.encoding import b64decode, b64encode
from toolkit.errors import FormatError, TransportError, UsageError
from toolkit.note import Ed25519NoteSigner, make_vkey, sign_note
from toolkit.services.log.monitor import (
    FORK,
    ROLLBACK,
    SIGNATURE,
    TILE,
    MonitorError,
    MonitorState,
    load_state,
    monitor,
    save_state,
)

ORIGIN = "log.airseal.test"


def _index(n: int) -> str:
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def _path(level: int | None, index: int, width: int) -> str:
    kind = "entries" if level is None else str(level)
    suffix = "" if width == 256 else f".p/{width}"
    return f"tile/{kind}/{_index(index)}{suffix}"


def test_path_encoding_matches_c2sp_examples() -> None:
    assert _index(1234067) == "x001/x234/067"
    assert _path(0, 0, 5) == "tile/0/000.p/5"
    assert _path(None, 1000, 256) == "tile/entries/x001/000"


class StaticLog:
    """Writes a C2SP tiled log (checkpoint, hash tiles, entry bundles) into a directory."""

    def __init__(self, root: Path, key: Ed25519PrivateKey, origin: str = ORIGIN) -> None:
        self.root = root
        self.key = key
        self.origin = origin
        self.signer = Ed25519NoteSigner(origin, key)

    @property
    def vkey(self) -> str:
        return make_vkey(self.origin, self.key.public_key())

    def file(self, path: str) -> Path:
        return self.root / path

    def write(self, path: str, data: bytes) -> None:
        target = self.file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def publish(self, bodies: list[bytes]) -> tuple[int, bytes]:
        """Write every tile and bundle of the tree over ``bodies`` and sign its checkpoint."""
        size = len(bodies)
        source = merkle.ListHashSource(merkle.leaf_hash(b) for b in bodies)
        level = 0
        while (nodes := size >> (8 * level)) > 0:
            for index in range((nodes + 255) // 256):
                width = min(256, nodes - 256 * index)
                hashes = [
                    source.perfect_subtree_hash(8 * level, 256 * index + i) for i in range(width)
                ]
                self.write(_path(level, index, width), b"".join(hashes))
            level += 1
        for index in range((size + 255) // 256):
            chunk = bodies[256 * index : 256 * index + 256]
            bundle = b"".join(len(b).to_bytes(2, "big") + b for b in chunk)
            self.write(_path(None, index, len(chunk)), bundle)
        root = merkle.tree_root(size, source)
        self.sign_checkpoint(f"{self.origin}\n{size}\n{b64encode(root)}\n")
        return size, root

    def sign_checkpoint(self, text: str, signer: Ed25519NoteSigner | None = None) -> None:
        note = sign_note(text, [signer or self.signer])
        self.write("checkpoint", note.to_text().encode())

    def clear(self) -> None:
        for child in self.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()


def _bodies(count: int, tag: str = "a") -> list[bytes]:
    return [f'{{"entry":{i},"tag":"{tag}"}}'.encode() for i in range(count)]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        # /status/<code>/... answers that HTTP status, for transport error tests.
        parts = self.path.split("/")
        if len(parts) > 2 and parts[1] == "status":
            self.send_error(int(parts[2]))
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[StaticLog, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        log = StaticLog(root, Ed25519PrivateKey.generate())
        yield log, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours proxy variables; these tests talk to 127.0.0.1 only.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _fails(code: str, *args: Any, **kwargs: Any) -> MonitorError:
    with pytest.raises(MonitorError) as info:
        monitor(*args, **kwargs)
    assert info.value.code == code, info.value.detail
    assert info.value.exit_code == 1
    return info.value


# -- good logs ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5, 256, 600, 66_000])
def test_good_log_passes_and_saves_state(
    served: tuple[StaticLog, str], tmp_path: Path, size: int
) -> None:
    log, url = served
    _, root = log.publish(_bodies(size))
    state = tmp_path / "state.json"
    report = monitor(url, log.vkey, state, entries=True)
    assert (report.origin, report.size, report.root_hash) == (ORIGIN, size, root)
    assert report.previous_size is None and report.state_written
    assert report.entries_checked == size
    saved = json.loads(state.read_text())
    assert saved == {
        "origin": ORIGIN,
        "size": size,
        "root": b64encode(root),
        "checkpoint": log.file("checkpoint").read_text(),
    }
    # Nothing new: the second run fetches only the edge tiles and writes nothing.
    again = monitor(url, log.vkey, state)
    assert again.previous_size == size and not again.state_written
    assert again.requests <= 1 + 2 * 3


def test_growing_log_is_consistent(served: tuple[StaticLog, str], tmp_path: Path) -> None:
    log, url = served
    bodies = _bodies(70_000)
    state = tmp_path / "state.json"
    log.publish(bodies[:600])
    first = monitor(url, log.vkey, state)
    for size in (601, 767, 768, 5000, 65_536, 70_000):
        _, root = log.publish(bodies[:size])
        report = monitor(url, log.vkey, state, entries=True)
        assert report.previous_size is not None and report.previous_size < size
        assert report.size == size and report.root_hash == root and report.state_written
    assert first.previous_size is None
    # Incremental: the last step audited only what was new since 65,536 entries.
    assert report.entries_checked == 70_000 - 65_536
    assert report.requests < 2 * (70_000 - 65_536) // 256 + 20


def test_without_state_nothing_is_written(served: tuple[StaticLog, str], tmp_path: Path) -> None:
    log, url = served
    log.publish(_bodies(300))
    report = monitor(url + "/", log.vkey, None)
    assert report.size == 300 and not report.state_written and report.url == url
    assert list(tmp_path.iterdir()) == [tmp_path / "www"]


def test_missing_partial_tile_falls_back_to_the_full_tile(
    served: tuple[StaticLog, str], tmp_path: Path
) -> None:
    log, url = served
    bodies = _bodies(768)
    log.publish(bodies)  # writes the full tiles tile/0/002 and tile/entries/002
    log.publish(bodies[:600])
    log.file(_path(0, 2, 88)).unlink()
    log.file(_path(None, 2, 88)).unlink()
    assert monitor(url, log.vkey, tmp_path / "state.json", entries=True).size == 600


# -- forged checkpoints -----------------------------------------------------------------


def test_checkpoint_signed_by_another_key(served: tuple[StaticLog, str]) -> None:
    log, url = served
    _, root = log.publish(_bodies(10))
    impostor = Ed25519NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    log.sign_checkpoint(f"{ORIGIN}\n10\n{b64encode(root)}\n", impostor)
    error = _fails(SIGNATURE, url, log.vkey, None)
    assert "not signed by a trusted key" in error.detail


def test_checkpoint_text_changed_after_signing(served: tuple[StaticLog, str]) -> None:
    log, url = served
    log.publish(_bodies(10))
    text = log.file("checkpoint").read_text()
    log.write("checkpoint", text.replace("\n10\n", "\n11\n", 1).encode())
    error = _fails(SIGNATURE, url, log.vkey, None)
    assert "is invalid" in error.detail


def test_checkpoint_for_another_origin(served: tuple[StaticLog, str]) -> None:
    log, url = served
    _, root = log.publish(_bodies(10))
    log.sign_checkpoint(f"other.airseal.test\n10\n{b64encode(root)}\n")
    error = _fails(SIGNATURE, url, log.vkey, None)
    assert "origin 'other.airseal.test'" in error.detail


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (b"not a note", "not a signed note"),
        (b"\xff\xfe", "not a signed note"),
        (b"x" * (64 * 1024 + 1), "larger than"),
    ],
)
def test_garbage_checkpoint(served: tuple[StaticLog, str], content: bytes, text: str) -> None:
    log, url = served
    log.publish(_bodies(3))
    log.write("checkpoint", content)
    assert text in _fails(SIGNATURE, url, log.vkey, None).detail


def test_signed_note_that_is_not_a_checkpoint(served: tuple[StaticLog, str]) -> None:
    log, url = served
    log.publish(_bodies(3))
    log.sign_checkpoint(f"{ORIGIN}\nthree\n")
    assert "not a checkpoint" in _fails(SIGNATURE, url, log.vkey, None).detail


# -- modified tiles ----------------------------------------------------------------------


def _flip(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def test_modified_full_tile_in_the_middle(served: tuple[StaticLog, str]) -> None:
    log, url = served
    log.publish(_bodies(1000))
    _flip(log.file(_path(0, 1, 256)), 100)
    error = _fails(TILE, url, log.vkey, None)
    assert "hash 1 of tile tile/1/000.p/3 is not the hash of tile tile/0/001" in error.detail


def test_modified_right_edge_tile_changes_the_root(served: tuple[StaticLog, str]) -> None:
    log, url = served
    log.publish(_bodies(1000))
    _flip(log.file(_path(0, 3, 232)))
    assert "the signed checkpoint says" in _fails(TILE, url, log.vkey, None).detail


def test_modified_level_one_tile(served: tuple[StaticLog, str]) -> None:
    log, url = served
    log.publish(_bodies(1000))
    _flip(log.file(_path(1, 0, 3)), 40)
    assert "hash 1 of tile tile/1/000.p/3" in _fails(TILE, url, log.vkey, None).detail


def test_consistently_rewritten_tiles_do_not_give_the_signed_root(
    served: tuple[StaticLog, str],
) -> None:
    log, url = served
    bodies = _bodies(1000)
    log.publish(bodies)
    checkpoint = log.file("checkpoint").read_bytes()
    # Rewrite entry 5 and every tile above it, keeping the signed checkpoint.
    bodies[5] = b"rewritten"
    log.publish(bodies)
    log.write("checkpoint", checkpoint)
    assert "the signed checkpoint says" in _fails(TILE, url, log.vkey, None, entries=True).detail


def test_truncated_and_missing_tiles(served: tuple[StaticLog, str]) -> None:
    log, url = served
    log.publish(_bodies(1000))
    tile = log.file(_path(0, 0, 256))
    tile.write_bytes(tile.read_bytes()[:-1])
    assert "expected 256 hashes" in _fails(TILE, url, log.vkey, None).detail
    tile.unlink()
    assert "tile/0/000 is missing" in _fails(TILE, url, log.vkey, None).detail


def test_modified_entry_bundle(served: tuple[StaticLog, str]) -> None:
    log, url = served
    log.publish(_bodies(300))
    bundle = log.file(_path(None, 1, 44))
    _flip(bundle, 5)
    assert monitor(url, log.vkey, None).size == 300  # hash tiles alone are fine
    error = _fails(TILE, url, log.vkey, None, entries=True)
    assert "entry 256 in tile/entries/001.p/44 does not hash to leaf 0" in error.detail
    bundle.write_bytes(b"\x00")
    assert "length prefix" in _fails(TILE, url, log.vkey, None, entries=True).detail


# -- forks and rollbacks -----------------------------------------------------------------


def test_fork_of_the_same_size(served: tuple[StaticLog, str], tmp_path: Path) -> None:
    log, url = served
    state = tmp_path / "state.json"
    log.publish(_bodies(600, "a"))
    monitor(url, log.vkey, state)
    saved = state.read_bytes()
    log.clear()
    log.publish(_bodies(600, "b"))
    error = _fails(FORK, url, log.vkey, state)
    assert "two different roots for the same tree size 600" in error.detail
    assert error.hint is not None and "evidence" not in error.detail
    assert state.read_bytes() == saved  # the evidence is kept


@pytest.mark.parametrize("new_size", [601, 900, 66_000])
def test_fork_that_does_not_extend(
    served: tuple[StaticLog, str], tmp_path: Path, new_size: int
) -> None:
    log, url = served
    state = tmp_path / "state.json"
    bodies = _bodies(new_size)
    log.publish(bodies[:600])
    monitor(url, log.vkey, state)
    log.clear()
    bodies[17] = b"history rewritten"
    log.publish(bodies)
    error = _fails(FORK, url, log.vkey, state)
    assert f"size {new_size} does not extend the saved tree of size 600" in error.detail


def test_rollback(served: tuple[StaticLog, str], tmp_path: Path) -> None:
    log, url = served
    state = tmp_path / "state.json"
    bodies = _bodies(900)
    log.publish(bodies)
    monitor(url, log.vkey, state)
    log.publish(bodies[:600])
    error = _fails(ROLLBACK, url, log.vkey, state)
    assert "has 600 entries, but it had 900" in error.detail


# -- transport ---------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_server_down_is_a_transport_error(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(TransportError) as info:
        monitor(f"http://127.0.0.1:{_closed_port()}", make_vkey(ORIGIN, key.public_key()), None)
    assert info.value.exit_code == 3
    assert "failed" in info.value.message


def test_missing_checkpoint_and_http_errors(served: tuple[StaticLog, str]) -> None:
    log, url = served
    with pytest.raises(TransportError) as info:
        monitor(url, log.vkey, None)
    assert "checkpoint: HTTP 404" in info.value.message
    for status in (403, 500, 503):
        with pytest.raises(TransportError) as info:
            monitor(f"{url}/status/{status}", log.vkey, None)
        assert f"HTTP {status}" in info.value.message


@pytest.mark.parametrize("url", ["file:///etc", "ftp://127.0.0.1/", "127.0.0.1:80", "http://h/?q"])
def test_bad_urls_are_usage_errors(url: str) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(UsageError):
        monitor(url, make_vkey(ORIGIN, key.public_key()), None)


# -- state file --------------------------------------------------------------------------


def test_state_round_trip_and_atomic_write(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    signer = Ed25519NoteSigner(ORIGIN, key)
    root = merkle.EMPTY_ROOT
    text = sign_note(f"{ORIGIN}\n0\n{b64encode(root)}\n", [signer]).to_text()
    path = tmp_path / "state.json"
    save_state(path, MonitorState(ORIGIN, 0, root, text))
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert load_state(path, signer.verifier) == MonitorState(ORIGIN, 0, root, text)
    assert load_state(tmp_path / "absent.json", signer.verifier) is None


def test_tampered_state_files_are_refused(served: tuple[StaticLog, str], tmp_path: Path) -> None:
    log, url = served
    state = tmp_path / "state.json"
    log.publish(_bodies(10))
    monitor(url, log.vkey, state)
    good = json.loads(state.read_text())

    edited = dict(good, size=9)
    state.write_text(json.dumps(edited))
    with pytest.raises(FormatError, match="does not match the checkpoint"):
        monitor(url, log.vkey, state)

    state.write_text(json.dumps(dict(good, extra=1)))
    with pytest.raises(FormatError, match="must be an object"):
        monitor(url, log.vkey, state)

    state.write_text("{")
    with pytest.raises(FormatError, match="not valid JSON"):
        monitor(url, log.vkey, state)

    state.write_text(json.dumps(good))
    other = make_vkey(ORIGIN, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(UsageError, match="did not sign"):
        monitor(url, other, state)
    assert b64decode(good["root"]) == monitor(url, log.vkey, state).root_hash


def test_bad_vkey_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="verifier key"):
        monitor("http://127.0.0.1:1", "not-a-vkey", None)


# -- CLI ---------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_ok_and_json(served: tuple[StaticLog, str], tmp_path: Path) -> None:
    from toolkit.cli import app

    log, url = served
    log.publish(_bodies(300))
    state = tmp_path / "state.json"
    args = ["log", "monitor", "--url", url, "--vkey", log.vkey, "--state", str(state)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"consistent: {ORIGIN} at tree size 300" in result.output
    assert "first run" in result.output and "(updated)" in result.output
    result = runner.invoke(app, [*args, "--json", "--entries"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["ok"] is True and document["treeSize"] == 300
    assert document["previousTreeSize"] == 300 and document["entriesChecked"] == 44
    assert document["stateWritten"] is False


def test_cli_exit_codes(served: tuple[StaticLog, str], tmp_path: Path) -> None:
    from toolkit.cli import app

    log, url = served
    log.publish(_bodies(10))
    impostor = Ed25519NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    log.sign_checkpoint(f"{ORIGIN}\n0\n{b64encode(merkle.EMPTY_ROOT)}\n", impostor)
    result = runner.invoke(app, ["log", "monitor", "--url", url, "--vkey", log.vkey])
    assert result.exit_code == 1
    assert "error[log.signature]" in result.output
    result = runner.invoke(app, ["log", "monitor", "--url", url, "--vkey", log.vkey, "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["check"] == "log.signature"
    down = f"http://127.0.0.1:{_closed_port()}"
    result = runner.invoke(app, ["log", "monitor", "--url", down, "--vkey", log.vkey])
    assert result.exit_code == 3
    result = runner.invoke(app, ["log", "monitor", "--url", url, "--vkey", "nope"])
    assert result.exit_code == 2
