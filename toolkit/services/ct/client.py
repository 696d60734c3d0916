"""What the CA calls to get an SCT: over HTTP, or in-process.

:class:`HttpCTClient` posts RFC 6962 ``add-pre-chain`` requests on a pool of
keep-alive connections; :class:`LocalCTClient` calls a :class:`~.log.CTLog`
directly (tests, single-process instances). Both raise the same errors:

* :class:`~toolkit.errors.TransportError` -- the log cannot be reached, timed
  out, answered 5xx (including 503 pushback), or answered nonsense;
* :class:`CTRefused` -- the log refused the chain with a 4xx problem document
  (a fault of the CA's precertificate, never worth a retry).

Both check that the SCT comes from the expected log (and, when the log's
public key is known, that its signature covers this precertificate), so that
a CA never embeds an SCT that verifiers would reject.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from toolkit.encoding import b64encode, load_json
from toolkit.errors import FormatError, TransportError, UsageError
from toolkit.services._http import ProblemError
from toolkit.services.ct.sct import (
    SignedCertificateTimestamp,
    issuer_key_hash,
    precert_tbs,
    verify_sct,
)
from toolkit.signing import spki_der

if TYPE_CHECKING:
    import httpx

    from toolkit.services.ct.log import CTLog

__all__ = ["ADD_PRE_CHAIN_PATH", "CTClient", "CTRefused", "HttpCTClient", "LocalCTClient"]

#: Where RFC 6962 clients post precertificate chains.
ADD_PRE_CHAIN_PATH: Final = "/ct/v1/add-pre-chain"
#: Longest answer read from a CT log (an SCT is a few hundred bytes).
_MAX_RESPONSE: Final = 64 * 1024


class CTRefused(ProblemError):  # noqa: N818 -- the agreed name (PLAN.md)
    """The CT log refused the chain (a 4xx answer); its problem slug says why."""


class CTClient(Protocol):
    """Gets SCTs for precertificates."""

    async def add_pre_chain(self, chain: Sequence[bytes]) -> SignedCertificateTimestamp:
        """Log a precertificate and return its SCT.

        Args:
            chain: DER certificates: the precertificate (with the poison,
                signed by its issuer) first, then the issuer, then up to the root.

        Raises:
            TransportError: The log is down, busy (503) or answered nonsense.
            CTRefused: The log refused the chain (4xx).
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class _SCTCheck:
    """Checks an SCT against the expected log id and, optionally, key."""

    def __init__(self, log_id: bytes | None, public_key: ec.EllipticCurvePublicKey | None) -> None:
        if public_key is not None:
            if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
                public_key.curve, ec.SECP256R1
            ):
                raise UsageError("a CT log key is ECDSA P-256")
            key_log_id = hashlib.sha256(spki_der(public_key)).digest()
            if log_id is not None and log_id != key_log_id:
                raise UsageError("the CT log id does not match the CT log's public key")
            log_id = key_log_id
        if log_id is not None and len(log_id) != 32:
            raise UsageError("a CT log id is 32 bytes")
        self.log_id = log_id
        self.public_key = public_key
        # The issuer is the same for every call of a CA: hash its SPKI once.
        self._issuer: tuple[bytes, bytes] = (b"", b"")

    def _key_hash(self, issuer_der: bytes) -> bytes:
        cached_der, cached_hash = self._issuer
        if cached_der == issuer_der:
            return cached_hash
        try:
            key_hash = issuer_key_hash(x509.load_der_x509_certificate(issuer_der))
        except ValueError:
            raise UsageError("the chain's issuer certificate is not DER") from None
        self._issuer = (issuer_der, key_hash)
        return key_hash

    def check(self, sct: SignedCertificateTimestamp, chain: Sequence[bytes]) -> None:
        if self.log_id is not None and sct.log_id != self.log_id:
            raise TransportError(
                f"the CT log answered an SCT of log {sct.log_id.hex()[:16]}…, "
                f"expected {self.log_id.hex()[:16]}…"
            )
        if self.public_key is None:
            return
        if len(chain) < 2:
            # Issued directly by a root the CA does not pass: nothing to bind to.
            return
        try:
            tbs = precert_tbs(chain[0])
        except FormatError as exc:
            raise UsageError(f"the precertificate is malformed: {exc.message}") from None
        if not verify_sct(sct, self.public_key, self._key_hash(chain[1]), tbs):
            raise TransportError("the CT log answered an SCT whose signature does not verify")


