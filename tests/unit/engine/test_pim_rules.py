"""Entra PIM's rules in the plan: a role window of at least 5 minutes, and a containment
kill step (revoke the principal's sessions) the rollback token may run on exactly the job's
own principal, which the verifier accepts as part of the rollback."""

import pytest

from engine import catalog, chain
from engine.cst import TokenKind
from engine.errors import CommandRefused
from engine.job import KILLED
from engine.lifecycle import Extend, Kill, RenewRollback, RollbackFinished
from engine.verify import verify_bundle
from tests.support.engine_sim import ALICE, DAVE, JobSim, trust_for


def test_role_request_shorter_than_five_minutes_is_refused_before_approval() -> None:
    sim = JobSim()
    with pytest.raises(CommandRefused) as err:
        sim.request(minutes=4)
    assert err.value.reason == "NOT_ELIGIBLE"
    assert "shorter than 5 minutes" in err.value.detail
    assert sim.job is None  # nobody was asked to approve anything


def test_extension_leaving_less_than_five_minutes_is_refused() -> None:
    sim = JobSim()
    sim.request(minutes=5)
    sim.approve_both()
    sim.advance(minutes=4, seconds=30)  # 30 s left: +1 gives a 2-minute plan
    with pytest.raises(CommandRefused) as err:
        sim.do(Extend(ALICE, 1))
    assert err.value.reason == "NOT_ELIGIBLE"


def killed_early() -> JobSim:
    sim = JobSim()
    sim.request(minutes=5)
    sim.approve_both()
    sim.run_write_and_verify()
    sim.advance(seconds=20)
    sim.do(Kill(DAVE))
    return sim


def test_rollback_token_runs_containment_and_the_bundle_verifies() -> None:
    sim = killed_early()
    token = sim.token_string(TokenKind.ROLLBACK)
    sim.advance(seconds=1)
    contained = sim.call(*sim.planned("rollback", "containment", "0"), token=token)
    receipt = next(r for r in contained.records if r.event["event_type"] == chain.TOOL_CALL)
    assert receipt.envelope is not None
    assert receipt.envelope["payload"]["tool_name"] == catalog.REVOKE_SESSIONS
    assert receipt.envelope["payload"]["result_status"] == "success"
    sim.advance(minutes=4)  # the removal waits: PIM refuses it in the first minutes
    sim.call(*sim.planned("rollback", "steps", "0"), token=token)
    sim.advance(seconds=1)
    sim.call(*sim.planned("rollback", "verify"), token=token)
    sim.contain_at_end(token)  # sessions revoked again after the removal (maybe re-established)
    end = sim.do(RollbackFinished(verified=True))
    assert end.job.state == KILLED
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons


def test_containment_on_another_principal_is_refused() -> None:
    sim = killed_early()
    tool, arguments = sim.planned("rollback", "containment", "0")
    refused = sim.call(
        tool, arguments | {"principal_id": "u-mallory"}, token=sim.token_string(TokenKind.ROLLBACK)
    )
    receipt = next(r for r in refused.records if r.event["event_type"] == chain.TOOL_CALL)
    assert receipt.envelope is not None
    assert receipt.envelope["payload"]["result_status"] == "error"
    assert refused.job.last_tool_call == f"{catalog.REVOKE_SESSIONS}: error"


def test_calls_under_a_renewed_rollback_token_each_bind_to_the_token_live_then() -> None:
    # Renewals share a scope hash; a removal finished before the renewal stays in its window.
    sim = killed_early()
    first = sim.token_string(TokenKind.ROLLBACK)
    sim.advance(seconds=1)
    sim.call(*sim.planned("rollback", "steps", "0"), token=first)
    sim.advance(minutes=1)
    sim.do(RenewRollback())
    sim.advance(seconds=1)
    sim.call(*sim.planned("rollback", "verify"), token=sim.token_string(TokenKind.ROLLBACK))
    sim.contain_at_end(sim.token_string(TokenKind.ROLLBACK))
    sim.advance(minutes=4, seconds=30)  # past the first token's expiry
    sim.do(RollbackFinished(verified=True))
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons
