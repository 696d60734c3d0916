"""The ceremony end to end on real SoftHSM tokens, through the ``airseal`` command.

Every ceremony here runs in its own ``airseal`` process: SoftHSM reads its
configuration once per process, and a fresh process per ceremony is also what
operators run. The faults of the issue (wrong PIN, missing token, wrong serial,
existing outputs, a custodian token missing, a killed or stopped process) each
end with a one-line error, exit 2 or 3, no outputs in place and a transcript
that says where the ceremony stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from ceremony.config import load_config
from ceremony.run import OUTPUTS
from ceremony.transcript import parse_transcript
from tests.support.hsm import require_softhsm
from toolkit.signing.softhsm import SoftHSM

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "ceremony" / "examples" / "root-ceremony.toml"
AIRSEAL = str(Path(sys.executable).with_name("airseal"))

pytestmark = pytest.mark.usefixtures("softhsm_available")


@pytest.fixture(scope="module")
def softhsm_available() -> None:
    require_softhsm()


def airseal(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [AIRSEAL, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )


def pin_env(token: str) -> str:
    return "AIRSEAL_PIN_" + re.sub(r"[^A-Z0-9]", "_", token.upper())


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rehearsal") / "out"
    result = airseal("ceremony", "rehearse", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "final transcript hash:" in result.stdout
    return out


def test_rehearsal_verifies_on_a_second_machine(rehearsal: Path) -> None:
    result = airseal(
        "ceremony", "verify", str(rehearsal), "--json", env={"SOFTHSM2_CONF": "/nonexistent"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["checks"] == [
        "output.set",
        "transcript.chain",
        "transcript.structure",
        "output.hash",
        "transcript.seal",
        "key.record",
        "cert.profile",
        "trusted-root",
        "tuf-root",
        "keys-toml",
    ]
    last = (rehearsal / "transcript.jsonl").read_bytes().splitlines()[-1]
    import hashlib

    assert report["final_hash"] == hashlib.sha256(last).hexdigest()


def test_expected_final_hash_is_compared(rehearsal: Path) -> None:
    result = airseal("ceremony", "verify", str(rehearsal), "--expect-hash", "00" * 32)
    assert result.returncode == 1
    assert "transcript.final-hash" in result.stderr


def test_openssl_accepts_the_chains(rehearsal: Path, tmp_path: Path) -> None:
    root = rehearsal / "root-ca.pem"
    inter = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-CAfile",
            str(root),
            str(rehearsal / "intermediate-ca.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inter.returncode == 0, inter.stdout + inter.stderr
    leaf = tmp_path / "tsa.pem"
    leaf.write_text(
        (rehearsal / "tsa-chain.pem").read_text().split("-----END CERTIFICATE-----")[0]
        + "-----END CERTIFICATE-----\n"
    )
    tsa = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-purpose",
            "timestampsign",
            "-CAfile",
            str(root),
            str(leaf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tsa.returncode == 0, tsa.stdout + tsa.stderr


def test_trusted_root_loads_in_airseal_and_sigstore_python(rehearsal: Path) -> None:
    from sigstore.models import TrustedRoot as SigstoreTrustedRoot

    from toolkit.verify import Verifier

    data = (rehearsal / "trusted_root.json").read_bytes()
    Verifier.from_json(data)
    loaded = SigstoreTrustedRoot.from_file(str(rehearsal / "trusted_root.json"))
    assert len(loaded.get_fulcio_certs()) == 2


def test_python_tuf_loads_the_root_and_checks_its_threshold(rehearsal: Path) -> None:
    from tuf.api.metadata import Metadata, Root

    md = Metadata[Root].from_bytes((rehearsal / "1.root.json").read_bytes())
    md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    assert md.signed.roles[Root.type].threshold == 2
    assert len(md.signed.roles[Root.type].keyids) == 3
    # Drop signatures until the threshold is no longer met: python-tuf must refuse.
    from securesystemslib.exceptions import UnverifiedSignatureError
    from tuf.api.exceptions import UnsignedMetadataError

    keep = list(md.signatures)[:1]
    for keyid in list(md.signatures):
        if keyid not in keep:
            del md.signatures[keyid]
    with pytest.raises((UnsignedMetadataError, UnverifiedSignatureError)):
        md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)


def test_rehearsal_keys_are_usable_from_keys_toml(rehearsal: Path) -> None:
    # A separate process: it loads SoftHSM with the rehearsal's config.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from toolkit.signing import load_signer\n"
        "from toolkit.signing.keyring import KeyRing\n"
        "ring = KeyRing.load(Path(sys.argv[1]))\n"
        "for entry in ring.keys.values():\n"
        "    signer = load_signer(entry.uri, module=ring.module)\n"
        "    assert signer.key_id == entry.spki_sha256, entry.name\n"
        "    signer.sign(b'hello')\n"
        "print(len(ring.keys))\n"
    )
    ring_conf = re.search(r'softhsm2_conf = "([^"]+)"', (rehearsal / "keys.toml").read_text())
    assert ring_conf is not None
    result = subprocess.run(
        [sys.executable, "-c", code, str(rehearsal / "keys.toml")],
        capture_output=True,
        text=True,
        env={**os.environ, "SOFTHSM2_CONF": ring_conf.group(1)},
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(load_config(EXAMPLE).keys)


def test_transcript_records_versions_module_and_attributes_but_no_pin(rehearsal: Path) -> None:
    text = (rehearsal / "transcript.jsonl").read_text()
    lines = parse_transcript(text.encode())
    start = lines[0].data
    assert start["mode"] == "rehearsal"
    assert {"airseal", "cryptography", "python-pkcs11", "tuf"} <= set(start["tool"])
    module = next(line for line in lines if line.step == "module").data
    assert re.fullmatch(r"[0-9a-f]{64}", module["sha256"])
    keys = [line.data for line in lines if line.step == "key"]
    assert len(keys) == len(load_config(EXAMPLE).keys)
    for key in keys:
        assert key["attributes"]["NEVER_EXTRACTABLE"] is True
        assert key["attributes"]["SENSITIVE"] is True
    tokens_dir = rehearsal.with_name(rehearsal.name + ".softhsm")
    for pin_file in (tokens_dir / "pins").iterdir():
        assert pin_file.read_text().strip() not in text
        assert pin_file.stat().st_mode & 0o077 == 0


# --- tampering --------------------------------------------------------------


@pytest.fixture
def copy(rehearsal: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(rehearsal, target)
    return target


# Every output but the transcript, whose tampering is covered line by line below.
OUTPUT_FILES = [name for name in OUTPUTS if name != "transcript.jsonl"]


@pytest.mark.parametrize("name", OUTPUT_FILES)
@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_tampered_output_byte_names_the_file(copy: Path, name: str, where: float) -> None:
    from ceremony.errors import CeremonyVerificationError
    from ceremony.verify import verify_outputs

    path = copy / name
    data = bytearray(path.read_bytes())
    index = int(len(data) * where)
    data[index] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CeremonyVerificationError) as info:
        verify_outputs(copy)
    assert info.value.check == "output.hash"
    assert name in info.value.message


def test_every_transcript_line_is_protected(copy: Path, rehearsal: Path) -> None:
    from ceremony.errors import CeremonyVerificationError
    from ceremony.verify import verify_outputs

    original = (rehearsal / "transcript.jsonl").read_bytes()
    lines = original.splitlines(keepends=True)
    for index, line in enumerate(lines):
        number = index + 1
        # Change the time of the step, keeping the line valid canonical JSON:
        # only the hash chain or the seal can notice.
        changed = re.sub(
            rb'"time":"(\d{4})', lambda m: b'"time":"' + str(int(m.group(1)) + 1).encode(), line
        )
        assert changed != line
        (copy / "transcript.jsonl").write_bytes(
            b"".join([*lines[:index], changed, *lines[index + 1 :]])
        )
        with pytest.raises(CeremonyVerificationError) as info:
            verify_outputs(copy)
        assert f"line {number}" in info.value.message, (number, info.value.message)
        assert info.value.check in {"transcript.chain", "transcript.seal"}


def test_dropped_or_extra_files_are_named(copy: Path) -> None:
    from ceremony.errors import CeremonyVerificationError
    from ceremony.verify import verify_outputs

    (copy / "notes.txt").write_text("hello")
    with pytest.raises(CeremonyVerificationError) as info:
        verify_outputs(copy)
    assert info.value.check == "output.set"
    assert "notes.txt" in info.value.message
    (copy / "notes.txt").unlink()
    (copy / "ctlog.pub.pem").unlink()
    with pytest.raises(CeremonyVerificationError) as info:
        verify_outputs(copy)
    assert "ctlog.pub.pem" in info.value.message


def test_verify_cli_reports_the_check_and_exits_1(copy: Path) -> None:
    path = copy / "trusted_root.json"
    path.write_bytes(path.read_bytes().replace(b"https", b"httpx", 1))
    result = airseal("ceremony", "verify", str(copy))
    assert result.returncode == 1
    assert result.stderr.startswith("error[output.hash]: output.hash: trusted_root.json")


# --- faults on the real run -------------------------------------------------


class Tokens:
    """Fresh SoftHSM tokens for the example config, and a config that names them."""

    def __init__(self, base: Path, *, skip: tuple[str, ...] = ()) -> None:
        config = load_config(EXAMPLE)
        self.pins = {name: f"pin-{name}-1234" for name in config.tokens}
        present = [name for name in config.tokens if name not in skip]
        self.hsm = SoftHSM.create(
            base / "hsm", [(config.tokens[n].label, self.pins[n]) for n in present]
        )
        self.out = base / "out"
        text = EXAMPLE.read_text()
        serials = {n: self.hsm.serials[config.tokens[n].label] for n in present}
        for name, serial in serials.items():
            text = _set_serial(text, name, serial)
        text = re.sub(r'(?m)^output_dir = ".*"$', f'output_dir = "{self.out}"', text)
        self.config = base / "ceremony.toml"
        self.config.write_text(text)
        self.env = {
            **self.hsm.env(),
            "PKCS11_MODULE": str(self.hsm.module),
            **{pin_env(n): p for n, p in self.pins.items()},
        }

    def run(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        return airseal("ceremony", "run", str(self.config), env={**self.env, **overrides})


def _set_serial(text: str, token: str, serial: str) -> str:
    pattern = re.compile(
        rf'(?ms)^(\[tokens\.{re.escape(token)}\]\n(?:(?!^\[).)*?^serial = ")[^"]*(")'
    )
    changed, count = pattern.subn(lambda m: m.group(1) + serial + m.group(2), text)
    assert count == 1, token
    return changed


def _aborted(base: Path) -> list[Path]:
    return sorted(base.glob("out.aborted-*"))


def _assert_nothing_in_place(tokens: Tokens) -> None:
    assert not tokens.out.exists()
    assert not tokens.out.with_name("out.staging").exists()


def _abort_record(tokens: Tokens) -> Mapping[str, object]:
    (aborted,) = _aborted(tokens.out.parent)
    assert sorted(p.name for p in aborted.iterdir()) == ["transcript.jsonl"]
    lines = parse_transcript((aborted / "transcript.jsonl").read_bytes())
    assert lines[-1].step == "abort"
    return lines[-1].data


def test_real_run_succeeds_on_the_expected_tokens(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path)
    result = tokens.run()
    assert result.returncode == 0, result.stderr
    assert airseal("ceremony", "verify", str(tokens.out)).returncode == 0
    start = parse_transcript((tokens.out / "transcript.jsonl").read_bytes())[0]
    assert start.data["mode"] == "run"


def test_wrong_pin(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path)
    result = tokens.run(**{pin_env("alice"): "not-the-pin"})
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1
    assert "aborted run" in result.stderr
    assert "wrong PIN" in result.stderr and "not-the-pin" not in result.stderr
    _assert_nothing_in_place(tokens)
    abort = _abort_record(tokens)
    assert abort["during"] == "login:alice"
    assert "not-the-pin" not in json.dumps(abort)


def test_missing_token(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path, skip=("ca",))
    result = tokens.run()
    assert result.returncode == 3, result.stderr
    assert "'ca'" in result.stderr and "not present" in result.stderr
    _assert_nothing_in_place(tokens)
    assert _abort_record(tokens)["during"] == "tokens"


def test_wrong_serial(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path)
    tokens.config.write_text(_set_serial(tokens.config.read_text(), "bob", "00000000deadbeef"))
    result = tokens.run()
    assert result.returncode == 3, result.stderr
    assert "serial" in result.stderr and "00000000deadbeef" in result.stderr
    _assert_nothing_in_place(tokens)
    assert _abort_record(tokens)["during"] == "token:bob"


def test_custodian_tokens_missing_so_threshold_cannot_be_met(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path, skip=("bob", "carol"))
    result = tokens.run()
    assert result.returncode == 3, result.stderr
    assert "threshold of 2 cannot be met" in result.stderr
    _assert_nothing_in_place(tokens)


def test_existing_outputs_are_refused_before_touching_the_hsm(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path)
    tokens.out.mkdir()
    (tokens.out / "root-ca.pem").write_text("precious")
    result = tokens.run()
    assert result.returncode == 2, result.stderr
    assert "already exists" in result.stderr
    assert (tokens.out / "root-ca.pem").read_text() == "precious"
    # Nothing was created on the tokens: a clean run in a new directory works.
    tokens.out = tmp_path / "out2"
    tokens.config.write_text(
        re.sub(
            r'(?m)^output_dir = ".*"$', f'output_dir = "{tokens.out}"', tokens.config.read_text()
        )
    )
    assert tokens.run().returncode == 0


def test_killed_mid_run_leaves_a_transcript_that_says_where(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path)
    process = subprocess.Popen(
        [AIRSEAL, "ceremony", "run", str(tokens.config)],
        env={**os.environ, **tokens.env, "AIRSEAL_CEREMONY_PAUSE_AFTER": "key:tsa"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    staging = tokens.out.with_name("out.staging")
    transcript = staging / "transcript.jsonl"
    try:
        _wait_for(lambda: transcript.exists() and b'"name":"tsa"' in transcript.read_bytes())
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert not tokens.out.exists()
    lines = parse_transcript(transcript.read_bytes())
    assert (lines[-1].step, lines[-1].data["name"]) == ("key", "tsa")
    again = tokens.run()
    assert again.returncode == 2
    assert "interrupted" in again.stderr and "out.staging" in again.stderr


@pytest.mark.parametrize(
    ("signum", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
def test_stop_signal_records_an_abort(tmp_path: Path, signum: int, name: str) -> None:
    tokens = Tokens(tmp_path)
    process = subprocess.Popen(
        [AIRSEAL, "ceremony", "run", str(tokens.config)],
        env={**os.environ, **tokens.env, "AIRSEAL_CEREMONY_PAUSE_AFTER": "certificate:root"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    transcript = tokens.out.with_name("out.staging") / "transcript.jsonl"
    _wait_for(lambda: transcript.exists() and b'"step":"certificate"' in transcript.read_bytes())
    process.send_signal(signum)
    _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 3, stderr
    assert f"error: stopped by {name}" in stderr
    _assert_nothing_in_place(tokens)
    assert _abort_record(tokens)["during"] == "after certificate:root"


def _wait_for(condition: object, timeout: float = 60) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)
