"""The ``airseal`` command line (a typer app).

This package is the one place that turns :class:`~toolkit.errors.Error` into
messages and exit codes: 0 success, 1 verification failed, 2 bad input or
usage, 3 environment (missing HSM, unreachable service). Commands import their
heavy dependencies lazily so that ``airseal verify`` starts fast.
"""

from __future__ import annotations

import typer

from toolkit.cli import _verify

__all__ = ["app", "main"]

app = typer.Typer(
    name="airseal",
    help="Sigstore-compatible, offline-first code signing.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_verify.register(app)


def main() -> None:
    """Entry point of the ``airseal`` console script."""
    app()
