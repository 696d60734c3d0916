"""DEVELOPMENT ONLY: a toy OIDC issuer that signs an ID token for any identity asked for.

It exists for local instances, tests and ``make demo``: it serves an OIDC
discovery document, a JWK Set and ``POST /token``, which hands out a signed
token for whatever identity the caller names -- no login, no consent, no
client authentication. Anyone who can reach it can obtain a certificate for
any email address from a CA that trusts it. It therefore refuses to listen on
anything but loopback unless forced, says so in its discovery document
(``airseal_development_only``), in a response header on every answer
(``X-Airseal-Development-Only``) and in a warning line at start.

* :class:`~toolkit.services.oidc_dev.issuer.DevIssuer` -- the pure core
  (keys + claims -> JWT);
* :func:`~toolkit.services.oidc_dev.app.create_app` -- its HTTP edge;
* :mod:`~toolkit.services.oidc_dev.config` -- the ``[oidc_dev]`` table.
"""

from __future__ import annotations

from toolkit.services.oidc_dev.issuer import DEV_WARNING, DevIssuer

__all__ = ["DEV_WARNING", "DevIssuer"]
