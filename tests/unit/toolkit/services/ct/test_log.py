"""The CT log core: accepted precertificates, refusals by slug, tree heads."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.factory import CertificateAuthority, FakeSigstore
from tests.unit.toolkit.services.ct.pki import NOT_BEFORE, Precert, der, make_precert
from toolkit import merkle
from toolkit.errors import Check, TransportError, UsageError, VerificationError
from toolkit.models.common import TimeRange
from toolkit.note import Checkpoint, Note
from toolkit.services._http import ProblemError
from toolkit.services.ct.client import CTRefused, LocalCTClient
from toolkit.services.ct.log import MAX_CERT_BYTES, MAX_CHAIN, CTLog
from toolkit.services.ct.sct import (
    OID_SCT_LIST,
    PRECERT_POISON,
    SignedCertificateTimestamp,
    issuer_key_hash,
    merkle_tree_leaf,
    precert_tbs,
    sct_list_extension,
    tree_head_signing_input,
)
from toolkit.services.log import tiles
from toolkit.services.log.storage import MemoryCoordinator, MemoryTileStore
from toolkit.signing import KeyAlgorithm, SoftwareSigner
from toolkit.verify._x509 import CTLogKey, verify_sct

FAKE = FakeSigstore("ct-log-tests")
CA = FAKE.ca
OTHER_CA = CertificateAuthority.create("ct-log-tests-stranger")
ORIGIN = "ctfe.airseal.test"
NOW = 1_790_000_000.25

T = TypeVar("T")


def _ctlog(**kwargs: object) -> CTLog:
    options: dict[str, object] = {"max_wait": 0.0, "clock": lambda: NOW}
    options.update(kwargs)
    return CTLog(
        MemoryCoordinator(),
        MemoryTileStore(),
        SoftwareSigner(FAKE.ct_key),
        ORIGIN,
        [CA.root],
        **options,  # type: ignore[arg-type]
    )


def _run(body: Callable[[CTLog], Awaitable[T]], ctlog: CTLog | None = None) -> T:
    log = ctlog or _ctlog()

    async def main() -> T:
        await log.start()
        try:
            return await body(log)
        finally:
            await log.stop()

    return asyncio.run(main())


def _ctlogs() -> dict[bytes, list[CTLogKey]]:
    valid = TimeRange(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    return {FAKE.ct_log_id: [CTLogKey(FAKE.ct_key.public_key(), valid, FAKE.ctlog_url)]}


# --------------------------------------------------------------------------- accepted


def test_sct_embedded_in_the_final_certificate_verifies_with_the_project_verifier() -> None:
    precert = make_precert(CA)
    sct = _run(lambda log: log.add_pre_chain(precert.chain))
    assert sct.log_id == FAKE.ct_log_id
    assert sct.timestamp == int(NOW * 1000)
    final = precert.finish(sct)
    stamp = verify_sct(final, [final, CA.intermediate, CA.root], _ctlogs())
    assert int(stamp.timestamp() * 1000) == sct.timestamp
    # cryptography parses the embedded list back to the same SCT.
    parsed = x509.load_der_x509_certificate(der(final)).extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    )
    assert [item.signature for item in parsed.value] == [sct.signature]


def test_a_wrong_final_certificate_does_not_verify() -> None:
    precert = make_precert(CA)
    sct = _run(lambda log: log.add_pre_chain(precert.chain))
    # Another leaf with the same SCT: the signature covers the precert TBS.
    other = make_precert(CA).finish(sct)
    with pytest.raises(VerificationError, match="does not verify") as info:
        verify_sct(other, [other, CA.intermediate, CA.root], _ctlogs())
    assert info.value.check is Check.CERT_SCT


def test_the_logged_entry_is_the_merkle_tree_leaf() -> None:
    precert = make_precert(CA)

    async def body(log: CTLog) -> tuple[SignedCertificateTimestamp, bytes | None, int]:
        sct = await log.add_pre_chain(precert.chain)
        return sct, log.engine.read("tile/entries/000.p/1"), log.tree_size()

    sct, bundle, size = _run(body)
    assert size == 1
    assert bundle is not None
    (entry,) = tiles.decode_bundle(bundle)
    expected = merkle_tree_leaf(
        sct.timestamp, issuer_key_hash(CA.intermediate), precert_tbs(precert.chain[0])
    )
    assert entry == expected


def test_the_root_may_be_left_out_of_the_chain() -> None:
    precert = make_precert(CA)
    sct = _run(lambda log: log.add_pre_chain(precert.chain[:2]))
    final = precert.finish(sct)
    verify_sct(final, [final, CA.intermediate, CA.root], _ctlogs())


def _root_issued(serial: int) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(CA.root.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + dt.timedelta(minutes=10))
        .add_extension(PRECERT_POISON, critical=True)
        .sign(CA.root_key, hashes.SHA384())
    )


def test_a_precert_issued_by_the_root_itself() -> None:
    first, second = _root_issued(5), _root_issued(6)

    async def body(log: CTLog) -> int:
        await log.add_pre_chain([der(first)])
        await log.add_pre_chain([der(second), der(CA.root)])
        return log.tree_size()

    assert _run(body) == 2


def test_the_same_precert_in_the_same_millisecond_is_one_entry() -> None:
    precert = make_precert(CA)

    async def body(log: CTLog) -> tuple[SignedCertificateTimestamp, ...]:
        one = await log.add_pre_chain(precert.chain)
        two = await log.add_pre_chain(precert.chain)
        assert log.tree_size() == 1
        return one, two

    one, two = _run(body)
    assert one.timestamp == two.timestamp


def test_tree_grows_by_one_per_accepted_precert_with_batching() -> None:
    chains = [make_precert(CA).chain for _ in range(40)]

    async def body(log: CTLog) -> tuple[int, list[SignedCertificateTimestamp]]:
        scts = await asyncio.gather(*(log.add_pre_chain(chain) for chain in chains))
        return log.tree_size(), list(scts)

    size, scts = _run(body, _ctlog(max_wait=0.01, batch_size=16))
    assert size == 40
    assert len({sct.signature for sct in scts}) == 40


def test_sth_signature_verifies_and_is_cached_per_size() -> None:
    async def body(log: CTLog) -> tuple[object, ...]:
        first = log.sth()
        again = log.sth()
        await log.add_pre_chain(make_precert(CA).chain)
        second = log.sth()
        return first, again, second, log.engine.checkpoint()

    first, again, second, checkpoint = _run(body)
    assert first is again
    assert first.tree_size == 0  # type: ignore[attr-defined]
    assert first.root_hash == merkle.EMPTY_ROOT  # type: ignore[attr-defined]
    assert second.tree_size == 1  # type: ignore[attr-defined]
    parsed = Checkpoint.from_text(Note.parse(checkpoint.decode()).text)  # type: ignore[attr-defined]
    document = second.to_json()  # type: ignore[attr-defined]
    assert document["tree_size"] == 1
    assert document["timestamp"] >= int(NOW * 1000)
    assert base64.b64decode(document["sha256_root_hash"]) == parsed.root_hash
    signed = base64.b64decode(document["tree_head_signature"])
    assert signed[:2] == b"\x04\x03"
    assert int.from_bytes(signed[2:4], "big") == len(signed) - 4
    FAKE.ct_key.public_key().verify(
        signed[4:],
        tree_head_signing_input(document["timestamp"], 1, parsed.root_hash),
        ec.ECDSA(hashes.SHA256()),
    )


def test_sth_before_start_is_503() -> None:
    with pytest.raises(ProblemError) as info:
        _ctlog().sth()
    assert (info.value.status, info.value.slug) == (503, "log-unavailable")


def test_the_checkpoint_is_signed_with_the_ct_key_under_its_origin() -> None:
    async def body(log: CTLog) -> bytes:
        await log.add_pre_chain(make_precert(CA).chain)
        return log.engine.checkpoint()

    text = _run(body).decode()
    assert text.startswith(f"{ORIGIN}\n1\n")
    assert f"\n— {ORIGIN} " in text


# --------------------------------------------------------------------------- refused


def _refused(chain: list[bytes], slug: str, ctlog: CTLog | None = None) -> ProblemError:
    async def body(log: CTLog) -> ProblemError:
        with pytest.raises(ProblemError) as info:
            await log.add_pre_chain(chain)
        assert log.tree_size() == 0
        return info.value

    error = _run(body, ctlog)
    assert error.status == 400
    assert error.slug == slug, error.detail
    return error


def _issue(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA384())


def _intermediate(
    *, ca: bool = True, eku: list[x509.ObjectIdentifier] | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "odd issuer")]))
        .issuer_name(CA.root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + dt.timedelta(days=30))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return key, _issue(builder, CA.root_key)


def _under(key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate) -> list[bytes]:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    pre = _issue(
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(leaf_key.public_key())
        .serial_number(9)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + dt.timedelta(minutes=10))
        .add_extension(PRECERT_POISON, critical=True),
        key,
    )
    return [der(pre), der(issuer), der(CA.root)]


def test_refuses_an_empty_chain() -> None:
    _refused([], "bad-chain")


def test_refuses_a_long_chain() -> None:
    _refused(make_precert(CA).chain + [der(CA.root)] * MAX_CHAIN, "bad-chain")


def test_refuses_an_oversized_certificate() -> None:
    _refused([bytes(MAX_CERT_BYTES + 1)], "bad-chain")


@pytest.mark.parametrize("position", [0, 1, 2])
def test_refuses_garbage_der(position: int) -> None:
    chain = make_precert(CA).chain
    chain[position] = b"\x30\x03\x02\x01\x01"
    _refused(chain, "bad-chain")


def test_refuses_trailing_bytes() -> None:
    chain = make_precert(CA).chain
    chain[0] += b"\x00"
    _refused(chain, "bad-chain")


def test_refuses_a_final_certificate() -> None:
    _refused(make_precert(CA, poison=False).chain, "not-a-precertificate")


def test_refuses_a_non_critical_poison() -> None:
    _refused(make_precert(CA, poison_critical=False).chain, "not-a-precertificate")


def test_refuses_a_precert_that_already_has_scts() -> None:
    precert = make_precert(CA)
    signature = FAKE.ct_key.sign(b"x", ec.ECDSA(hashes.SHA256()))
    sct = SignedCertificateTimestamp(FAKE.ct_log_id, 1, signature)
    with_scts = make_precert(
        CA, tweak=lambda b: b.add_extension(sct_list_extension([sct]), critical=False)
    )
    assert with_scts.cert.extensions.get_extension_for_oid(OID_SCT_LIST)
    assert precert.chain[1:] == with_scts.chain[1:]
    _refused(with_scts.chain, "not-a-precertificate")


def test_refuses_a_ca_precertificate() -> None:
    _refused(make_precert(CA, leaf_ca=True).chain, "not-a-leaf")


def test_refuses_a_precert_signed_by_another_key() -> None:
    stranger = ec.generate_private_key(ec.SECP384R1())
    _refused(make_precert(CA, signing_key=stranger).chain, "bad-signature")


def test_refuses_a_chain_out_of_order() -> None:
    chain = make_precert(CA).chain
    _refused([chain[0], chain[2], chain[1]], "bad-signature")


def test_refuses_an_intermediate_from_another_ca() -> None:
    chain = make_precert(CA).chain
    _refused([chain[0], der(OTHER_CA.intermediate), der(OTHER_CA.root)], "bad-signature")


def test_refuses_an_unknown_root() -> None:
    _refused(make_precert(OTHER_CA).chain, "unknown-root")
    _refused(make_precert(OTHER_CA).chain[:2], "unknown-root")


def test_refuses_a_forged_root_with_the_right_name() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    forged = _issue(
        x509.CertificateBuilder()
        .subject_name(CA.root.subject)
        .issuer_name(CA.root.subject)
        .public_key(key.public_key())
        .serial_number(3)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True),
        key,
    )
    precert = _under(key, forged)
    _refused(precert[:2], "unknown-root")


def test_refuses_an_issuer_that_is_not_a_ca() -> None:
    key, issuer = _intermediate(ca=False)
    _refused(_under(key, issuer), "issuer-not-ca")


def test_refuses_a_precertificate_signing_certificate() -> None:
    key, issuer = _intermediate(
        eku=[x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4"), ExtendedKeyUsageOID.CODE_SIGNING]
    )
    _refused(_under(key, issuer), "unsupported-preissuer")


def test_refuses_only_a_root() -> None:
    _refused([der(CA.root)], "not-a-precertificate")


def test_refused_chains_do_not_grow_the_tree_but_good_ones_still_do() -> None:
    good = make_precert(CA).chain

    async def body(log: CTLog) -> int:
        for chain in ([], make_precert(CA, poison=False).chain, make_precert(OTHER_CA).chain):
            with pytest.raises(ProblemError):
                await log.add_pre_chain(chain)
        await log.add_pre_chain(good)
        return log.tree_size()

    assert _run(body) == 1


def test_pool_full_is_503_with_retry_after() -> None:
    chains = [make_precert(CA).chain for _ in range(3)]

    async def body(log: CTLog) -> list[object]:
        return list(
            await asyncio.gather(
                *(log.add_pre_chain(chain) for chain in chains), return_exceptions=True
            )
        )

    results = _run(body, _ctlog(max_pending=1, max_wait=0.05))
    errors = [r for r in results if isinstance(r, ProblemError)]
    assert errors
    assert all((e.status, e.slug) == (503, "pool-full") for e in errors)
    assert all(e.headers["Retry-After"].isdigit() for e in errors)


def test_a_stopped_log_is_503() -> None:
    log = _ctlog()

    async def main() -> ProblemError:
        await log.start()
        await log.stop()
        with pytest.raises(ProblemError) as info:
            await log.add_pre_chain(make_precert(CA).chain)
        return info.value

    error = asyncio.run(main())
    assert (error.status, error.slug) == (503, "log-unavailable")


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.ED25519, KeyAlgorithm.ECDSA_P384])
def test_refuses_keys_other_than_p256(algorithm: KeyAlgorithm) -> None:
    with pytest.raises(UsageError, match="P-256"):
        CTLog(
            MemoryCoordinator(),
            MemoryTileStore(),
            SoftwareSigner.generate(algorithm),
            ORIGIN,
            [CA.root],
        )


def test_needs_a_root() -> None:
    with pytest.raises(UsageError, match="root"):
        CTLog(MemoryCoordinator(), MemoryTileStore(), SoftwareSigner(FAKE.ct_key), ORIGIN, [])


def test_log_id_is_the_sha256_of_the_spki() -> None:
    log = _ctlog()
    assert log.log_id == FAKE.ct_log_id
    listed = FAKE.trusted_root()["ctlogs"][0]["publicKey"]["rawBytes"]
    assert base64.b64encode(log.public_key_der).decode() == listed


# --------------------------------------------------------------------------- LocalCTClient


def test_local_client_returns_checked_scts_and_maps_refusals() -> None:
    precert: Precert = make_precert(CA)

    async def body(log: CTLog) -> SignedCertificateTimestamp:
        client = LocalCTClient(log, verify=True)
        with pytest.raises(CTRefused) as info:
            await client.add_pre_chain(make_precert(CA, poison=False).chain)
        assert info.value.slug == "not-a-precertificate"
        sct = await client.add_pre_chain(precert.chain)
        await client.aclose()
        return sct

    sct = _run(body)
    final = precert.finish(sct)
    verify_sct(final, [final, CA.intermediate, CA.root], _ctlogs())


def test_local_client_maps_pushback_to_transport_error() -> None:
    log = _ctlog()

    async def main() -> None:
        await log.start()
        await log.stop()
        with pytest.raises(TransportError):
            await LocalCTClient(log).add_pre_chain(make_precert(CA).chain)

    asyncio.run(main())


def test_sigstore_python_verifies_the_embedded_sct(tmp_path: Path) -> None:
    # sigstore-python as an oracle: the SCT check it runs on every Fulcio certificate.
    from sigstore._internal.sct import verify_sct as sigstore_verify_sct
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import TrustedRoot

    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(FAKE.trusted_root()))
    root = TrustedRoot.from_file(str(path))
    precert = make_precert(CA)
    sct = _run(lambda log: log.add_pre_chain(precert.chain))
    final = precert.finish(sct)
    for purpose in (KeyringPurpose.SIGN, KeyringPurpose.VERIFY):
        sigstore_verify_sct(final, [CA.intermediate, CA.root], root.ct_keyring(purpose))
    tampered = make_precert(CA).finish(sct)
    with pytest.raises(SigstoreVerificationError):
        sigstore_verify_sct(
            tampered, [CA.intermediate, CA.root], root.ct_keyring(KeyringPurpose.VERIFY)
        )
