"""Directory and in-memory fetchers: 404 for every absent file."""

from __future__ import annotations

from pathlib import Path

import pytest
from tuf.api.exceptions import DownloadHTTPError

from toolkit.errors import UsageError
from toolkit.trust._fetchers import (
    DirectoryFetcher,
    MemoryFetcher,
    directory_urls,
    memory_urls,
    open_mirror,
)


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "tree" / "metadata").mkdir(parents=True)
    (tmp_path / "tree" / "targets").mkdir()
    (tmp_path / "tree" / "metadata" / "1.root.json").write_bytes(b"root")
    (tmp_path / "secret.txt").write_bytes(b"outside")
    return tmp_path / "tree"


def test_directory_fetcher_serves_files(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    md_url, tg_url = directory_urls(tree)
    fetcher = DirectoryFetcher(tree)
    assert fetcher.download_bytes(md_url + "1.root.json", 100) == b"root"
    assert tg_url.endswith("/targets/")


@pytest.mark.parametrize(
    "name", ["2.root.json", "", "../../secret.txt", "%2E%2E/%2E%2E/secret.txt", "../metadata"]
)
def test_directory_fetcher_answers_404(tmp_path: Path, name: str) -> None:
    tree = _tree(tmp_path)
    md_url, _ = directory_urls(tree)
    with pytest.raises(DownloadHTTPError) as info:
        DirectoryFetcher(tree).download_bytes(md_url + name, 100)
    assert info.value.status_code == 404


def test_directory_fetcher_refuses_symlinks_out(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "metadata" / "2.root.json").symlink_to(tmp_path / "secret.txt")
    md_url, _ = directory_urls(tree)
    with pytest.raises(DownloadHTTPError):
        DirectoryFetcher(tree).download_bytes(md_url + "2.root.json", 100)


def test_directory_fetcher_ignores_other_schemes(tmp_path: Path) -> None:
    with pytest.raises(DownloadHTTPError):
        DirectoryFetcher(_tree(tmp_path)).download_bytes("http://example.org/1.root.json", 10)


def test_memory_fetcher() -> None:
    md_url, _ = memory_urls()
    fetcher = MemoryFetcher({"metadata/1.root.json": b"x" * 200_000})
    assert len(fetcher.download_bytes(md_url + "1.root.json", 300_000)) == 200_000
    with pytest.raises(DownloadHTTPError) as info:
        fetcher.download_bytes(md_url + "2.root.json", 10)
    assert info.value.status_code == 404
    with pytest.raises(DownloadHTTPError):
        fetcher.download_bytes("memory://other/metadata/1.root.json", 10)
    with pytest.raises(UsageError):
        MemoryFetcher({}, "memory://no-slash")


def test_open_mirror(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    fetcher, md_url, _ = open_mirror(str(tree))
    assert isinstance(fetcher, DirectoryFetcher)
    assert fetcher.download_bytes(md_url + "1.root.json", 10) == b"root"
    fetcher, md_url, _ = open_mirror(tree.as_uri())
    assert isinstance(fetcher, DirectoryFetcher)
    _, md_url, tg_url = open_mirror("http://127.0.0.1:9/repo/")
    assert (md_url, tg_url) == (
        "http://127.0.0.1:9/repo/metadata/",
        "http://127.0.0.1:9/repo/targets/",
    )
    with pytest.raises(UsageError, match="scheme"):
        open_mirror("ftp://example.org/")
    with pytest.raises(UsageError, match="does not exist"):
        open_mirror(str(tmp_path / "absent"))
