"""Trust distribution over TUF: the distributor's repository and the clients.

* :mod:`toolkit.trust.repository` -- publish, refresh and rotate a TUF
  repository whose root comes from the key ceremony.
* :mod:`toolkit.trust.updater` -- refresh from a mirror (HTTP or directory)
  with python-tuf and hand out the verified ``trusted_root.json``.
* :mod:`toolkit.trust.kit` and :mod:`toolkit.trust.offline` -- the offline kit.

Importing this package loads nothing heavy; import the modules you need.
"""
