"""Causal spans: model calls declare them, approvals anchor to them, and the verifier applies
the reference's causal rules (with its reason codes) whenever spans are present."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from engine.bundle import anchor_approvals
from engine.errors import VerificationError
from engine.lifecycle import Rules
from engine.verify import Trust, verify_bundle
from engine.verify.causal import check_causal
from tests.corpus.generate import AGENT_MODEL, HERE, agent_sim, model_call, resign
from tests.support.engine_sim import JobSim

TRUST = Trust.from_json(json.loads((HERE / "trust.json").read_text()))


def corpus_bundle(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((HERE / f"{name}.bundle.json").read_text())
    return doc


def spans_of(bundle: dict[str, Any]) -> list[dict[str, str]]:
    return [r["payload"]["binding"] for r in bundle["payload"].get("receipts", [])]


def test_agent_bundle_declares_one_lineage_and_anchors_every_approval() -> None:
    bundle = corpus_bundle("good_agent")
    first, second = spans_of(bundle)
    assert "parent_span_id" not in first  # the root: the first model call
    assert second["parent_span_id"] == first["span_id"]
    anchors = {a["binding"]["span_id"] for a in bundle["payload"]["human_approval_receipts"]}
    assert anchors == {first["span_id"]}  # the approvals enabled the run that followed
    assert verify_bundle(bundle, TRUST).valid


def test_runbook_bundle_carries_no_causal_field_and_stays_legacy_valid() -> None:
    bundle = corpus_bundle("good")
    text = json.dumps(bundle["payload"])
    for key in ("span_id", "parent_span_id", "tool_span_id", '"phase"'):
        assert key not in text
    check_causal(bundle["payload"])  # observe-mode legacy: nothing to anchor to, no failure
    assert verify_bundle(bundle, TRUST).valid


def test_approval_naming_an_undeclared_span_is_orphaned() -> None:
    report = verify_bundle(corpus_bundle("orphaned_approval"), TRUST)
    assert not report.valid
    assert report.reason_codes == ["CAUSAL_HUMAN_APPROVAL_ORPHANED"]


def test_unanchored_approval_is_orphaned_once_spans_exist() -> None:
    sim = agent_sim()
    bundle = copy.deepcopy(sim.bundle())
    del bundle["payload"]["human_approval_receipts"][1]["binding"]["span_id"]
    report = verify_bundle(resign(bundle, sim.keys.agent), TRUST)
    assert report.reason_codes == ["CAUSAL_HUMAN_APPROVAL_ORPHANED"]


def test_an_approval_naming_a_span_in_a_legacy_bundle_is_orphaned() -> None:
    payload = copy.deepcopy(corpus_bundle("good")["payload"])
    payload["human_approval_receipts"][0]["binding"]["span_id"] = "span_x"
    with pytest.raises(VerificationError) as caught:
        check_causal(payload)
    assert caught.value.code == "CAUSAL_HUMAN_APPROVAL_ORPHANED"


def test_extension_approval_after_the_last_call_anchors_to_it() -> None:
    calls = [
        {"payload": {"timestamp": "2026-01-01T00:00:01Z", "binding": {"span_id": "s1"}}},
        {"payload": {"timestamp": "2026-01-01T00:00:05Z", "binding": {"span_id": "s2"}}},
    ]
    approvals = [
        {"timestamp": "2026-01-01T00:00:00Z", "binding": {"run_id": "r"}},
        {"timestamp": "2026-01-01T00:00:03Z"},
        {"timestamp": "2026-01-01T00:00:09Z"},
    ]
    anchored = anchor_approvals(approvals, calls)
    assert [a["binding"]["span_id"] for a in anchored] == ["s1", "s2", "s2"]
    assert anchored[0]["binding"]["run_id"] == "r"
    assert anchor_approvals(approvals, []) == approvals


def test_a_call_that_overlapped_the_last_hangs_off_the_root() -> None:
    sim = JobSim(rules=Rules(approvers=frozenset({"u-bob", "u-carol"}), model=AGENT_MODEL))
    sim.request()
    sim.advance(minutes=2)
    sim.approve_both()
    model_call(sim, 1, "root")
    sim.advance(seconds=10)
    model_call(sim, 3, "later")
    sim.advance(seconds=-5)  # admitted before call 3 was receipted: its clock is earlier
    model_call(sim, 2, "overlapping")
    bindings = [
        r.envelope["payload"]["binding"]
        for r in sim.records
        if r.envelope and r.envelope["envelope_type"] == "gateway_receipt"
    ]
    root = bindings[0]["span_id"]
    assert [b.get("parent_span_id") for b in bindings] == [None, root, root]


# ------------------------------------------------------------ the rules, one by one


def receipt(span: str | None, at: str, **binding: Any) -> dict[str, Any]:
    fields = ({"span_id": span} if span else {}) | binding
    return {
        "issued_at": at,
        "payload": {"receipt_id": f"r_{span}_{at}", "timestamp": at, "binding": fields},
    }


T1, T2, T3 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"


@pytest.mark.parametrize(
    ("receipts", "code"),
    [
        ([receipt("a", T1), receipt("b", T2, parent_span_id="z")], "CAUSAL_REFERENCE_DANGLING"),
        ([receipt("a", T2), receipt("b", T1, parent_span_id="a")], "CAUSAL_CLOCK_CONTRADICTION"),
        (
            [
                receipt("a", T1),
                receipt("b", T2, parent_span_id="c"),
                receipt("c", T2, parent_span_id="b"),
            ],
            "CAUSAL_CYCLE_DETECTED",
        ),
        ([receipt("a", T1), receipt("b", T2)], "CAUSAL_GRAPH_DISCONNECTED"),
        (
            [
                receipt("a", T1, phase="teardown"),
                receipt("b", T2, parent_span_id="a", phase="planning"),
            ],
            "CAUSAL_PHASE_TRANSITION_INVALID",
        ),
        ([receipt("a", T1, phase="dreaming")], "CAUSAL_PHASE_INVALID"),
        ([receipt("a", T1, spanId="b")], "CAUSAL_BINDING_FIELD_CONFLICT"),
        ([receipt("a", T1, parent_span_id=" ")], "CAUSAL_BINDING_NORMALIZATION_FAILED"),
        ([receipt("a", T1, attribution_confidence=1.5)], "CAUSAL_CONFIDENCE_OUT_OF_RANGE"),
        ([receipt("a", T1, attribution_confidence=0.9)], "CAUSAL_CONFIDENCE_EVIDENCE_INCONSISTENT"),
        (
            [receipt("a", T1), receipt("a", T2, parent_span_id="a")],
            "CAUSAL_CLOCK_CONTRADICTION",
        ),
    ],
)
def test_causal_rule(receipts: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(VerificationError) as caught:
        check_causal({"receipts": receipts})
    assert caught.value.code == code


def test_a_sound_lineage_passes_and_anchors() -> None:
    receipts = [receipt("a", T1), receipt("b", T2, parent_span_id="a", phase="reasoning")]
    approval = {"timestamp": T1, "binding": {"parent_span_id": "b"}}
    check_causal({"receipts": receipts, "human_approval_receipts": [approval]})


def test_a_side_effect_without_anchor_is_orphaned() -> None:
    payload = {"receipts": [receipt("a", T1)], "side_effect_receipts": [{"binding": {}}]}
    with pytest.raises(VerificationError) as caught:
        check_causal(payload)
    assert caught.value.code == "CAUSAL_SIDE_EFFECT_ORPHANED"


def test_a_receipt_id_replayed_with_other_content_is_refused() -> None:
    first = receipt("a", T1)
    replay = copy.deepcopy(first)
    replay["payload"]["model"] = "other"
    with pytest.raises(VerificationError) as caught:
        check_causal({"receipts": [first, replay]})
    assert caught.value.code == "CAUSAL_RECEIPT_REPLAY_DETECTED"
