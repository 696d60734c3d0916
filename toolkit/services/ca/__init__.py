"""The certificate authority: Fulcio-compatible short-lived code-signing certificates.

* :mod:`.oidc` -- identity tokens: issuers, verification, the principal;
* :mod:`.issuance` -- the pure core: subject keys, proofs of possession, the
  precertificate / SCT / final certificate flow;
* :mod:`.app` -- the Fulcio v2 HTTP API (``/api/v2/signingCert`` …);
* :mod:`.config` -- the ``[ca]`` table of the services config.

Nothing is imported here, so that importing one module does not pull in the
others (the HTTP edge needs Starlette, the core does not).
"""
