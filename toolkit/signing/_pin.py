"""Where PINs and the PKCS#11 module come from.

PINs never come from a config file or a URI's ``pin-value``: only from a
``pin-source`` file the URI names, from the environment, or from a prompt.
Nothing here logs or formats a PIN into a message.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from toolkit.errors import FormatError, HSMError
from toolkit.signing._uri import Pkcs11Uri, file_uri_path

__all__ = ["PIN_ENV", "module_path", "pin_env_name", "resolve_pin"]

#: The environment variable holding the PIN of any token.
PIN_ENV: Final = "AIRSEAL_PKCS11_PIN"
#: The environment variable naming the PKCS#11 module.
MODULE_ENV: Final = "PKCS11_MODULE"


def pin_env_name(token_name: str) -> str:
    """The per-token PIN variable: ``AIRSEAL_PIN_`` + the name upper-cased, non-alnum as ``_``."""
    return "AIRSEAL_PIN_" + re.sub(r"[^A-Z0-9]", "_", token_name.upper())


def resolve_pin(
    uri: Pkcs11Uri,
    *,
    token_name: str | None = None,
    prompt: Callable[[str], str] | None = None,
) -> str:
    """Find the user PIN for the token ``uri`` names.

    The first of these that is present wins:

    1. the ``pin-source`` file named in the URI (``file:`` URI or plain path;
       one trailing newline is stripped);
    2. ``AIRSEAL_PIN_<TOKEN_NAME>`` when ``token_name`` (the token's name in
       the ceremony config) is given;
    3. ``AIRSEAL_PKCS11_PIN``;
    4. ``prompt`` if given, else a no-echo prompt when stdin is a terminal.

    Args:
        uri: The token's URI.
        token_name: The config's name for the token, for the per-token variable.
        prompt: Asks a human; called with the prompt text.

    Returns:
        The PIN.

    Raises:
        HSMError: No source has a PIN, or the pin-source file cannot be read
            or is empty.
    """
    label = uri.token or uri.serial or "(unnamed)"
    if uri.pin_source is not None:
        return _read_pin_source(uri.pin_source, label)
    names = [pin_env_name(token_name)] if token_name else []
    names.append(PIN_ENV)
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    if prompt is None and sys.stdin is not None and sys.stdin.isatty():
        prompt = getpass.getpass
    if prompt is not None:
        pin = prompt(f"PIN for token {label!r}: ")
        if not pin:
            raise HSMError(f"no PIN entered for token {label!r}")
        return pin
    raise HSMError(
        f"no PIN for token {label!r}",
        hint=(
            f"set {' or '.join(names)}, add pin-source=file:/path/to/pin-file to the "
            "token's URI, or run on a terminal to be asked"
        ),
    )


def _read_pin_source(source: str, label: str) -> str:
    if source.startswith("|"):
        raise HSMError(f"pin-source of token {label!r} is a command; airseal only reads PIN files")
    if source[:5].lower() == "file:":
        try:
            path = file_uri_path(source)
        except FormatError as exc:
            raise HSMError(f"pin-source of token {label!r}: {exc.message}") from None
    else:
        path = source
    try:
        data = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HSMError(
            f"cannot read the pin-source file {path!r} of token {label!r}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise HSMError(f"the pin-source file {path!r} is not UTF-8 text") from None
    # Exactly one line end is removed (as `echo PIN > file` writes it); any
    # other whitespace is part of the PIN.
    if data.endswith("\r\n"):
        data = data[:-2]
    elif data.endswith("\n"):
        data = data[:-1]
    if not data:
        raise HSMError(f"the pin-source file {path!r} of token {label!r} is empty")
    return data


def module_path(explicit: str | None) -> str:
    """The PKCS#11 module to load: ``explicit``, else ``$PKCS11_MODULE``.

    Raises:
        HSMError: Neither is set.
    """
    if explicit:
        return explicit
    from_env = os.environ.get(MODULE_ENV)
    if from_env:
        return from_env
    raise HSMError(
        "no PKCS#11 module given",
        hint=(
            f"name the module's shared library in the config or set {MODULE_ENV}, "
            "for SoftHSM usually /usr/lib/softhsm/libsofthsm2.so"
        ),
    )
