"""``airseal ceremony …``: plan, rehearse, run and verify a root key ceremony.

The ``airseal`` command finds this sub-application through the
``airseal.commands`` entry point, so that ``toolkit`` never imports
``ceremony`` (DESIGN.md §2). Like the other CLI modules, this one keeps real
annotation objects for typer.
"""

import json
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._errors import reporting

__all__ = ["app"]

app = typer.Typer(
    name="ceremony",
    help="Plan, rehearse, run and verify the root key ceremony.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigArg = Annotated[Path, typer.Argument(help="The ceremony config (TOML).", metavar="CONFIG")]


def _progress(line: str) -> None:
    typer.echo(line, err=True)


@app.command("plan")
def plan(config: ConfigArg) -> None:
    """Validate CONFIG and print everything the ceremony will create (no token needed)."""
    with reporting():
        from ceremony.config import load_config
        from ceremony.plan import render_plan

        typer.echo(render_plan(load_config(config)), nl=False)


@app.command("rehearse")
def rehearse(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", help="Output directory (must not exist).")],
    tokens: Annotated[
        Path | None,
        typer.Option("--tokens", help="Where to create the SoftHSM tokens (default OUT.softhsm)."),
    ] = None,
) -> None:
    """Run CONFIG end to end on fresh SoftHSM tokens, writing real-looking outputs to OUT."""
    with reporting():
        from ceremony.config import load_config
        from ceremony.rehearse import rehearse as do_rehearse

        result = do_rehearse(load_config(config), out, tokens_dir=tokens, echo=_progress)
        _print_done(result.out, result.final_hash, result.final_words, "rehearsal")


@app.command("run")
def run(
    config: ConfigArg,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: the config's).")
    ] = None,
    module: Annotated[
        str | None,
        typer.Option("--module", help="PKCS#11 module (default: config, PKCS11_MODULE)."),
    ] = None,
) -> None:
    """Run the real ceremony on the tokens CONFIG names (PINs are asked for)."""
    with reporting():
        from ceremony.config import load_config
        from ceremony.rehearse import run as do_run

        result = do_run(load_config(config), out=out, module=module, echo=_progress)
        _print_done(result.out, result.final_hash, result.final_words, "ceremony")


@app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="A ceremony output directory.", metavar="DIR")],
    expect_hash: Annotated[
        str | None,
        typer.Option("--expect-hash", help="Final transcript hash read aloud at the ceremony."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Check a ceremony's outputs on another machine, with no HSM."""
    with reporting(json_output=as_json):
        from ceremony.errors import CeremonyVerificationError
        from ceremony.verify import verify_outputs

        report = verify_outputs(directory)
        if expect_hash is not None and expect_hash.strip().lower() != report.final_hash:
            raise CeremonyVerificationError(
                "transcript.final-hash",
                f"final transcript hash is {report.final_hash}, not the expected {expect_hash}",
            )
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "ok": True,
                        "ceremony": report.ceremony,
                        "mode": report.mode,
                        "checks": list(report.checks),
                        "final_hash": report.final_hash,
                        "final_words": report.final_words,
                    }
                )
            )
            return
        for check in report.checks:
            typer.echo(f"ok  {check}")
        typer.echo(f"verified ceremony {report.ceremony} ({report.mode})")
        typer.echo(f"final transcript hash: {report.final_hash}")
        typer.echo(f"words: {report.final_words}")


def _print_done(out: Path, final_hash: str, words: str, what: str) -> None:
    typer.echo(f"{what} complete: {out}")
    typer.echo(f"final transcript hash: {final_hash}")
    typer.echo(f"words: {words}")
