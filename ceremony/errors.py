"""Errors raised by the ceremony tool.

They slot into :mod:`toolkit.errors`, so the CLI maps them to exit codes the
same way as every other airseal error: a bad config is a :class:`ConfigError`
(a :class:`~toolkit.errors.FormatError`, exit 2), and a token or module that
is missing or refuses is reported with :class:`~toolkit.errors.HSMError`
(exit 3) by the code that touches the token.
"""

from __future__ import annotations

from typing import ClassVar

from toolkit.errors import Error, FormatError

__all__ = [
    "CeremonyError",
    "CeremonyInterruptedError",
    "CeremonyVerificationError",
    "ConfigError",
    "LintError",
    "ProfileError",
    "SignatureCheckError",
    "TbsMismatchError",
    "TrustedRootError",
    "TufRootError",
]


class CeremonyError(Error):
    """Base class for failures of a ceremony step that are neither config nor token faults."""


class ConfigError(FormatError):
    """The ceremony config is malformed or breaks a rule (exit 2).

    The message starts with the dotted path of the offending field, for
    example ``keys.root-ca.algorithm: expected ecdsa-p384 for a root-ca key``,
    so the reviewer can find the line without reading a traceback.
    """


class LintError(CeremonyError):
    """pkilint found ERROR or FATAL problems in a lint certificate; nothing was signed."""


class ProfileError(CeremonyError):
    """A certificate cannot be built for, or does not follow, its ceremony profile."""


class SignatureCheckError(CeremonyError):
    """A signer produced a signature that does not verify with the expected public key.

    The signed object is discarded before anything uses it. The token is at
    fault, so this is an environment failure (exit 3).
    """

    exit_code: ClassVar[int] = 3


class CeremonyInterruptedError(CeremonyError):
    """The ceremony was stopped by a signal (SIGTERM or Ctrl-C); exit 3."""

    exit_code: ClassVar[int] = 3


class CeremonyVerificationError(CeremonyError):
    """A ceremony output failed a ``ceremony verify`` check (exit 1).

    Attributes:
        check: The failed check's code (``transcript.chain``, ``output.hash``, …).
        detail: What was wrong, naming the file or transcript line.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail

    @property
    def code(self) -> str | None:
        """The failed check's code."""
        return self.check


class TbsMismatchError(CeremonyError):
    """The certificate the issuer signed is not the one that was linted."""


class TrustedRootError(CeremonyError):
    """The Sigstore trusted root cannot be assembled from the ceremony's keys and chains."""


class TufRootError(CeremonyError):
    """The TUF root metadata is malformed or lacks the signatures it needs."""
