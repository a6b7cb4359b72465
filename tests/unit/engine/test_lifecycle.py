"""The pure job state machine: every transition and every refusal."""

import json
from dataclasses import replace

import pytest

from engine import job as states
from engine.cst import TokenKind
from engine.errors import CommandRefused
from engine.job import Actor, Job
from engine.lifecycle import (
    ASK_APPROVERS,
    ESCALATE,
    FINISH,
    HALT_EXECUTOR,
    NOTICE,
    REFRESH_EXECUTOR,
    RUN_ROLLBACK,
    START_EXECUTOR,
    Approve,
    Deny,
    Done,
    Extend,
    Kill,
    RollbackFinished,
    StepUpFailed,
    Tick,
    Withdraw,
    refusal_note,
)
from engine.stepup import STEP_UP_FAILED
from engine.verify import verify_bundle
from tests.support.engine_sim import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ROLE_TARGETS,
    WRITE_ROLE,
    JobSim,
    trust_for,
)


def kinds(transition: object) -> list[str]:
    return [e.kind for e in transition.effects]  # type: ignore[attr-defined]


def pending() -> JobSim:
    sim = JobSim()
    sim.request()
    return sim


def active() -> JobSim:
    sim = pending()
    sim.approve_both()
    return sim


def refused(sim: JobSim, command: object) -> str:
    before = sim.job
    length = len(sim.records)
    with pytest.raises(CommandRefused) as err:
        sim.do(command)  # type: ignore[arg-type]
    assert sim.job == before
    assert len(sim.records) == length
    assert sim.job is not None
    noted = refusal_note(sim.job, command, err.value, sim.now)  # type: ignore[arg-type]
    assert noted.refusals[-1]["reason"] == err.value.reason  # and it can be recorded
    return err.value.reason


def test_request_starts_pending_and_asks_approvers_but_not_the_requester() -> None:
    sim = JobSim()
    t = sim.request()
    assert t.job.state == states.PENDING
    ask = next(e for e in t.effects if e.kind == ASK_APPROVERS)
    assert "u-alice" not in ask.detail["principals"]
    assert t.records[0].event["event_type"] == "request"
    assert t.records[0].event["payload_hash_b64u"] == t.job.plan.plan_hash


def test_request_outside_the_template_is_not_eligible() -> None:
    sim = JobSim()
    with pytest.raises(CommandRefused) as err:
        sim.request(minutes=600)
    assert err.value.reason == "NOT_ELIGIBLE"
    assert sim.job is None


def test_requester_outside_the_requester_group_is_refused() -> None:
    sim = JobSim()
    sim.rules = replace(sim.rules, requesters=frozenset({"u-dave"}))
    with pytest.raises(CommandRefused, match="NOT_ALLOWED_TO_REQUEST"):
        sim.request()


def test_second_approval_activates_issues_the_token_and_starts_the_executor() -> None:
    sim = pending()
    first = sim.do(Approve(BOB, sim.job.plan.plan_hash))  # type: ignore[union-attr]
    assert first.job.state == states.PENDING
    second = sim.do(Approve(CAROL, first.job.plan.plan_hash))
    assert second.job.state == states.ACTIVE
    assert START_EXECUTOR in kinds(second)
    token = second.job.token(TokenKind.AGENT)
    assert token is not None
    assert token.claims["policy_hash_b64u"] == second.job.plan.plan_hash
    assert token.claims["exp"] - token.claims["iat"] == 30 * 60
    approval = second.records[0].envelope
    assert approval is not None
    assert approval["payload"]["minted_capability_id"] == token.jti


@pytest.mark.parametrize(
    ("actor", "reason"),
    [
        (ALICE, "SELF_APPROVAL"),
        (Actor("console:eve", "u-eve"), "NOT_AN_APPROVER"),
        (Actor("console:ghost", None), "IDENTITY_UNRESOLVED"),
    ],
)
def test_approvals_by_the_wrong_people_are_refused(actor: Actor, reason: str) -> None:
    sim = pending()
    assert refused(sim, Approve(actor, sim.job.plan.plan_hash)) == reason  # type: ignore[union-attr]


