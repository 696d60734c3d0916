"""``airseal serve tsa``: the RFC 3161 timestamp authority.

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

__all__ = ["add_command", "tsa_service"]


def add_command(services: typer.Typer) -> None:
    """Add ``serve tsa`` to the ``serve`` group."""

    @services.command("tsa")
    def serve_tsa(
        config: Annotated[
            Path,
            typer.Option("--config", help=r"Services config file; its \[tsa] table is read."),
        ],
    ) -> None:
        r"""Run an RFC 3161 timestamp authority (POST /api/v1/timestamp).

        The \[tsa] table names the key (a keys.toml name or a pkcs11:/file: URI),
        the chain file (TSA certificate first, root last), the listen address,
        the policy OID and the accuracy. The key and chain are checked against
        each other, and one self-test token is verified, before the server starts.
        """
        with reporting():
            _run_tsa(config)


def _run_tsa(path: Path) -> None:
    import contextlib
    import logging

    import uvloop

    from toolkit.services._http import serve
    from toolkit.services.config import ConfigFile

    file = ConfigFile.load(path)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as stack:
        service = tsa_service(file, stack)
        uvloop.run(serve([service], echo=typer.echo))


def tsa_service(file: "ConfigFile", stack: "contextlib.ExitStack") -> "Service":
    """Build the TSA service of ``file``'s ``[tsa]`` table (key opened, socket bound).

    The socket's closing is pushed on ``stack``.

    Raises:
        UsageError: No ``[tsa]`` table, or a chain that does not fit the key.
        FormatError: A malformed table or chain file.
        HSMError: The key's token problems.
    """
    from toolkit.services._http import Service, bind, listen_address
    from toolkit.services.tsa.app import create_app
    from toolkit.services.tsa.config import TsaConfig

    settings = TsaConfig.from_table(file.require_section("tsa"), file)
    host, port = listen_address(settings.listen, option="tsa.listen")
    tsa = settings.open(file)
    app = create_app(tsa)
    sock = bind(host, port)
    stack.callback(sock.close)
    return Service("tsa", app, sock)
