"""The verifier answers any JSON with a report (or a typed input error), never a crash.

A property test mutates one field of a real bundle (the corpus's good ones) to any JSON
value, then verifies it both as it is and re-signed by the agent key (so the mutation gets
past the envelope signature and reaches the deep checks). Fixed seed, bounded examples.
"""

import copy
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.canonical import MAX_SAFE_INTEGER
from engine.envelope import sign_envelope
from engine.errors import InputError
from engine.timeutil import parse_iso
from engine.verify import Report, Trust, verify_bundle
from tests.corpus.generate import HERE
from tests.support.engine_sim import fixed_keys

TRUST = Trust.from_json(json.loads((HERE / "trust.json").read_text()))
BUNDLES = {
    name: json.loads((HERE / f"{name}.bundle.json").read_text()) for name in ("good", "good_killed")
}
AGENT = fixed_keys().agent

Path = tuple[str | int, ...]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every member and element of ``value``, as key paths (the root excluded)."""
    out: list[Path] = []
    items: list[tuple[str | int, Any]] = (
        list(value.items())
        if isinstance(value, dict)
        else list(enumerate(value))
        if isinstance(value, list)
        else []
    )
    for key, child in items:
        out.append((*prefix, key))
        out.extend(paths(child, (*prefix, key)))
    return out


PATHS = {name: paths(bundle) for name, bundle in BUNDLES.items()}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(max_size=40)
    | st.sampled_from(["", "x", "2026-13-45T99:99:99Z", "x" * 100_000, "explicit_approve"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)


def mutated(bundle: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def resigned(bundle: dict[str, Any]) -> object:
    payload = bundle.get("payload")
    if not isinstance(payload, dict):
        return bundle
    try:
        at = parse_iso(bundle.get("issued_at"))
    except InputError:
        at = parse_iso("2026-11-25T09:00:00Z")
    try:
        return sign_envelope("proof_bundle", payload, AGENT, at)
    except InputError:  # a payload that cannot even be canonicalised: verify the raw one
        return bundle


def answers(envelope: object) -> None:
    try:
        report = verify_bundle(envelope, TRUST)
    except InputError:
        return  # a typed input error is an answer too
    assert isinstance(report, Report)
    if not report.valid:
        assert report.reason_codes
    # The verifier's last-resort net for evidence of the wrong shape was not needed: every
    # confusion was caught by a schema rule with a precise reason.
    assert not any("malformed evidence (" in r for r in report.reasons), report.reasons


@settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    name=st.sampled_from(sorted(BUNDLES)),
    index=st.integers(min_value=0),
    value=json_values,
)
@example(name="good", index=-1, value=[])  # approval_type: []
@example(name="good", index=-2, value={})  # result_status: {}
def test_any_field_set_to_any_json_gets_an_answer(name: str, index: int, value: Any) -> None:
    bundle = BUNDLES[name]
    if index == -1:
        path = _find(bundle, "approval_type")
    elif index == -2:
        path = _find(bundle, "result_status")
    else:
        path = PATHS[name][index % len(PATHS[name])]
    changed = mutated(bundle, path, value)
    answers(changed)
    answers(resigned(changed))


def _find(bundle: dict[str, Any], key: str) -> Path:
    return next(p for p in PATHS["good"] if p[-1] == key)


def _code(envelope: object) -> list[str]:
    report = verify_bundle(envelope, TRUST)
    assert not report.valid
    return report.reason_codes


def test_type_confused_approval_type_and_result_status_are_reason_codes() -> None:
    for key in ("approval_type", "result_status"):
        for value in ([], {}):
            changed = mutated(BUNDLES["good"], _find(BUNDLES["good"], key), value)
            assert _code(changed) == ["SCHEMA_VALIDATION_FAILED"]
            assert _code(resigned(changed)) == ["SCHEMA_VALIDATION_FAILED"]


def test_envelope_issued_at_is_checked() -> None:
    for value in ("x", "2" * 100_000, 5, "2026-11-25T09:00:00"):  # the last has no offset
        changed = mutated(BUNDLES["good"], ("issued_at",), value)
        assert _code(changed) == ["MALFORMED_ENVELOPE"]
    assert verify_bundle(BUNDLES["good"], TRUST).valid
