"""The airseal error hierarchy.

Every error airseal raises on purpose derives from :class:`Error` and carries a
one-line, user-facing ``message`` and an optional ``hint`` that says what to do
about it. The classes are split by who is at fault, so that the CLI (the one
place that turns errors into exit codes) can answer consistently:

* :class:`VerificationError` -- the evidence did not verify (exit 1). It always
  names the failed check with a :class:`Check` code.
* :class:`FormatError` -- a file or message is malformed (bad data, exit 2).
* :class:`UsageError` -- the caller asked for something impossible (exit 2).
* :class:`TransportError` -- a network peer failed us (exit 3).
* :class:`HSMError` and :class:`EnvironmentSetupError` -- the machine lacks
  something, such as a PKCS#11 module or a token (exit 3).

Messages never contain secrets: PINs, private keys and tokens stay out of
every string built here.
"""

from __future__ import annotations

import enum
from typing import ClassVar

__all__ = [
    "Check",
    "EnvironmentSetupError",
    "Error",
    "FormatError",
    "HSMError",
    "TransportError",
    "UsageError",
    "VerificationError",
]


class Check(enum.StrEnum):
    """The closed set of verification check codes.

    Each code names one step of the verifier (see ``docs/formats/bundle.md``).
    Codes are stable identifiers: scripts match on them, so they are never
    renamed, only added.
    """

    BUNDLE_PARSE = "bundle.parse"
    BUNDLE_MEDIA_TYPE = "bundle.media-type"
    BUNDLE_STRUCTURE = "bundle.structure"
    TRUST_ROOT_PARSE = "trust-root.parse"
    INPUT = "input"
    TIME_TSA = "time.tsa"
    TIME_SET = "time.set"
    TIME_NONE = "time.none"
    TIME_VALIDITY = "time.validity"
    CERT_PARSE = "cert.parse"
    CERT_CHAIN = "cert.chain"
    CERT_SCT = "cert.sct"
    CERT_PROFILE = "cert.profile"
    IDENTITY_SAN = "identity.san"
    IDENTITY_ISSUER = "identity.issuer"
    IDENTITY_EXTENSION = "identity.extension"
    KEY_MISMATCH = "key.mismatch"
    TLOG_KIND = "tlog.kind"
    TLOG_UNKNOWN_LOG = "tlog.unknown-log"
    TLOG_BODY = "tlog.body"
    TLOG_INCLUSION = "tlog.inclusion"
    TLOG_CHECKPOINT = "tlog.checkpoint"
    TLOG_SET = "tlog.set"
    TLOG_CONSISTENCY = "tlog.consistency"
    SIGNATURE = "signature"
    SIGNATURE_DIGEST = "signature.digest"
    DSSE_ENVELOPE = "dsse.envelope"
    DSSE_PAYLOAD_TYPE = "dsse.payload-type"
    DSSE_SUBJECT = "dsse.subject"
    # The offline kit (docs/formats/kit.md).
    KIT_PARSE = "kit.parse"
    KIT_ROOT = "kit.root"
    KIT_TUF = "kit.tuf"
    KIT_EXPIRED = "kit.expired"
    KIT_ROLLBACK = "kit.rollback"
    KIT_MIX_AND_MATCH = "kit.mix-and-match"
    KIT_TARGET = "kit.target"
    KIT_BUNDLE = "kit.bundle"


class Error(Exception):
    """Base class of every error airseal raises deliberately.

    Attributes:
        message: One line saying what was wrong, for a human.
        hint: Optional advice on what to do next.
        exit_code: The CLI exit status for this kind of error.
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def code(self) -> str | None:
        """A short machine-readable code for the error, if it has one."""
        return None

    def diagnostics(self) -> str:
        """Return the message followed by the hint, for humans."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message

    def __str__(self) -> str:
        return self.message


class FormatError(Error):
    """Malformed data: a file or message that does not follow its format.

    Args:
        message: What was wrong.
        path: Dotted path of the offending field inside the document, if known.
        hint: Optional advice.
        check: The verification check this parse failure maps to, if any.
    """

    exit_code: ClassVar[int] = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        hint: str | None = None,
        check: Check | None = None,
    ) -> None:
        full = f"{path}: {message}" if path else message
        super().__init__(full, hint=hint)
        self.path = path
        self.detail = message
        self.check = check

    @property
    def code(self) -> str | None:
        """The check code, when this format error is a verification step."""
        return str(self.check) if self.check is not None else None


class UsageError(Error):
    """The caller passed arguments that cannot work together."""

    exit_code: ClassVar[int] = 2


class TransportError(Error):
    """A network peer could not be reached or answered nonsense."""

    exit_code: ClassVar[int] = 3


class EnvironmentSetupError(Error):
    """The machine lacks something airseal needs (a file, a library, a device)."""

    exit_code: ClassVar[int] = 3


class HSMError(EnvironmentSetupError):
    """A PKCS#11 module or token failed or is missing."""


class VerificationError(Error):
    """Verification failed; ``check`` names the step that failed.

    Args:
        check: The failed check.
        detail: What exactly was wrong, in one line.
        hint: Optional advice.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, check: Check, detail: str, *, hint: str | None = None) -> None:
        super().__init__(detail, hint=hint)
        self.check = check
        self.detail = detail

    @property
    def code(self) -> str:
        """The check code, e.g. ``tlog.inclusion``."""
        return str(self.check)

    def __repr__(self) -> str:
        return f"VerificationError({self.check.value!r}, {self.detail!r})"
