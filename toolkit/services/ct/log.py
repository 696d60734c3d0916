"""The CT log core: checks precertificate chains, signs SCTs, logs the entries.

A :class:`CTLog` is an RFC 6962 log of precertificates on top of the airseal
:class:`~toolkit.services.log.engine.LogEngine`: each accepted precertificate
becomes one entry whose body is its ``MerkleTreeLeaf`` (so the engine's leaf
hash, SHA-256(0x00 ‖ body), is the RFC 6962 leaf hash) and whose identity is
that leaf hash. The engine has its own origin (the host of the CT log's base
URL), tiles and checkpoints, signed with the CT key; ``get-sth`` serves the
same tree head as an RFC 6962 ``TreeHeadSignature``.

``add_pre_chain`` answers only once the entry is in a durable signed
checkpoint, so an SCT never promises an entry the log could lose. It is on
the CA's issuance path: the engine's default ``max_wait`` is short (50 ms)
and the chain checks are cached where they can be (the CA sends the same
intermediate and root every time; only the precertificate changes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from toolkit import merkle
from toolkit.encoding import b64encode
from toolkit.errors import Error, FormatError, UsageError, VerificationError
from toolkit.note import Checkpoint, Note
from toolkit.services._http import ProblemError
from toolkit.services.ct.sct import (
    OID_SCT_LIST,
    SignedCertificateTimestamp,
    digitally_signed,
    issuer_key_hash,
    merkle_tree_leaf,
    precert_signing_input,
    precert_tbs,
    tree_head_signing_input,
)
from toolkit.services.log import tiles
from toolkit.services.log.engine import LogEngine, LogUnavailableError, PoolFullError
from toolkit.services.log.storage import Coordinator, NewEntry, StorageError, TileStore
from toolkit.signing import Scheme, Signer, spki_der

__all__ = [
    "MAX_CERT_BYTES",
    "MAX_CHAIN",
    "REFUSALS",
    "CTLog",
    "SignedTreeHead",
]

_log = logging.getLogger("airseal.ct")

#: Most certificates in one ``add-pre-chain`` chain.
MAX_CHAIN: Final = 8
#: Largest DER certificate accepted in a chain.
MAX_CERT_BYTES: Final = 16 * 1024
#: The CT precertificate signing certificate EKU (RFC 6962 §3.1); not supported.
_OID_PRECERT_SIGNING: Final = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")
#: The 400 slugs :meth:`CTLog.add_pre_chain` refuses a chain with.
REFUSALS: Final = frozenset(
    {
        "bad-chain",
        "not-a-precertificate",
        "not-a-leaf",
        "issuer-not-ca",
        "unsupported-preissuer",
        "bad-signature",
        "unknown-root",
        "precert-too-large",
    }
)
#: Parsed and verified CA certificates kept (the CA sends the same ones).
_CACHE: Final = 64


def _refuse(slug: str, title: str, detail: str, status: int = 400) -> ProblemError:
    return ProblemError(status, slug, title, detail)


def _bad_chain(detail: str) -> ProblemError:
    return _refuse("bad-chain", "Bad certificate chain", detail)


@dataclass(frozen=True)
class SignedTreeHead:
    """An RFC 6962 signed tree head (``get-sth``).

    Attributes:
        tree_size: Entries in the tree.
        timestamp: Milliseconds since the epoch, at least every entry's SCT time.
        root_hash: The tree's SHA-256 root hash.
        signature: DER ECDSA signature over the ``TreeHeadSignature`` struct.
    """

    tree_size: int
    timestamp: int
    root_hash: bytes
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        """The ``get-sth`` response (RFC 6962 §4.3)."""
        return {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "sha256_root_hash": b64encode(self.root_hash),
            "tree_head_signature": b64encode(digitally_signed(self.signature)),
        }


class CTLog:
    """An RFC 6962 precertificate log over a :class:`LogEngine`.

    Args:
        coordinator: Sequencing and checkpoint storage of the CT log's own engine.
        tile_store: Its tile store.
        signer: The CT key: ECDSA P-256 (SHA-256). The log id is SHA-256 of
            its DER SPKI; it also signs the engine's checkpoints.
        origin: Checkpoint origin: the host of the CT log's base URL.
        roots: Accepted root certificates: every chain must end at (or be
            issued by) one of them.
        batch_size: Most entries per round.
        max_wait: Longest wait for a round to start, in seconds.
        max_pending: Submissions in flight beyond which new ones get 503.
        workers: Threads that check chains and sign SCTs. Signature checks
            release the GIL, and a PKCS#11 signature must not block the event loop.
        clock: Seconds since the epoch (tests pass a fixed clock).

    Raises:
        UsageError: Not an ECDSA P-256 key, no roots, or bad engine parameters.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        tile_store: TileStore,
        signer: Signer,
        origin: str,
        roots: Sequence[x509.Certificate],
        *,
        batch_size: int = 512,
        max_wait: float = 0.05,
        max_pending: int = 20000,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        public_key = signer.public_key
        if (
            signer.scheme is not Scheme.ECDSA_P256_SHA256
            or not isinstance(public_key, ec.EllipticCurvePublicKey)
            or not isinstance(public_key.curve, ec.SECP256R1)
        ):
            raise UsageError(
                f"a CT log key must be ECDSA P-256 with SHA-256, not {signer.scheme.value}",
                hint="RFC 6962 logs sign SCTs with ECDSA P-256 (airseal uses no RSA CT keys)",
            )
        if not roots:
            raise UsageError("a CT log needs at least one accepted root certificate")
        self._signer = signer
        self._public_key: ec.EllipticCurvePublicKey = public_key
        self._log_id = bytes.fromhex(signer.key_id)
        self._roots = tuple(roots)
        self._root_ders = {_der(root): root for root in self._roots}
        self._clock = clock
        self.engine = LogEngine(
            coordinator,
            tile_store,
            signer,
            origin,
            batch_size=batch_size,
            max_wait=max_wait,
            max_pending=max_pending,
        )
        # DER -> parsed CA certificate, and (child, parent) links already verified.
        # Plain dicts, emptied when full: the checks run in worker threads, and
        # single dict operations are atomic (an LRU's would not be).
        self._parsed: dict[bytes, x509.Certificate] = {}
        self._links: set[tuple[bytes, bytes]] = set()
        if workers < 1:
            raise UsageError(f"a CT log needs at least one worker thread, not {workers}")
        self._worker_count = workers
        self._workers: concurrent.futures.ThreadPoolExecutor | None = None
        self._max_pending = max_pending
        self._inflight = 0
        self._running = False
        self._sth: SignedTreeHead | None = None
        self._latest_timestamp = 0
        self._counters: dict[str, int] = {"accepted": 0, "refused": 0}

    # -- facts -------------------------------------------------------------------

    @property
    def log_id(self) -> bytes:
        """SHA-256 of the CT key's DER SPKI (RFC 6962 log id)."""
        return self._log_id

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The CT key."""
        return self._public_key

    @property
    def public_key_der(self) -> bytes:
        """The CT key as DER SPKI (what a trusted root's ``ctlogs[]`` lists)."""
        return spki_der(self._public_key)

    @property
    def origin(self) -> str:
        """The checkpoint origin of the underlying log."""
        return self.engine.origin

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """The accepted roots (``get-roots``)."""
        return self._roots

    def tree_size(self) -> int:
        """Entries in the current checkpoint."""
        return self.engine.tree_size()

    def metrics(self) -> dict[str, float]:
        """The engine's counters plus accepted/refused chains."""
        out = self.engine.metrics()
        out.update({key: float(value) for key, value in self._counters.items()})
        return out

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine (claims the storage for this origin and key)."""
        await self.engine.start()
        self._workers = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._worker_count, thread_name_prefix="ct-check"
        )
        self._running = True

    async def stop(self) -> None:
        """Answer every waiting submission, then stop the engine and the workers."""
        self._running = False
        await self.engine.stop()
        if self._workers is not None:
            self._workers.shutdown(wait=True)
            self._workers = None

    # -- add-pre-chain -------------------------------------------------------------

    async def add_pre_chain(self, chain: Sequence[bytes]) -> SignedCertificateTimestamp:
        """Check a precertificate chain, log it, and return its SCT.

        Args:
            chain: DER certificates: the precertificate first (critical poison
                extension, not a CA, signed by the next), then its issuer and
                up to a root; the root itself may be left out.

        Returns:
            The SCT, once the entry is in a durable signed checkpoint.

        Raises:
            ProblemError: 400 with slug ``bad-chain``, ``not-a-precertificate``,
                ``not-a-leaf``, ``issuer-not-ca``, ``unsupported-preissuer``,
                ``bad-signature``, ``unknown-root`` or ``precert-too-large``;
                503 ``pool-full`` (with Retry-After) or ``log-unavailable``.
        """
        if self.engine.halted is not None or not self._running or self._workers is None:
            raise ProblemError(
                503,
                "log-unavailable",
                "Log unavailable",
                "the CT log is not taking entries; retry later",
                headers={"Retry-After": "5"},
            )
        if self._inflight >= self._max_pending:
            # Refused before any work: a busy log must not spend its CPU on
            # signatures it cannot log.
            self._counters["refused"] += 1
            raise ProblemError(
                503,
                "pool-full",
                "Log is busy",
                f"the CT log is busy: {self._inflight} submissions are in flight",
                headers={"Retry-After": "1"},
            )
        self._inflight += 1
        try:
            return await self._add(self._workers, chain)
        finally:
            self._inflight -= 1

    async def _add(
        self, workers: concurrent.futures.Executor, chain: Sequence[bytes]
    ) -> SignedCertificateTimestamp:
        loop = asyncio.get_running_loop()
        try:
            timestamp, key_hash, tbs, signature = await loop.run_in_executor(
                workers, self._prepare, list(chain)
            )
        except ProblemError:
            self._counters["refused"] += 1
            raise
        leaf = merkle_tree_leaf(timestamp, key_hash, tbs)
        try:
            await self.engine.submit(NewEntry(merkle.leaf_hash(leaf), leaf))
        except PoolFullError as exc:
            raise ProblemError(
                503,
                "pool-full",
                "Log is busy",
                exc.message,
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        except FormatError:
            raise _refuse(
                "precert-too-large", "Precertificate too large", "the entry does not fit the log"
            ) from None
        except (LogUnavailableError, StorageError) as exc:
            _log.warning("CT submission failed: %s", exc)
            raise ProblemError(
                503,
                "log-unavailable",
                "Log unavailable",
                "the CT log cannot record entries right now; retry later",
                headers={"Retry-After": "5"},
            ) from None
        self._latest_timestamp = max(self._latest_timestamp, timestamp)
        self._counters["accepted"] += 1
        return SignedCertificateTimestamp(self._log_id, timestamp, signature)

    def _prepare(self, chain: Sequence[bytes]) -> tuple[int, bytes, bytes, bytes]:
        """Check the chain and sign its SCT (in a worker thread)."""
        key_hash, tbs = self.check_chain(chain)
        timestamp = int(self._clock() * 1000)
        try:
            signature = self._signer.sign(precert_signing_input(timestamp, key_hash, tbs))
        except Error as exc:
            _log.error("the CT key failed to sign an SCT: %s", exc.message)
            raise _refuse(
                "signer-unavailable", "Signer unavailable", "the CT key cannot sign now", 503
            ) from None
        return timestamp, key_hash, tbs, signature

    def check_chain(self, chain: Sequence[bytes]) -> tuple[bytes, bytes]:
        """Check a precertificate chain (see :meth:`add_pre_chain`).

        Returns:
            The issuer key hash and the precertificate TBS without poison.

        Raises:
            ProblemError: 400 naming the first fault.
        """
        if not chain:
            raise _bad_chain("the chain is empty: send the precertificate and its issuers")
        if len(chain) > MAX_CHAIN:
            raise _bad_chain(f"the chain has {len(chain)} certificates, at most {MAX_CHAIN}")
        for index, der in enumerate(chain):
            if not isinstance(der, bytes) or not der:
                raise _bad_chain(f"certificate {index} is empty")
            if len(der) > MAX_CERT_BYTES:
                raise _bad_chain(f"certificate {index} is larger than {MAX_CERT_BYTES} bytes")
        precert = _parse(chain[0], 0)
        issuers = [self._parse_ca(der, index) for index, der in enumerate(chain[1:], 1)]
        self._check_precert(precert)
        # Each certificate is signed by the next one.
        links = [precert, *issuers]
        for index in range(len(links) - 1):
            self._check_link(links, chain, index)
        path = [*links]
        if chain[-1] not in self._root_ders:
            path.append(self._find_root(links[-1], chain[-1]))
        if len(path) < 2:
            raise _bad_chain("the chain holds only a root: send the precertificate first")
        for index, cert in enumerate(path[1:], 1):
            _check_ca(cert, index, is_issuer=index == 1)
        issuer = path[1]
        try:
            tbs = precert_tbs(chain[0])
        except FormatError as exc:
            raise _refuse(
                "not-a-precertificate", "Not a precertificate", f"certificate 0: {exc.detail}"
            ) from None
        leaf_size = len(merkle_tree_leaf(0, bytes(32), tbs))
        if leaf_size > tiles.MAX_ENTRY_SIZE:
            raise _refuse(
                "precert-too-large",
                "Precertificate too large",
                f"the log entry would be {leaf_size} bytes, at most {tiles.MAX_ENTRY_SIZE}",
            )
        return issuer_key_hash(issuer), tbs

    def _parse_ca(self, der: bytes, index: int) -> x509.Certificate:
        cert = self._parsed.get(der)
        if cert is None:
            cert = _parse(der, index)
            if len(self._parsed) >= _CACHE:
                self._parsed.clear()
            self._parsed[der] = cert
        return cert

    def _check_precert(self, precert: x509.Certificate) -> None:
        extensions = _extensions(precert, 0)
        try:
            poison = extensions.get_extension_for_class(x509.PrecertPoison)
        except x509.ExtensionNotFound:
            raise _refuse(
                "not-a-precertificate",
                "Not a precertificate",
                "certificate 0 has no CT poison extension (1.3.6.1.4.1.11129.2.4.3); "
                "this log accepts only precertificates",
            ) from None
        if not poison.critical:
            raise _refuse(
                "not-a-precertificate",
                "Not a precertificate",
                "the CT poison extension of certificate 0 must be critical",
            )
        if any(ext.oid == OID_SCT_LIST for ext in extensions):
            raise _refuse(
                "not-a-precertificate",
                "Not a precertificate",
                "certificate 0 already carries an SCT list",
            )
        try:
            constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            return
        if constraints.ca:
            raise _refuse(
                "not-a-leaf", "Not a leaf", "the precertificate is a CA certificate (cA true)"
            )

    def _check_link(
        self, certs: list[x509.Certificate], chain: Sequence[bytes], index: int
    ) -> None:
        child, parent = certs[index], certs[index + 1]
        key = (chain[index], chain[index + 1])
        if index and key in self._links:
            return
        _verify_issued(child, parent, index, index + 1)
        if index:
            # The precertificate link changes at every call; CA links repeat.
            self._remember(key)

    def _remember(self, link: tuple[bytes, bytes]) -> None:
        if len(self._links) >= _CACHE:
            self._links.clear()
        self._links.add(link)

    def _find_root(self, last: x509.Certificate, last_der: bytes) -> x509.Certificate:
        issuer = last.issuer
        candidates = [root for root in self._roots if root.subject == issuer]
        for root in candidates:
            key = (last_der, _der(root))
            if key in self._links:
                return root
            try:
                last.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            self._remember(key)
            return root
        raise _refuse(
            "unknown-root",
            "Unknown root",
            "the chain does not end at, or under, a root this log accepts (see get-roots)",
        )

    # -- get-sth ---------------------------------------------------------------------

    def sth(self) -> SignedTreeHead:
        """The signed tree head of the current checkpoint (cached per tree size).

        Raises:
            ProblemError: 503 when the engine has not started or the key fails.
        """
        try:
            checkpoint = self.engine.checkpoint()
        except LogUnavailableError as exc:
            raise _refuse("log-unavailable", "Log unavailable", exc.message, 503) from None
        cached = self._sth
        size = self.engine.tree_size()
        if cached is not None and cached.tree_size == size:
            return cached
        try:
            parsed = Checkpoint.from_text(Note.parse(checkpoint.decode("utf-8")).text)
        except (UnicodeDecodeError, FormatError, VerificationError) as exc:
            raise _refuse(
                "log-unavailable", "Log unavailable", f"bad checkpoint: {exc}", 503
            ) from None
        # Never older than an SCT the tree holds: the checkpoint is signed after them.
        timestamp = max(int(self._clock() * 1000), self._latest_timestamp)
        try:
            signature = self._signer.sign(
                tree_head_signing_input(timestamp, parsed.size, parsed.root_hash)
            )
        except Error as exc:
            _log.error("the CT key failed to sign a tree head: %s", exc.message)
            raise _refuse(
                "signer-unavailable", "Signer unavailable", "the CT key cannot sign now", 503
            ) from None
        sth = SignedTreeHead(parsed.size, timestamp, parsed.root_hash, signature)
        if cached is None or sth.tree_size >= cached.tree_size:
            self._sth = sth
        return sth


def _der(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)


def _parse(der: bytes, index: int) -> x509.Certificate:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise _bad_chain(f"certificate {index} is not a DER X.509 certificate") from None
    # Trailing bytes or a non-canonical encoding would make the logged entry
    # differ from what the certificate says.
    if _der(cert) != der:
        raise _bad_chain(f"certificate {index} is not in canonical DER")
    try:
        # cryptography parses names lazily: a malformed one must fail here,
        # as a refusal, not later in the middle of the chain checks.
        _ = cert.issuer, cert.subject
    except ValueError:
        raise _bad_chain(f"certificate {index} has a malformed issuer or subject name") from None
    return cert


def _extensions(cert: x509.Certificate, index: int) -> x509.Extensions:
    try:
        return cert.extensions
    except ValueError:
        raise _bad_chain(f"certificate {index} has malformed or duplicate extensions") from None


def _verify_issued(
    child: x509.Certificate, parent: x509.Certificate, child_index: int, parent_index: int
) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except ValueError:
        raise _refuse(
            "bad-signature",
            "Bad signature",
            f"certificate {child_index} is not issued by certificate {parent_index} "
            "(issuer name or signature algorithm does not match)",
        ) from None
    except (InvalidSignature, TypeError, UnsupportedAlgorithm):
        raise _refuse(
            "bad-signature",
            "Bad signature",
            f"the signature of certificate {child_index} does not verify with "
            f"the key of certificate {parent_index}",
        ) from None


def _check_ca(cert: x509.Certificate, index: int, *, is_issuer: bool) -> None:
    extensions = _extensions(cert, index)
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise _refuse(
            "issuer-not-ca",
            "Issuer is not a CA",
            f"certificate {index} of the chain has no CA basic constraints",
        )
    if is_issuer:
        try:
            usage = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return
        if _OID_PRECERT_SIGNING in usage:
            raise _refuse(
                "unsupported-preissuer",
                "Precertificate signing certificates are not supported",
                "sign the precertificate with the CA's own key, not a preissuer",
            )
