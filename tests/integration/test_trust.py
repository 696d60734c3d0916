"""Trust distribution end to end: a repository from a REAL rehearsed ceremony.

The repository is initialised from the rehearsal's ``1.root.json`` and signed
with its ``tuf-online`` key on the SoftHSM ``ca`` token; root rotations are
signed by the custodians' SoftHSM tokens (alice, bob, carol; threshold 2),
each ``sign-root`` in a process of its own, as custodians in separate
sessions. The published tree is served by a static HTTP server on 127.0.0.1
and consumed by ``airseal trust update``, by python-tuf's plain ngclient
``Updater`` and by tuf-js (npm, ``make js``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tuf.api.exceptions import UnsignedMetadataError
from tuf.ngclient import Updater

from tests.support.instance import AIRSEAL, REPO, RehearsedCeremony
from toolkit.signing import KeyAlgorithm, SoftwareSigner

JS_DIR = REPO / "tests" / "interop" / "js"
JS_SCRIPT = JS_DIR / "tuf_update.mjs"
#: tuf-js 5 needs Node >= 20.17.
NODE_MINIMUM = (20, 17)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server(root: Path) -> Iterator[str]:
    """Serve ``root`` like any static web server, on 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def tuf_js_missing() -> str | None:
    """Why tuf-js cannot run here, or None when it can."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed (tuf-js interop needs Node >= 20.17)"
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    parts = tuple(int(p) for p in version.lstrip("v").split(".")[:2] if p.isdigit())
    if parts < NODE_MINIMUM:
        return f"node {version} is too old for tuf-js 5 (needs >= 20.17)"
    if not (JS_DIR / "node_modules" / "tuf-js").is_dir():
        return "tuf-js is not installed: run `make js`"
    return None


def require_tuf_js() -> str:
    """The node binary; skip (fail under CI) when node or tuf-js is missing."""
    reason = tuf_js_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} -- CI must run the tuf-js interop tests")
        pytest.skip(reason)
    node = shutil.which("node")
    assert node is not None
    return node


def _run_tuf_js_here() -> bool:
    """Whether a test that also does other things should run its tuf-js part."""
    return tuf_js_missing() is None or bool(os.environ.get("CI"))


@dataclass
class Distributor:
    """A working repository, its config and the ceremony it came from."""

    ceremony: RehearsedCeremony
    base: Path
    config: Path

    @property
    def root(self) -> bytes:
        return self.ceremony.tuf_root.read_bytes()

    @property
    def root_sha256(self) -> str:
        return hashlib.sha256(self.root).hexdigest()

    def airseal(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIRSEAL, *map(str, args)],
            capture_output=True,
            text=True,
            env=self.ceremony.env,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str | Path) -> str:
        result = self.airseal(*args)
        assert result.returncode == 0, result.stderr + result.stdout
        return result.stdout


def _distributor(ceremony: RehearsedCeremony, base: Path, extra_keys: str = "") -> Distributor:
    config = base / "trust.toml"
    online = '["tuf-online"' + extra_keys + "]"
    config.write_text(
        f"[instance]\nkeys = {json.dumps(str(ceremony.keys_toml))}\n\n"
        f'[trust]\nrepository = "repo"\nonline_keys = {online}\n\n'
        "[trust.offline]\nexpiry_days = 90\nrenew_days = 30\n",
        encoding="utf-8",
    )
    dist = Distributor(ceremony, base, config)
    if not (base / "repo").exists():
        dist.ok(
            "trust",
            "init",
            "-c",
            config,
            "--root",
            ceremony.tuf_root,
            "--trusted-root",
            ceremony.trusted_root,
        )
    return dist


@pytest.fixture(scope="module")
def published(
    rehearsed_ceremony: RehearsedCeremony, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Distributor, Path, str]]:
    base = tmp_path_factory.mktemp("trust")
    dist = _distributor(rehearsed_ceremony, base)
    web = base / "web"
    dist.ok("trust", "publish", "-c", dist.config, web)
    with static_server(web) as url:
        yield dist, web, url


def _python_tuf(url: str, root: bytes, state: Path) -> bytes:
    """python-tuf's plain ngclient, default (urllib3) fetcher, nothing of airseal."""
    (state / "metadata").mkdir(parents=True, exist_ok=True)
    (state / "targets").mkdir(parents=True, exist_ok=True)
    updater = Updater(
        str(state / "metadata"),
        f"{url}/metadata/",
        str(state / "targets"),
        f"{url}/targets/",
        bootstrap=root,
    )
    updater.refresh()
    info = updater.get_targetinfo("trusted_root.json")
    assert info is not None
    return Path(updater.download_target(info)).read_bytes()


