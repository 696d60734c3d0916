"""The transparency log: Rekor v2 API on C2SP tlog-tiles.

* :mod:`.storage` -- the ``Coordinator`` and ``TileStore`` protocols (and an
  in-memory implementation for unit tests);
* :mod:`.sqlite` and :mod:`.postgres` -- the two real storage backends;
* :mod:`.tiles` -- C2SP tile paths, tile contents and entry bundles (pure);
* :mod:`.engine` -- the sequencer: batches, integration, checkpoints, proofs;
* :mod:`.hashedrekord` -- request validation and canonical entry bodies;
* :mod:`.app` -- the Starlette HTTP edge;
* :mod:`.monitor` -- a client that checks a log's checkpoints and tiles.
"""
