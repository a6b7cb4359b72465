"""One open job per grant (``engine.grants``): the key, the request refusal and the last
approval of a job whose grant a live job took meanwhile."""

from dataclasses import replace

import pytest

from engine import job as states
from engine.chain import RUN_END
from engine.cst import TokenKind
from engine.errors import CommandRefused
from engine.grants import (
    END_TARGET_BUSY,
    TARGET_BUSY,
    grant_key,
    held_grants,
    job_grant_key,
)
from engine.lifecycle import Approve
from engine.verify import verify_bundle
from tests.support.engine_sim import BOB, CAROL, ROLE_TARGETS, JobSim, trust_for

CA_TARGETS = {"tenant_id": ROLE_TARGETS["tenant_id"], "policy_id": "p-mfa", "group_id": "g-bg"}
GUID = "fe930be7-5e62-47db-91af-98c3a49a38b1"


def test_the_key_is_the_template_and_its_targets_whatever_the_case() -> None:
    lower = grant_key("entra-role", ROLE_TARGETS | {"role_definition_id": GUID})
    upper = grant_key("entra-role", ROLE_TARGETS | {"role_definition_id": GUID.upper()})
    assert lower == upper
    assert len(lower or "") == 64
    assert grant_key("entra-role", ROLE_TARGETS | {"principal_id": "u-eve"}) != grant_key(
        "entra-role", ROLE_TARGETS
    )
    assert grant_key("ca-exclusion", CA_TARGETS) != grant_key(
        "ca-exclusion", CA_TARGETS | {"group_id": "g-other"}
    )
    # Only the template's own targets count; an unknown template has no key.
    assert grant_key("entra-role", ROLE_TARGETS | {"note": "x"}) == grant_key(
        "entra-role", ROLE_TARGETS
    )
    assert grant_key("no-such-template", ROLE_TARGETS) is None


def test_a_request_for_a_held_grant_is_refused_naming_the_holder() -> None:
    sim = JobSim()
    sim.held = {str(grant_key("entra-role", ROLE_TARGETS)): "job-first"}
    shouted = {k: v.upper() for k, v in ROLE_TARGETS.items()}
    with pytest.raises(CommandRefused) as err:
        sim.request(targets=shouted)
    assert err.value.reason == TARGET_BUSY
    assert "job-first" in err.value.detail
    assert sim.job is None  # nothing was planned
    assert sim.records == []


def test_refusals_that_come_first_still_do() -> None:
    """A malformed or too-long request is refused for that, whoever holds its grant."""
    sim = JobSim()
    sim.held = {str(grant_key("entra-role", ROLE_TARGETS)): "job-first"}
    with pytest.raises(CommandRefused) as err:
        sim.request(minutes=600)
    assert err.value.reason == "NOT_ELIGIBLE"


def test_another_grant_and_the_jobs_own_claim_are_free() -> None:
    sim = JobSim()
    sim.held = {str(grant_key("entra-role", ROLE_TARGETS)): "job-0001"}  # its own id
    assert sim.request().job.state == states.PENDING
    other = JobSim()
    other.held = {str(grant_key("entra-role", ROLE_TARGETS)): "job-first"}
    eve = ROLE_TARGETS | {"principal_id": "u-eve"}
    assert other.request(targets=eve).job.state == states.PENDING


def test_the_last_approval_of_a_grant_a_live_job_holds_ends_the_job_denied() -> None:
    """Two requests both pending (two replicas at once): the second to be approved ends
    denied by the rule, with a signed terminal record, no token and the refusal noted."""
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    plan = sim.job.plan.plan_hash
    first = sim.do(Approve(BOB, plan))  # not the last approval: counted as ever
    assert first.job.state == states.PENDING
    sim.held = {str(job_grant_key(sim.job)): "job-first"}  # meanwhile, job-first went live
    t = sim.do(Approve(CAROL, plan))
    assert t.job.state == states.DENIED
    assert t.job.end_reason == END_TARGET_BUSY
    assert t.job.ended_by is None  # the rule ended it, not the approver
    assert t.result["refused"] == TARGET_BUSY
    assert "job-first" in t.result["detail"]
    assert t.job.token(TokenKind.AGENT) is None
    assert t.job.plan.approvers() == ["u-bob"]  # carol's approval did not count
    assert t.job.refusals[-1]["reason"] == TARGET_BUSY
    assert t.job.refusals[-1]["actor"] == CAROL.chat_identity
    assert sim.records[-1].event["event_type"] == RUN_END
    assert verify_bundle(sim.bundle(), trust_for(sim.keys)).valid


def test_a_held_grant_by_the_job_itself_does_not_stop_its_activation() -> None:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    sim.held = {str(job_grant_key(sim.job)): sim.job.job_id}
    assert sim.approve_both().job.state == states.ACTIVE


def test_held_grants_names_open_jobs_and_live_ones_for_approvals() -> None:
    pending = JobSim()
    pending.request(job_id="job-pending")
    live = JobSim()
    live.request(job_id="job-live", targets=ROLE_TARGETS | {"principal_id": "u-eve"})
    live.approve_both()
    ended = JobSim()
    ended.request(job_id="job-ended", targets=ROLE_TARGETS | {"principal_id": "u-dan"})
    assert pending.job is not None
    assert live.job is not None
    assert ended.job is not None
    ended_job = replace(ended.job, state=states.KILLED)
    jobs = [pending.job, live.job, ended_job]
    assert held_grants(jobs) == {
        job_grant_key(pending.job): "job-pending",
        job_grant_key(live.job): "job-live",
    }
    assert held_grants(jobs, live=True) == {job_grant_key(live.job): "job-live"}
