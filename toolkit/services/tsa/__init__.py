"""The RFC 3161 timestamp authority: a pure core, its HTTP edge and its config.

* :mod:`.core` -- :class:`TimestampAuthority`: DER TimeStampReq in, DER
  TimeStampResp out, signed through a :class:`~toolkit.signing.Signer`.
* :mod:`.app` -- the Starlette app (``POST /api/v1/timestamp``,
  ``GET /api/v1/timestamp/certchain``, ``GET /healthz``).
* :mod:`.config` -- the ``[tsa]`` table of the services config.
"""

from __future__ import annotations

from toolkit.services.tsa.core import (
    DEFAULT_POLICY,
    MAX_REQUEST_BYTES,
    FailureInfo,
    TimestampAuthority,
)

__all__ = ["DEFAULT_POLICY", "MAX_REQUEST_BYTES", "FailureInfo", "TimestampAuthority"]
