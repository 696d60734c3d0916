"""One SoftHSM token store for the whole test session, and the keys on it.

What SoftHSM 2.6.1 does inside one process (found by experiment, and pinned
by ``tests/integration/test_softhsm.py::test_module_reads_its_config_once``):

* It reads ``SOFTHSM2_CONF`` and scans the token directory once, in
  ``C_Initialize`` (python-pkcs11 calls it when the module is first loaded).
  A token initialised afterwards -- by ``softhsm2-util`` in another process,
  even in the same token directory -- does not show up in ``C_GetSlotList``.
* python-pkcs11 *can* re-initialise (``lib.reinitialize()``: ``C_Finalize`` +
  ``C_Initialize``, wrapped as ``Pkcs11Module.reinitialize()``). SoftHSM then
  re-reads ``SOFTHSM2_CONF`` -- a different config too -- and sees the new
  tokens, but every session and key handle from before is dead.

So the session fixture creates every token the in-process tests need up front
and sets ``SOFTHSM2_CONF`` before anything loads the module (and re-initialises
if something already did); suites that need stores of their own, like the
ceremony, run ``airseal`` in subprocesses.

Tests needing SoftHSM skip with a reason when it is not installed, and fail
instead when the ``CI`` environment variable is set (CI must run them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from toolkit.errors import HSMError
from toolkit.signing import KeyAlgorithm, Pkcs11Uri, Scheme
from toolkit.signing.pkcs11 import Pkcs11Module, Pkcs11Signer, generate_key
from toolkit.signing.softhsm import SoftHSM, find_softhsm_module

__all__ = [
    "CONTRACT_TOKEN",
    "PIN_TOKEN",
    "SPARE_TOKEN",
    "TestHSM",
    "require_softhsm",
    "softhsm",
]

#: Holds the contract suite's keys.
CONTRACT_TOKEN = "airseal-contract"
#: Never logged in with the right PIN before the wrong-PIN test.
PIN_TOKEN = "airseal-pin"
#: For error tests that create keys (label clashes and the like).
SPARE_TOKEN = "airseal-spare"

PINS = {
    CONTRACT_TOKEN: "contract-0000",
    PIN_TOKEN: "pin-token-1111",
    SPARE_TOKEN: "spare-2222",
}


def softhsm_missing() -> str | None:
    """Why SoftHSM cannot be used here, or None when it can."""
    if shutil.which("softhsm2-util") is None:
        return "softhsm2 is not installed (no softhsm2-util; apt-get install softhsm2)"
    try:
        find_softhsm_module()
    except HSMError as exc:
        return exc.message
    return None


def require_softhsm() -> None:
    """Skip the calling test when SoftHSM is missing; fail instead when ``CI`` is set."""
    reason = softhsm_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} -- CI must run the SoftHSM tests")
    pytest.skip(reason)


@dataclass
class TestHSM:
    """The session's token store, its module and lazily generated keys."""

    __test__ = False  # not a test class, despite the name

    store: SoftHSM
    pins: dict[str, str]
    _uris: dict[KeyAlgorithm, Pkcs11Uri] = field(default_factory=dict)

    @property
    def module_path(self) -> str:
        return self.store.module

    def uri(self, token: str, **attributes: object) -> Pkcs11Uri:
        """``pkcs11:token=…;serial=…`` plus ``attributes``."""
        return self.store.token_uri(token).replace(**attributes)

    def contract_key(self, algorithm: KeyAlgorithm) -> Pkcs11Uri:
        """The URI of the contract token's key of ``algorithm`` (generated on first use)."""
        if algorithm not in self._uris:
            module = Pkcs11Module.load(self.module_path)
            token = module.find_token(label=CONTRACT_TOKEN)
            session = token.session(self.pins[CONTRACT_TOKEN])
            signer = generate_key(session, algorithm, f"contract-{algorithm.value}")
            self._uris[algorithm] = signer.uri
        return self._uris[algorithm]

    def open(self, algorithm: KeyAlgorithm, scheme: Scheme | None = None) -> Pkcs11Signer:
        """A fresh :class:`Pkcs11Signer` on the contract key of ``algorithm``."""
        return Pkcs11Signer.open(
            self.contract_key(algorithm),
            module=self.module_path,
            pin=self.pins[CONTRACT_TOKEN],
            scheme=scheme,
        )


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestHSM]:
    """The session's SoftHSM store, active in this process (``SOFTHSM2_CONF`` set)."""
    require_softhsm()
    directory: Path = tmp_path_factory.mktemp("softhsm")
    store = SoftHSM.create(directory, list(PINS.items()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(store.conf))
        # Loads the module, or re-initialises it if an earlier test loaded it
        # with another config (see the module docs).
        store.activate()
        yield TestHSM(store, dict(PINS))
