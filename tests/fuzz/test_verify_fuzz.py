"""Mutated real bundles and trusted roots: a verdict or a typed error, nothing else.

The verifier reads hostile input. Whatever hypothesis does to a real bundle (its
JSON text, its structure, or the bytes inside its base64 fields) or to a trusted
root, the outcome must be a result, a ``VerificationError`` or a ``FormatError``.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VectorCase, load_cases
from toolkit.encoding import b64encode
from toolkit.errors import FormatError, VerificationError
from toolkit.verify import Artifact, IdentityPolicy, Verifier

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("AIRSEAL_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def _cases() -> tuple[VectorCase, ...]:
    return tuple(c for c in load_cases() if c.expected == "pass")


@cache
def _verifier(index: int) -> Verifier:
    return Verifier.from_json(_cases()[index].trusted_root_path.read_bytes())


def _verify(index: int, bundle: bytes | str, verifier: Verifier | None = None) -> None:
    case = _cases()[index]
    try:
        (verifier or _verifier(index)).verify(
            bundle,
            Artifact.from_digest(case.digest_arg),
            IdentityPolicy(issuer=case.issuer, identity=case.identity),
            now=NOW,
        )
    except VerificationError as exc:
        assert exc.check is not None and exc.detail


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, (*prefix, i)))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    parent = _get(value, path[:-1])
    parent[path[-1]] = new


case_index = st.integers(min_value=0, max_value=5)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.binary(max_size=40).map(b64encode),
    st.sampled_from(["0", "-1", "18446744073709551616", "SHA2_256", "PKIX_ED25519", "0.0.2"]),
)


@SETTINGS
@given(index=case_index, data=st.data())
def test_text_mutations(index: int, data: st.DataObject) -> None:
    index %= len(_cases())
    raw = bytearray(_cases()[index].bundle_path.read_bytes())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            raw[pos] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif action == "delete":
            del raw[pos]
        else:
            raw.insert(pos, data.draw(st.integers(min_value=0, max_value=255)))
    _verify(index, bytes(raw))


@SETTINGS
@given(index=case_index, data=st.data())
def test_structure_mutations(index: int, data: st.DataObject) -> None:
    index %= len(_cases())
    bundle = json.loads(_cases()[index].bundle_path.read_text())
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(bundle) if p]
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "duplicate-list"]))
        if action == "replace":
            _set(bundle, path, data.draw(json_scalars))
        elif action == "delete":
            parent = _get(bundle, path[:-1])
            del parent[path[-1]]
        else:
            target = _get(bundle, path)
            if isinstance(target, list) and target:
                target.append(copy.deepcopy(target[0]))
    _verify(index, json.dumps(bundle))


@SETTINGS
@given(index=case_index, data=st.data())
def test_binary_field_mutations(index: int, data: st.DataObject) -> None:
    """Corrupt the bytes inside base64 fields: certificates, signatures, bodies, tokens."""
    index %= len(_cases())
    bundle = json.loads(_cases()[index].bundle_path.read_text())
    candidates = []
    for path in _paths(bundle):
        value = _get(bundle, path) if path else None
        if isinstance(value, str) and len(value) >= 8:
            try:
                decoded = base64.b64decode(value, validate=True)
            except ValueError:
                continue
            if b64encode(decoded) == value:
                candidates.append((path, decoded))
    path, decoded = data.draw(st.sampled_from(candidates))
    mutated = bytearray(decoded)
    choice = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if choice == "flip" and mutated:
        pos = data.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
        mutated[pos] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    elif choice == "truncate":
        del mutated[data.draw(st.integers(min_value=0, max_value=len(mutated))) :]
    else:
        mutated += data.draw(st.binary(min_size=1, max_size=16))
    _set(bundle, path, b64encode(bytes(mutated)))
    _verify(index, json.dumps(bundle))


@SETTINGS
@given(index=case_index, data=st.data())
def test_trusted_root_mutations(index: int, data: st.DataObject) -> None:
    index %= len(_cases())
    root = json.loads(_cases()[index].trusted_root_path.read_text())
    paths = [p for p in _paths(root) if p]
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from([p for p in _paths(root) if p]))
        if data.draw(st.booleans()):
            _set(root, path, data.draw(json_scalars))
        else:
            parent = _get(root, path[:-1])
            del parent[path[-1]]
    del paths
    try:
        verifier = Verifier.from_json(json.dumps(root))
    except FormatError as exc:
        assert exc.check is not None
        return
    _verify(index, _cases()[index].bundle_path.read_bytes(), verifier)
