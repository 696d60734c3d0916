"""``airseal serve log``: the transparency log (Rekor v2 API on C2SP tiles).

Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolkit._fs import write_durably
from toolkit.cli._errors import reporting
from toolkit.errors import EnvironmentSetupError, UsageError

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

    from toolkit.services._http import Service
    from toolkit.services.config import ConfigFile
    from toolkit.services.log.engine import LogEngine
    from toolkit.services.log.storage import Coordinator, TileStore
    from toolkit.signing import Signer

__all__ = ["LogSettings", "add_command", "log_service"]

#: Defaults of the ``[log]`` table.
DEFAULT_LISTEN = "127.0.0.1:3003"
DEFAULT_DATA = "data/log"

#: Files of a log's data directory.
KEY_FILE = "log-key.pem"
IDENTITY_FILE = "log.json"
DATABASE_FILE = "log.db"
TILES_DIR = "tiles"

#: Log modes, as ``log.json`` records them: a Rekor v2 log, or a v1-style log
#: (hashedrekord 0.0.1 entries with integratedTime and a SET).
MODE_V1 = "v1"
MODE_V2 = "v2"
#: The hashedrekord version each mode records (what the first entry tells).
_MODE_API_VERSION = {MODE_V1: "0.0.1", MODE_V2: "0.0.2"}


def add_command(services: typer.Typer) -> None:
    """Add ``serve log`` to the ``serve`` group."""

    @services.command("log")
    def serve_log(
        data: Annotated[
            Path | None, typer.Option("--data", help="Data directory (key, database and tiles).")
        ] = None,
        listen: Annotated[
            str | None,
            typer.Option("--listen", help="HOST:PORT to listen on, e.g. 127.0.0.1:3000."),
        ] = None,
        origin: Annotated[
            str | None,
            typer.Option(
                "--origin", help="Checkpoint origin: host of the log's URL (first start only)."
            ),
        ] = None,
        key: Annotated[
            str | None,
            typer.Option(
                "--key", help="Log key URI (pkcs11:… or file:…); default DIR/log-key.pem."
            ),
        ] = None,
        postgres: Annotated[
            str | None,
            typer.Option("--postgres", help="PostgreSQL DSN: keep entries and tiles there."),
        ] = None,
        batch_size: Annotated[
            int | None, typer.Option("--batch-size", min=1, help="Most entries per round [1024].")
        ] = None,
        max_wait: Annotated[
            float | None,
            typer.Option(
                "--max-wait", min=0.0, max=60.0, help="Longest wait for a round, seconds [0.25]."
            ),
        ] = None,
        v1: Annotated[
            bool,
            typer.Option(
                "--v1",
                help="Rekor v1-style log: hashedrekord 0.0.1 entries with integratedTime "
                "and a SET (ECDSA P-256 key). Fixed when the log is created.",
            ),
        ] = False,
        config: Annotated[
            Path | None,
            typer.Option(
                "--config",
                help="Services config file: read its \\[log] table (the flags above override it).",
            ),
        ] = None,
    ) -> None:
        """Run a transparency log (Rekor v2 API, C2SP tiles).

        On the first start with an empty data directory and no --key, a software
        Ed25519 key is generated as DIR/log-key.pem and its verifier key printed.
        Refuses (exit 2) a data directory that belongs to another origin or key,
        or to a log of the other mode (--v1 or not).
        """
        with reporting():
            if config is not None:
                from toolkit.services.config import ConfigFile

                file = ConfigFile.load(config)
                settings = LogSettings.from_file(file)
                settings = settings.override(
                    data=data,
                    listen=listen,
                    origin=origin,
                    key=key,
                    postgres=postgres,
                    batch_size=batch_size,
                    max_wait=max_wait,
                    v1=v1 or None,
                )
            else:
                if data is None or listen is None:
                    raise UsageError(
                        "give --data and --listen, or --config with a [log] table",
                        hint="e.g. airseal serve log --data log-data --listen 127.0.0.1:3003",
                    )
                settings = LogSettings(
                    data=data,
                    listen=listen,
                    origin=origin,
                    key=key,
                    postgres=postgres,
                    batch_size=1024 if batch_size is None else batch_size,
                    max_wait=0.25 if max_wait is None else max_wait,
                    v1=v1,
                )
            _run_log(settings)


@dataclass(frozen=True)
class LogSettings:
    """How to run one transparency log: the flags of ``serve log``, or a ``[log]`` table.

    ::

        [log]
        listen = "127.0.0.1:3003"        # default
        data = "data/log"                # default; relative to the config file
        origin = "tlog.example.org"      # required on the first start
        key = "tlog"                     # keys.toml name or pkcs11:/file: URI
                                         # (default: DATA/log-key.pem, generated)
        batch_size = 1024
        max_wait = 0.25                  # seconds
        v1 = false

    Attributes:
        data: The data directory.
        listen: ``HOST:PORT``.
        origin: The checkpoint origin (None: the one recorded in ``data``).
        key: The key URI (None: ``data/log-key.pem``).
        postgres: A PostgreSQL DSN (flag only: a DSN may carry a password).
        batch_size: Most entries per round.
        max_wait: Longest wait for a round, seconds.
        v1: A Rekor v1-style log.
        config: The config file the settings came from; it opens ``key``
            (PKCS#11 keys use the module of its ``keys.toml``).
    """

    data: Path
    listen: str
    origin: str | None = None
    key: str | None = None
    postgres: str | None = None
    batch_size: int = 1024
    max_wait: float = 0.25
    v1: bool = False
    config: "ConfigFile | None" = None

    @classmethod
    def from_file(cls, file: "ConfigFile") -> "LogSettings":
        """Read the ``[log]`` table strictly.

        Raises:
            UsageError: The file has no ``[log]`` table.
            FormatError: A mistyped or unknown key (by dotted path).
        """
        from toolkit.services._http import listen_address

        table = file.require_section("log")
        listen = table.text("listen", DEFAULT_LISTEN)
        try:
            listen_address(listen, option="listen")
        except UsageError as exc:
            raise table.error("listen", exc.message, hint=exc.hint) from None
        data = table.path_value("data", DEFAULT_DATA)
        origin = table.text("origin", None)
        if origin is not None and ("/" in origin or any(c.isspace() for c in origin)):
            raise table.error("origin", "must be a host name (the log URL's host), not a URL")
        key = file.key_uri(table, "key", None)
        batch_size = table.integer("batch_size", 1024, minimum=1, maximum=100_000)
        max_wait = table.number("max_wait", 0.25, minimum=0.0, maximum=60.0)
        v1 = table.flag("v1", False)
        table.done()
        return cls(
            data=data,
            listen=listen,
            origin=origin,
            key=key,
            batch_size=batch_size,
            max_wait=max_wait,
            v1=v1,
            config=file,
        )

    def override(self, **values: Any) -> "LogSettings":
        """A copy with every value that is not None replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def open_key(self, uri: str) -> "Signer":
        """Open ``uri`` (through the config file when there is one)."""
        if self.config is not None:
            return self.config.open_key(uri)
        from toolkit.signing import load_signer

        return load_signer(uri)


def read_identity_file(path: Path, what: str) -> dict[str, Any] | None:
    """A log identity file (``log.json``): its document, or None when there is none.

    It records which origin and key a data directory belongs to, so that a
    restart with another origin or key is refused; the transparency log and
    the CT log both keep one.

    Raises:
        EnvironmentSetupError: Unreadable, or no string ``origin`` and ``keyId``.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EnvironmentSetupError(f"cannot read {path}: {exc}") from None
    if not (
        isinstance(document, dict)
        and isinstance(document.get("origin"), str)
        and isinstance(document.get("keyId"), str)
    ):
        raise EnvironmentSetupError(f"{path} is not a {what} identity file")
    return document


def _read_identity(data: Path) -> dict[str, str] | None:
    """``log.json``: the log's origin, key id and mode (None for a new log)."""
    path = data / IDENTITY_FILE
    document = read_identity_file(path, "log")
    if document is None:
        return None
    # Identity files written before the mode was recorded belong to logs
    # whose entries are all hashedrekord 0.0.2, whatever flags they ran with.
    mode = document.get("mode", MODE_V2)
    if mode not in _MODE_API_VERSION:
        raise EnvironmentSetupError(f"{path} names an unknown log mode {str(mode)[:20]!r}")
    return {"origin": document["origin"], "keyId": document["keyId"], "mode": mode}


def _mode_name(mode: str) -> str:
    if mode == MODE_V1:
        return "a v1 log (hashedrekord 0.0.1 entries with SETs)"
    return "a v2 log (hashedrekord 0.0.2 entries)"


def _check_mode(data: Path, stored: dict[str, str] | None, mode: str) -> None:
    """Refuse to run a log in the other mode: one log never mixes entry versions."""
    if stored is not None and stored["mode"] != mode:
        flag = "with" if stored["mode"] == MODE_V1 else "without"
        raise UsageError(
            f"data directory {str(data)!r} holds {_mode_name(stored['mode'])}; start it {flag} --v1"
        )


def _check_recorded_mode(coordinator: "Coordinator", mode: str) -> None:
    """Refuse a log whose first entry is of the other mode.

    ``log.json`` is per data directory; the entries themselves also cover
    front-ends that share one PostgreSQL log from different directories, and
    a lost ``log.json``. Checked before ``log.json`` is (re)written, so that a
    refused start records nothing.
    """
    if coordinator.size() == 0:
        return
    try:
        version = json.loads(coordinator.bodies(0, 1)[0]).get("apiVersion")
    except (ValueError, IndexError, AttributeError):
        # Not a hashedrekord log of either mode: nothing to compare.
        return
    for recorded, api_version in _MODE_API_VERSION.items():
        if version == api_version and recorded != mode:
            flag = "with" if recorded == MODE_V1 else "without"
            raise UsageError(
                f"the log's storage holds {_mode_name(recorded)}; start it {flag} --v1"
            )


def _log_origin(data: Path, origin: str | None, stored: dict[str, str] | None) -> str:
    if stored is not None:
        if origin is not None and origin != stored["origin"]:
            raise UsageError(
                f"data directory {str(data)!r} belongs to the log {stored['origin']!r}, "
                f"not {origin!r}"
            )
        return stored["origin"]
    if origin is None:
        raise UsageError(
            "--origin is required on the first start of a log",
            hint="the origin is the host of the log's base URL, e.g. --origin log.example.org",
        )
    return origin


def _log_signer(settings: LogSettings, data: Path, empty: bool) -> tuple["Signer", bool]:
    """The log key, and whether it was just generated."""
    from toolkit.signing import KeyAlgorithm, SoftwareSigner

    key, v1 = settings.key, settings.v1
    if key is not None:
        return settings.open_key(key), False
    path = data / KEY_FILE
    if path.exists():
        return SoftwareSigner.from_file(path), False
    if not empty:
        raise UsageError(
            f"data directory {str(data)!r} holds a log but no {KEY_FILE}",
            hint="give the log's key with --key",
        )
    # Rekor v2 logs sign checkpoints with Ed25519; a v1-style log signs SETs
    # with ECDSA P-256, and its checkpoints with the same key.
    signer = SoftwareSigner.generate(KeyAlgorithm.ECDSA_P256 if v1 else KeyAlgorithm.ED25519)
    try:
        # Mode 0o600 from creation: the private key is never readable by others.
        write_durably(path, signer.to_pem(), 0o600)
    except OSError as exc:
        raise EnvironmentSetupError(f"cannot write {path}: {exc.strerror or exc}") from None
    return signer, True


def _open_storage(data: Path, postgres: str | None) -> tuple["Coordinator", "TileStore"]:
    from toolkit.services.log.storage import StorageError

    try:
        if postgres is not None:
            from toolkit.services.log.postgres import PostgresCoordinator, PostgresTileStore

            coordinator: Coordinator = PostgresCoordinator(postgres)
            try:
                return coordinator, PostgresTileStore(postgres)
            except BaseException:
                coordinator.close()
                raise
        from toolkit.services.log.sqlite import FileTileStore, SQLiteCoordinator

        coordinator = SQLiteCoordinator(data / DATABASE_FILE)
        try:
            return coordinator, FileTileStore(data / TILES_DIR)
        except BaseException:
            coordinator.close()
            raise
    except StorageError as exc:
        raise EnvironmentSetupError(f"cannot open the log's storage: {exc}") from None


def _run_log(settings: LogSettings) -> None:
    import contextlib
    import logging

    import uvloop

    from toolkit.services._http import serve
    from toolkit.services.log.storage import StorageError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as stack:
        service, _ = log_service(settings, stack, echo=typer.echo)
        try:
            uvloop.run(serve([service], echo=typer.echo))
        except StorageError as exc:
            raise EnvironmentSetupError(f"the log's storage failed: {exc}") from None


def log_service(
    settings: LogSettings,
    stack: "contextlib.ExitStack",
    *,
    echo: "Callable[[str], None]" = typer.echo,
) -> "tuple[Service, LogEngine]":
    """Build one transparency log (storage opened, socket bound, engine not started).

    Storage and socket closings are pushed on ``stack``; the returned
    service's start and stop hooks start and flush the engine.

    Raises:
        UsageError: A data directory or storage of another log, origin, key or mode.
        EnvironmentSetupError: The data directory or storage is unusable.
    """
    from toolkit.services._http import Service, bind, listen_address
    from toolkit.services.log.app import create_app
    from toolkit.services.log.engine import LogEngine
    from toolkit.services.log.storage import LogIdentity, StorageError

    host, port = listen_address(settings.listen)
    data = settings.data.absolute()
    v1 = settings.v1
    try:
        data.mkdir(parents=True, exist_ok=True)
        empty = not any(data.iterdir())
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot use data directory {str(data)!r}: {exc.strerror or exc}"
        ) from None
    stored = _read_identity(data)
    origin = _log_origin(data, settings.origin, stored)
    mode = MODE_V1 if v1 else MODE_V2
    _check_mode(data, stored, mode)
    signer, created = _log_signer(settings, data, empty)
    if stored is not None and stored["keyId"] != signer.key_id:
        raise UsageError(
            f"data directory {str(data)!r} belongs to the log key {stored['keyId'][:16]}…, "
            f"not {signer.key_id[:16]}…"
        )
    coordinator, store = _open_storage(data, settings.postgres)
    stack.callback(coordinator.close)
    # The stack unwinds in reverse: the tile store closes first, as before.
    stack.callback(store.close)
    try:
        coordinator.claim(LogIdentity(origin, signer.key_id))
    except StorageError as exc:
        raise UsageError(f"the log's storage belongs to another log: {exc}") from None
    try:
        _check_recorded_mode(coordinator, mode)
    except StorageError as exc:
        raise EnvironmentSetupError(f"the log's storage failed: {exc}") from None
    if stored is None:
        write_durably(
            data / IDENTITY_FILE,
            json.dumps({"origin": origin, "keyId": signer.key_id, "mode": mode}).encode() + b"\n",
            0o644,
        )
    engine = LogEngine(
        coordinator,
        store,
        signer,
        origin,
        batch_size=settings.batch_size,
        max_wait=settings.max_wait,
        v1_set=v1,
    )
    app = create_app(engine, v1_mode=v1)
    sock = bind(host, port)
    stack.callback(sock.close)
    if created:
        echo(f"created log key {data / KEY_FILE}")
    if engine.vkey is not None:
        echo(f"vkey {engine.vkey}")
    service = Service(f"log {engine.origin}", app, sock, start=engine.start, stop=engine.stop)
    return service, engine
