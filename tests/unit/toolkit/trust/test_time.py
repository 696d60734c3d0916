"""The one wrapper around python-tuf's private reference time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.ngclient import Updater

from tests.unit.toolkit.trust._trust_helpers import NOW, Keys, new_repo
from toolkit.errors import Check, EnvironmentSetupError, UsageError, VerificationError
from toolkit.trust._fetchers import MemoryFetcher, memory_urls
from toolkit.trust._time import REFERENCE_TIME_ATTRIBUTE, reference_time, set_reference_time
from toolkit.trust.updater import tuf_error


def _updater(tmp_path: Path) -> Updater:
    repo, root = new_repo(tmp_path / "repo", Keys())
    md_url, tg_url = memory_urls()
    state = tmp_path / "state"
    state.mkdir()
    return Updater(
        str(state), md_url, None, tg_url, MemoryFetcher(repo.channel_files()), bootstrap=root
    )


def test_python_tuf_still_has_the_private_attribute(tmp_path: Path) -> None:
    # If this fails, python-tuf changed: set_reference_time must be rewritten.
    updater = _updater(tmp_path)
    assert hasattr(updater._trusted_set, REFERENCE_TIME_ATTRIBUTE)
    assert isinstance(updater._trusted_set.reference_time, datetime)


def test_reference_time_decides_expiry(tmp_path: Path) -> None:
    updater = _updater(tmp_path)
    set_reference_time(updater, NOW + timedelta(hours=1))
    assert reference_time(updater) == NOW + timedelta(hours=1)
    updater.refresh()  # fresh at NOW + 1 h

    late = _updater(tmp_path / "late")
    set_reference_time(late, NOW + timedelta(days=2))  # the timestamp lives one day
    with pytest.raises(Exception) as info:
        late.refresh()
    error = tuf_error(info.value, source="memory")
    assert isinstance(error, VerificationError)
    assert error.check is Check.KIT_EXPIRED


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        set_reference_time(_updater(tmp_path), datetime(2026, 12, 3))


def test_missing_attribute_fails_loudly(tmp_path: Path) -> None:
    updater = _updater(tmp_path)
    del updater._trusted_set.reference_time
    with pytest.raises(EnvironmentSetupError, match="reference_time"):
        set_reference_time(updater, datetime.now(UTC))
