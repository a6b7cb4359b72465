"""Transitions for what goes wrong: an executor that fails, a removal that must wait, a
rollback that cannot be verified, a read cancelled in flight, a write that never left us."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine import job as states
from engine.cst import TokenKind
from engine.errors import CommandRefused
from engine.job import describe_grant
from engine.lifecycle import (
    ANNOUNCE,
    END_WRITE_FAILED,
    ESCALATE,
    HALT_EXECUTOR,
    RUN_ROLLBACK,
    ExecutorFailed,
    Kill,
    RemovalDelayed,
    RollbackFinished,
    ToolCallRecorded,
    WriteSending,
)
from engine.timeutil import parse_iso
from tests.support.engine_sim import BOB, JobSim


def active() -> JobSim:
    sim = JobSim()
    sim.request()
    sim.approve_both()
    return sim


def recorded(sim: JobSim, which: str, result: dict[str, Any], status: str) -> ToolCallRecorded:
    """The receipt command for the planned call ``which`` under the agent token."""
    assert sim.job is not None
    tool, arguments = sim.planned(which)
    token = sim.job.token(TokenKind.AGENT)
    assert token is not None
    verified = result.get("verified")
    return ToolCallRecorded(
        receipt_id=f"tr_{sim.job.chain_length:06d}",
        tool_name=tool,
        arguments=arguments,
        result=result,
        status=status,
        token_scope_hash=token.claims["token_scope_hash_b64u"],
        latency_ms=1,
        role="write" if which == "action" else "read",
        verified=verified if isinstance(verified, bool) else None,
    )


def test_a_failed_write_ends_the_window_and_the_job_closes_by_the_facts() -> None:
    sim = active()
    t = sim.do(ExecutorFailed(END_WRITE_FAILED, "INVALID_ARGUMENT"))
    assert t.job.state == states.ROLLING_BACK
    assert t.job.end_reason == END_WRITE_FAILED
    assert t.job.token(TokenKind.AGENT).revoked_at is not None  # type: ignore[union-attr]
    assert [e.kind for e in t.effects][:2] == [HALT_EXECUTOR, RUN_ROLLBACK]
    (said,) = [e for e in t.effects if e.kind == ANNOUNCE]
    assert said.detail == {"event": END_WRITE_FAILED, "detail": "INVALID_ARGUMENT"}
    assert sim.do(RollbackFinished(verified=True)).job.state == states.CLOSED


@pytest.mark.parametrize(
    ("reason", "state", "expected"),
    [("kill", "active", "INVALID_REASON"), (END_WRITE_FAILED, "rolling_back", "NOT_ACTIVE")],
)
def test_executor_failures_are_refused_when_they_do_not_apply(
    reason: str, state: str, expected: str
) -> None:
    sim = active()
    if state == "rolling_back":
        sim.do(Kill(BOB))
    before = sim.job
    with pytest.raises(CommandRefused) as err:
        sim.do(ExecutorFailed(reason))
    assert err.value.reason == expected
    assert sim.job == before


def test_a_delayed_removal_is_announced_while_rolling_back_only() -> None:
    sim = active()
    when = sim.now + timedelta(minutes=5)
    with pytest.raises(CommandRefused) as err:
        sim.do(RemovalDelayed(when))
    assert err.value.reason == "NOT_ROLLING_BACK"
    sim.do(Kill(BOB))
    t = sim.do(RemovalDelayed(when, ("revoke_sign_in_sessions",)))
    assert t.job.state == states.ROLLING_BACK
    assert t.records == ()
    (said,) = [e for e in t.effects if e.kind == ANNOUNCE]
    assert parse_iso(said.detail["not_before"]) == when
    assert said.detail["contained"] == ["revoke_sign_in_sessions"]
    deleted = sim.do(RemovalDelayed(when, reason="principal_deleted"))
    (said,) = [e for e in deleted.effects if e.kind == ANNOUNCE]
    assert (said.detail["event"], deleted.records) == ("principal_deleted", ())
    before = sim.job
    with pytest.raises(CommandRefused) as err:
        sim.do(RemovalDelayed(when, reason="anything else"))
    assert err.value.reason == "INVALID_REASON"
    assert sim.job == before


@pytest.mark.parametrize(
    "finished",
    [RollbackFinished(verified=False), RollbackFinished(verified=True, still_privileged=("x",))],
)
def test_failed_and_rollback_verified_never_contradict(finished: RollbackFinished) -> None:
    sim = active()
    sim.run_write_and_verify()
    sim.do(Kill(BOB))
    t = sim.do(finished)
    assert t.job.state == states.FAILED
    assert t.job.rollback_verified is False
    assert t.job.still_privileged  # always named
    assert t.job.still_privileged == (finished.still_privileged or (describe_grant(t.job),))
    (escalation,) = [e for e in t.effects if e.kind == ESCALATE]
    assert escalation.detail["still_privileged"] == list(t.job.still_privileged)


def test_a_cancelled_read_never_overwrites_what_a_read_learned() -> None:
    sim = active()
    sim.run_write_and_verify()
    assert sim.job is not None
    assert sim.job.verified_after_write is True
    cancelled = recorded(sim, "verify_action", {"error": "CANCELLED", "cancelled": True}, "error")
    t = sim.do(cancelled)
    assert t.job.verified_after_write is True
    refuted = recorded(sim, "verify_action", {"verified": False}, "error")
    assert sim.do(refuted).job.verified_after_write is False  # a read that learned does


def test_only_a_write_refused_before_sending_counts_as_never_sent() -> None:
    sim = active()
    refused = {"error": "INVALID_ARGUMENT", "sent": False}
    t = sim.do(recorded(sim, "action", refused, "error"))
    assert (t.job.write_done, t.job.write_sent) == (False, False)
    t = sim.do(recorded(sim, "action", {"error": "ServiceUnavailable"}, "error"))
    assert (t.job.write_done, t.job.write_sent) == (False, True)
    t = sim.do(recorded(sim, "action", refused, "error"))
    assert t.job.write_sent is True  # once maybe sent, always maybe sent


def test_a_write_is_in_flight_from_before_it_is_sent_until_its_receipt() -> None:
    sim = active()
    t = sim.do(WriteSending())
    assert t.records == ()  # no chain event: the receipt that follows is the record
    assert (t.job.write_in_flight, t.job.write_sent, t.job.may_have_written) == (True, False, True)
    refused = {"error": "INVALID_ARGUMENT", "sent": False}
    t = sim.do(recorded(sim, "action", refused, "error"))
    assert (t.job.write_in_flight, t.job.may_have_written) == (False, False)


def test_a_write_is_not_let_out_once_the_job_has_ended() -> None:
    sim = active()
    sim.do(Kill(BOB))
    before = sim.job
    with pytest.raises(CommandRefused) as refused:
        sim.do(WriteSending())
    assert refused.value.reason == "NOT_ACTIVE"
    assert sim.job == before
