"""``airseal log monitor`` against real ``airseal serve log`` processes on 127.0.0.1.

A monitor must notice every way a log can lie: a checkpoint signed by another
key (a forgery), a split view (the same key and origin, a different tree), and
a tile rewritten on disk. Each case ends with exit 1 and the failure's code.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.log_server import AIRSEAL, LogServer, hashedrekord_request

ORIGIN = "monitor.airseal.test"
#: One request at a time: short rounds keep the test quick.
FAST = ("--max-wait", "0.005")


def _fill(server: LogServer, count: int, tag: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for n in range(count):
        status, problem = server.post(hashedrekord_request(key, None, f"{tag} {n}".encode()))
        assert status == 201, problem


def _monitor(url: str, vkey: str, state: Path) -> tuple[int, dict[str, object]]:
    result = subprocess.run(
        [AIRSEAL, "log", "monitor", "--url", url, "--vkey", vkey, "--state", str(state), "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ,
        timeout=120,
    )
    return result.returncode, json.loads(result.stdout)


def test_a_growing_honest_log_passes(tmp_path: Path) -> None:
    with LogServer(tmp_path / "data", ORIGIN, FAST) as server:
        _fill(server, 300, "honest")
        vkey = server.vkey
        state = tmp_path / "monitor.json"
        assert _monitor(server.url, vkey, state)[0] == 0
        _fill(server, 40, "more")
        code, report = _monitor(server.url, vkey, state)
        assert code == 0, report
        assert json.loads(state.read_text())["size"] == 340


def test_completed_tiles_lose_their_partials_and_old_states_still_verify(
    tmp_path: Path,
) -> None:
    # One entry per round (one request at a time, short rounds): the slow-log
    # case where every round rewrote the partial tile and bundle.
    data = tmp_path / "data"
    with LogServer(data, ORIGIN, FAST) as server:
        _fill(server, 100, "before")
        vkey = server.vkey
        state = tmp_path / "monitor.json"
        assert _monitor(server.url, vkey, state)[0] == 0
        assert (data / "tiles" / "tile" / "0" / "000.p" / "100").is_file()
        _fill(server, 230, "after")

        # Tile 0 (level 0) and bundle 0 are full: no partial of them remains,
        # nor of any other full tile; the right edge keeps its partials.
        root = data / "tiles"
        leftovers = [
            directory.relative_to(root).as_posix()
            for directory in root.rglob("*.p")
            if directory.with_name(directory.name.removesuffix(".p")).is_file()
        ]
        assert leftovers == []
        for full in ("tile/0/000", "tile/entries/000"):
            assert (root / full).is_file() and not (root / f"{full}.p").exists()
        assert (root / "tile" / "0" / "001.p" / "74").is_file()
        assert (root / "tile" / "entries" / "001.p" / "74").is_file()
        assert server.get("/tile/0/000.p/100") is None
        metrics = (server.get("/metrics") or b"").decode()
        assert "airseal_log_partials_deleted_total 2\n" in metrics
        assert "airseal_log_partials_gc_failures_total 0\n" in metrics

        # The monitor saw size 100, whose partial tiles are gone: it reads
        # the full tiles instead and proves the log grew consistently.
        code, report = _monitor(server.url, vkey, state)
        assert code == 0, report
        assert json.loads(state.read_text())["size"] == 330


def test_a_checkpoint_signed_by_another_key_is_a_forgery(tmp_path: Path) -> None:
    with LogServer(tmp_path / "real", ORIGIN, FAST) as real:
        vkey = real.vkey
    with LogServer(tmp_path / "forged", ORIGIN, FAST) as forged:
        _fill(forged, 5, "forged")
        code, report = _monitor(forged.url, vkey, tmp_path / "state.json")
    assert code == 1
    assert report["check"] == "log.signature"


def test_a_split_view_is_a_fork(tmp_path: Path) -> None:
    # Two trees under the same key and origin: what a log shows one victim
    # while it shows everyone else another.
    with LogServer(tmp_path / "a", ORIGIN, FAST) as first:
        _fill(first, 20, "view a")
        vkey = first.vkey
        key_file = tmp_path / "a" / "log-key.pem"
        state = tmp_path / "state.json"
        assert _monitor(first.url, vkey, state)[0] == 0
    with LogServer(tmp_path / "b", ORIGIN, (*FAST, "--key", f"file:{key_file}")) as second:
        _fill(second, 30, "view b")
        code, report = _monitor(second.url, vkey, state)
    assert code == 1
    assert report["check"] == "log.fork"


def test_a_rewritten_tile_is_detected(tmp_path: Path) -> None:
    with LogServer(tmp_path / "data", ORIGIN, FAST) as server:
        _fill(server, 300, "tile")
        tile = tmp_path / "data" / "tiles" / "tile" / "0" / "000"
        data = bytearray(tile.read_bytes())
        data[100] ^= 0x01
        tile.write_bytes(bytes(data))
        code, report = _monitor(server.url, server.vkey, tmp_path / "state.json")
    assert code == 1
    assert report["check"] == "log.tile"
