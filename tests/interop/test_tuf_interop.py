"""Differential: airseal, python-tuf and tuf-js agree on what an airseal repository proves.

The repository is made with software keys at chosen times, so that the real
clock of the reference clients sees it fresh, frozen (expired timestamp) or
rolled back; each client must accept or reject the same trees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tuf.api.exceptions import BadVersionNumberError, ExpiredMetadataError
from tuf.ngclient import Updater

from tests.integration.test_trust import JS_SCRIPT, require_tuf_js, static_server
from tests.unit.toolkit.trust._trust_helpers import Keys, new_repo, trusted_root_bytes
from toolkit.errors import Check, VerificationError
from toolkit.trust.repository import Repository
from toolkit.trust.updater import update

pytestmark = pytest.mark.interop


def _python_tuf(url: str, root: bytes, state: Path) -> bytes:
    state.mkdir(parents=True, exist_ok=True)
    updater = Updater(str(state), f"{url}/metadata/", str(state), f"{url}/targets/", bootstrap=root)
    updater.refresh()
    info = updater.get_targetinfo("trusted_root.json")
    assert info is not None
    return Path(updater.download_target(info)).read_bytes()


def _tuf_js(url: str, root: Path, state: Path) -> dict[str, Any]:
    node = require_tuf_js()
    result = subprocess.run(
        [node, str(JS_SCRIPT), url, str(root), str(state), str(state / "out.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    document: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


def _airseal(url: str, root: bytes, state: Path) -> Check | None:
    try:
        update(url, root=root, cache_dir=state)
    except VerificationError as exc:
        return exc.check
    return None


def _repo(tmp_path: Path, created: datetime) -> tuple[Repository, bytes, Path]:
    repo, root = new_repo(tmp_path / "repo", Keys(), now=created)
    (tmp_path / "1.root.json").write_bytes(root)
    return repo, root, tmp_path / "1.root.json"


def test_fresh_repository_is_accepted_by_all(tmp_path: Path) -> None:
    repo, root, root_file = _repo(tmp_path, datetime.now(UTC) - timedelta(minutes=1))
    repo.publish(tmp_path / "web")
    with static_server(tmp_path / "web") as url:
        assert _airseal(url, root, tmp_path / "a") is None
        assert _python_tuf(url, root, tmp_path / "p") == trusted_root_bytes()
        assert _tuf_js(url, root_file, tmp_path / "j")["ok"] is True
        assert (tmp_path / "j" / "out.json").read_bytes() == trusted_root_bytes()


def test_frozen_repository_is_rejected_by_all(tmp_path: Path) -> None:
    # Signed three days ago: the one-day timestamp expired two days ago.
    repo, root, root_file = _repo(tmp_path, datetime.now(UTC) - timedelta(days=3))
    repo.publish(tmp_path / "web")
    with static_server(tmp_path / "web") as url:
        assert _airseal(url, root, tmp_path / "a") is Check.KIT_EXPIRED
        with pytest.raises(ExpiredMetadataError):
            _python_tuf(url, root, tmp_path / "p")
        js = _tuf_js(url, root_file, tmp_path / "j")
        assert js["ok"] is False and "expired" in js["message"].lower(), js
        # The offline channel of the same repository is still fresh.
        assert _airseal(f"{url}/offline", root, tmp_path / "o") is None
        assert _tuf_js(f"{url}/offline", root_file, tmp_path / "jo")["ok"] is True


def test_rollback_is_rejected_by_all(tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    repo, root, root_file = _repo(tmp_path, start)
    repo.publish(tmp_path / "old")
    repo.refresh(start + timedelta(minutes=5), force=True)
    repo.publish(tmp_path / "new")
    with static_server(tmp_path / "new") as new_url:
        assert _airseal(new_url, root, tmp_path / "a") is None
        _python_tuf(new_url, root, tmp_path / "p")
        assert _tuf_js(new_url, root_file, tmp_path / "j")["ok"] is True
    with static_server(tmp_path / "old") as old_url:
        assert _airseal(old_url, root, tmp_path / "a") is Check.KIT_ROLLBACK
        with pytest.raises(BadVersionNumberError):
            _python_tuf(old_url, root, tmp_path / "p")
        js = _tuf_js(old_url, root_file, tmp_path / "j")
        assert js["ok"] is False and "version" in js["message"].lower(), js
    shutil.rmtree(tmp_path / "repo")
