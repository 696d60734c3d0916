"""The offline Sigstore bundle verifier.

:meth:`Verifier.verify` is a pure function of (bundle, artifact, policy, trusted
root, time). It runs the numbered steps below in order and raises
:class:`~toolkit.errors.VerificationError` naming the first check that fails;
it never returns a boolean. The steps follow DESIGN.md §4 and the order of
sigstore-python's ``Verifier``:

1. Structure: media-type rules, exactly one log entry, key material, limits.
2. Trusted times: every RFC 3161 timestamp must verify against a trusted TSA;
   a Rekor v1 SET is verified before its integrated time is used.
3. Certificate chain, at each verified time, with ``cryptography.x509.verification``.
4. The embedded SCT, against the trusted CT logs.
5. The Fulcio leaf profile (not a CA, digitalSignature, codeSigning).
6. The identity policy (SAN, issuer, extra extensions).
7. The log entry: Merkle inclusion against the *signed* checkpoint's size and
   root, then the entry body recomputed from the bundle and compared.
8. The signature over the artifact digest, or over the DSSE PAE with the
   in-toto subject matched against the artifact.

Managed-key bundles (``publicKey`` hint) skip steps 3 to 6 and use the key of
the :class:`KeyPolicy`.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ExtendedKeyUsage
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
)
from cryptography.x509.verification import (
    VerificationError as X509VerificationError,
)

from toolkit import merkle
from toolkit.encoding import b64decode, load_json
from toolkit.errors import Check, FormatError, VerificationError
from toolkit.models._base import load_document
from toolkit.models.bundle import Bundle
from toolkit.models.common import HashAlgorithm, PublicKeyDetails
from toolkit.models.rekor import TransparencyLogEntry
from toolkit.models.trustroot import TrustedRoot
from toolkit.note import Checkpoint, Note
from toolkit.verify import _keys, _x509
from toolkit.verify._trust import TransparencyLog, TrustMaterial, note_verifiers
from toolkit.verify.artifact import Artifact
from toolkit.verify.policy import IdentityPolicy, KeyPolicy, Policy

__all__ = ["MAX_TIMESTAMPS", "VerificationResult", "VerifiedTime", "Verifier"]

#: How far in the future a verified time may lie before it is refused.
FUTURE_SKEW: Final = timedelta(minutes=5)
IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
_IN_TOTO_TYPES: Final = frozenset(
    {"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"}
)
_V1_HASHES: Final = {
    "sha256": HashAlgorithm.SHA2_256,
    "sha384": HashAlgorithm.SHA2_384,
    "sha512": HashAlgorithm.SHA2_512,
}
_SUPPORTED_KINDS: Final = {
    ("hashedrekord", "0.0.1"),
    ("hashedrekord", "0.0.2"),
    ("dsse", "0.0.1"),
}

#: More RFC 3161 timestamps than this are refused (sigstore-go and -python agree).
MAX_TIMESTAMPS: Final = 32

# Fulcio leaves carry codeSigning, not the clientAuth EKU WebPKI client
# verifiers require; relaxing only the EKU rule keeps every other default.
_CA_POLICY: Final = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    ExtendedKeyUsage, Criticality.NON_CRITICAL, None
)
_EE_POLICY: Final = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    ExtendedKeyUsage, Criticality.NON_CRITICAL, None
)


@dataclass(frozen=True)
class VerifiedTime:
    """A time established by a signature: a TSA timestamp or a log SET."""

    source: Literal["tsa", "tlog"]
    time: datetime
    authority: str

    def to_dict(self) -> dict[str, str]:
        """JSON form used by ``airseal verify --json``."""
        return {
            "source": self.source,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "authority": self.authority,
        }


@dataclass(frozen=True)
class VerificationResult:
    """What a successful verification established."""

    bundle_media_type: str
    content: Literal["messageSignature", "dsseEnvelope"]
    identity: str | None
    issuer: str | None
    log_url: str
    log_index: int
    tree_size: int
    times: tuple[VerifiedTime, ...]
    payload_type: str | None = None
    payload: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``airseal verify --json`` (documented in docs/formats/bundle.md)."""
        return {
            "ok": True,
            "check": None,
            "message": "verified",
            "identity": self.identity,
            "issuer": self.issuer,
            "content": self.content,
            "mediaType": self.bundle_media_type,
            "log": {"url": self.log_url, "index": self.log_index, "treeSize": self.tree_size},
            "times": [t.to_dict() for t in self.times],
        }


