"""``airseal serve ct``: the RFC 6962 CT log (precertificates only) on its own log engine.

Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli._errors import reporting
from toolkit.errors import EnvironmentSetupError, UsageError

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

    from toolkit.services._http import Service
    from toolkit.services.config import ConfigFile
    from toolkit.services.ct.log import CTLog

__all__ = ["add_command", "ct_service"]

#: Files of the CT log's data directory.
IDENTITY_FILE = "ct.json"
DATABASE_FILE = "ct.db"
TILES_DIR = "tiles"


def add_command(services: typer.Typer) -> None:
    """Add ``serve ct`` to the ``serve`` group."""

    @services.command("ct")
    def serve_ct(
        config: Annotated[
            Path,
            typer.Option("--config", help="Services config file (its instance and ct tables)."),
        ],
    ) -> None:
        """Run the CT log: RFC 6962 add-pre-chain and get-sth, C2SP tiles of its entries.

        Refuses (exit 2) a data directory that belongs to another origin or key.
        """
        with reporting():
            _run_ct(config)


def _read_identity(path: Path) -> dict[str, str] | None:
    from toolkit.cli._serve_log import read_identity_file

    document = read_identity_file(path, "CT log")
    if document is None:
        return None
    return {"origin": document["origin"], "keyId": document["keyId"]}


def _run_ct(config_path: Path) -> None:
    import contextlib
    import logging

    import uvloop

    from toolkit.services._http import serve
    from toolkit.services.config import ConfigFile
    from toolkit.services.log.storage import StorageError

    file = ConfigFile.load(config_path)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as stack:
        service, _ = ct_service(file, stack, echo=typer.echo)
        try:
            uvloop.run(serve([service], echo=typer.echo))
        except StorageError as exc:
            raise EnvironmentSetupError(f"the CT log's storage failed: {exc}") from None


def ct_service(
    file: "ConfigFile",
    stack: "contextlib.ExitStack",
    *,
    echo: "Callable[[str], None]" = typer.echo,
) -> "tuple[Service, CTLog]":
    """Build the CT log service of ``file``'s ``[ct]`` table (socket bound, not started).

    Everything to release (storage, socket) is pushed on ``stack``; the
    returned :class:`~toolkit.services._http.Service` starts and stops the
    log's engine.

    Raises:
        UsageError: A key of the wrong kind, or a data directory of another log.
        EnvironmentSetupError: The data directory or storage is unusable.
    """
    from toolkit._fs import write_durably
    from toolkit.encoding import b64encode
    from toolkit.services._http import Service, bind, listen_address
    from toolkit.services.ct.app import create_app
    from toolkit.services.ct.config import CTConfig
    from toolkit.services.ct.log import CTLog
    from toolkit.services.log.sqlite import FileTileStore, SQLiteCoordinator
    from toolkit.services.log.storage import LogIdentity, StorageError
    from toolkit.signing import Scheme, spki_der

    config = CTConfig.from_file(file)
    host, port = listen_address(config.listen, option="ct.listen")
    signer = file.open_key(config.key)
    if signer.scheme is not Scheme.ECDSA_P256_SHA256:
        raise UsageError(
            f"the CT key must be ECDSA P-256, not {signer.scheme.value}",
            hint="ct.key names the ceremony's ctlog key",
        )
    origin = config.resolve_origin(spki_der(signer.public_key))
    roots = config.load_roots()
    data = config.data.absolute()
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot use data directory {str(data)!r}: {exc.strerror or exc}"
        ) from None
    stored = _read_identity(data / IDENTITY_FILE)
    if stored is not None:
        if stored["origin"] != origin:
            raise UsageError(
                f"data directory {str(data)!r} belongs to the CT log {stored['origin']!r}, "
                f"not {origin!r}"
            )
        if stored["keyId"] != signer.key_id:
            raise UsageError(
                f"data directory {str(data)!r} belongs to the CT key {stored['keyId'][:16]}…, "
                f"not {signer.key_id[:16]}…"
            )
    try:
        coordinator = SQLiteCoordinator(data / DATABASE_FILE)
    except StorageError as exc:
        raise EnvironmentSetupError(f"cannot open the CT log's storage: {exc}") from None
    stack.callback(coordinator.close)
    try:
        store = FileTileStore(data / TILES_DIR)
    except StorageError as exc:
        raise EnvironmentSetupError(f"cannot open the CT log's tiles: {exc}") from None
    # Closed before the coordinator (the stack unwinds in reverse).
    stack.callback(store.close)
    try:
        coordinator.claim(LogIdentity(origin, signer.key_id))
    except StorageError as exc:
        raise UsageError(f"the CT log's storage belongs to another log: {exc}") from None
    if stored is None:
        write_durably(
            data / IDENTITY_FILE,
            json.dumps({"origin": origin, "keyId": signer.key_id}).encode() + b"\n",
            0o644,
        )
    ctlog = CTLog(
        coordinator,
        store,
        signer,
        origin,
        roots,
        batch_size=config.batch_size,
        max_wait=config.max_wait,
    )
    app = create_app(ctlog)
    sock = bind(host, port)
    stack.callback(sock.close)
    echo(f"log id {b64encode(ctlog.log_id)}")
    service = Service(f"ct {origin}", app, sock, start=ctlog.start, stop=ctlog.stop)
    return service, ctlog
