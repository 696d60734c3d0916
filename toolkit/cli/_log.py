"""``airseal log monitor``: check that a tiled transparency log is append-only.

This module deliberately does not use ``from __future__ import annotations``:
typer resolves the command signatures at every start, and real annotation
objects are much cheaper for it than strings to evaluate. The monitor itself
(and urllib) is imported only when the command runs.
"""

import json
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._errors import reporting

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``log`` command group to the app."""
    log_app = typer.Typer(
        name="log",
        help="Transparency log tools.",
        no_args_is_help=True,
        add_completion=False,
    )

    @log_app.command("monitor")
    def monitor(
        url: Annotated[
            str, typer.Option("--url", help="The log's base URL (serves /checkpoint and /tile/…).")
        ],
        vkey: Annotated[
            str,
            typer.Option("--vkey", help="The log's verifier key, name+hash+base64 (C2SP note)."),
        ],
        state: Annotated[
            Path | None,
            typer.Option(
                "--state",
                help="File keeping the last verified checkpoint; without it there is no "
                "fork or rollback detection.",
            ),
        ] = None,
        entries: Annotated[
            bool,
            typer.Option("--entries", help="Also check that every new entry hashes to its leaf."),
        ] = False,
        timeout: Annotated[
            float, typer.Option("--timeout", min=0.1, help="Seconds per connection and read.")
        ] = 10.0,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print a JSON object instead of text.")
        ] = False,
    ) -> None:
        """Verify a log's checkpoint and tiles, and its consistency with the last run.

        Exit 0 when consistent; 1 on an inconsistency, naming it as
        log.signature, log.tile, log.fork or log.rollback; 2 on bad arguments
        or state file; 3 when the log cannot be reached.
        """
        with reporting(json_output=as_json):
            from toolkit.services.log.monitor import monitor as run

            report = run(url, vkey, state, entries=entries, timeout=timeout)
            if as_json:
                typer.echo(json.dumps(report.to_dict()))
                return
            lines = [
                f"consistent: {report.origin} at tree size {report.size}",
                f"  root:     {report.root_hash.hex()}",
            ]
            if report.previous_size is None:
                lines.append("  previous: none (first run; whole log audited)")
            else:
                lines.append(f"  previous: tree size {report.previous_size}, extended consistently")
            checked = f"  checked:  {report.tiles_checked} tiles"
            if entries:
                checked += f", {report.entries_checked} entries"
            lines.append(f"{checked} ({report.requests} requests)")
            if state is not None:
                lines.append(
                    f"  state:    {state} ({'updated' if report.state_written else 'unchanged'})"
                )
            typer.echo("\n".join(lines))

    app.add_typer(log_app, name="log")