def test_the_person_who_would_hold_the_role_cannot_approve_it() -> None:
    # Requested for someone else: a black-box run saw the grantee's approval counted.
    sim = JobSim()
    asked = sim.request(targets=ROLE_TARGETS | {"principal_id": BOB.principal})
    (ask,) = [e for e in asked.effects if e.kind == ASK_APPROVERS]
    assert ask.detail["principals"] == [CAROL.principal, DAVE.principal]  # not Bob, nor Alice
    assert sim.job is not None
    plan = sim.job.plan.plan_hash
    assert refused(sim, Approve(BOB, plan)) == "GRANTEE_APPROVAL"
    sim.do(Approve(CAROL, plan))
    sim.do(Approve(DAVE, plan))  # two people other than the requester and the grantee
    assert sim.job.state == states.ACTIVE


def test_a_member_of_the_group_a_ca_exclusion_excludes_cannot_approve_it() -> None:
    # The exclusion would let its members through: a member's approval is no second pair of
    # eyes. The caller reads the membership; one it could not read is refused too.
    sim = JobSim()
    targets = {"tenant_id": ROLE_TARGETS["tenant_id"], "policy_id": "p-mfa", "group_id": "g-bg"}
    sim.request(template="ca-exclusion", targets=targets)
    assert sim.job is not None
    plan = sim.job.plan.plan_hash
    assert refused(sim, Approve(BOB, plan, excluded_member=True)) == "EXCLUDED_MEMBER_APPROVAL"
    assert refused(sim, Approve(BOB, plan, excluded_member=None)) == "TENANT_UNAVAILABLE"
    sim.do(Approve(BOB, plan))
    sim.do(Approve(CAROL, plan))
    assert sim.job.state == states.ACTIVE


def test_members_of_the_group_a_ca_exclusion_excludes_are_not_asked_nor_counted() -> None:
    # Issue: with too few non-members in the approver group, the request used to wait for
    # approvals that every member's click refused, until it expired.
    targets = {"tenant_id": ROLE_TARGETS["tenant_id"], "policy_id": "p-mfa", "group_id": "g-bg"}
    sim = JobSim()
    asked = sim.request(
        template="ca-exclusion", targets=targets, excluded_approvers=frozenset({BOB.principal})
    )
    (ask,) = [e for e in asked.effects if e.kind == ASK_APPROVERS]
    assert ask.detail["principals"] == [CAROL.principal, DAVE.principal]
    sim = JobSim()
    with pytest.raises(CommandRefused) as err:  # Bob and Carol are members: Dave alone
        sim.request(
            template="ca-exclusion",
            targets=targets,
            excluded_approvers=frozenset({BOB.principal, CAROL.principal}),
        )
    assert err.value.reason == "TOO_FEW_APPROVERS"
    assert "member of the group it excludes" in err.value.detail
    assert sim.job is None  # nothing made, nobody asked


def test_a_role_job_ignores_group_membership() -> None:
    sim = pending()
    assert sim.job is not None
    sim.do(Approve(BOB, sim.job.plan.plan_hash, excluded_member=None))
    assert list(sim.job.plan.approvers()) == [BOB.principal]


def test_a_request_too_few_people_may_approve_is_refused_before_anyone_is_asked() -> None:
    sim = JobSim()
    sim.rules = replace(sim.rules, approvers=frozenset({"u-bob", "u-carol"}))
    with pytest.raises(CommandRefused) as err:  # Bob would hold it: only Carol may approve
        sim.request(targets=ROLE_TARGETS | {"principal_id": BOB.principal})
    assert err.value.reason == "TOO_FEW_APPROVERS"
    assert sim.job is None  # nothing made, nobody asked


def test_same_person_twice_also_through_a_second_chat_identity() -> None:
    sim = pending()
    sim.do(Approve(BOB, sim.job.plan.plan_hash))  # type: ignore[union-attr]
    other_identity = Actor("slack:UBOB2", "u-bob")
    assert refused(sim, Approve(other_identity, sim.job.plan.plan_hash)) == "DUPLICATE_APPROVER"  # type: ignore[union-attr]
    assert sim.job is not None
    assert sim.job.state == states.PENDING


def test_outdated_plan_and_expired_request_are_refused() -> None:
    sim = pending()
    assert refused(sim, Approve(BOB, "A" * 43)) == "PLAN_UNKNOWN"
    sim.advance(minutes=61)
    assert refused(sim, Approve(BOB, sim.job.plan.plan_hash)) == "REQUEST_EXPIRED"  # type: ignore[union-attr]
    t = sim.do(Tick())
    assert t.job.state == states.EXPIRED
    assert FINISH in kinds(t)


