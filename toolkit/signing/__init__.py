"""Signers: one interface over software keys and keys on PKCS#11 tokens.

Everything that signs in airseal takes a :class:`Signer`. Keys are named by
URI: ``pkcs11:token=…;object=…`` (RFC 7512) for token keys, ``file:/path.pem``
for software keys; :func:`load_signer` opens either.

Importing this package loads no PKCS#11 library: :mod:`toolkit.signing.pkcs11`
is imported only when a ``pkcs11:`` URI is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from toolkit.errors import FormatError
from toolkit.signing._api import (
    KeyAlgorithm,
    PrivateKey,
    PublicKey,
    Scheme,
    Signer,
    spki_der,
    spki_sha256,
)
from toolkit.signing._crypto import verify_signature
from toolkit.signing._pin import module_path, resolve_pin
from toolkit.signing._uri import Pkcs11Uri, file_uri_path
from toolkit.signing.software import SoftwareSigner

if TYPE_CHECKING:
    from toolkit.signing.pkcs11 import Pkcs11Signer

__all__ = [
    "KeyAlgorithm",
    "Pkcs11Uri",
    "PrivateKey",
    "PublicKey",
    "Scheme",
    "Signer",
    "SoftwareSigner",
    "load_signer",
    "module_path",
    "resolve_pin",
    "spki_der",
    "spki_sha256",
    "verify_signature",
]


def load_signer(
    uri: str,
    *,
    module: str | None = None,
    scheme: Scheme | None = None,
    pin: str | None = None,
    token_name: str | None = None,
    passphrase: bytes | None = None,
    prompt: Callable[[str], str] | None = None,
) -> Signer:
    """Open the key a URI names.

    Args:
        uri: ``pkcs11:…`` (RFC 7512) or ``file:…`` (a PEM private key).
        module: PKCS#11 module path (default: the URI's ``module-path``, then
            ``$PKCS11_MODULE``).
        scheme: The signing scheme (default: the key's default scheme).
        pin: Token PIN (default: :func:`resolve_pin`).
        token_name: The config's name of the token, for ``AIRSEAL_PIN_<NAME>``.
        passphrase: Passphrase of an encrypted PEM file.
        prompt: Asks a human for the PIN when no other source has it.

    Raises:
        FormatError: Neither a ``pkcs11:`` nor a ``file:`` URI, or malformed.
        UsageError: Missing or wrong passphrase, unsupported key, scheme
            for another kind of key.
        HSMError: The token, key or PIN problems of :meth:`Pkcs11Signer.open`.
        EnvironmentSetupError: The key file cannot be read.
    """
    scheme_name = uri.partition(":")[0].lower()
    if scheme_name == "pkcs11":
        return _open_pkcs11(uri, module, scheme, pin, token_name, prompt)
    if scheme_name == "file":
        return SoftwareSigner.from_file(file_uri_path(uri), passphrase, scheme=scheme)
    raise FormatError(
        "a key URI must start with 'pkcs11:' or 'file:'",
        path="key URI",
        hint="for example pkcs11:token=airseal-ca;object=root-ca or file:/etc/airseal/key.pem",
    )


def _open_pkcs11(
    uri: str,
    module: str | None,
    scheme: Scheme | None,
    pin: str | None,
    token_name: str | None,
    prompt: Callable[[str], str] | None,
) -> Pkcs11Signer:
    from toolkit.signing.pkcs11 import Pkcs11Signer

    parsed = Pkcs11Uri.parse(uri)
    if pin is None and prompt is not None:
        pin = resolve_pin(parsed, token_name=token_name, prompt=prompt)
    return Pkcs11Signer.open(parsed, module=module, pin=pin, token_name=token_name, scheme=scheme)
