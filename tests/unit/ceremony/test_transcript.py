"""The hash-chained transcript and the all-or-nothing staging directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ceremony._staging import Staging, preflight, staging_path
from ceremony.transcript import (
    GENESIS,
    TranscriptFormatError,
    TranscriptWriter,
    line_hash,
    parse_transcript,
    seal_message,
)
from toolkit.encoding import b64decode
from toolkit.errors import UsageError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _write(path: Path, steps: int = 3) -> TranscriptWriter:
    writer = TranscriptWriter(path)
    for index in range(steps):
        writer.append(f"step{index}", {"n": index}, now=NOW)
    return writer


def test_lines_chain_by_hash(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = _write(path)
    writer.close()
    lines = parse_transcript(path.read_bytes())
    assert [line.seq for line in lines] == [0, 1, 2]
    assert lines[0].prev == GENESIS
    assert lines[1].prev == line_hash(lines[0].raw)
    assert writer.last_hash == lines[-1].hash
    assert json.loads(lines[0].raw)["time"] == "2026-11-25T12:00:00Z"


def test_writer_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("")
    with pytest.raises(FileExistsError):
        TranscriptWriter(path)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda ls: [ls[0], ls[2]], "seq is 2, expected 1"),
        (lambda ls: [ls[0].replace(b'"n":0', b'"n":7'), ls[1], ls[2]], "line 1: hash chain broken"),
        (lambda ls: [ls[0], ls[1], b"{not json"], "line 3: not valid JSON"),
        (lambda ls: [ls[0], ls[1].replace(b'{"data"', b'{ "data"'), ls[2]], "line 2: not in RFC"),
        (
            lambda ls: [ls[0], ls[1], ls[2].replace(b'"seq":2', b'"seq":2,"x":1')],
            "line 3: expected",
        ),
    ],
)
def test_broken_chains_name_the_line(tmp_path: Path, mutate: object, reason: str) -> None:
    path = tmp_path / "t.jsonl"
    _write(path).close()
    lines = path.read_bytes().splitlines()
    assert callable(mutate)
    data = b"\n".join(mutate(lines)) + b"\n"
    with pytest.raises(TranscriptFormatError, match=reason):
        parse_transcript(data)


def test_truncated_and_empty_transcripts(tmp_path: Path) -> None:
    with pytest.raises(TranscriptFormatError, match="empty"):
        parse_transcript(b"")
    path = tmp_path / "t.jsonl"
    _write(path).close()
    with pytest.raises(TranscriptFormatError, match="newline"):
        parse_transcript(path.read_bytes()[:-5])


def test_seal_signs_the_line_itself(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "t.jsonl"
    writer = _write(path)
    writer.append_sealed("seal", {"key": "root"}, key.sign)
    writer.close()
    seal = parse_transcript(path.read_bytes())[-1]
    signature = b64decode(seal.data["signature"])
    key.public_key().verify(signature, seal_message(seal.unsigned()))
    changed = dict(seal.unsigned(), time="2030-01-01T00:00:00Z")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, seal_message(changed))


def test_staging_commits_all_or_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    preflight(out)
    staging = Staging(out)
    staging.write("a.pem", b"A")
    with pytest.raises(FileExistsError):
        staging.write("a.pem", b"B")
    assert not out.exists()
    staging.commit()
    assert (out / "a.pem").read_bytes() == b"A"
    assert not staging_path(out).exists()
    with pytest.raises(UsageError, match="already exists"):
        preflight(out)


def test_abort_keeps_only_the_transcript(tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = Staging(out)
    _write(staging.path / "transcript.jsonl").close()
    staging.write("root-ca.pem", b"partial")
    aborted = staging.abort(now=NOW)
    assert aborted.name == "out.aborted-20261125T120000Z"
    assert [p.name for p in aborted.iterdir()] == ["transcript.jsonl"]
    assert not out.exists()
    preflight(out)  # An aborted run does not block the next one.


def test_interrupted_staging_blocks_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    Staging(out)
    with pytest.raises(UsageError, match="interrupted") as info:
        preflight(out)
    assert "transcript.jsonl" in (info.value.hint or "")
