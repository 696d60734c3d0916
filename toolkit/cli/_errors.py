"""Error reporting for the CLI: the one mapping from errors to exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from toolkit.errors import Error

__all__ = ["fail", "reporting"]

# The exit codes themselves live on the error classes (Error.exit_code); this
# is the one used when something that is not an airseal Error escapes.
EXIT_INTERNAL = 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fail(error: Error, *, json_output: bool = False) -> NoReturn:
    """Print ``error`` as one line (or a JSON object) and exit with its code."""
    code = error.code
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "ok": False,
                    "check": code,
                    "message": _one_line(error.message),
                    "hint": error.hint,
                }
            )
        )
    else:
        label = f"error[{code}]" if code else "error"
        typer.echo(f"{label}: {_one_line(error.message)}", err=True)
        if error.hint:
            typer.echo(f"hint: {_one_line(error.hint)}", err=True)
    raise typer.Exit(error.exit_code)


@contextmanager
def reporting(*, json_output: bool = False) -> Iterator[None]:
    """Turn airseal errors raised inside the block into messages and exit codes.

    Anything else is a bug: it is reported on one line, without a traceback,
    and exits 1 (non-zero, so a verification never passes
    by accident).
    """
    try:
        yield
    except Error as error:
        fail(error, json_output=json_output)
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # The last line of defence of the CLI.
        message = f"internal error: {type(exc).__name__}: {_one_line(str(exc))[:200]}"
        if json_output:
            typer.echo(json.dumps({"ok": False, "check": None, "message": message}))
        else:
            typer.echo(f"error: {message}", err=True)
            typer.echo("hint: this is a bug in airseal; please report it", err=True)
        raise typer.Exit(EXIT_INTERNAL) from None
