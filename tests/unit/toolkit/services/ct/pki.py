"""Precertificates and final certificates for CT tests, built independently with cryptography.

A precertificate is the Fulcio-profile leaf of :mod:`tests.support.factory`
with the poison extension last; the final certificate is built from the same
builder with the SCT list extension last instead, so that its
``tbs_precertificate_bytes`` is the precertificate's TBS without poison.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.factory import CertificateAuthority
from toolkit.services.ct.sct import PRECERT_POISON, SignedCertificateTimestamp, sct_list_extension

__all__ = ["Precert", "der", "make_precert"]

NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def der(cert: x509.Certificate) -> bytes:
    """DER of a certificate."""
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Precert:
    """A precertificate, its chain, and how to finish it.

    Attributes:
        cert: The precertificate.
        chain: DER chain for ``add-pre-chain``: precert, intermediate, root.
        builder: The builder without poison or SCT list.
        ca: The issuing CA.
    """

    cert: x509.Certificate
    chain: list[bytes]
    builder: x509.CertificateBuilder
    ca: CertificateAuthority

    def finish(self, sct: SignedCertificateTimestamp) -> x509.Certificate:
        """The final certificate with ``sct`` embedded."""
        return self.builder.add_extension(sct_list_extension([sct]), critical=False).sign(
            self.ca.intermediate_key, hashes.SHA384()
        )


def _key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def make_precert(
    ca: CertificateAuthority,
    *,
    email: str = "signer@airseal.test",
    poison: bool = True,
    poison_critical: bool = True,
    leaf_ca: bool = False,
    tweak: Callable[[x509.CertificateBuilder], x509.CertificateBuilder] | None = None,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
) -> Precert:
    """A Fulcio-profile precertificate issued by ``ca``'s intermediate."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.intermediate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + dt.timedelta(minutes=10))
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.intermediate_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
    )
    if leaf_ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    if tweak is not None:
        builder = tweak(builder)
    pre = builder
    if poison:
        pre = pre.add_extension(PRECERT_POISON, critical=poison_critical)
    cert = pre.sign(signing_key or ca.intermediate_key, hashes.SHA384())
    return Precert(cert, [der(cert), der(ca.intermediate), der(ca.root)], builder, ca)
