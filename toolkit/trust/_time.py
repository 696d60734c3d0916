"""The reference time of python-tuf's expiry checks.

python-tuf's ``Updater`` checks every expiry against the moment its trusted
metadata set was created and offers no public way to choose another time.
The known workaround sets ``updater._trusted_set.reference_time`` right after
construction, before ``refresh()``. This module is the one place that touches
that private attribute, so that a python-tuf upgrade that drops it fails
loudly here (and in ``tests/unit/toolkit/trust/test_time.py``) instead of
silently checking against the wrong clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from toolkit.errors import EnvironmentSetupError, UsageError

if TYPE_CHECKING:
    from tuf.ngclient import Updater

__all__ = ["REFERENCE_TIME_ATTRIBUTE", "reference_time", "set_reference_time"]

#: The private attribute of python-tuf's ``TrustedMetadataSet`` this relies on.
REFERENCE_TIME_ATTRIBUTE: Final = "reference_time"


def _trusted_set(updater: Updater) -> object:
    trusted = getattr(updater, "_trusted_set", None)
    if trusted is None or not hasattr(trusted, REFERENCE_TIME_ATTRIBUTE):
        raise EnvironmentSetupError(
            "this python-tuf version has no Updater._trusted_set.reference_time; "
            "the expiry reference time cannot be set",
            hint="install the pinned python-tuf (tuf>=7.0.1,<7.1)",
        )
    return trusted


def set_reference_time(updater: Updater, moment: datetime) -> None:
    """Make ``updater`` check expiries against ``moment`` instead of its creation time.

    Call it right after constructing the ``Updater`` and before ``refresh()``.

    Args:
        updater: A python-tuf ``Updater``.
        moment: The reference time (timezone-aware).

    Raises:
        UsageError: ``moment`` has no timezone.
        EnvironmentSetupError: python-tuf no longer has the private attribute.
    """
    if moment.tzinfo is None:
        raise UsageError("the TUF reference time must be timezone-aware")
    setattr(_trusted_set(updater), REFERENCE_TIME_ATTRIBUTE, moment.astimezone(UTC))


def reference_time(updater: Updater) -> datetime:
    """The time ``updater`` checks expiries against.

    Raises:
        EnvironmentSetupError: python-tuf no longer has the private attribute.
    """
    value = getattr(_trusted_set(updater), REFERENCE_TIME_ATTRIBUTE)
    if not isinstance(value, datetime):
        raise EnvironmentSetupError("python-tuf's reference time is not a datetime")
    return value