def _tuf_js(url: str, root: Path, state: Path, out: Path) -> dict[str, Any]:
    node = require_tuf_js()
    result = subprocess.run(
        [node, str(JS_SCRIPT), url, str(root), str(state), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    document: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert (result.returncode == 0) == document["ok"], result.stderr
    return document


# --- consumption ------------------------------------------------------------------------


def test_layout_of_the_published_tree(published: tuple[Distributor, Path, str]) -> None:
    dist, web, _ = published
    assert (web / "metadata" / "1.root.json").read_bytes() == dist.root
    names = {p.name for p in (web / "metadata").iterdir()}
    assert {"1.root.json", "1.targets.json", "timestamp.json"} <= names
    assert any(n.endswith(".snapshot.json") for n in names)
    target = hashlib.sha256(dist.ceremony.trusted_root.read_bytes()).hexdigest()
    assert (web / "targets" / f"{target}.trusted_root.json").is_file()
    assert (web / "offline" / "metadata" / "timestamp.json").is_file()


def test_airseal_trust_update_over_http(
    published: tuple[Distributor, Path, str], tmp_path: Path
) -> None:
    dist, _, url = published
    out = tmp_path / "trusted_root.json"
    result = dist.airseal(
        "trust",
        "update",
        "--mirror",
        url,
        "--root-sha256",
        dist.root_sha256,
        "--cache",
        tmp_path / "cache",
        "-o",
        out,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["initial_root_sha256"] == dist.root_sha256
    assert out.read_bytes() == dist.ceremony.trusted_root.read_bytes()
    shown = dist.ok("trust", "show", out)
    assert "https://tlog.airseal.example" in shown


def test_airseal_trust_update_refuses_a_wrong_pin(
    published: tuple[Distributor, Path, str], tmp_path: Path
) -> None:
    dist, _, url = published
    result = dist.airseal(
        "trust",
        "update",
        "--mirror",
        url,
        "--root-sha256",
        "ab" * 32,
        "--cache",
        tmp_path / "cache",
        "-o",
        tmp_path / "t.json",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error[kit.root]:")
    assert not (tmp_path / "t.json").exists()


def test_python_tuf_plain_ngclient(
    published: tuple[Distributor, Path, str], tmp_path: Path
) -> None:
    dist, _, url = published
    assert _python_tuf(url, dist.root, tmp_path) == dist.ceremony.trusted_root.read_bytes()


def test_tuf_js(published: tuple[Distributor, Path, str], tmp_path: Path) -> None:
    dist, _, url = published
    out = tmp_path / "trusted_root.json"
    document = _tuf_js(url, dist.ceremony.tuf_root, tmp_path / "state", out)
    assert document["ok"] is True
    assert out.read_bytes() == dist.ceremony.trusted_root.read_bytes()


def test_offline_channel_over_http(
    published: tuple[Distributor, Path, str], tmp_path: Path
) -> None:
    dist, _, url = published
    data = _python_tuf(f"{url}/offline", dist.root, tmp_path)
    assert data == dist.ceremony.trusted_root.read_bytes()


# --- rotation ----------------------------------------------------------------------------


def test_root_rotation_by_custodian_tokens(
    rehearsed_ceremony: RehearsedCeremony, tmp_path: Path
) -> None:
    """v1 -> v2 (carol -> dave) -> v3 (bob, dave, erin; new online key), 2 of 3 each time."""
    dave = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    erin = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256)
    online2 = SoftwareSigner.generate(KeyAlgorithm.ED25519)
    for name, signer in (("dave", dave), ("erin", erin), ("online2", online2)):
        (tmp_path / f"{name}.pem").write_bytes(signer.to_pem())
        (tmp_path / f"{name}.pub.pem").write_bytes(
            signer.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
    dist = _distributor(rehearsed_ceremony, tmp_path, extra_keys=', "file:online2.pem"')
    cfg = dist.config
    web = tmp_path / "web"
    dist.ok("trust", "publish", "-c", cfg, web)

    with static_server(web) as url:
        # A client that follows the repository from v1 on.
        follower = tmp_path / "follower"
        dist.ok(
            "trust",
            "update",
            "--mirror",
            url,
            "--root",
            rehearsed_ceremony.tuf_root,
            "--cache",
            follower,
            "-o",
            tmp_path / "t0.json",
        )

        # v2: alice, bob and dave. Each custodian signs in a session (process) of their own.
        v2 = tmp_path / "2.root.json"
        dist.ok(
            "trust",
            "rotate-root",
            "-c",
            cfg,
            "-o",
            v2,
            "--new-keys",
            "tuf-root-alice,tuf-root-bob",
            "--new-keys",
            tmp_path / "dave.pub.pem",
        )
        a, b = tmp_path / "2.alice.json", tmp_path / "2.bob.json"
        shutil.copy(v2, a)
        shutil.copy(v2, b)
        out = dist.ok("trust", "sign-root", a, "--key", "tuf-root-alice", "-c", cfg)
        assert "1 of 2 required signatures of root v2" in out
        dist.ok(
            "trust",
            "sign-root",
            b,
            "--key",
            "tuf-root-bob",
            "-c",
            cfg,
            "--previous",
            rehearsed_ceremony.tuf_root,
        )

        # One custodian's signature is refused.
        refused = dist.airseal("trust", "commit-root", "-c", cfg, a)
        assert refused.returncode == 1
        assert refused.stderr.startswith("error[kit.tuf]: refusing to commit: 2.root.json")
        assert "1 of 2 required signatures of root v1" in refused.stderr
        assert not (tmp_path / "repo" / "metadata" / "2.root.json").exists()

        merged = tmp_path / "2.merged.json"
        out = dist.ok(
            "trust",
            "merge-signatures",
            a,
            b,
            "-o",
            merged,
            "--previous",
            rehearsed_ceremony.tuf_root,
        )
        assert "2 of 2 required signatures of root v1, 2 of 2 required signatures of root v2" in out
        dist.ok("trust", "commit-root", "-c", cfg, merged)
        dist.ok("trust", "publish", "-c", cfg, web)
        assert (web / "metadata" / "2.root.json").read_bytes() == merged.read_bytes()

        # A v3 signed by one custodian only, published anyway (on another mirror).
        lone = tmp_path / "3.lone.json"
        dist.ok("trust", "rotate-root", "-c", cfg, "-o", lone)
        dist.ok("trust", "sign-root", lone, "--key", "tuf-root-bob", "-c", cfg)
        assert dist.airseal("trust", "commit-root", "-c", cfg, lone).returncode == 1
        bad_web = tmp_path / "bad-web"
        shutil.copytree(web, bad_web)
        shutil.copy(lone, bad_web / "metadata" / "3.root.json")
        with static_server(bad_web) as bad_url:
            result = dist.airseal(
                "trust",
                "update",
                "--mirror",
                bad_url,
                "--root",
                rehearsed_ceremony.tuf_root,
                "--cache",
                tmp_path / "bad-cache",
                "-o",
                tmp_path / "bad.json",
            )
            assert result.returncode == 1
            assert result.stderr.startswith("error[kit.tuf]:")
            with pytest.raises(UnsignedMetadataError):
                _python_tuf(bad_url, dist.root, tmp_path / "bad-python")
            if _run_tuf_js_here():
                js = _tuf_js(
                    bad_url,
                    rehearsed_ceremony.tuf_root,
                    tmp_path / "bad-js",
                    tmp_path / "bad-js.json",
                )
                assert js["ok"] is False
                assert "signed by 1/2 keys" in js["message"], js

        # v3: bob, dave, erin and a new online key; signed by bob (token) and dave (file).
        v3 = tmp_path / "3.root.json"
        dist.ok(
            "trust",
            "rotate-root",
            "-c",
            cfg,
            "-o",
            v3,
            "--new-keys",
            f"tuf-root-bob,file:{tmp_path / 'dave.pem'}",
            "--new-keys",
            tmp_path / "erin.pub.pem",
            "--online-keys",
            tmp_path / "online2.pub.pem",
        )
        bob3, dave3 = tmp_path / "3.bob.json", tmp_path / "3.dave.json"
        dist.ok("trust", "sign-root", v3, "--key", "tuf-root-bob", "-c", cfg, "-o", bob3)
        dist.ok("trust", "sign-root", v3, "--key", f"file:{tmp_path / 'dave.pem'}", "-o", dave3)
        dist.ok(
            "trust",
            "merge-signatures",
            bob3,
            dave3,
            "-o",
            v3,
            "--previous",
            tmp_path / "repo" / "metadata" / "2.root.json",
        )
        dist.ok("trust", "commit-root", "-c", cfg, v3)
        # A new trusted root (other bytes, same content) rides along.
        newer = json.dumps(rehearsed_ceremony.trusted_root_json(), indent=1).encode() + b"\n"
        (tmp_path / "trusted_root.json").write_bytes(newer)
        dist.ok("trust", "add-target", "-c", cfg, tmp_path / "trusted_root.json")
        dist.ok("trust", "publish", "-c", cfg, web)
        status = json.loads(dist.ok("trust", "status", "-c", cfg, "--json"))
        assert {r["role"]: r["version"] for r in status["roles"]}["root"] == 3

        # Every client walks v1 -> v3 from the ceremony's root.
        fresh = dist.airseal(
            "trust",
            "update",
            "--mirror",
            url,
            "--root-sha256",
            dist.root_sha256,
            "--cache",
            tmp_path / "fresh",
            "-o",
            tmp_path / "t1.json",
            "--json",
        )
        assert fresh.returncode == 0, fresh.stderr
        roles = {r["role"]: r["version"] for r in json.loads(fresh.stdout)["roles"]}
        assert roles["root"] == 3
        assert (tmp_path / "t1.json").read_bytes() == newer
        dist.ok(
            "trust",
            "update",
            "--mirror",
            url,
            "--root",
            rehearsed_ceremony.tuf_root,
            "--cache",
            follower,
            "-o",
            tmp_path / "t2.json",
        )
        assert (tmp_path / "t2.json").read_bytes() == newer
        assert _python_tuf(url, dist.root, tmp_path / "python") == newer
        if _run_tuf_js_here():
            js = _tuf_js(url, rehearsed_ceremony.tuf_root, tmp_path / "js", tmp_path / "t3.json")
            assert js["ok"] is True
            assert (tmp_path / "t3.json").read_bytes() == newer
