"""``ceremony rehearse`` and ``ceremony run``: where the tokens come from.

A rehearsal runs the very same engine as the real ceremony, against fresh
SoftHSM tokens it creates, one per token in the config, with random PINs kept
in ``pin-source`` files beside them. Its outputs are as complete as a real
run's, so the whole procedure (and ``ceremony verify``) can be tried before
anyone touches the real hardware. The real run finds the config's tokens by
label, checks their serials and asks for the PINs.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from ceremony._staging import preflight
from ceremony.config import CeremonyConfig
from ceremony.run import CeremonyResult, TokenTarget, run_ceremony
from toolkit.errors import UsageError
from toolkit.signing.pkcs11 import module_path
from toolkit.signing.softhsm import SoftHSM

__all__ = ["rehearse", "run", "tokens_dir_for"]


def tokens_dir_for(out: Path) -> Path:
    """Default home of a rehearsal's throwaway tokens: beside the outputs."""
    return out.with_name(out.name + ".softhsm")


def rehearse(
    config: CeremonyConfig,
    out: Path,
    *,
    tokens_dir: Path | None = None,
    echo: Callable[[str], None] = lambda _line: None,
) -> CeremonyResult:
    """Run ``config`` end to end against fresh SoftHSM tokens.

    Args:
        config: The ceremony config (its expected serials are not checked).
        out: Output directory for the rehearsal; must not exist.
        tokens_dir: Where to create the SoftHSM tokens; must not exist.
        echo: Receives progress lines.

    Raises:
        UsageError: ``out`` or ``tokens_dir`` exists.
        HSMError: SoftHSM is missing or failed.
    """
    out = out.absolute()
    tokens_dir = (tokens_dir or tokens_dir_for(out)).absolute()
    preflight(out)
    if tokens_dir.exists():
        raise UsageError(
            f"token directory {str(tokens_dir)!r} already exists",
            hint="a rehearsal always creates fresh tokens; remove it or pick another --tokens",
        )
    pins = {name: secrets.token_hex(12) for name in config.tokens}
    try:
        hsm = SoftHSM.create(
            tokens_dir, [(config.tokens[name].label, pins[name]) for name in config.tokens]
        )
        pin_dir = tokens_dir / "pins"
        pin_dir.mkdir(mode=0o700)
        targets: dict[str, TokenTarget] = {}
        for name, token in config.tokens.items():
            pin_file = pin_dir / f"{name}.pin"
            fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(pins[name])
            uri = f"pkcs11:token={quote(token.label, safe='')}?pin-source={quote(str(pin_file))}"
            targets[name] = TokenTarget(name, uri, token.label, serial=None)
        # SoftHSM reads its config once, when the module is loaded: activate()
        # points this process at the new tokens (re-initialising if needed).
        hsm.activate()
        return run_ceremony(
            config,
            out=out,
            module_path=str(hsm.module),
            tokens=targets,
            mode="rehearsal",
            softhsm2_conf=str(hsm.conf),
            echo=echo,
        )
    except BaseException:
        # The tokens are throwaway: a failed rehearsal leaves none behind.
        shutil.rmtree(tokens_dir, ignore_errors=True)
        raise


def run(
    config: CeremonyConfig,
    *,
    out: Path | None = None,
    module: str | None = None,
    echo: Callable[[str], None] = lambda _line: None,
) -> CeremonyResult:
    """Run the real ceremony against the tokens the config names.

    Args:
        config: The ceremony config; tokens are found by label and their
            serials checked.
        out: Output directory (default: the config's ``output_dir``).
        module: PKCS#11 module (default: the config's, else ``PKCS11_MODULE``).
        echo: Receives progress lines.
    """
    targets = {
        name: TokenTarget(name, token.uri, token.label, token.serial)
        for name, token in config.tokens.items()
    }
    return run_ceremony(
        config,
        out=(out or config.output_dir).absolute(),
        module_path=module_path(module or config.pkcs11_module),
        tokens=targets,
        mode="run",
        echo=echo,
    )
