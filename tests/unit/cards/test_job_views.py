"""Every moment of a real job renders on both platforms from the job views (cards.job_views)."""

import json
from datetime import timedelta

from cards import job_views as views
from cards import slack, teams
from cards.views import EndedEarlyView, Named, RemovalDelayedView
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
    teams.moment.approval_result(result)
    sim.do(Approve(CAROL, sim.job.plan.plan_hash))
    status = views.status_view(sim.job, NAMES, sim.now)
    assert status.active
    assert "Kill" in json.dumps(teams.moment.status(status, sim.now))
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
    teams.moment.kill_result(killed)
    audit = views.audit_summary_view(sim.job, sim.records, NAMES, "A" * 43)
    assert audit.rollback_verified
    assert "verify" in json.dumps(slack.moment.audit_summary(audit))


def resolved(display: str, role: str = "Global Administrator") -> dict[str, dict[str, str]]:
    """``request["resolved"]`` as the service keeps it after the preflight read."""
    return {
        "principal_id": {
            "given": "alice@x.example",
            "object_id": "u-alice",
            "display_name": display,
        },
        "role_definition_id": {"given": role, "object_id": "r-ga", "display_name": role},
    }


def test_approvers_see_the_names_the_tenant_resolved_with_their_ids() -> None:
    sim = JobSim()
    sim.request(resolved=resolved("Alice From Tenant"))
    assert sim.job is not None
    pending = views.approval_view(sim.job, {"u-alice": "Stale Seed Name"}, sim.now)
    assert pending.action.subject == Named("Alice From Tenant", "u-alice")
    assert pending.action.resource == Named("Global Administrator", "r-ga")
    shown = "Alice From Tenant (id u-alice)"
    assert shown in json.dumps(slack.approval_message(pending), ensure_ascii=False)
    assert shown in json.dumps(teams.approval_card(pending, for_approver=True))
    status = views.status_view(sim.job, {}, sim.now)
    assert "Global Administrator (id r-ga)" in json.dumps(teams.moment.status(status, sim.now))
    assert "Global Administrator (id r-ga)" in json.dumps(slack.moment.status(status, sim.now))


def test_without_resolved_names_the_cards_fall_back_to_the_ids() -> None:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    action = views.approval_view(sim.job, {}, sim.now).action
    assert (action.subject, action.resource) == (
        Named("u-alice", "u-alice"),
        Named("r-ga", "r-ga"),
    )


def test_an_empty_resolved_name_does_not_hide_the_id() -> None:
    sim = JobSim()
    sim.request(resolved=resolved("   "))
    assert sim.job is not None
    action = views.approval_view(sim.job, NAMES, sim.now).action
    assert action.subject == Named("Alice Requester", "u-alice")


def test_announcements_have_views_and_other_announcements_do_not() -> None:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    when = (sim.now + timedelta(minutes=4)).isoformat()
    delayed = views.announcement_view(
        sim.job, NAMES, {"event": "removal_delayed", "not_before": when, "contained": ["x"]}
    )
    assert isinstance(delayed, RemovalDelayedView)
    assert (delayed.not_before, delayed.contained) == (sim.now + timedelta(minutes=4), ("x",))
    failed = views.announcement_view(sim.job, NAMES, {"event": "write_failed", "detail": "boom"})
    assert isinstance(failed, EndedEarlyView)
    assert (failed.job_id, failed.reason, failed.detail) == (sim.job.job_id, "write_failed", "boom")
    assert views.announcement_view(sim.job, NAMES, {"decision": "approve", "by": "u-bob"}) is None
    broken = {"event": "removal_delayed", "not_before": "tomorrow"}
    assert views.announcement_view(sim.job, NAMES, broken) is None
