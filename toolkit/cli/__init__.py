"""The ``airseal`` command line (a typer app).

Command groups that live outside ``toolkit`` (the ceremony tool) plug in
through the ``airseal.commands`` entry point group, so that ``toolkit`` never
imports them. Plugins are only looked up when the command is not a built-in
one: entry-point discovery costs milliseconds that ``airseal verify`` should
not pay.

This package is the one place that turns :class:`~toolkit.errors.Error` into
messages and exit codes: 0 success, 1 verification failed, 2 bad input or
usage, 3 environment (missing HSM, unreachable service). Commands import their
heavy dependencies lazily so that ``airseal verify`` starts fast; like
``_verify``, this module keeps real annotation objects for typer.
"""

import sys
from typing import Annotated

import typer

from toolkit import __version__
from toolkit.cli import _init, _kit, _log, _serve, _sign, _trust, _verify

__all__ = ["app", "main"]

app = typer.Typer(
    name="airseal",
    help="Sigstore-compatible, offline-first code signing.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"airseal {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sigstore-compatible, offline-first code signing."""


_verify.register(app)
_log.register(app)
_serve.register(app)
_trust.register(app)
_kit.register(app)
_sign.register(app)
_init.register(app)


#: Entry point group of command groups that plug into ``airseal``.
PLUGIN_GROUP = "airseal.commands"


def load_plugins(target: typer.Typer = app) -> None:
    """Add the command groups registered under :data:`PLUGIN_GROUP`."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        target.add_typer(entry.load(), name=entry.name)


def _builtin_names(target: typer.Typer = app) -> set[str]:
    """Names of the built-in commands and command groups of ``target``.

    Groups count too (``airseal log`` is one): any name missing here costs the
    entry-point lookup, and loads every plugin, on each start.
    """
    names = {command.name for command in target.registered_commands}
    names |= {group.name for group in target.registered_groups}
    return {name for name in names if isinstance(name, str)}


def main() -> None:
    """Entry point of the ``airseal`` console script."""
    first = sys.argv[1] if len(sys.argv) > 1 else None
    # Computed before any plugin is added, so plugins never count as built-in.
    if first is None or first not in _builtin_names():
        load_plugins()
    app()