class _State:
    """What the steps learn about one bundle as they go (mutable, internal)."""

    __slots__ = (
        "artifact",
        "bundle",
        "chain",
        "entry",
        "identity",
        "issuer",
        "key",
        "key_details",
        "leaf",
        "log",
        "now",
        "policy",
        "set_verified",
        "signed_digest",
        "times",
    )

    def __init__(
        self,
        *,
        bundle: Bundle,
        artifact: Artifact,
        policy: Policy,
        now: datetime,
        entry: TransparencyLogEntry,
        leaf: x509.Certificate | None,
        key: _keys.VerifyingKey,
        key_details: PublicKeyDetails,
    ) -> None:
        self.bundle = bundle
        self.artifact = artifact
        self.policy = policy
        self.now = now
        self.entry = entry
        self.leaf = leaf
        self.key = key
        self.key_details = key_details
        self.times: list[VerifiedTime] = []
        self.chain: list[x509.Certificate] = []
        self.log: TransparencyLog | None = None
        self.signed_digest: tuple[HashAlgorithm, bytes] | None = None
        self.set_verified = False
        self.identity: str | None = None
        self.issuer: str | None = None


class Verifier:
    """Verifies Sigstore bundles offline against one trusted root.

    Build it once per trusted root: certificates, keys and TSA chains are
    parsed and pre-validated here, so each :meth:`verify` pays only for the
    bundle.

    Args:
        trusted_root: The trust material.

    Raises:
        FormatError: ``trust-root.parse`` when the root holds malformed keys or
            certificates, or a CA chain that does not end in a root certificate.
    """

    def __init__(self, trusted_root: TrustedRoot) -> None:
        self._trust = TrustMaterial(trusted_root)

    @classmethod
    def from_json(cls, data: bytes | str) -> Verifier:
        """Build a verifier from trusted-root JSON (or a ClientTrustConfig)."""
        value = load_document(data, "trusted root")
        if isinstance(value, dict) and "trustedRoot" in value:
            from toolkit.models.signing_config import ClientTrustConfig

            return cls(ClientTrustConfig.from_dict(value).trusted_root)
        return cls(TrustedRoot.from_dict(value))

    @property
    def trusted_root(self) -> TrustedRoot:
        """The trusted root this verifier uses."""
        return self._trust.root

    def verify(
        self,
        bundle: Bundle | bytes | str,
        artifact: Artifact,
        policy: Policy,
        *,
        now: datetime,
    ) -> VerificationResult:
        """Verify a bundle for an artifact under a policy.

        Args:
            bundle: A parsed bundle, or its JSON.
            artifact: The artifact (or its digest) the bundle must cover.
            policy: The identity or managed key to accept.
            now: The current time; verified times later than this (plus five
                minutes of skew) are refused.

        Returns:
            What was verified: identity, issuer, log entry and times.

        Raises:
            VerificationError: Naming the first check that failed.
        """
        if now.tzinfo is None:
            raise ValueError("verify() needs an aware datetime for now")
        if not isinstance(bundle, Bundle):
            try:
                bundle = Bundle.from_json(bundle)
            except FormatError as exc:
                raise VerificationError(exc.check or Check.BUNDLE_PARSE, exc.message) from None
        state = self._step1_structure(bundle, artifact, policy, now)
        self._step2_trusted_times(state)
        if state.leaf is not None:
            assert isinstance(policy, IdentityPolicy)
            self._step3_chain(state, state.leaf)
            self._step4_sct(state, state.leaf)
            _x509.check_leaf_profile(state.leaf)  # step 5
            state.identity, state.issuer = policy.check(state.leaf)  # step 6
        self._step7_tlog(state)
        self._step8_signature(state)
        envelope = bundle.dsse_envelope
        assert state.log is not None and state.entry.inclusion_proof is not None
        return VerificationResult(
            bundle_media_type=bundle.media_type.value,
            content="dsseEnvelope" if envelope is not None else "messageSignature",
            identity=state.identity,
            issuer=state.issuer,
            log_url=state.log.base_url,
            # Only a verified SET vouches for a Rekor v1 entry's global index;
            # otherwise report the index the inclusion proof proved.
            log_index=(
                state.entry.log_index
                if state.set_verified
                else state.entry.inclusion_proof.log_index
            ),
            tree_size=state.entry.inclusion_proof.tree_size,
            times=tuple(state.times),
            payload_type=envelope.payload_type if envelope is not None else None,
            payload=envelope.payload if envelope is not None else None,
        )

    # Step 1 ------------------------------------------------------------------

    def _step1_structure(
        self, bundle: Bundle, artifact: Artifact, policy: Policy, now: datetime
    ) -> _State:
        material = bundle.verification_material
        version = bundle.media_type.version
        if version >= (0, 3) and material.x509_certificate_chain is not None:
            raise VerificationError(
                Check.BUNDLE_STRUCTURE,
                "v0.3 bundles carry a single certificate, not an x509CertificateChain",
            )
        # The key material is checked first, as sigstore-python does, so that a
        # bundle without a usable signer is reported as such.
        leaf: x509.Certificate | None = None
        if material.public_key is not None:
            if not isinstance(policy, KeyPolicy):
                raise VerificationError(
                    Check.KEY_MISMATCH,
                    "bundle is signed with a managed key; verify it with a public key, "
                    "not an identity",
                )
            try:
                key, details = _keys.as_verifying_key(policy.public_key)
            except _keys.KeySchemeError as exc:
                raise VerificationError(Check.KEY_MISMATCH, f"unusable public key: {exc}") from None
        else:
            if isinstance(policy, KeyPolicy):
                raise VerificationError(
                    Check.KEY_MISMATCH,
                    "bundle is signed with a certificate; verify it with an identity, "
                    "not a public key",
                )
            if material.certificate is not None:
                raw = material.certificate.raw_bytes
            else:
                chain = material.x509_certificate_chain
                assert chain is not None
                if not chain.certificates:
                    raise VerificationError(
                        Check.BUNDLE_STRUCTURE, "bundle certificate chain is empty"
                    )
                # Only the leaf is used: intermediates and roots come from the
                # trusted root, never from the bundle.
                raw = chain.certificates[0].raw_bytes
            try:
                leaf = x509.load_der_x509_certificate(raw)
                key, details = _keys.as_verifying_key(leaf.public_key())
            except (
                ValueError,
                x509.InvalidVersion,
                UnsupportedAlgorithm,
                _keys.KeySchemeError,
            ) as exc:
                raise VerificationError(
                    Check.CERT_PARSE, f"signing certificate is unusable: {exc}"
                ) from None
        entries = material.tlog_entries
        if len(entries) != 1:
            raise VerificationError(
                Check.BUNDLE_STRUCTURE, f"expected exactly one tlog entry, found {len(entries)}"
            )
        entry = entries[0]
        proof = entry.inclusion_proof
        if proof is None or proof.checkpoint is None:
            # Strict for every version: without a signed checkpoint an inclusion
            # proof proves nothing, and v0.1 bundles may not skip it either.
            raise VerificationError(
                Check.BUNDLE_STRUCTURE, "log entry has no inclusion proof with a signed checkpoint"
            )
        if version == (0, 1) and entry.inclusion_promise is None:
            raise VerificationError(
                Check.BUNDLE_STRUCTURE, "v0.1 bundles must carry an inclusion promise (SET)"
            )
        if bundle.dsse_envelope is not None and len(bundle.dsse_envelope.signatures) != 1:
            raise VerificationError(
                Check.DSSE_ENVELOPE,
                f"DSSE envelope must have exactly one signature, "
                f"found {len(bundle.dsse_envelope.signatures)}",
            )

        return _State(
            bundle=bundle,
            artifact=artifact,
            policy=policy,
            now=now,
            entry=entry,
            leaf=leaf,
            key=key,
            key_details=details,
        )

    # Step 2 ------------------------------------------------------------------

    def _step2_trusted_times(self, state: _State) -> None:
        stamps = state.bundle.verification_material.timestamps
        if stamps:
            tsa = self._trust.tsa_verifier
            if tsa is None:
                raise VerificationError(
                    Check.TIME_TSA,
                    "bundle carries RFC 3161 timestamps but the trusted root has no TSA",
                )
            if len(stamps) > MAX_TIMESTAMPS:
                # Refuse before parsing anything: the limit exists to bound work.
                raise VerificationError(
                    Check.TIME_TSA,
                    f"too many RFC 3161 timestamps: {len(stamps)} > {MAX_TIMESTAMPS}",
                )
            from toolkit.verify._rfc3161 import parse_timestamp_response

            tokens = []
            for i, stamp in enumerate(stamps):
                try:
                    tokens.append(parse_timestamp_response(stamp.signed_timestamp))
                except (FormatError, VerificationError) as exc:
                    raise VerificationError(
                        Check.TIME_TSA, f"timestamp #{i}: {exc.detail}"
                    ) from None
            for moment, authority in tsa.verify_all(tokens, state.bundle.signature):
                self._not_in_future(moment, state.now, Check.TIME_TSA)
                state.times.append(VerifiedTime("tsa", moment, authority))

        entry = state.entry
        if entry.inclusion_promise is not None:
            if not entry.integrated_time:
                raise VerificationError(
                    Check.TIME_SET, "log entry has an inclusion promise but no integrated time"
                )
            kind = (entry.kind_version.kind, entry.kind_version.version)
            if kind not in {("hashedrekord", "0.0.1"), ("dsse", "0.0.1")}:
                raise VerificationError(
                    Check.TIME_SET,
                    "integrated time is only meaningful for Rekor v1 entries, "
                    f"not {kind[0]} {kind[1]}",
                )
            try:
                moment = datetime.fromtimestamp(entry.integrated_time, tz=UTC)
            except (OverflowError, OSError, ValueError):
                raise VerificationError(
                    Check.TIME_SET, f"integrated time {entry.integrated_time} is out of range"
                ) from None
            log = self._verify_set(entry, moment)
            state.set_verified = True
            self._not_in_future(moment, state.now, Check.TIME_SET)
            state.times.append(VerifiedTime("tlog", moment, log.base_url))

        if not state.times:
            raise VerificationError(
                Check.TIME_NONE,
                "bundle has no verifiable time: neither an RFC 3161 timestamp nor a log SET",
            )

    @staticmethod
    def _not_in_future(moment: datetime, now: datetime, check: Check) -> None:
        if moment > now + FUTURE_SKEW:
            raise VerificationError(check, f"verified time {moment.isoformat()} lies in the future")

    def _verify_set(self, entry: TransparencyLogEntry, moment: datetime) -> TransparencyLog:
        logs = self._trust.tlogs.get(entry.log_id.key_id)
        if not logs:
            raise VerificationError(
                Check.TLOG_UNKNOWN_LOG,
                f"log {entry.log_id.key_id.hex()} is not in the trusted root",
            )
        payload = _set_payload(entry)
        assert entry.inclusion_promise is not None
        signature = entry.inclusion_promise.signed_entry_timestamp
        for log in logs:
            if not log.valid_for.contains(moment):
                continue
            if _keys.verify_message(log.key, signature, payload, HashAlgorithm.SHA2_256):
                return log
            raise VerificationError(
                Check.TLOG_SET, f"inclusion promise (SET) does not verify with {log.base_url}"
            )
        raise VerificationError(
            Check.TLOG_SET,
            f"no key of log {entry.log_id.key_id.hex()} was valid at the integrated time "
            f"{moment.isoformat()}",
        )

    # Step 3 and 4 ------------------------------------------------------------

    def _step3_chain(self, state: _State, leaf: x509.Certificate) -> None:
        for verified in state.times:
            moment = verified.time
            if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
                raise VerificationError(
                    Check.TIME_VALIDITY,
                    f"signing certificate was not valid at {moment.isoformat()} "
                    f"(valid {leaf.not_valid_before_utc.isoformat()} to "
                    f"{leaf.not_valid_after_utc.isoformat()}, time from {verified.authority})",
                )
            store = self._trust.store_at(moment)
            if store is None:
                raise VerificationError(
                    Check.CERT_CHAIN,
                    "no certificate authority in the trusted root was valid at "
                    f"{moment.isoformat()}",
                )
            builder = (
                PolicyBuilder()
                .store(store)
                .time(moment)
                .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            )
            try:
                state.chain = builder.build_client_verifier().verify(leaf, []).chain
            except (X509VerificationError, x509.UnsupportedGeneralNameType, ValueError) as exc:
                raise VerificationError(
                    Check.CERT_CHAIN,
                    f"signing certificate does not chain to a trusted CA at "
                    f"{moment.isoformat()}: {exc}",
                ) from None

    def _step4_sct(self, state: _State, leaf: x509.Certificate) -> None:
        _x509.verify_sct(leaf, state.chain, self._trust.ctlogs, self._trust.key_hashes)

    # Step 7 ------------------------------------------------------------------

    def _step7_tlog(self, state: _State) -> None:
        entry = state.entry
        kind = (entry.kind_version.kind, entry.kind_version.version)
        if kind not in _SUPPORTED_KINDS:
            raise VerificationError(
                Check.TLOG_KIND, f"unsupported log entry type {kind[0]} {kind[1]}"
            )
        is_dsse = state.bundle.dsse_envelope is not None
        if not is_dsse and kind[0] != "hashedrekord":
            raise VerificationError(
                Check.TLOG_KIND,
                f"a message signature must be logged as hashedrekord, not {kind[0]}",
            )
        if is_dsse and kind == ("hashedrekord", "0.0.1"):
            raise VerificationError(
                Check.TLOG_KIND, "a DSSE envelope cannot be logged as hashedrekord 0.0.1"
            )

        logs = self._trust.tlogs.get(entry.log_id.key_id)
        if not logs:
            raise VerificationError(
                Check.TLOG_UNKNOWN_LOG,
                f"log {entry.log_id.key_id.hex()} is not in the trusted root",
            )
        proof = entry.inclusion_proof
        assert proof is not None and proof.checkpoint is not None
        leaf_hash = merkle.leaf_hash(entry.canonicalized_body)
        merkle.verify_inclusion(
            leaf_hash, proof.log_index, proof.tree_size, proof.hashes, proof.root_hash
        )
        if kind[1] == "0.0.2" and entry.log_index != proof.log_index:
            # Rekor v2 logs are not sharded: the entry's index is the proven one.
            raise VerificationError(
                Check.TLOG_INCLUSION,
                f"entry logIndex {entry.log_index} differs from the proven index {proof.log_index}",
            )
        state.log, note, names = self._verify_checkpoint(state, logs, proof.checkpoint.envelope)
        try:
            checkpoint = Checkpoint.from_text(note.text)
        except FormatError as exc:
            raise VerificationError(Check.TLOG_CHECKPOINT, exc.detail) from None
        # The origin names the log (C2SP); Rekor v1 shards append " - <tree id>".
        if not any(
            checkpoint.origin == name or checkpoint.origin.startswith(f"{name} - ")
            for name in names
        ):
            raise VerificationError(
                Check.TLOG_CHECKPOINT,
                f"checkpoint origin {checkpoint.origin[:80]!r} is not the log "
                f"{sorted(names)[0]!r} that signed it",
            )
        if checkpoint.size != proof.tree_size:
            raise VerificationError(
                Check.TLOG_CHECKPOINT,
                f"inclusion proof is for tree size {proof.tree_size} but the signed checkpoint "
                f"is for size {checkpoint.size}",
            )
        if checkpoint.root_hash != proof.root_hash:
            raise VerificationError(
                Check.TLOG_CHECKPOINT,
                "inclusion proof root hash differs from the signed checkpoint's root",
            )
        self._check_body(state)

    @staticmethod
    def _verify_checkpoint(
        state: _State, logs: Sequence[TransparencyLog], envelope: str
    ) -> tuple[TransparencyLog, Note, set[str]]:
        try:
            note = Note.parse(envelope)
        except FormatError as exc:
            raise VerificationError(Check.TLOG_CHECKPOINT, exc.detail) from None
        usable = [log for log in logs if all(log.valid_for.contains(t.time) for t in state.times)]
        if not usable:
            raise VerificationError(
                Check.TLOG_CHECKPOINT,
                f"the key of log {logs[0].base_url} was not valid at the verified time",
            )
        failure: VerificationError | None = None
        for log in usable:
            try:
                verified = note.verify(note_verifiers(log, note))
            except VerificationError as exc:
                failure = exc
                continue
            return log, note, {s.name for s in verified}
        assert failure is not None
        raise VerificationError(Check.TLOG_CHECKPOINT, failure.detail) from None

    def _check_body(self, state: _State) -> None:
        entry = state.entry
        try:
            body = load_json(entry.canonicalized_body, what="log entry body")
        except FormatError as exc:
            raise VerificationError(Check.TLOG_BODY, exc.detail) from None
        if not isinstance(body, dict):
            raise VerificationError(Check.TLOG_BODY, "log entry body is not a JSON object")
        kind, version = entry.kind_version.kind, entry.kind_version.version
        _exact(body, {"apiVersion", "kind", "spec"}, "")
        if body.get("kind") != kind or body.get("apiVersion") != version:
            raise VerificationError(
                Check.TLOG_BODY,
                f"log entry body is a {body.get('kind')!r} {body.get('apiVersion')!r}, "
                f"but the bundle says {kind} {version}",
            )
        try:
            if kind == "hashedrekord" and version == "0.0.1":
                self._body_hashedrekord_v001(state, body)
            elif kind == "hashedrekord":
                self._body_hashedrekord_v002(state, body)
            else:
                self._body_dsse_v001(state, body)
        except (KeyError, TypeError, AttributeError, FormatError) as exc:
            raise VerificationError(
                Check.TLOG_BODY, f"log entry body is malformed: {exc}"
            ) from None

    def _key_material_matches(self, state: _State, pem: bytes) -> bool:
        """True when a PEM certificate or key from a v1 body is the bundle's key material."""
        if state.leaf is not None:
            try:
                cert = x509.load_pem_x509_certificate(pem)
            except ValueError:
                return False
            return cert == state.leaf
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            return False
        return _keys.spki_der(key) == _keys.spki_der(state.key)

    def _body_hashedrekord_v001(self, state: _State, body: dict[str, Any]) -> None:
        spec = _exact(body["spec"], {"data", "signature"}, "spec")
        hash_ = _exact(_exact(spec["data"], {"hash"}, "spec.data")["hash"], _ALG_VALUE, "hash")
        algorithm = _V1_HASHES.get(hash_["algorithm"])
        if algorithm is None:
            raise VerificationError(
                Check.TLOG_BODY, f"unsupported hash algorithm {hash_['algorithm']!r} in log entry"
            )
        expected = state.artifact.digest(algorithm)
        value = hash_["value"]
        if not isinstance(value, str) or value.lower() != expected.hex():
            raise VerificationError(
                Check.TLOG_BODY, "log entry records a different artifact digest"
            )
        signature = _exact(spec["signature"], {"content", "publicKey"}, "spec.signature")
        if b64decode(signature["content"]) != state.bundle.signature:
            raise VerificationError(Check.TLOG_BODY, "log entry records a different signature")
        public_key = _exact(signature["publicKey"], {"content"}, "spec.signature.publicKey")
        if not self._key_material_matches(state, b64decode(public_key["content"])):
            raise VerificationError(
                Check.TLOG_BODY, "log entry records a different certificate or key"
            )
        state.signed_digest = (algorithm, expected)

    def _body_hashedrekord_v002(self, state: _State, body: dict[str, Any]) -> None:
        spec = _exact(body["spec"], {"hashedRekordV002"}, "spec")["hashedRekordV002"]
        spec = _exact(spec, {"data", "signature"}, "spec.hashedRekordV002")
        data = _exact(spec["data"], {"algorithm", "digest"}, "data")
        try:
            algorithm = HashAlgorithm(data["algorithm"])
        except ValueError:
            raise VerificationError(
                Check.TLOG_BODY, f"unsupported hash algorithm {data['algorithm']!r} in log entry"
            ) from None
        envelope = state.bundle.dsse_envelope
        if envelope is not None:
            prehash = _keys.message_hash(state.key_details)
            if prehash is None:
                raise VerificationError(
                    Check.TLOG_BODY, "an Ed25519 DSSE signature cannot be logged as hashedrekord"
                )
            if algorithm is not prehash:
                raise VerificationError(
                    Check.TLOG_BODY,
                    f"log entry hashes the DSSE envelope with {algorithm.value}, "
                    f"but the signing key implies {prehash.value}",
                )
            expected = _keys.hash_function(algorithm)(envelope.pae())
        else:
            expected = state.artifact.digest(algorithm)
        if b64decode(data["digest"]) != expected:
            raise VerificationError(
                Check.TLOG_BODY, "log entry records a different artifact digest"
            )
        signature = _exact(spec["signature"], {"content", "verifier"}, "signature")
        if b64decode(signature["content"]) != state.bundle.signature:
            raise VerificationError(Check.TLOG_BODY, "log entry records a different signature")
        material = "x509Certificate" if state.leaf is not None else "publicKey"
        verifier = _exact(signature["verifier"], {"keyDetails", material}, "signature.verifier")
        logged = verifier["keyDetails"]
        scheme = (
            _keys.logged_scheme(logged, state.key_details, state.key)
            if isinstance(logged, str)
            else None
        )
        if scheme is None:
            raise VerificationError(
                Check.TLOG_BODY,
                f"log entry names key scheme {logged!r}, which does not fit the "
                f"{state.key_details.value} key",
            )
        raw = b64decode(_exact(verifier[material], {"rawBytes"}, material)["rawBytes"])
        own = (
            state.leaf.public_bytes(serialization.Encoding.DER)
            if state.leaf is not None
            else _keys.spki_der(state.key)
        )
        if raw != own:
            raise VerificationError(
                Check.TLOG_BODY, "log entry records a different certificate or key"
            )
        # Only now, with the whole body bound to this key, may the logged scheme
        # (RSA-PSS for an RSA key) replace the derived one for step 8. The DSSE
        # prehash check above is unaffected: every RSA scheme hashes with SHA-256.
        state.key_details = scheme
        if envelope is None:
            state.signed_digest = (algorithm, expected)

    def _body_dsse_v001(self, state: _State, body: dict[str, Any]) -> None:
        envelope = state.bundle.dsse_envelope
        assert envelope is not None
        spec = _exact(body["spec"], {"envelopeHash", "payloadHash", "signatures"}, "spec")
        # The envelope hash covers uncanonicalised JSON and cannot be recomputed,
        # so only its shape is checked; the payload hash and signatures bind the entry.
        _exact(spec["envelopeHash"], _ALG_VALUE, "spec.envelopeHash")
        payload_hash = _exact(spec["payloadHash"], _ALG_VALUE, "spec.payloadHash")
        if payload_hash["algorithm"] != "sha256":
            raise VerificationError(Check.TLOG_BODY, "DSSE log entry payload hash is not SHA-256")
        expected = _keys.hash_function(HashAlgorithm.SHA2_256)(envelope.payload).hex()
        if not isinstance(payload_hash["value"], str) or payload_hash["value"].lower() != expected:
            raise VerificationError(Check.TLOG_BODY, "log entry records a different DSSE payload")
        recorded = spec["signatures"]
        if not isinstance(recorded, list) or len(recorded) != len(envelope.signatures):
            raise VerificationError(
                Check.TLOG_BODY, "log entry records a different number of DSSE signatures"
            )
        for raw_item, signature in zip(recorded, envelope.signatures, strict=True):
            item = _exact(raw_item, {"signature", "verifier"}, "spec.signatures[]")
            if b64decode(item["signature"]) != signature.sig:
                raise VerificationError(
                    Check.TLOG_BODY, "log entry records a different DSSE signature"
                )
            if not self._key_material_matches(state, b64decode(item["verifier"])):
                raise VerificationError(
                    Check.TLOG_BODY, "log entry records a different certificate or key"
                )

    # Step 8 ------------------------------------------------------------------

    def _step8_signature(self, state: _State) -> None:
        bundle = state.bundle
        if bundle.dsse_envelope is not None:
            envelope = bundle.dsse_envelope
            if not _keys.verify_message(
                state.key,
                envelope.signatures[0].sig,
                envelope.pae(),
                _keys.message_hash(state.key_details),
                pss=_keys.is_pss(state.key_details),
            ):
                raise VerificationError(
                    Check.SIGNATURE, "DSSE signature does not verify with the signing key"
                )
            self._check_in_toto(envelope.payload_type, envelope.payload, state.artifact)
            return
        message = bundle.message_signature
        assert message is not None and state.signed_digest is not None
        algorithm, digest = state.signed_digest
        if message.message_digest is not None and (
            message.message_digest.algorithm is not algorithm
            or message.message_digest.digest != digest
        ):
            raise VerificationError(
                Check.SIGNATURE_DIGEST, "bundle message digest does not match the artifact"
            )
        try:
            ok = _keys.verify_digest(
                state.key,
                message.signature,
                digest,
                algorithm,
                pss=_keys.is_pss(state.key_details),
            )
        except _keys.KeySchemeError as exc:
            raise VerificationError(Check.SIGNATURE, str(exc)) from None
        if not ok:
            raise VerificationError(
                Check.SIGNATURE, "signature does not verify over the artifact digest"
            )

    @staticmethod
    def _check_in_toto(payload_type: str, payload: bytes, artifact: Artifact) -> None:
        if payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise VerificationError(
                Check.DSSE_PAYLOAD_TYPE,
                f"DSSE payload type is {payload_type[:80]!r}, expected {IN_TOTO_PAYLOAD_TYPE!r}",
            )
        try:
            statement = load_json(payload, what="in-toto statement")
        except FormatError as exc:
            raise VerificationError(Check.DSSE_SUBJECT, exc.detail) from None
        if not isinstance(statement, dict) or statement.get("_type") not in _IN_TOTO_TYPES:
            raise VerificationError(Check.DSSE_SUBJECT, "DSSE payload is not an in-toto statement")
        subjects = statement.get("subject")
        if not isinstance(subjects, list) or not subjects:
            raise VerificationError(Check.DSSE_SUBJECT, "in-toto statement has no subjects")
        want = artifact.sha256.hex()
        for subject in subjects:
            digests = subject.get("digest") if isinstance(subject, dict) else None
            value = digests.get("sha256") if isinstance(digests, dict) else None
            if isinstance(value, str) and value.lower() == want:
                return
        raise VerificationError(
            Check.DSSE_SUBJECT, "no in-toto subject has the artifact's SHA-256 digest"
        )


