"""Every moment of a real job renders on both platforms from the job views (cards.job_views)."""

import json

from cards import job_views as views
from cards import slack, teams
from engine.lifecycle import Approve, Tick
from tests.support.engine_sim import BOB, CAROL, JobSim

NAMES = {"u-alice": "Alice Requester", "r-ga": "Global Administrator"}


def test_views_of_a_whole_job_render_both_ways() -> None:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    pending = views.approval_view(sim.job, NAMES, sim.now, approver_teams_ids=("29:bob",))
    assert pending.rollback[0].startswith("Remove the role assignment")
    assert pending.action.subject.display_name == "Alice Requester"
    card = teams.approval_card(pending, for_approver=True)
    assert "29:bob" in json.dumps(card)
    assert slack.approval_message(pending)["blocks"]
    sim.do(Approve(BOB, sim.job.plan.plan_hash))
    result = views.approval_result_view(sim.job, NAMES, "approve", "u-bob", sim.now)
    assert result.approvals_count == 1
    teams.approval_result_card(result)
    sim.do(Approve(CAROL, sim.job.plan.plan_hash))
    status = views.status_view(sim.job, NAMES, sim.now)
    assert status.active
    assert "Kill" in json.dumps(teams.status_card(status, sim.now))
    sim.run_write_and_verify()
    sim.advance(minutes=31)
    sim.do(Tick())
    sim.run_rollback()
    lines = [views.receipt_line(r) for r in sim.records]
    assert {line.kind for line in lines} >= {
        "request",
        "approval",
        "tool_call",
        "revocation",
        "run_end",
    }
    for line in lines:
        slack.receipt_message(line)
    killed = views.kill_result_view(sim.job, sim.records, NAMES)
    assert killed.trigger == "timebox_expired"
    assert not killed.still_privileged
    teams.kill_result_card(killed)
    audit = views.audit_summary_view(sim.job, sim.records, NAMES, "A" * 43)
    assert audit.rollback_verified
    assert "verify" in json.dumps(slack.audit_summary_message(audit))
