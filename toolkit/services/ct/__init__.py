"""The CT log: RFC 6962 ``add-pre-chain`` over the airseal log engine.

Modules: :mod:`.sct` (pure RFC 6962 encodings), :mod:`.log` (the core),
:mod:`.app` (the HTTP edge), :mod:`.client` (what the CA calls),
:mod:`.config` (the ``[ct]`` table).
"""