def test_deny_resolves_denied_and_a_resolved_job_never_flips() -> None:
    sim = pending()
    t = sim.do(Deny(DAVE, sim.job.plan.plan_hash))  # type: ignore[union-attr]
    assert t.job.state == states.DENIED
    for command in (Approve(BOB, t.job.plan.plan_hash), Kill(BOB), Tick(), Done(ALICE)):
        assert refused(sim, command) == "ALREADY_RESOLVED"
    assert verify_bundle(sim.bundle(), trust_for(sim.keys)).valid


def test_withdraw_before_the_window_removes_the_approval() -> None:
    sim = pending()
    sim.do(Approve(BOB, sim.job.plan.plan_hash))  # type: ignore[union-attr]
    t = sim.do(Withdraw(BOB))
    assert t.job.plan.approvers() == []
    sim.do(Approve(CAROL, t.job.plan.plan_hash))
    assert sim.job is not None
    assert sim.job.state == states.PENDING
    assert refused(sim, Withdraw(DAVE)) == "NOTHING_TO_WITHDRAW"


def test_withdraw_during_the_window_fires_approval_revoked() -> None:
    sim = active()
    t = sim.do(Withdraw(BOB))
    assert t.job.state == states.ROLLING_BACK
    assert t.job.end_reason == "approval_revoked"
    sim.run_rollback()
    assert sim.job is not None
    assert sim.job.state == states.KILLED


def test_kill_revokes_first_then_hands_over_to_rollback() -> None:
    sim = active()
    sim.run_write_and_verify()
    t = sim.do(Kill(Actor("console:anyone", None)))  # anyone in the channel may kill
    assert t.job.state == states.ROLLING_BACK
    event_types = [r.event["event_type"] for r in t.records]
    assert event_types[0] == "token_revoked"  # revoked before anything else
    assert t.job.token(TokenKind.AGENT).revoked_at is not None  # type: ignore[union-attr]
    assert kinds(t)[:2] == [HALT_EXECUTOR, RUN_ROLLBACK]
    assert refused(sim, Kill(BOB)) == "ALREADY_ENDING"


def test_call_after_kill_is_refused_and_receipted() -> None:
    sim = active()
    agent_token = sim.token_string()
    sim.do(Kill(BOB))
    t = sim.call(*sim.planned("action"), token=agent_token)
    receipt = t.records[0].envelope
    assert receipt is not None
    assert receipt["payload"]["result_status"] == "error"
    assert not t.job.write_done


def test_rollback_token_cannot_write() -> None:
    sim = active()
    sim.do(Kill(BOB))
    t = sim.call(*sim.planned("action"), token=sim.token_string(TokenKind.ROLLBACK))
    assert t.records[0].envelope["payload"]["result_status"] == "error"  # type: ignore[index]
    assert not t.job.write_done


def test_kill_of_a_pending_request_resolves_it_killed() -> None:
    sim = pending()
    assert sim.do(Kill(DAVE)).job.state == states.KILLED


def test_window_end_rolls_back_and_closes() -> None:
    sim = active()
    sim.run_write_and_verify()
    sim.advance(minutes=31)
    t = sim.do(Tick())
    assert t.job.state == states.ROLLING_BACK
    assert t.job.end_reason == "timebox_expired"
    assert sim.run_rollback().job.state == states.CLOSED


def test_countdown_notices_every_five_minutes_then_every_minute() -> None:
    sim = active()
    minutes_left = []
    for _ in range(30):
        sim.advance(minutes=1)
        t = sim.do(Tick())
        minutes_left += [e.detail["minutes_left"] for e in t.effects if e.kind == NOTICE]
        if t.job.state != states.ACTIVE:
            break
    assert minutes_left == [25, 20, 15, 10, 5, 4, 3, 2, 1]


def test_unexpected_target_kills_the_job() -> None:
    sim = active()
    tool, args = sim.planned("action")
    t = sim.call(tool, {**args, "principal_id": "u-mallory"})
    assert t.job.state == states.ROLLING_BACK
    assert t.job.end_reason == "unexpected_target_detected"
    assert not t.job.write_done


def test_done_needs_a_participant() -> None:
    sim = active()
    assert refused(sim, Done(DAVE)) == "NOT_A_PARTICIPANT"
    assert sim.do(Done(ALICE)).job.state == states.ROLLING_BACK


def test_failed_rollback_ends_failed_and_escalates() -> None:
    sim = active()
    sim.run_write_and_verify()
    sim.do(Kill(BOB))
    t = sim.do(RollbackFinished(verified=False, still_privileged=("u-alice holds r-ga",)))
    assert t.job.state == states.FAILED
    escalate = next(e for e in t.effects if e.kind == ESCALATE)
    assert escalate.detail["still_privileged"] == ["u-alice holds r-ga"]


