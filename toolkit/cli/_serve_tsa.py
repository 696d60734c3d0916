"""``airseal serve tsa``: the RFC 3161 timestamp authority.

Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._errors import reporting

__all__ = ["add_command"]


def add_command(services: typer.Typer) -> None:
    """Add ``serve tsa`` to the ``serve`` group."""

    @services.command("tsa")
    def serve_tsa(
        config: Annotated[
            Path,
            typer.Option("--config", help="Services config file; its [tsa] table is read."),
        ],
    ) -> None:
        """Run an RFC 3161 timestamp authority (POST /api/v1/timestamp).

        The [tsa] table names the key (a keys.toml name or a pkcs11:/file: URI),
        the chain file (TSA certificate first, root last), the listen address,
        the policy OID and the accuracy. The key and chain are checked against
        each other, and one self-test token is verified, before the server starts.
        """
        with reporting():
            _run_tsa(config)


def _run_tsa(path: Path) -> None:
    import logging

    import uvloop

    from toolkit.services._http import Service, bind, listen_address, serve
    from toolkit.services.tsa.app import create_app
    from toolkit.services.tsa.config import TsaConfig

    config, settings = TsaConfig.load(path)
    host, port = listen_address(settings.listen, option="tsa.listen")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tsa = settings.open(config)
    app = create_app(tsa)
    sock = bind(host, port)
    try:
        uvloop.run(serve([Service("tsa", app, sock)], echo=typer.echo))
    finally:
        sock.close()
