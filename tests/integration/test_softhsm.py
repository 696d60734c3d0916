"""The SoftHSM helper, its init script, and how SoftHSM behaves inside one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.hsm import require_softhsm
from toolkit.errors import UsageError
from toolkit.signing.softhsm import SoftHSM, softhsm_assets

REPO = Path(__file__).resolve().parents[2]
INIT_TOKEN = REPO / "softhsm" / "init-token"


@pytest.fixture(autouse=True)
def _softhsm() -> None:
    require_softhsm()


def test_create_writes_config_and_tokens(tmp_path: Path) -> None:
    store = SoftHSM.create(tmp_path / "hsm", [("alpha", "1111"), ("beta token", "2222")])
    assert list(store.serials) == ["alpha", "beta token"]
    assert all(len(s) == 16 for s in store.serials.values())
    conf = store.conf.read_text()
    assert f"directories.tokendir = {tmp_path / 'hsm' / 'tokens'}\n" in conf
    assert "objectstore.backend = file" in conf
    assert store.env() == {"SOFTHSM2_CONF": str(store.conf)}
    assert str(store.token_uri("beta token")) == (
        f"pkcs11:token=beta%20token;serial={store.serials['beta token']}"
    )
    listing = subprocess.run(
        ["softhsm2-util", "--show-slots"],
        env={**os.environ, **store.env()},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for serial in store.serials.values():
        assert serial in listing


def test_create_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="distinct"):
        SoftHSM.create(tmp_path / "a", [("x", "1111"), ("x", "2222")])
    with pytest.raises(UsageError, match="1-32 bytes"):
        SoftHSM.create(tmp_path / "a", [("x" * 33, "1111")])
    with pytest.raises(UsageError, match="4-255 characters"):
        SoftHSM.create(tmp_path / "a", [("x", "123")])
    SoftHSM.create(tmp_path / "b", [("x", "1111")])
    with pytest.raises(UsageError, match="already holds SoftHSM tokens"):
        SoftHSM.create(tmp_path / "b", [("y", "1111")])


def test_assets_come_from_the_checkout() -> None:
    assert softhsm_assets() == REPO / "softhsm"
    assert os.access(INIT_TOKEN, os.X_OK)


def _init_token(conf: Path, label: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRSEAL_SOFTHSM_")}
    return subprocess.run(
        [str(INIT_TOKEN), str(conf), label],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_init_token_by_hand(tmp_path: Path) -> None:
    store = SoftHSM.create(tmp_path, [])
    done = _init_token(store.conf, "by-hand", AIRSEAL_SOFTHSM_PIN="4444")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) == 16
    again = _init_token(store.conf, "by-hand", AIRSEAL_SOFTHSM_PIN="4444")
    assert again.returncode == 2
    assert "a token labelled 'by-hand' already exists" in again.stderr
    no_pin = _init_token(store.conf, "other")
    assert no_pin.returncode == 2
    assert "set AIRSEAL_SOFTHSM_PIN" in no_pin.stderr
    usage = subprocess.run([str(INIT_TOKEN)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2
    assert "usage:" in usage.stderr


def test_module_reads_its_config_once(tmp_path: Path) -> None:
    """SoftHSM sees tokens made after it was loaded only after re-initialising.

    Run in a fresh interpreter: re-initialising here would end the sessions
    of the test session's own store.
    """
    script = textwrap.dedent(
        f"""
        import json, os
        from pathlib import Path
        from toolkit.errors import HSMError
        from toolkit.signing import KeyAlgorithm
        from toolkit.signing.pkcs11 import Pkcs11Module, generate_key
        from toolkit.signing.softhsm import SoftHSM

        first = SoftHSM.create(Path({str(tmp_path / "first")!r}), [("first", "1111")])
        os.environ.update(first.env())
        module = Pkcs11Module.load(first.module)
        signer = generate_key(
            module.find_token(label="first").session("1111"), KeyAlgorithm.ED25519, "k"
        )
        seen = {{}}
        second = SoftHSM.create(Path({str(tmp_path / "second")!r}), [("second", "2222")])
        os.environ.update(second.env())
        seen["after_create"] = [t.label for t in module.tokens()]
        module.reinitialize()
        seen["after_reinitialize"] = [t.label for t in module.tokens()]
        try:
            signer.sign(b"x")
        except HSMError as exc:
            seen["old_signer"] = exc.message
        first.activate()
        seen["after_activate"] = [t.label for t in module.tokens()]
        print(json.dumps(seen))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "after_create": ["first"],
        "after_reinitialize": ["second"],
        "old_signer": ("the session on token 'first' ended: the PKCS#11 module was re-initialised"),
        "after_activate": ["first"],
    }


@pytest.mark.parametrize("problem", ["missing-config", "missing-tokendir"])
def test_bad_config_is_explained(tmp_path: Path, problem: str) -> None:
    # SoftHSM itself only says GeneralError; airseal says what is wrong.
    conf = tmp_path / "softhsm2.conf"
    if problem == "missing-tokendir":
        conf.write_text(
            f"directories.tokendir = {tmp_path / 'absent'}\nobjectstore.backend = file\n"
        )
    script = textwrap.dedent(
        """
        import sys
        from toolkit.errors import HSMError
        from toolkit.signing.pkcs11 import Pkcs11Module
        from toolkit.signing.softhsm import find_softhsm_module
        try:
            Pkcs11Module.load(find_softhsm_module())
        except HSMError as exc:
            print(exc.diagnostics())
            sys.exit(3)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "cannot initialise PKCS#11 module" in done.stdout
    if problem == "missing-config":
        assert f"SOFTHSM2_CONF names {str(conf)!r}, which does not exist" in done.stdout
    else:
        assert f"the tokendir {str(tmp_path / 'absent')!r}" in done.stdout
