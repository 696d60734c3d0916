"""``make demo``: verify the happy-path Sigstore vectors offline and print a table.

Run as ``python -m toolkit.demo --vectors ../shared/vectors``. Each case whose
expected outcome is ``pass`` is verified twice, with the artifact file and with
its ``sha256:`` digest, against the trusted root shipped with the case and the
identity and issuer recorded for it. Nothing touches the network.

Exit status: 0 when every case verified, 1 otherwise, 2 when the vectors are
missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from toolkit.errors import Error
from toolkit.verify import Artifact, IdentityPolicy, Verifier

__all__ = ["main"]


def _rows(folder: Path) -> list[list[str]]:
    index = json.loads((folder / "INDEX.json").read_text())
    now = datetime.now(UTC)
    rows = []
    for case in index["cases"]:
        if case["expected"] != "pass":
            continue
        base = folder / case["dir"]
        verifier = Verifier.from_json((base / "trusted_root.json").read_bytes())
        bundle = (base / "bundle.sigstore.json").read_bytes()
        policy = IdentityPolicy(issuer=case["issuer"], identity=case["identity"])
        inputs = []
        if case["artifact"]:
            inputs.append(("file", Artifact.from_bytes((base / "artifact").read_bytes())))
        inputs.append(("digest", Artifact.from_digest(f"sha256:{case['artifact_sha256']}")))
        for mode, artifact in inputs:
            started = time.perf_counter()
            try:
                result = verifier.verify(bundle, artifact, policy, now=now)
            except Error as exc:
                rows.append([case["case"], mode, f"FAIL [{exc.code}]", exc.message[:40], "", ""])
                continue
            elapsed = (time.perf_counter() - started) * 1000
            sources = "+".join(sorted({t.source for t in result.times}))
            identity = result.identity or ""
            if len(identity) > 40:
                identity = identity[:37] + "..."
            rows.append([case["case"], mode, "verified", identity, sources, f"{elapsed:.1f}"])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--vectors", type=Path, required=True, help="the shared/vectors folder")
    args = parser.parse_args(argv)
    folder = args.vectors / "sigstore-python"
    if not (folder / "INDEX.json").is_file():
        print(f"error: no Sigstore vectors at {folder}", file=sys.stderr)
        return 2
    print(f"airseal: offline verification of the happy-path vectors in {folder}\n")
    rows = _rows(folder)
    print(_table(["case", "input", "result", "identity", "time", "ms"], rows))
    failed = sum(1 for r in rows if r[2] != "verified")
    print(f"\n{len(rows) - failed} of {len(rows)} verified offline, {failed} failed.")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
