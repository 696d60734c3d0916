"""``airseal serve oidc-dev``: the DEVELOPMENT-ONLY OIDC issuer.

It signs a token for any identity anyone asks for, so it refuses to listen on
anything but loopback unless ``allow_non_loopback = true`` or
``--allow-non-loopback`` forces it, and prints a warning line at start.

Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli._errors import reporting

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

    from toolkit.services._http import Service
    from toolkit.services.config import ConfigFile

__all__ = ["add_command", "oidc_dev_service"]


def add_command(services: typer.Typer) -> None:
    """Add ``serve oidc-dev`` to the ``serve`` group."""

    @services.command("oidc-dev")
    def serve_oidc_dev(
        config: Annotated[
            Path, typer.Option("--config", help="Services config file (reads its oidc_dev table).")
        ],
        listen: Annotated[
            str | None,
            typer.Option("--listen", help="HOST:PORT to listen on (overrides the config)."),
        ] = None,
        allow_non_loopback: Annotated[
            bool,
            typer.Option(
                "--allow-non-loopback",
                help="Listen on a non-loopback address anyway (development only!).",
            ),
        ] = False,
    ) -> None:
        """Run the DEVELOPMENT-ONLY OIDC issuer (discovery, JWKS, POST /token).

        It issues a signed ID token for any identity requested: never let a
        production CA trust it. Refuses (exit 2) a non-loopback listen address
        unless forced.
        """
        with reporting():
            _run(config, listen, allow_non_loopback)


def _run(config_path: Path, listen: str | None, allow_non_loopback: bool) -> None:
    import contextlib
    import logging

    import uvloop

    from toolkit.services._http import serve
    from toolkit.services.config import ConfigFile

    config = ConfigFile.load(config_path)
    with contextlib.ExitStack() as stack:
        service = oidc_dev_service(
            config, stack, listen=listen, allow_non_loopback=allow_non_loopback
        )
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        uvloop.run(serve([service], echo=typer.echo))


def oidc_dev_service(
    config: "ConfigFile",
    stack: "contextlib.ExitStack",
    *,
    listen: str | None = None,
    allow_non_loopback: bool = False,
    echo: "Callable[..., None]" = typer.echo,
) -> "Service":
    """Build the development issuer of ``config``'s ``[oidc_dev]`` table (socket bound).

    Prints the development-only warning (to stderr) and the issuer line; the
    socket's closing is pushed on ``stack``.

    Raises:
        UsageError: A non-loopback address that is not forced, or no table.
    """
    from toolkit.services._http import Service, bind, is_loopback, listen_address, socket_url
    from toolkit.services.oidc_dev.app import create_app
    from toolkit.services.oidc_dev.config import OidcDevConfig, check_listen_host
    from toolkit.services.oidc_dev.issuer import DEV_WARNING, DevIssuer

    settings = OidcDevConfig.from_config(config)
    address = listen if listen is not None else settings.listen
    host, port = listen_address(address)
    forced = allow_non_loopback or settings.allow_non_loopback
    check_listen_host(host, allowed=forced)
    # Open the key before binding: a bad key is a one-line error, no socket.
    signer = config.open_key(settings.key) if settings.key is not None else None
    echo(DEV_WARNING, err=True)
    if not is_loopback(host):
        echo(f"WARNING: oidc-dev listens on non-loopback {host} (forced)", err=True)
    sock = bind(host, port)
    stack.callback(sock.close)
    issuer = DevIssuer(settings.issuer or socket_url(sock), signer)
    echo(f"oidc-dev issuer {issuer.issuer_url} (kid {issuer.kid})")
    return Service("oidc-dev", create_app(issuer), sock)
