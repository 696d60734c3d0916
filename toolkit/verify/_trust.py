"""Trust material prepared once from a TrustedRoot for many verifications.

Parsing certificates and keys, checking that every CA chain ends in a
root certificate and hashing CA keys happen here, at construction (TSA chains
are validated on the first timestamp),
so that each bundle verification pays only for what depends on the bundle.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.verification import Store

from toolkit.errors import Check, FormatError
from toolkit.models.common import PublicKeyDetails, TimeRange
from toolkit.models.trustroot import CertificateAuthority, TransparencyLogInstance, TrustedRoot
from toolkit.note import ECDSANoteVerifier, Ed25519NoteVerifier, Note, NoteVerifier
from toolkit.verify import _keys
from toolkit.verify._x509 import CTLogKey, spki_hash

if TYPE_CHECKING:
    from toolkit.verify._rfc3161 import TimestampVerifier

__all__ = ["CAChain", "TransparencyLog", "TrustMaterial", "note_name", "note_verifiers"]


def _bad(detail: str) -> FormatError:
    return FormatError(detail, check=Check.TRUST_ROOT_PARSE)


# Internal records are NamedTuples rather than dataclasses: they are built once
# per trusted root and cost far less to define at import time.
class TransparencyLog(NamedTuple):
    """A transparency log the trusted root vouches for."""

    base_url: str
    note_name: str
    log_id: bytes
    key: _keys.VerifyingKey
    details: PublicKeyDetails
    valid_for: TimeRange
    note_verifier: NoteVerifier


class CAChain(NamedTuple):
    """One certificate authority: its chain (root last) and validity window."""

    certificates: tuple[x509.Certificate, ...]
    valid_for: TimeRange
    uri: str


def note_name(base_url: str) -> str:
    """The signed-note signer name of a log: its base URL without the scheme.

    ``https://rekor.example/`` gives ``rekor.example``; a path is kept
    (``https://example.com/log`` gives ``example.com/log``), as C2SP origins do.
    """
    parts = urlsplit(base_url)
    host = parts.netloc or parts.path
    path = parts.path.rstrip("/") if parts.netloc else ""
    return f"{host}{path}"


def _load_certs(ca: CertificateAuthority, where: str) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for i, item in enumerate(ca.cert_chain.certificates):
        try:
            certs.append(x509.load_der_x509_certificate(item.raw_bytes))
        except (ValueError, x509.InvalidVersion) as exc:
            raise _bad(f"{where}.certChain.certificates[{i}] is not a certificate: {exc}") from None
    root = certs[-1]
    # The last certificate must be a root: self-issued and a CA. Its own
    # signature is not checked: a trust anchor is trusted because the root
    # lists it, and verifying its self-signature adds no assurance (RFC 5280
    # §6.1) while costing a P-384 verification per CA on every start.
    if root.subject != root.issuer or not _is_ca(root):
        raise _bad(
            f"{where}.certChain does not end in a root certificate (self-issued CA); "
            f"the last one is {root.subject.rfc4514_string()!r}, issued by "
            f"{root.issuer.rfc4514_string()!r}"
        )
    return tuple(certs)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        return False


def note_verifiers(log: TransparencyLog, note: Note) -> list[NoteVerifier]:
    """Verifiers of ``log``'s key for the signer names that may stand for the log.

    The log's own name (its base URL without the scheme) always counts; so does
    any name on the note that is part of the base URL, as sigstore-js accepts
    (logs are often named after their host, ``localhost`` for
    ``http://localhost:3000``). The key hint, and for Ed25519 the name inside
    it, must still match and the signature must verify.
    """
    verifiers = [log.note_verifier]
    for name in {s.name for s in note.signatures}:
        if name != log.note_name and name in log.base_url:
            try:
                verifiers.append(_make_note_verifier(name, log.key))
            except ValueError:
                continue
    return verifiers


def _make_note_verifier(name: str, key: _keys.VerifyingKey) -> NoteVerifier:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Ed25519NoteVerifier(name, key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECDSANoteVerifier(name, key)
    raise ValueError(f"{type(key).__name__} keys cannot sign checkpoints")


class TrustMaterial:
    """Keys, chains and caches derived from one TrustedRoot.

    Args:
        root: The parsed trusted root.

    Raises:
        FormatError: ``trust-root.parse`` when a key or certificate is malformed.
    """

    def __init__(self, root: TrustedRoot) -> None:
        self.root = root
        self.tlogs: dict[bytes, list[TransparencyLog]] = {}
        for i, tlog in enumerate(root.tlogs):
            prepared = self._prepare_tlog(tlog, f"tlogs[{i}]")
            if prepared is not None:
                self.tlogs.setdefault(prepared.log_id, []).append(prepared)
        self.ctlogs: dict[bytes, list[CTLogKey]] = {}
        for i, ctlog in enumerate(root.ctlogs):
            key = self._load_key(ctlog, f"ctlogs[{i}]")
            if key is None:
                continue
            assert ctlog.public_key.valid_for is not None
            log_id = hashlib.sha256(_keys.spki_der(key)).digest()
            self.ctlogs.setdefault(log_id, []).append(
                CTLogKey(key=key, valid_for=ctlog.public_key.valid_for, base_url=ctlog.base_url)
            )
        self.cas: tuple[CAChain, ...] = tuple(
            CAChain(
                certificates=_load_certs(ca, f"certificateAuthorities[{i}]"),
                valid_for=ca.valid_for,
                uri=ca.uri,
            )
            for i, ca in enumerate(root.certificate_authorities)
        )
        # Serialising a P-384 key costs tens of microseconds; the SCT check needs
        # the issuer's SPKI hash for every bundle, so hash each CA key once.
        self.key_hashes: dict[x509.Certificate, bytes] = {}
        for i, ca in enumerate(self.cas):
            for cert in ca.certificates:
                try:
                    self.key_hashes[cert] = spki_hash(cert)
                except (ValueError, UnsupportedAlgorithm) as exc:
                    raise _bad(
                        f"certificateAuthorities[{i}] holds a certificate with an unusable key: "
                        f"{exc}"
                    ) from None
        # TSA chains are parsed and checked now, but the RFC 3161 machinery
        # (and asn1crypto) is loaded only when a bundle carries a timestamp.
        self._tsa_chains = tuple(
            (_load_certs(tsa, f"timestampAuthorities[{i}]"), tsa, i)
            for i, tsa in enumerate(root.timestamp_authorities)
        )
        self._tsa_verifier: TimestampVerifier | None = None
        self._stores: dict[tuple[int, ...], Store] = {}

    @staticmethod
    def _load_key(log: TransparencyLogInstance, where: str) -> _keys.VerifyingKey | None:
        details = log.public_key.key_details
        if not _keys.supported(details):
            # A key airseal cannot use can never vouch for anything; skipping it
            # keeps the rest of the root usable without weakening any check.
            return None
        try:
            return _keys.load_verifying_key(log.public_key.raw_bytes, details)
        except _keys.KeySchemeError as exc:
            raise _bad(f"{where}.publicKey: {exc}") from None

    def _prepare_tlog(self, tlog: TransparencyLogInstance, where: str) -> TransparencyLog | None:
        key = self._load_key(tlog, where)
        if key is None:
            return None
        assert tlog.public_key.valid_for is not None
        name = note_name(tlog.base_url)
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            return None  # RSA logs sign SETs but cannot sign C2SP checkpoints.
        try:
            verifier = _make_note_verifier(name, key)
        except ValueError as exc:
            raise _bad(
                f"{where}.baseUrl {tlog.base_url!r} gives no usable log name: {exc}"
            ) from None
        return TransparencyLog(
            base_url=tlog.base_url,
            note_name=name,
            log_id=tlog.log_id.key_id,
            key=key,
            details=tlog.public_key.key_details,
            valid_for=tlog.public_key.valid_for,
            note_verifier=verifier,
        )

    @property
    def tsa_verifier(self) -> TimestampVerifier | None:
        """The verifier of the trusted TSAs, or None when the root lists none."""
        if not self._tsa_chains:
            return None
        if self._tsa_verifier is None:
            from toolkit.verify._rfc3161 import TimestampAuthority, TimestampVerifier

            self._tsa_verifier = TimestampVerifier(
                [
                    TimestampAuthority(
                        certificates=certs,
                        valid_from=tsa.valid_for.start,
                        valid_until=tsa.valid_for.end,
                        name=tsa.uri or tsa.subject.common_name or f"timestampAuthorities[{i}]",
                    )
                    for certs, tsa, i in self._tsa_chains
                ]
            )
        return self._tsa_verifier

    def store_at(self, moment: datetime) -> Store | None:
        """A certificate store of every CA valid at ``moment`` (None if there is none)."""
        chosen = tuple(i for i, ca in enumerate(self.cas) if ca.valid_for.contains(moment))
        if not chosen:
            return None
        store = self._stores.get(chosen)
        if store is None:
            store = Store([cert for i in chosen for cert in self.cas[i].certificates])
            self._stores[chosen] = store
        return store
