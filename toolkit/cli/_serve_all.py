"""``airseal serve all``: every service of one config file in one process.

Runs, on one event loop, each service whose table the file has: the
DEVELOPMENT-ONLY OIDC issuer (``[oidc_dev]``), the CA (``[ca]``), the CT log
(``[ct]``), the transparency log (``[log]``), the TSA (``[tsa]``) and a
static mirror of the published TUF repository (``[tuf_static]``). When the
CA and the CT log run together, the CA asks the CT log in-process
(:class:`~toolkit.services.ct.client.LocalCTClient`) instead of over HTTP.
One ready line is printed per service; SIGTERM stops them all and flushes
both logs' engines.

Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli._errors import reporting

if TYPE_CHECKING:
    import contextlib

    from toolkit.services._http import Service
    from toolkit.services.config import ConfigFile

__all__ = ["add_command", "build_services"]

#: The tables ``serve all`` knows, in start (and ready line) order.
TABLES = ("oidc_dev", "ca", "ct", "log", "tsa", "tuf_static")


def add_command(services: typer.Typer) -> None:
    """Add ``serve all`` to the ``serve`` group."""

    @services.command("all")
    def serve_all(
        config: Annotated[
            Path,
            typer.Option(
                "--config",
                help="Services config file (e.g. DIR/instance.toml from `airseal init`).",
            ),
        ],
    ) -> None:
        r"""Run every service the config has a table for, in one process.

        oidc-dev (development only, when \[oidc_dev] is present), ca, ct, log,
        tsa and the TUF repository mirror (\[tuf_static]). Prints one
        `<name> listening on http://HOST:PORT` line per service and stops
        cleanly on SIGTERM.
        """
        with reporting():
            _run_all(config)


def build_services(file: "ConfigFile", stack: "contextlib.ExitStack") -> "list[Service]":
    """Build every service ``file`` has a table for (sockets bound, nothing started).

    Raises:
        UsageError: The file has none of the services' tables.
    """
    from toolkit.cli._serve_ca import ca_service
    from toolkit.cli._serve_ct import ct_service
    from toolkit.cli._serve_log import LogSettings, log_service
    from toolkit.cli._serve_oidc_dev import oidc_dev_service
    from toolkit.cli._serve_tsa import tsa_service
    from toolkit.errors import UsageError
    from toolkit.instance import TufStaticConfig, static_app
    from toolkit.services._http import Service, bind, listen_address
    from toolkit.services.ct.client import LocalCTClient

    present = {name for name in TABLES if file.section(name) is not None}
    if not present:
        raise UsageError(
            f"{file.name} has none of the tables {', '.join(f'[{t}]' for t in TABLES)}",
            hint="write one with `airseal init DIR`",
        )
    built: dict[str, Service] = {}
    if "oidc_dev" in present:
        built["oidc_dev"] = oidc_dev_service(file, stack)
    ct_client = None
    if "ct" in present:
        built["ct"], ctlog = ct_service(file, stack)
        ct_client = LocalCTClient(ctlog)
    if "ca" in present:
        built["ca"] = ca_service(file, stack, ct=ct_client)
    if "log" in present:
        built["log"], _ = log_service(LogSettings.from_file(file), stack)
    if "tsa" in present:
        built["tsa"] = tsa_service(file, stack)
    static = TufStaticConfig.from_file(file)
    if static is not None:
        app = static_app(static.directory)
        sock = bind(*listen_address(static.listen, option="tuf_static.listen"))
        stack.callback(sock.close)
        built["tuf_static"] = Service("tuf", app, sock)
    return [built[name] for name in TABLES if name in built]


def _run_all(config_path: Path) -> None:
    import contextlib
    import logging

    import uvloop

    from toolkit.errors import EnvironmentSetupError
    from toolkit.services._http import serve
    from toolkit.services.config import ConfigFile
    from toolkit.services.log.storage import StorageError

    file = ConfigFile.load(config_path)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as stack:
        services = build_services(file, stack)
        try:
            uvloop.run(serve(services, echo=typer.echo))
        except StorageError as exc:
            raise EnvironmentSetupError(f"a log's storage failed: {exc}") from None
