"""Throwaway SoftHSM token stores, for tests, rehearsals and the demo.

:meth:`SoftHSM.create` writes a SoftHSM config into a directory of its own
(from ``softhsm/softhsm2.conf.in``) and initialises tokens there with
``softhsm/init-token``, the same script a human can run by hand. Nothing
touches the system token store.

SoftHSM reads ``SOFTHSM2_CONF`` once, when the module is initialised; tokens
created afterwards are invisible to a process that already loaded the module
until it re-initialises it (which ends every session). So set
``SOFTHSM2_CONF`` (:meth:`SoftHSM.env`, or :meth:`SoftHSM.activate` in-process)
before the first PKCS#11 use.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from toolkit.errors import HSMError, UsageError
from toolkit.signing._uri import Pkcs11Uri

if TYPE_CHECKING:
    from toolkit.signing.pkcs11 import Pkcs11Module

__all__ = ["SoftHSM", "find_softhsm_module", "softhsm_assets"]

_TEMPLATE: Final = "softhsm2.conf.in"
_INIT_SCRIPT: Final = "init-token"
_PLACEHOLDER: Final = "@TOKENDIR@"
_INSTALL_HINT: Final = "install SoftHSM: apt-get install softhsm2"
_INIT_TIMEOUT: Final = 120.0


def softhsm_assets() -> Path:
    """The directory holding ``softhsm2.conf.in`` and ``init-token``.

    A wheel carries them as ``toolkit/signing/_softhsm/``; a source checkout
    has them in the repository's ``softhsm/``.

    Raises:
        HSMError: Neither place has them.
    """
    here = Path(__file__).resolve()
    for candidate in (here.parent / "_softhsm", here.parents[2] / "softhsm"):
        if (candidate / _TEMPLATE).is_file() and (candidate / _INIT_SCRIPT).is_file():
            return candidate
    raise HSMError("the SoftHSM config template and init-token script are missing")


def find_softhsm_module() -> str:
    """The path of ``libsofthsm2.so`` on this machine.

    Raises:
        HSMError: SoftHSM is not installed.
    """
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    candidates = [
        "/usr/lib/softhsm/libsofthsm2.so",
        f"/usr/lib/{multiarch}/softhsm/libsofthsm2.so" if multiarch else "",
        "/usr/lib64/pkcs11/libsofthsm2.so",
        "/usr/lib/pkcs11/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
        "/opt/homebrew/lib/softhsm/libsofthsm2.so",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise HSMError("SoftHSM is not installed (no libsofthsm2.so found)", hint=_INSTALL_HINT)


@dataclass(frozen=True)
class SoftHSM:
    """A SoftHSM token store in a directory of its own.

    Attributes:
        directory: The directory holding ``softhsm2.conf`` and ``tokens/``.
        conf: The config file; point ``SOFTHSM2_CONF`` at it.
        module: Path of the SoftHSM PKCS#11 module.
        serials: Token label → serial number, in creation order.
    """

    directory: Path
    conf: Path
    module: str
    serials: Mapping[str, str]

    @classmethod
    def create(
        cls,
        directory: Path,
        tokens: Sequence[tuple[str, str]],
        *,
        module: str | None = None,
    ) -> SoftHSM:
        """Create a token store in ``directory`` with one token per ``(label, pin)``.

        Each token gets a random security-officer PIN that is thrown away.

        Args:
            directory: Where to put the config and tokens (created if missing;
                must not already hold tokens).
            tokens: ``(label, user PIN)`` pairs; labels must be distinct.
            module: The SoftHSM module (default: found in the usual places).

        Raises:
            HSMError: SoftHSM is not installed, or initialising a token failed.
            UsageError: Duplicate or invalid labels, or ``directory`` already
                holds tokens.
        """
        labels = [label for label, _ in tokens]
        if len(set(labels)) != len(labels):
            raise UsageError("SoftHSM token labels must be distinct")
        for label, pin in tokens:
            if not label or len(label.encode()) > 32 or label != label.strip():
                raise UsageError(
                    f"SoftHSM token label {label!r} must be 1-32 bytes without outer spaces"
                )
            if not 4 <= len(pin) <= 255:
                raise UsageError(f"the PIN of SoftHSM token {label!r} must be 4-255 characters")
        if shutil.which("softhsm2-util") is None:
            raise HSMError("SoftHSM is not installed (no softhsm2-util)", hint=_INSTALL_HINT)
        module = module or find_softhsm_module()
        assets = softhsm_assets()
        directory = directory.resolve()
        tokendir = directory / "tokens"
        if tokendir.exists() and any(tokendir.iterdir()):
            raise UsageError(f"{str(tokendir)!r} already holds SoftHSM tokens")
        tokendir.mkdir(parents=True, exist_ok=True)
        if any(ch in str(tokendir) for ch in "\n\r"):
            raise UsageError("the SoftHSM directory path must not contain line breaks")
        conf = directory / "softhsm2.conf"
        template = (assets / _TEMPLATE).read_text(encoding="utf-8")
        conf.write_text(template.replace(_PLACEHOLDER, str(tokendir)), encoding="utf-8")
        serials: dict[str, str] = {}
        for label, pin in tokens:
            serials[label] = _init_token(assets / _INIT_SCRIPT, conf, label, pin)
        return cls(directory=directory, conf=conf, module=module, serials=serials)

    def env(self) -> dict[str, str]:
        """The environment variables a process needs to see these tokens."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    def token_uri(self, label: str) -> Pkcs11Uri:
        """``pkcs11:token=<label>;serial=<serial>`` of one of the tokens."""
        return Pkcs11Uri(token=label, serial=self.serials[label])

    def activate(self) -> Pkcs11Module:
        """Point this process at the store and return the loaded module.

        Sets ``SOFTHSM2_CONF``. If the module was already loaded in this
        process (for another store), it is re-initialised, which ends every
        session and signer opened before.
        """
        from toolkit.signing.pkcs11 import Pkcs11Module

        previous = os.environ.get("SOFTHSM2_CONF")
        os.environ["SOFTHSM2_CONF"] = str(self.conf)
        was_loaded = Pkcs11Module.loaded(self.module) is not None
        module = Pkcs11Module.load(self.module)
        if was_loaded:
            present = {info.label for info in module.tokens()}
            if previous != str(self.conf) or not set(self.serials) <= present:
                module.reinitialize()
        return module


def _init_token(script: Path, conf: Path, label: str, pin: str) -> str:
    # The PINs travel in the environment of the script (readable only by the
    # same user), not in its arguments; see the script about softhsm2-util.
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(conf),
        "AIRSEAL_SOFTHSM_PIN": pin,
        "AIRSEAL_SOFTHSM_SO_PIN": secrets.token_hex(16),
    }
    try:
        result = subprocess.run(  # noqa: S603 -- fixed script, arguments are not a shell
            ["bash", str(script), str(conf), label],  # noqa: S607 -- bash from PATH, as make does
            env=env,
            capture_output=True,
            text=True,
            timeout=_INIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HSMError(f"cannot initialise SoftHSM token {label!r}: {exc}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        raise HSMError(f"cannot initialise SoftHSM token {label!r}: {detail}")
    lines = result.stdout.split()
    if not lines:
        raise HSMError(f"init-token printed no serial for SoftHSM token {label!r}")
    return lines[-1]