_ALG_VALUE: Final = frozenset({"algorithm", "value"})


def _exact(value: Any, keys: set[str] | frozenset[str], where: str) -> dict[str, Any]:
    """Return ``value`` if it is an object with exactly ``keys``, else reject the body.

    The body is recomputed field by field, so a field airseal does not expect
    means the log recorded something other than this bundle.
    """
    if not isinstance(value, dict) or set(value) != set(keys):
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        place = f"log entry body {where}" if where else "log entry body"
        raise VerificationError(
            Check.TLOG_BODY, f"{place} has fields {found}, expected {sorted(keys)}"
        )
    return value


def _set_payload(entry: TransparencyLogEntry) -> bytes:
    """The bytes a Rekor v1 SET signs: RFC 8785 JSON of body, time, log id, index.

    Written out directly: the keys are already in canonical order, base64 and
    lowercase hex need no escaping, and the integers are small. The result is
    byte-identical to ``canonical_json`` of the same object (a test checks it).
    """
    if max(entry.integrated_time, entry.log_index) > 2**53:
        # RFC 8785 renders integers as IEEE doubles; beyond 2^53 they are not exact.
        raise VerificationError(Check.TLOG_SET, "integrated time or log index is out of range")
    body = binascii.b2a_base64(entry.canonicalized_body, newline=False).decode("ascii")
    return (
        f'{{"body":"{body}","integratedTime":{entry.integrated_time},'
        f'"logID":"{entry.log_id.key_id.hex()}","logIndex":{entry.log_index}}}'
    ).encode("ascii")
