"""Where python-tuf's ``Updater`` downloads from: HTTP, a directory, or memory.

python-tuf ships only an HTTP fetcher. A TUF client discovers the newest root
by asking for ``N+1.root.json`` until the mirror answers "not found", and it
recognises "not found" only as ``DownloadHTTPError`` with status 404. So the
directory and in-memory fetchers here raise exactly that for every absent
file; any other error would abort the root-version walk.

A mirror (published tree) looks like sigstore's TUF repositories::

    metadata/1.root.json  metadata/2.root.json  metadata/timestamp.json
    metadata/7.snapshot.json  metadata/7.targets.json
    targets/<sha256>.trusted_root.json  targets/<sha256>.signing_config.v0.2.json
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import FetcherInterface

from toolkit.errors import UsageError

__all__ = [
    "METADATA_DIR",
    "TARGETS_DIR",
    "DirectoryFetcher",
    "MemoryFetcher",
    "directory_urls",
    "http_fetcher",
    "memory_urls",
    "open_mirror",
]

#: Sub-directories of a published tree.
METADATA_DIR: Final = "metadata"
TARGETS_DIR: Final = "targets"

#: Bytes per chunk handed to python-tuf (it enforces the length limits itself).
_CHUNK: Final = 1 << 16


def _not_found(url: str) -> DownloadHTTPError:
    return DownloadHTTPError(f"not found: {url}", 404)


class DirectoryFetcher(FetcherInterface):
    """Serves ``file://`` URLs below one directory (a published tree).

    Absent files, directories, and URLs that point outside ``root`` (``..``,
    symlinks leading out) all answer 404, like a static HTTP server would.

    Args:
        root: The published tree.
    """

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    @property
    def root(self) -> Path:
        """The directory files are served from."""
        return self._root

    def _fetch(self, url: str) -> Iterator[bytes]:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise _not_found(url)
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self._root) or not path.is_file():
            raise _not_found(url)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _not_found(url) from None
        return _chunks(data)


class MemoryFetcher(FetcherInterface):
    """Serves ``base_url + name`` from a mapping of names to bytes.

    Args:
        files: Names relative to ``base_url`` (``metadata/2.root.json``) and
            their exact bytes.
        base_url: The URL prefix the ``Updater`` is given (ends with ``/``).
    """

    def __init__(self, files: Mapping[str, bytes], base_url: str = "memory://mirror/") -> None:
        if not base_url.endswith("/"):
            raise UsageError("the base URL of an in-memory mirror must end with '/'")
        self._files = dict(files)
        self._base = base_url

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith(self._base):
            raise _not_found(url)
        data = self._files.get(url[len(self._base) :])
        if data is None:
            raise _not_found(url)
        return _chunks(data)


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), _CHUNK):
        yield data[start : start + _CHUNK]


def directory_urls(root: Path) -> tuple[str, str]:
    """The metadata and targets base URLs of a published tree, for :class:`DirectoryFetcher`."""
    base = root.resolve().as_uri().rstrip("/")
    return f"{base}/{METADATA_DIR}/", f"{base}/{TARGETS_DIR}/"


def memory_urls(base_url: str = "memory://mirror/") -> tuple[str, str]:
    """The metadata and targets base URLs of a :class:`MemoryFetcher` mirror."""
    return f"{base_url}{METADATA_DIR}/", f"{base_url}{TARGETS_DIR}/"


def http_fetcher(timeout: float = 30.0) -> FetcherInterface:
    """python-tuf's HTTP(S) fetcher with a connect/read timeout in seconds."""
    from tuf.ngclient import Urllib3Fetcher

    fetcher = Urllib3Fetcher(app_user_agent="airseal")
    # Urllib3Fetcher takes whole seconds in its signature, but urllib3 is
    # happy with a float.
    fetcher.socket_timeout = timeout  # type: ignore[assignment]
    return fetcher


def open_mirror(mirror: str, *, timeout: float = 30.0) -> tuple[FetcherInterface, str, str]:
    """A fetcher and the metadata/targets base URLs for a mirror.

    Args:
        mirror: An ``http://`` or ``https://`` URL of a published tree, or a
            local directory (a path, or a ``file:`` URL).
        timeout: Seconds per connection and read (HTTP only).

    Raises:
        UsageError: Another URL scheme, or a directory that does not exist.
    """
    scheme = urlsplit(mirror).scheme.lower()
    if scheme in ("http", "https"):
        base = mirror.rstrip("/")
        return http_fetcher(timeout), f"{base}/{METADATA_DIR}/", f"{base}/{TARGETS_DIR}/"
    if scheme == "file":
        parts = urlsplit(mirror)
        path = Path(unquote(parts.path))
    elif len(scheme) > 1:
        raise UsageError(
            f"unsupported mirror URL scheme {scheme!r}",
            hint="give an http(s):// URL or a local directory",
        )
    else:
        path = Path(mirror)
    if not path.is_dir():
        raise UsageError(f"mirror directory {str(path)!r} does not exist")
    metadata_url, targets_url = directory_urls(path)
    return DirectoryFetcher(path), metadata_url, targets_url
