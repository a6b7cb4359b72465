"""Step-up at approval, the pure part: a plan that needs it counts an approval only with
fresh evidence of the approver's own sign-in in the plan's authentication context; every
refusal changes nothing and is recorded; the receipt and the verifier carry the evidence."""

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from engine.access import GLOBAL_ADMINISTRATOR, access_from_config
from engine.bundle import BUNDLE_TYPE
from engine.envelope import sign_envelope
from engine.lifecycle import Approve, StepUpFailed, Tick
from engine.stepup import (
    STEP_UP_CONTEXT_MISSING,
    STEP_UP_FAILED,
    STEP_UP_PLAN_MISMATCH,
    STEP_UP_REPLAYED,
    STEP_UP_REQUIRED,
    STEP_UP_STALE,
    STEP_UP_WRONG_USER,
    StepUpEvidence,
)
from engine.verify import verify_bundle
from engine.verify.stepup import STEP_UP_MISSING
from tests.support.engine_sim import BOB, CAROL, TENANT, JobSim, trust_for
from tests.unit.engine.test_lifecycle import refused

TARGETS = {"tenant_id": TENANT, "principal_id": "u-alice", "role_definition_id": "r-helpdesk"}
HIGH_RISK = {
    "tenant_id": TENANT,
    "principal_id": "u-alice",
    "role_definition_id": GLOBAL_ADMINISTRATOR,
}


def stepup_sim(step_up: str | None = "required") -> JobSim:
    table: dict[str, object] = {"roles": ["*"], "principals": ["*"]}
    if step_up is not None:
        table["step_up"] = step_up
    sim = JobSim()
    access = access_from_config(
        {"entra-role": table}, {"authentication_context": "c1", "max_age_seconds": 300}
    )
    sim.rules = replace(sim.rules, access=access)
    return sim


def evidence(sim: JobSim, who: str, **changes: object) -> StepUpEvidence:
    assert sim.job is not None
    base = StepUpEvidence(
        subject=who,
        acrs=("c1",),
        amr=("pwd", "mfa"),
        auth_time=int((sim.now - timedelta(seconds=30)).timestamp()),
        issuer="https://login.example/tenant/v2.0",
        token_hash_b64u=f"hash-of-{who}-token-{'x' * 30}",
        plan_hash=sim.job.plan.plan_hash,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def approve(sim: JobSim, actor: object, step_up: StepUpEvidence | None) -> None:
    assert sim.job is not None
    sim.do(Approve(actor, sim.job.plan.plan_hash, step_up=step_up))  # type: ignore[arg-type]


def pending(step_up: str | None = "required", targets: dict[str, str] = TARGETS) -> JobSim:
    sim = stepup_sim(step_up)
    sim.request(targets=targets)
    return sim


def test_the_plan_records_the_step_up_terms() -> None:
    sim = pending()
    assert sim.job is not None
    access = sim.job.plan.payload["metadata"]["breakglass"]["access"]
    assert access["step_up"] == {"acr": "c1", "max_age_seconds": 300}


def test_high_risk_roles_need_step_up_by_default_and_others_do_not() -> None:
    risky = pending(step_up=None, targets=HIGH_RISK)
    plain = pending(step_up=None)
    assert risky.job is not None
    assert plain.job is not None
    assert "step_up" in risky.job.plan.payload["metadata"]["breakglass"]["access"]
    assert "step_up" not in plain.job.plan.payload["metadata"]["breakglass"]["access"]
    off = pending(step_up="off", targets=HIGH_RISK)
    assert off.job is not None
    assert "step_up" not in off.job.plan.payload["metadata"]["breakglass"]["access"]


def test_a_click_without_step_up_is_refused() -> None:
    sim = pending()
    assert sim.job is not None
    assert refused(sim, Approve(BOB, sim.job.plan.plan_hash)) == STEP_UP_REQUIRED


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"subject": "u-carol"}, STEP_UP_WRONG_USER),
        ({"acrs": ()}, STEP_UP_CONTEXT_MISSING),
        ({"acrs": ("c2",)}, STEP_UP_CONTEXT_MISSING),
        ({"plan_hash": "another-plan"}, STEP_UP_PLAN_MISMATCH),
    ],
)
def test_evidence_that_does_not_fit_is_refused(changes: dict[str, object], reason: str) -> None:
    sim = pending()
    assert sim.job is not None
    command = Approve(BOB, sim.job.plan.plan_hash, step_up=evidence(sim, "u-bob", **changes))
    assert refused(sim, command) == reason


