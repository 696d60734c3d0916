"""``airseal kit export`` from a mirror, then ``airseal verify --kit`` with no network at all.

The export reads a published tree over HTTP on loopback (and from a
directory); the verification runs inside an empty network namespace
(``unshare --net``: only a loopback interface, down, and no routes) with an
audit hook that aborts the process if anything even creates a socket.

Without ``unshare`` (or without the privilege to use it) the namespace test is
skipped; when ``CI`` is set and ``unshare`` exists but fails, it fails.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.tuf_repo import Published, TufRepo, material

AIRSEAL = str(Path(sys.executable).parent / "airseal")

# Loaded by every Python process started with this directory on PYTHONPATH:
# the first socket operation of any kind aborts the process (exit 99).
_NO_SOCKETS = """
import os, sys
def _hook(event, args):
    if event.startswith("socket."):
        os.write(2, ("socket used: " + event + "\\n").encode())
        os._exit(99)
sys.addaudithook(_hook)
"""


def _published() -> Published:
    repo = TufRepo(material().target_files, now=datetime.now(UTC).replace(microsecond=0))
    repo.rotate_root()
    repo.rotate_root(replace_root_key=0, root_key_type="ed25519", rotate=("snapshot", "timestamp"))
    return repo.publish()


@pytest.fixture
def http_mirror(tmp_path: Path) -> Iterator[tuple[str, Published]]:
    state = _published()
    root = state.write_mirror(tmp_path / "published")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))

    class Quiet(handler.func):  # type: ignore[name-defined,misc]
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _netns_prefix() -> list[str]:
    tool = shutil.which("unshare")
    if tool is None:
        pytest.skip(
            "unshare (util-linux) is not installed: cannot run in an empty network namespace"
        )
    probe = subprocess.run([tool, "--net", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        reason = f"unshare --net does not work here ({probe.stderr.strip()[:120]}); needs root"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return [tool, "--net"]


def _no_socket_env(tmp_path: Path) -> dict[str, str]:
    hook = tmp_path / "nosockets"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_NO_SOCKETS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH")) if p)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env


def _export(mirror: str, tmp_path: Path, root_sha: str) -> Path:
    bundle = tmp_path / "artifact.sigstore.json"
    bundle.write_bytes(material().bundle)
    out = tmp_path / "kit.airseal"
    done = subprocess.run(
        [
            AIRSEAL,
            "kit",
            "export",
            "--mirror",
            mirror,
            "--bundle",
            str(bundle),
            "-o",
            str(out),
            "--root-sha256",
            root_sha,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def _verify_argv(tmp_path: Path, kit: Path, root_sha: str) -> list[str]:
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(material().artifact)
    m = material()
    return [
        AIRSEAL,
        "verify",
        str(artifact),
        "--kit",
        str(kit),
        "--root-sha256",
        root_sha,
        "--identity",
        m.identity,
        "--issuer",
        m.issuer,
        "--json",
    ]


def test_export_over_http_then_verify_in_an_empty_network_namespace(
    http_mirror: tuple[str, Published], tmp_path: Path
) -> None:
    prefix = _netns_prefix()
    url, state = http_mirror
    root_sha = hashlib.sha256(state.roots[0]).hexdigest()
    kit = _export(url, tmp_path, root_sha)
    env = _no_socket_env(tmp_path)
    # The audit hook really is active: a socket aborts the process.
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.socket()"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert probe.returncode == 99
    # No interface but a downed loopback, no route: nothing could leave.
    links = subprocess.run(
        [*prefix, "cat", "/proc/net/dev"], capture_output=True, text=True, check=True
    ).stdout
    assert [line.split(":")[0].strip() for line in links.splitlines()[2:]] == ["lo"]
    done = subprocess.run(
        [*prefix, *_verify_argv(tmp_path, kit, root_sha)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True
    assert doc["kit"]["rootVersion"] == 3 and doc["kit"]["expiryPolicy"] == "strict"
    # The default state directory (XDG_DATA_HOME) now guards against rollback.
    assert (tmp_path / "xdg" / "airseal" / "kit-state" / root_sha / "timestamp.json").is_file()


def test_export_from_a_directory_and_verify_without_sockets(tmp_path: Path) -> None:
    state = _published()
    mirror = state.write_mirror(tmp_path / "published")
    root_sha = hashlib.sha256(state.roots[0]).hexdigest()
    kit = _export(str(mirror), tmp_path, root_sha)
    done = subprocess.run(
        _verify_argv(tmp_path, kit, root_sha),
        env=_no_socket_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
