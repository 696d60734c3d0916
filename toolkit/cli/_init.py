"""``airseal init DIR``: a ready local instance (ceremony, TUF repository, configs).

The ceremony is rehearsed by ``airseal ceremony rehearse`` in a subprocess:
``toolkit`` never imports ``ceremony`` (DESIGN.md §2, docs/adr/0009-…).
Like ``_verify``, this module does not use ``from __future__ import
annotations``: typer reads the real annotation objects.
"""

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._errors import reporting

__all__ = ["register", "rehearse_in_subprocess"]

#: Runs the ``airseal`` CLI with this interpreter, whether or not the console
#: script is on PATH (``sys.argv[1:]`` are its arguments).
_AIRSEAL = "import sys; sys.argv[0] = 'airseal'; from toolkit.cli import main; main()"


def register(app: typer.Typer) -> None:
    """Add ``airseal init`` to the app."""

    @app.command("init")
    def init(
        directory: Annotated[
            Path, typer.Argument(help="Instance directory (new or empty).", metavar="DIR")
        ],
        port_base: Annotated[
            int,
            typer.Option(
                "--port-base",
                min=1,
                max=65530,
                help="oidc-dev listens on N, CA N+1, CT N+2, log N+3, TSA N+4, TUF N+5.",
            ),
        ] = 3000,
    ) -> None:
        """Create a local instance in DIR: rehearsed ceremony (SoftHSM), TUF repository, configs.

        Writes DIR/instance.toml (for `airseal serve all --config`), DIR/ceremony/,
        DIR/tuf/ (the published TUF repository), DIR/trust_config.json and
        DIR/root.sha256. Refuses (exit 2) a DIR that is not empty.
        """
        with reporting():
            from datetime import UTC, datetime

            from toolkit.instance import Ports, describe, init_instance

            result = init_instance(
                directory,
                Ports(port_base),
                rehearse=rehearse_in_subprocess,
                now=datetime.now(UTC),
                echo=lambda line: typer.echo(line, err=True),
            )
            for line in describe(result):
                typer.echo(line)


def rehearse_in_subprocess(config: Path, out: Path) -> None:
    """``airseal ceremony rehearse CONFIG --out OUT`` with this interpreter.

    Raises:
        EnvironmentSetupError: The rehearsal failed (its last error line is quoted).
    """
    import os
    import subprocess
    import sys

    from toolkit.errors import EnvironmentSetupError

    # The rehearsal creates its own tokens and SoftHSM config.
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    result = subprocess.run(  # noqa: S603 -- fixed argv, this interpreter
        [sys.executable, "-c", _AIRSEAL, "ceremony", "rehearse", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {result.returncode}"
        raise EnvironmentSetupError(
            f"the ceremony rehearsal failed: {last[:300]}",
            hint="is SoftHSM installed and the ceremony plugin registered (pip install -e .)?",
        )