class HttpCTClient:
    """A :class:`CTClient` over HTTP (``POST {base_url}/ct/v1/add-pre-chain``).

    Plain ``http://`` URLs (a CT log beside the CA, or behind a local load
    balancer) go through a small HTTP/1.1 keep-alive pool on asyncio streams:
    the CA calls this once per certificate, and httpx's per-request cost
    (milliseconds of CPU at high concurrency) would dominate issuance.
    ``https://`` URLs, and tests passing ``transport``, use httpx.

    Args:
        base_url: The CT log's base URL, e.g. ``http://127.0.0.1:3002``.
        timeout: Seconds for the whole request (connect, send, answer).
        log_id: The expected log id (SHA-256 of the log key's SPKI).
        public_key: The log's public key: implies ``log_id`` and makes every
            SCT's signature be checked (about 0.1 ms each).
        max_connections: Most connections open at once (requests beyond wait).
        transport: An httpx transport (tests); forces the httpx path.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        log_id: bytes | None = None,
        public_key: ec.EllipticCurvePublicKey | None = None,
        max_connections: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"CT log URL {base_url[:80]!r} is not http:// or https://")
        if timeout <= 0 or max_connections < 1:
            raise UsageError("the CT client needs a positive timeout and at least one connection")
        self._url = base_url.rstrip("/") + ADD_PRE_CHAIN_PATH
        self._timeout = timeout
        self._check = _SCTCheck(log_id, public_key)
        self._http: httpx.AsyncClient | None = None
        self._pool: _Http1Pool | None = None
        if base_url.startswith("http://") and transport is None:
            self._pool = _Http1Pool(self._url, max_connections)
        else:
            import httpx

            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(
                    max_connections=max_connections,
                    max_keepalive_connections=max_connections,
                    keepalive_expiry=30.0,
                ),
                transport=transport,
                follow_redirects=False,
            )

    async def add_pre_chain(self, chain: Sequence[bytes]) -> SignedCertificateTimestamp:
        """See :meth:`CTClient.add_pre_chain`."""
        body = ('{"chain":[' + ",".join(f'"{b64encode(c)}"' for c in chain) + "]}").encode()
        if self._pool is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    status, headers, content = await self._pool.post(body)
            except TimeoutError:
                raise TransportError(
                    f"the CT log at {self._url} did not answer within {self._timeout:g} s"
                ) from None
            retry_after = headers.get("retry-after")
        else:
            status, content, retry_after = await self._post_httpx(body)
        if status != 200:
            raise _refusal(status, content, retry_after)
        try:
            sct = SignedCertificateTimestamp.from_json(load_json(content, what="CT log answer"))
        except FormatError as exc:
            raise TransportError(f"the CT log answered an invalid SCT: {exc.message}") from None
        self._check.check(sct, chain)
        return sct

    async def _post_httpx(self, body: bytes) -> tuple[int, bytes, str | None]:
        import httpx

        assert self._http is not None
        try:
            response = await self._http.post(
                self._url, content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise TransportError(
                f"cannot reach the CT log at {self._url}: {type(exc).__name__} {exc}".strip()
            ) from None
        content = response.content
        if len(content) > _MAX_RESPONSE:
            raise TransportError("the CT log's answer is too large")
        return response.status_code, content, response.headers.get("retry-after")

    async def aclose(self) -> None:
        """Close every connection."""
        if self._http is not None:
            await self._http.aclose()
        if self._pool is not None:
            await self._pool.aclose()


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Http1Pool:
    """Keep-alive HTTP/1.1 POSTs to one URL over asyncio streams.

    Just what a CT client needs: ``Content-Length`` or chunked answers of at
    most :data:`_MAX_RESPONSE` bytes, ``Connection: close`` honoured. A
    request on a reused connection that the server had closed meanwhile (no
    byte of answer came back) is retried once on a fresh connection.
    """

    def __init__(self, url: str, max_connections: int) -> None:
        parts = urlsplit(url)
        if parts.hostname is None:
            raise UsageError(f"CT log URL {url[:80]!r} has no host")
        self._host = parts.hostname
        self._port = parts.port or 80
        host_header = parts.netloc.rpartition("@")[2]
        self._head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host_header}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
            "User-Agent: airseal-ct-client\r\nContent-Length: "
        ).encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        async with self._slots:
            for attempt in (0, 1):
                reused = bool(self._idle) and attempt == 0
                connection = self._idle.pop() if reused else await self._connect()
                try:
                    result, keep = await self._exchange(connection, body)
                except _StaleConnectionError:
                    _close(connection)
                    if reused:
                        continue
                    raise TransportError(
                        f"the CT log at {self._host}:{self._port} closed the connection"
                    ) from None
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    _close(connection)
                    raise TransportError(
                        f"the CT log at {self._host}:{self._port} failed: {type(exc).__name__}"
                    ) from None
                except BaseException:
                    # A timeout or cancellation mid-request: the connection's state is unknown.
                    _close(connection)
                    raise
                if keep and not self._closed:
                    self._idle.append(connection)
                else:
                    _close(connection)
                return result
        raise AssertionError("unreachable")

    async def _connect(self) -> _Connection:
        try:
            return await asyncio.open_connection(self._host, self._port, limit=_MAX_RESPONSE)
        except OSError as exc:
            raise TransportError(
                f"cannot reach the CT log at {self._host}:{self._port}: {exc.strerror or exc}"
            ) from None

    async def _exchange(
        self, connection: _Connection, body: bytes
    ) -> tuple[tuple[int, dict[str, str], bytes], bool]:
        reader, writer = connection
        writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise
            raise _StaleConnectionError from None
        status, headers, keep = _parse_head(head)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            content = await _read_chunked(reader)
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit() or int(length) > _MAX_RESPONSE:
                raise TransportError("the CT log's answer has a bad or too large Content-Length")
            content = await reader.readexactly(int(length))
        else:
            content = await reader.read(_MAX_RESPONSE + 1)
            keep = False
        if len(content) > _MAX_RESPONSE:
            raise TransportError("the CT log's answer is too large")
        return (status, headers, content), keep

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            _close(connection)


class _StaleConnectionError(Exception):
    """A kept-alive connection the server had closed: nothing was answered."""


def _close(connection: _Connection) -> None:
    connection[1].close()


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise TransportError("the CT log did not answer HTTP/1.1")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise TransportError("the CT log answered a malformed header")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = version == "HTTP/1.1" and "close" not in connection
    return int(code), headers, keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise TransportError("the CT log answered a malformed chunk") from None
        if size == 0:
            # Trailers, if any, end with an empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(chunks)
        total += size
        if total > _MAX_RESPONSE:
            raise TransportError("the CT log's answer is too large")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise TransportError("the CT log answered a malformed chunk")


def _refusal(status: int, content: bytes, retry_after: str | None) -> Exception:
    """The error for a non-200 answer: :class:`CTRefused` for 4xx, else TransportError."""
    document: Any = None
    with contextlib.suppress(FormatError):
        document = load_json(content[:_MAX_RESPONSE], what="problem")
    slug, title, detail = "ct-error", "CT log error", f"HTTP {status}"
    if isinstance(document, dict):
        kind = document.get("type")
        if isinstance(kind, str) and kind:
            slug = kind.rsplit("/", 1)[-1][:60]
        if isinstance(document.get("title"), str):
            title = document["title"][:120]
        if isinstance(document.get("detail"), str):
            detail = document["detail"]
    if 400 <= status < 500:
        return CTRefused(status, slug, title, detail)
    hint = f"retry in {retry_after} s" if retry_after and retry_after.isdigit() else None
    return TransportError(f"the CT log answered HTTP {status} ({slug}): {detail}"[:300], hint=hint)


class LocalCTClient:
    """A :class:`CTClient` calling a :class:`~.log.CTLog` in this process.

    Args:
        ctlog: The CT log (started).
        verify: Also check each SCT's signature (the log signs correctly by
            construction, so this is off by default).
    """

    def __init__(self, ctlog: CTLog, *, verify: bool = False) -> None:
        self._ctlog = ctlog
        self._check = _SCTCheck(ctlog.log_id, ctlog.public_key if verify else None)

    async def add_pre_chain(self, chain: Sequence[bytes]) -> SignedCertificateTimestamp:
        """See :meth:`CTClient.add_pre_chain`."""
        try:
            sct = await self._ctlog.add_pre_chain(chain)
        except CTRefused:
            raise
        except ProblemError as exc:
            if 400 <= exc.status < 500:
                raise CTRefused(exc.status, exc.slug, exc.title, exc.detail) from None
            raise TransportError(f"the CT log cannot log the chain now: {exc.detail}") from None
        self._check.check(sct, chain)
        return sct

    async def aclose(self) -> None:
        """Nothing to release (the CT log belongs to the caller)."""
