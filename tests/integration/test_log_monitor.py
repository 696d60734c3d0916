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
