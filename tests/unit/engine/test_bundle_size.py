"""A job's bundle stays under the reference's 16 KiB metadata cap, and every extension
request is its own plan (own revision, own hash, own approvals)."""

from typing import Any

import pytest

from engine.bundle import MAX_METADATA_BYTES, metadata_size
from engine.canonical import jcs
from engine.compact import apply_merge_patch, compact, expand, merge_patch
from engine.envelope import sign_envelope
from engine.errors import CommandRefused, VerificationError
from engine.job import ACTIVE, KILLED
from engine.lifecycle import MAX_EXTENSIONS, Approve, Deny, Extend, Kill, Rules
from engine.verify import verify_bundle
from tests.support.engine_sim import ALICE, BOB, CAROL, DAVE, TENANT, JobSim, trust_for

GUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"  # Entra object ids are GUIDs
MAX_TEXT = {"justification": "J" * 500, "ticket": "T" * 100}


def long_job(rules: Rules | None = None) -> JobSim:
    """A five-minute role job with the longest text, written and verified; ``rules`` for a
    template with other terms (e.g. rotation)."""
    sim = JobSim()
    sim.rules = rules or sim.rules
    targets = {"tenant_id": TENANT, "principal_id": GUID, "role_definition_id": GUID}
    sim.request(minutes=5, targets=targets, **MAX_TEXT)
    sim.approve_both()
    sim.run_write_and_verify()
    return sim


def extend(sim: JobSim, answer: str) -> str:
    sim.advance(minutes=1)
    sim.do(Extend(ALICE, 10))
    assert sim.job is not None
    assert sim.job.extension is not None
    plan = sim.job.extension.plan_hash
    if answer == "approve":
        sim.do(Approve(BOB, plan))
        sim.do(Approve(CAROL, plan))
    else:
        sim.do(Deny(BOB, plan))
    return plan


def close(sim: JobSim) -> dict[str, Any]:
    sim.do(Kill(DAVE))
    sim.run_rollback()
    assert sim.job is not None
    assert sim.job.state == KILLED
    return sim.bundle()


@pytest.mark.parametrize("answer", ["approve", "deny"])
def test_five_extensions_with_maximum_text_stay_under_the_cap(answer: str) -> None:
    sim = long_job()
    for _ in range(MAX_EXTENSIONS):
        extend(sim, answer)
    bundle = close(sim)
    assert metadata_size(bundle["payload"]) < MAX_METADATA_BYTES
    report = verify_bundle(bundle, trust_for(sim.keys))
    assert report.valid, report.reasons


def test_a_sixth_extension_request_is_refused() -> None:
    sim = long_job()
    for _ in range(MAX_EXTENSIONS):
        extend(sim, "deny")
    with pytest.raises(CommandRefused) as err:
        sim.do(Extend(ALICE, 10))
    assert err.value.reason == "EXTENSION_LIMIT"


def test_an_over_cap_bundle_is_flagged() -> None:
    sim = long_job()
    bundle = close(sim)
    payload = dict(bundle["payload"])
    breakglass = dict(payload["metadata"]["breakglass"])
    breakglass["run"] = {**breakglass["run"], "padding": "x" * MAX_METADATA_BYTES}
    payload["metadata"] = {"breakglass": breakglass}
    resigned = sign_envelope("proof_bundle", payload, sim.keys.agent, sim.now)
    report = verify_bundle(resigned, trust_for(sim.keys))
    assert not report.valid
    assert "PROOF_BUNDLE_METADATA_TOO_LARGE" in report.reason_codes


def test_a_repeated_extension_is_a_new_plan_and_old_approvals_do_not_count() -> None:
    sim = long_job()
    sim.advance(minutes=1)
    sim.do(Extend(ALICE, 10))
    assert sim.job is not None
    assert sim.job.extension is not None
    first = sim.job.extension
    sim.do(Approve(BOB, first.plan_hash))
    sim.do(Deny(CAROL, first.plan_hash))
    sim.do(Extend(ALICE, 10))  # same time, same minutes
    second = sim.job.extension
    assert second is not None
    assert (first.revision, second.revision) == (1, 2)
    assert second.plan_hash != first.plan_hash
    assert second.approvers() == []  # Bob's approval of the first does not carry over
    with pytest.raises(CommandRefused) as err:
        sim.do(Approve(BOB, first.plan_hash))
    assert err.value.reason == "OUTDATED_PLAN"
    sim.do(Approve(BOB, second.plan_hash))
    assert sim.job.extension is not None  # one approval is not enough
    sim.do(Approve(CAROL, second.plan_hash))
    assert sim.job.extension is None
    assert sim.job.state == ACTIVE
    assert sim.job.plan.plan_hash == second.plan_hash
    report = verify_bundle(close(sim), trust_for(sim.keys))
    assert report.valid, report.reasons


def test_compaction_round_trips_and_keeps_what_a_patch_cannot_say() -> None:
    first = {"a": 1, "b": {"c": [1, 2], "d": "x"}}
    later = {"a": 2, "b": {"c": [1]}, "e": "new"}
    with_null = {"a": None}
    stored = compact([first, later, with_null])
    assert stored[1] == {"merge_patch": merge_patch(first, later)}
    assert stored[2] == with_null  # null cannot be expressed in a merge patch: kept whole
    assert expand(stored, "items") == [first, later, with_null]
    assert apply_merge_patch(first, {"b": None}) == {"a": 1}
    assert len(jcs(stored)) <= len(jcs([first, later, with_null])) + len(
        '{"merge_patch":,"d":null}'
    )


def test_renewals_are_patched_against_the_one_before_them() -> None:
    # The agent's token, then rollback tokens that differ from it in scope and from each
    # other only in their ids and times: each renewal costs only what changed.
    agent = {"sub": "agent", "scope": ["tool:a", "tool:b", "tool:c"], "jti": "j0", "exp": 1}
    renewals = [{"sub": "rollback", "scope": ["tool:c"], "jti": f"j{i}", "exp": i} for i in (1, 2)]
    stored = compact([agent, *renewals])
    assert stored[1] == {"merge_patch": merge_patch(agent, renewals[0])}
    assert stored[2] == {"merge_patch_previous": {"jti": "j2", "exp": 2}}
    assert expand(stored, "items") == [agent, *renewals]


def test_lists_written_before_patches_against_the_previous_item_still_read() -> None:
    first, second, third = {"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 3}
    old = [first, {"merge_patch": {"b": 2}}, {"merge_patch": {"b": 3}}]
    assert expand(old, "items") == [first, second, third]


@pytest.mark.parametrize(
    "stored",
    [
        {"not": "a list"},
        [1],
        [{"a": 1}, {"merge_patch": 3}],
        [{"a": 1}, {"merge_patch": {}, "x": 1}],
        [{"a": 1}, {"merge_patch_previous": []}],
        [{"a": 1}, {"merge_patch": {}, "merge_patch_previous": {}}],
    ],
)
def test_a_malformed_compacted_list_is_a_schema_failure(stored: Any) -> None:
    with pytest.raises(VerificationError) as err:
        expand(stored, "items")
    assert err.value.code == "SCHEMA_VALIDATION_FAILED"
