"""``airseal serve``: run an airseal service (``log``, ``ca``, ``ct``, ``tsa``, ``oidc-dev``).

``serve`` is registered as a *command* of the root app whose click class is a
group, so that its sub-commands are only built when ``serve`` runs (a typer
sub-app would be built on every start). Nothing heavier than typer is
imported at module level: ``airseal verify`` must not pay for uvicorn,
Starlette or the storage backends.

Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

import importlib
from typing import Any, cast

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["SERVICE_MODULES", "register"]

#: One module per service; each has ``add_command(services: typer.Typer)``.
SERVICE_MODULES = (
    "toolkit.cli._serve_log",
    "toolkit.cli._serve_ct",
    "toolkit.cli._serve_tsa",
    "toolkit.cli._serve_oidc_dev",
    "toolkit.cli._serve_ca",
    "toolkit.cli._serve_all",
)


class _ServeGroup(TyperGroup):
    """The ``serve`` group; its sub-commands are built on first use."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            group = typer.main.get_group(_services())
            for name, command in group.commands.items():
                self.add_command(command, name)

    # ``Any``: typer's vendored click types are private to typer.
    def list_commands(self, ctx: Any) -> list[str]:
        """The sub-commands (``log``, ``ca``, …)."""
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """One sub-command by name."""
        self._load()
        return super().get_command(ctx, cmd_name)


def register(app: typer.Typer) -> None:
    """Add ``airseal serve`` to the app."""

    # typer types ``cls`` as a command class; a group class works the same way
    # (typer builds it with the command's keyword arguments).
    @app.command("serve", cls=cast("type[TyperCommand]", _ServeGroup), no_args_is_help=True)
    def serve() -> None:
        """Run an airseal service (log, ca, ct, tsa, oidc-dev)."""


def _services() -> typer.Typer:
    """The ``serve`` sub-commands, built only when ``serve`` runs."""
    services = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @services.callback()
    def callback() -> None:
        """Run an airseal service."""

    for name in SERVICE_MODULES:
        importlib.import_module(name).add_command(services)
    return services
