"""Importing toolkit.signing loads no PKCS#11 or TUF code until a token key is opened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]


def test_signing_package_is_light() -> None:
    code = (
        "import json, sys\n"
        "import toolkit.signing, toolkit.signing.software, toolkit.signing.softhsm\n"
        "toolkit.signing.Pkcs11Uri.parse('pkcs11:token=a;object=b')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = json.loads(out.stdout)
    heavy = ("pkcs11", "tuf", "securesystemslib", "toolkit.signing.pkcs11", "ceremony")
    assert [m for m in loaded if m.split(".")[0] in heavy or m in heavy] == []