def test_a_plan_the_job_never_had_is_unknown_not_outdated() -> None:
    # A black-box run answered a hash the job was never given and was told it approved "a
    # plan that is no longer the current one": only a plan the job once had is outdated.
    sim = active()
    assert sim.job is not None
    first = sim.job.plan.plan_hash
    sim.do(Extend(ALICE, 15))  # the extension is now the plan to answer
    never = "A" * 43
    for plan, reason, said in (
        (never, "PLAN_UNKNOWN", "a plan this job never had"),
        (first, "OUTDATED_PLAN", "no longer the current one"),
    ):
        for command in (
            Approve(BOB, plan),
            Deny(BOB, plan),
            StepUpFailed(BOB, plan, STEP_UP_FAILED),
        ):
            assert refused(sim, command) == reason  # nothing changed, and it can be recorded
            with pytest.raises(CommandRefused) as err:
                sim.do(command)
            assert said in err.value.detail


def test_extension_needs_two_fresh_approvals_and_a_new_token() -> None:
    sim = active()
    old = sim.job.token(TokenKind.AGENT)  # type: ignore[union-attr]
    t = sim.do(Extend(ALICE, 15))
    new_plan = t.job.extension
    assert new_plan is not None
    assert new_plan.plan_hash != t.job.plan.plan_hash
    assert t.job.window_end == sim.job.window_end  # type: ignore[union-attr]
    assert refused(sim, Approve(BOB, t.job.plan.plan_hash)) == "OUTDATED_PLAN"
    sim.do(Approve(BOB, new_plan.plan_hash))
    done = sim.do(Approve(CAROL, new_plan.plan_hash))
    assert REFRESH_EXECUTOR in kinds(done)
    new = done.job.token(TokenKind.AGENT)
    assert new is not None
    assert old is not None
    assert new.jti != old.jti
    assert next(t for t in done.job.tokens if t.jti == old.jti).revoked_at is not None
    assert new.claims["policy_hash_b64u"] == new_plan.plan_hash
    sim.advance(minutes=60)
    sim.do(Tick())
    sim.run_rollback()
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons


def test_extension_by_someone_else_or_while_pending_is_refused() -> None:
    sim = active()
    assert refused(sim, Extend(BOB, 10)) == "NOT_THE_REQUESTER"
    assert refused(sim, Extend(ALICE, 600)) == "NOT_ELIGIBLE"
    assert refused(pending(), Extend(ALICE, 10)) == "NOT_ACTIVE"


def test_an_extension_past_the_maximum_says_so() -> None:
    sim = active()  # 30 minutes, none passed
    with pytest.raises(CommandRefused) as err:
        sim.do(Extend(ALICE, 31))
    assert (err.value.reason, err.value.detail) == (
        "NOT_ELIGIBLE",
        "a window of 61 minutes is above the 60-minute maximum",
    )


def test_job_round_trips_through_json() -> None:
    sim = active()
    sim.run_write_and_verify()
    sim.do(Withdraw(BOB))
    assert sim.job is not None
    assert Job.from_json(json.loads(json.dumps(sim.job.to_json()))) == sim.job


def test_but_is_replace_and_leaves_the_job_as_it_was() -> None:
    sim = active()
    job = sim.job
    assert job is not None
    changed = job.but(chain_length=job.chain_length + 1, last_tool_call="x: success")
    assert changed == replace(job, chain_length=job.chain_length + 1, last_tool_call="x: success")
    assert changed.chain_length == job.chain_length + 1
    assert job.last_tool_call != "x: success"
    assert job.but() == job
    assert job.but() is not job
    with pytest.raises(TypeError, match="no_such_field"):
        job.but(no_such_field=1)


def test_write_tool_is_in_the_catalog() -> None:
    sim = active()
    assert sim.planned("action")[0] == WRITE_ROLE


def test_a_write_never_read_back_ends_failed() -> None:
    sim = active()
    sim.call(*sim.planned("action"))  # the write, and no verification read
    sim.do(Kill(BOB))
    t = sim.do(RollbackFinished(verified=True))
    assert t.job.state == states.FAILED
    assert sim.job is not None
    # No rollback call ran at all: neither the removal nor the end's session revocation.
    assert verify_bundle(sim.bundle(), trust_for(sim.keys)).reason_codes == [
        "BREAKGLASS_VERIFICATION_MISSING",
        "BREAKGLASS_ROLLBACK_MISSING",
        "BREAKGLASS_CONTAINMENT_MISSING",
    ]