def test_a_stale_or_future_sign_in_is_refused() -> None:
    sim = pending()
    assert sim.job is not None
    old = int((sim.now - timedelta(seconds=300 + 61)).timestamp())
    stale = Approve(BOB, sim.job.plan.plan_hash, step_up=evidence(sim, "u-bob", auth_time=old))
    assert refused(sim, stale) == STEP_UP_STALE
    ahead = int((sim.now + timedelta(minutes=5)).timestamp())
    future = Approve(BOB, sim.job.plan.plan_hash, step_up=evidence(sim, "u-bob", auth_time=ahead))
    assert refused(sim, future) == STEP_UP_STALE


def test_a_replayed_token_is_refused() -> None:
    sim = pending()
    first = evidence(sim, "u-bob")
    approve(sim, BOB, first)
    assert sim.job is not None
    replay = Approve(CAROL, sim.job.plan.plan_hash, step_up=replace(first, subject="u-carol"))
    assert refused(sim, replay) == STEP_UP_REPLAYED


def test_a_failed_sign_in_is_always_refused_and_recorded() -> None:
    sim = pending()
    assert sim.job is not None
    command = StepUpFailed(BOB, sim.job.plan.plan_hash, STEP_UP_FAILED, "nonce mismatch")
    assert refused(sim, command) == STEP_UP_FAILED


def test_step_up_evidence_is_in_the_receipt_and_the_bundle_verifies() -> None:
    sim = whole_stepup_job()
    bundle = sim.bundle()
    receipts = bundle["payload"]["human_approval_receipts"]
    step_ups = [json.loads(r["binding"]["step_up"]) for r in receipts]
    assert [s["subject"] for s in step_ups] == ["u-bob", "u-carol"]
    assert all(s["acrs"] == ["c1"] and "mfa" in s["amr"] for s in step_ups)
    assert set(step_ups[0]) == {  # the token's hash, never the token
        "subject",
        "acrs",
        "amr",
        "auth_time",
        "issuer",
        "token_hash_b64u",
        "plan_hash",
    }
    report = verify_bundle(bundle, trust_for(sim.keys))
    assert report.valid, report.reasons


def whole_stepup_job() -> JobSim:
    sim = pending()
    sim.advance(minutes=1)
    approve(sim, BOB, evidence(sim, "u-bob"))
    approve(sim, CAROL, evidence(sim, "u-carol"))
    sim.run_write_and_verify()
    sim.advance(minutes=30)
    sim.do(Tick())
    sim.run_rollback()
    return sim


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.clear(), "no step-up evidence"),
        (lambda s: s.update(subject="u-dave"), "another principal"),
        (lambda s: s.update(acrs=["c2"]), "without context"),
        (lambda s: s.update(auth_time=s["auth_time"] - 3600), "not fresh"),
    ],
)
def test_the_verifier_reports_approvals_without_fitting_step_up(
    change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    """A bundle (re-signed by its own agent key) whose approval of a step-up plan lacks
    fitting evidence fails verification with the step-up reason."""
    sim = whole_stepup_job()
    payload = copy.deepcopy(sim.bundle()["payload"])
    binding = payload["human_approval_receipts"][0]["binding"]
    step_up = json.loads(binding["step_up"])
    change(step_up)
    binding["step_up"] = json.dumps(step_up)
    if not step_up:
        del binding["step_up"]
    forged = sign_envelope(BUNDLE_TYPE, payload, sim.keys.agent, sim.now)
    report = verify_bundle(forged, trust_for(sim.keys))
    assert STEP_UP_MISSING in report.reason_codes
    assert any(problem in reason for reason in report.reasons)
