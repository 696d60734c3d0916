"""PKCS#11 keys on real SoftHSM tokens: finding tokens and keys, PINs, and faults.

Each fault must end in an :class:`HSMError` (exit 3) whose message names what
is wrong -- the token label, the serials, the key label -- and never the PIN.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.hsm import CONTRACT_TOKEN, PIN_TOKEN, PINS, SPARE_TOKEN, TestHSM
from toolkit.errors import Error, FormatError, HSMError, UsageError
from toolkit.signing import KeyAlgorithm, Pkcs11Uri, Scheme, load_signer
from toolkit.signing.pkcs11 import (
    Pkcs11Module,
    Pkcs11Signer,
    generate_key,
    key_attributes,
)

WRONG_PIN = "not-the-pin-9876"


def _assert_no_secret(error: Error, *secrets: str) -> None:
    text = f"{error.message}\n{error.hint}\n{error!r}\n{error.diagnostics()}"
    for secret in secrets:
        assert secret not in text


def _module(hsm: TestHSM) -> Pkcs11Module:
    return Pkcs11Module.load(hsm.module_path)


# -- tokens ---------------------------------------------------------------------


def test_tokens_lists_the_store(softhsm: TestHSM) -> None:
    infos = {info.label: info for info in _module(softhsm).tokens()}
    assert set(infos) == set(PINS)
    for label, info in infos.items():
        assert info.serial == softhsm.store.serials[label]
        assert info.manufacturer == "SoftHSM project"
        assert "TOKEN_INITIALIZED" in info.flags
        assert {"ECDSA", "EDDSA", "RSA_PKCS", "RSA_PKCS_PSS"} <= set(info.mechanisms)
    # The transcript stores it as JSON.
    json.dumps(infos[CONTRACT_TOKEN].to_dict())


def test_module_identity(softhsm: TestHSM) -> None:
    module = _module(softhsm)
    assert Pkcs11Module.load(softhsm.module_path) is module  # one per process
    assert module.sha256 == hashlib.sha256(Path(module.path).read_bytes()).hexdigest()
    info = module.info
    assert info["manufacturer"] == "SoftHSM"
    assert info["cryptoki_version"].startswith("2.")
    assert set(info) == {"manufacturer", "description", "library_version", "cryptoki_version"}


def test_find_token_by_label_and_serial(softhsm: TestHSM) -> None:
    serial = softhsm.store.serials[SPARE_TOKEN]
    module = _module(softhsm)
    assert module.find_token(label=SPARE_TOKEN).serial == serial
    assert module.find_token(serial=serial).label == SPARE_TOKEN
    assert module.find_token(label=SPARE_TOKEN, serial=serial).label == SPARE_TOKEN


def test_missing_token_names_the_label_and_lists_the_present_ones(softhsm: TestHSM) -> None:
    with pytest.raises(HSMError) as caught:
        _module(softhsm).find_token(label="airseal-absent")
    message = caught.value.message
    assert "no token labelled 'airseal-absent'" in message
    for label, serial in softhsm.store.serials.items():
        assert f"{label!r} (serial {serial})" in message
    assert caught.value.exit_code == 3


def test_wrong_serial(softhsm: TestHSM) -> None:
    actual = softhsm.store.serials[SPARE_TOKEN]
    with pytest.raises(HSMError) as caught:
        _module(softhsm).find_token(label=SPARE_TOKEN, serial="0123456789abcdef")
    assert caught.value.message == (
        f"token {SPARE_TOKEN!r} has serial {actual}, expected 0123456789abcdef"
    )


def test_unknown_serial(softhsm: TestHSM) -> None:
    with pytest.raises(HSMError, match="no token with serial 0123456789abcdef; tokens present"):
        _module(softhsm).find_token(serial="0123456789abcdef")


def test_missing_module() -> None:
    with pytest.raises(HSMError, match=r"PKCS#11 module '/nonexistent/libsofthsm2\.so' not found"):
        Pkcs11Module.load("/nonexistent/libsofthsm2.so")


# -- PINs -------------------------------------------------------------------------


def test_wrong_pin_on_login(softhsm: TestHSM) -> None:
    token = _module(softhsm).find_token(label=PIN_TOKEN)
    with pytest.raises(HSMError) as caught:
        token.session(WRONG_PIN)
    assert caught.value.message == f"wrong PIN for token {PIN_TOKEN!r}"
    assert caught.value.exit_code == 3
    _assert_no_secret(caught.value, WRONG_PIN, PINS[PIN_TOKEN])
    # The right PIN still works afterwards, and is remembered for the process.
    session = token.session(PINS[PIN_TOKEN])
    assert token.session(PINS[PIN_TOKEN]) is session
    assert token.logged_in_session() is session


def test_wrong_pin_after_the_token_is_logged_in(softhsm: TestHSM) -> None:
    # The process is logged in already; a wrong PIN must still be refused.
    token = _module(softhsm).find_token(label=CONTRACT_TOKEN)
    token.session(PINS[CONTRACT_TOKEN])
    with pytest.raises(HSMError) as caught:
        token.session(WRONG_PIN)
    assert caught.value.message == f"wrong PIN for token {CONTRACT_TOKEN!r}"
    _assert_no_secret(caught.value, WRONG_PIN, PINS[CONTRACT_TOKEN])


def test_wrong_pin_through_a_uri(softhsm: TestHSM, tmp_path: Path) -> None:
    softhsm.contract_key(KeyAlgorithm.ED25519)
    pin_file = tmp_path / "pin"
    pin_file.write_text(WRONG_PIN + "\n")
    uri = softhsm.uri(CONTRACT_TOKEN, object="contract-ed25519", pin_source=f"file:{pin_file}")
    with pytest.raises(HSMError) as caught:
        load_signer(str(uri), module=softhsm.module_path)
    assert caught.value.message == f"wrong PIN for token {CONTRACT_TOKEN!r}"
    _assert_no_secret(caught.value, WRONG_PIN)


def test_pin_source_file_opens_the_key(
    softhsm: TestHSM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = softhsm.contract_key(KeyAlgorithm.ECDSA_P256)
    pin_file = tmp_path / "pin"
    pin_file.write_text(PINS[CONTRACT_TOKEN] + "\n")
    monkeypatch.setenv("PKCS11_MODULE", softhsm.module_path)
    uri = f"pkcs11:token={CONTRACT_TOKEN};object=contract-ecdsa-p256?pin-source=file://{pin_file}"
    signer = load_signer(uri)
    assert isinstance(signer, Pkcs11Signer)
    assert signer.uri.replace(pin_source=None) == expected
    assert signer.uri.pin_source == f"file://{pin_file}"
    assert PINS[CONTRACT_TOKEN] not in str(signer.uri) + repr(signer)


def test_pin_from_the_environment(softhsm: TestHSM, monkeypatch: pytest.MonkeyPatch) -> None:
    softhsm.contract_key(KeyAlgorithm.ECDSA_P256)
    monkeypatch.delenv("AIRSEAL_PKCS11_PIN", raising=False)
    monkeypatch.setenv("AIRSEAL_PIN_CONTRACT_TOKEN", PINS[CONTRACT_TOKEN])
    signer = Pkcs11Signer.open(
        softhsm.uri(CONTRACT_TOKEN, object="contract-ecdsa-p256"),
        module=softhsm.module_path,
        token_name="contract-token",
    )
    assert signer.scheme is Scheme.ECDSA_P256_SHA256


# -- keys -------------------------------------------------------------------------


def test_key_label_not_found(softhsm: TestHSM) -> None:
    softhsm.contract_key(KeyAlgorithm.ED25519)
    with pytest.raises(HSMError) as caught:
        Pkcs11Signer.open(
            softhsm.uri(CONTRACT_TOKEN, object="no-such-key"),
            module=softhsm.module_path,
            pin=PINS[CONTRACT_TOKEN],
        )
    assert caught.value.message == (
        f"no private key labelled 'no-such-key' on token {CONTRACT_TOKEN!r}"
    )
    assert caught.value.hint is not None
    assert "'contract-ed25519'" in caught.value.hint


def test_key_by_id(softhsm: TestHSM) -> None:
    expected = softhsm.contract_key(KeyAlgorithm.ECDSA_P384)
    assert expected.id is not None
    signer = Pkcs11Signer.open(
        Pkcs11Uri(token=CONTRACT_TOKEN, id=expected.id),
        module=softhsm.module_path,
        pin=PINS[CONTRACT_TOKEN],
    )
    assert signer.uri == expected
    assert signer.label == "contract-ecdsa-p384"
    assert signer.object_id == expected.id


def test_uri_must_name_a_private_key(softhsm: TestHSM) -> None:
    with pytest.raises(UsageError, match="names no key"):
        Pkcs11Signer.open(softhsm.uri(CONTRACT_TOKEN), module=softhsm.module_path, pin="x")
    with pytest.raises(UsageError, match="names a cert object"):
        Pkcs11Signer.open(
            softhsm.uri(CONTRACT_TOKEN, object="a", type="cert"),
            module=softhsm.module_path,
            pin="x",
        )
    with pytest.raises(FormatError, match="pin-value is refused"):
        load_signer("pkcs11:token=a;object=b?pin-value=1234", module=softhsm.module_path)


def test_label_already_exists_on_generate(softhsm: TestHSM) -> None:
    token = _module(softhsm).find_token(label=SPARE_TOKEN)
    session = token.session(PINS[SPARE_TOKEN])
    generate_key(session, KeyAlgorithm.ED25519, "taken")
    with pytest.raises(HSMError) as caught:
        generate_key(session, KeyAlgorithm.ECDSA_P256, "taken")
    assert caught.value.message == f"token {SPARE_TOKEN!r} already holds an object labelled 'taken'"
    assert token.object_labels().count("taken") == 1


def test_generate_with_a_token_needs_a_login(softhsm: TestHSM, tmp_path: Path) -> None:
    token = _module(softhsm).find_token(label=SPARE_TOKEN)
    token.session(PINS[SPARE_TOKEN])
    signer = generate_key(
        token,
        KeyAlgorithm.ECDSA_P256,
        "via-token",
        key_id=b"\x01\x02",
        uri=f"pkcs11:token={SPARE_TOKEN}?pin-source=/run/pin",
    )
    assert signer.object_id == b"\x01\x02"
    assert str(signer.uri).endswith(";object=via-token;id=%01%02;type=private?pin-source=/run/pin")
    assert signer.token_info.label == SPARE_TOKEN
    assert key_attributes(signer)["NEVER_EXTRACTABLE"] is True


def test_generated_key_reopens_with_the_same_public_key(softhsm: TestHSM) -> None:
    token = _module(softhsm).find_token(label=SPARE_TOKEN)
    generated = generate_key(
        token.session(PINS[SPARE_TOKEN]),
        KeyAlgorithm.ECDSA_P384,
        "reopen",
        scheme=Scheme.ECDSA_P384_SHA384,
    )
    reopened = Pkcs11Signer.open(generated.uri, module=softhsm.module_path, pin=PINS[SPARE_TOKEN])
    assert reopened.key_id == generated.key_id
    assert reopened.uri == generated.uri


def test_scheme_must_fit_the_key(softhsm: TestHSM) -> None:
    softhsm.contract_key(KeyAlgorithm.ED25519)
    with pytest.raises(UsageError, match="needs a ecdsa-p256 key, not ed25519"):
        softhsm.open(KeyAlgorithm.ED25519, Scheme.ECDSA_P256_SHA256)


def test_pss_with_a_different_mgf1_hash_is_refused(softhsm: TestHSM) -> None:
    key = softhsm.open(KeyAlgorithm.RSA_3072, Scheme.RSA_PSS_3072_SHA256).private_key()
    assert isinstance(key, rsa.RSAPrivateKey)
    with pytest.raises(UsageError, match="MGF1 with the same hash"):
        key.sign(b"x", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA384())
    signature = key.sign(
        b"x", padding.PSS(padding.MGF1(hashes.SHA384()), padding.PSS.MAX_LENGTH), hashes.SHA384()
    )
    key.public_key().verify(
        signature,
        b"x",
        padding.PSS(padding.MGF1(hashes.SHA384()), padding.PSS.AUTO),
        hashes.SHA384(),
    )


def test_token_keys_refuse_decrypt_and_exchange(softhsm: TestHSM) -> None:
    rsa_key = softhsm.open(KeyAlgorithm.RSA_3072).private_key()
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    with pytest.raises(UsageError, match="decryption is not possible"):
        rsa_key.decrypt(b"x", padding.PKCS1v15())
