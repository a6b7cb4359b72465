"""Failures and delayed removals: what the channel is told, the same on every platform."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cards import job_views, moments, plain, slack, teams, wording
from cards.views import RemovalDelayedView, SweptView
from tests.support.engine_sim import JobSim
from tests.unit.cards import samples as s

ALICE = "Alice Example (id 0b1c2d3e-aaaa-4bbb-8ccc-111111111111)"
ROLE = "Exchange Administrator (id 29232cdf-9323-42fd-ade2-1d097af3e4de)"


def shown(name: str) -> list[str]:
    """The Teams card and the Slack message of sample ``name``, as JSON text."""
    return [json.dumps(render(), ensure_ascii=False) for render in (s.TEAMS[name], s.SLACK[name])]


def test_a_delayed_removal_says_what_was_contained_and_when_removal_runs() -> None:
    line = wording.removal_delayed_line(s.removal_delayed())
    assert line == (
        f"Sessions of {ALICE} revoked; the role {ROLE} can be removed from 17:36 UTC; "
        "removal will run then."
    )
    for text in shown("removal_delayed"):
        assert line in text
    console = plain.render(moments.announcement(s.removal_delayed()))
    assert line in console


def test_nothing_contained_is_said_loudly() -> None:
    line = wording.removal_delayed_line(s.removal_delayed(()))
    assert line.startswith(f"Nothing contained {ALICE} meanwhile (sign-in sessions NOT revoked)")
    for text in shown("removal_delayed_uncontained"):
        assert "sign-in sessions NOT revoked" in text
    assert "SIGN-IN SESSIONS NOT REVOKED" in plain.render(
        moments.announcement(s.removal_delayed(()))
    )


def test_the_removal_time_is_never_shown_earlier_than_allowed() -> None:
    assert wording.at_minute(datetime(2025, 1, 1, 17, 35, tzinfo=UTC)) == "17:35 UTC"
    assert wording.at_minute(datetime(2025, 1, 1, 17, 35, 0, 1, tzinfo=UTC)) == "17:36 UTC"
    view = RemovalDelayedView(s.JOB, s.CA_ACTION, s.T0, ("other.tool",))
    assert wording.removal_delayed_line(view) == (
        "Contained by other.tool; the exclusion of BG Exclusion 01 (id "
        "5e6f7a8b-0000-4c1d-9e2f-555555555555) from Require MFA for admins (id "
        "7a8b9c0d-0000-4e1f-8a2b-666666666666) can be removed from 17:30 UTC; "
        "removal will run then."
    )


def test_a_deleted_principal_is_named_with_the_dormant_role_and_the_restore_deadline() -> None:
    deleted = replace(s.removal_delayed(()), deleted=True)  # lapses 17:35:20, shown 17:36
    line = wording.removal_delayed_line(deleted)
    assert line == (
        f"{ALICE} was deleted during the window: the role {ROLE} stays dormant in deleted "
        f"items, and restoring {ALICE} before 17:36 UTC brings it back; removal will be "
        "tried until then."
    )
    title = "Principal deleted during the window: the rollback waits"
    for card in (teams.moment.announcement(deleted), slack.moment.announcement(deleted)):
        text = json.dumps(card, ensure_ascii=False)
        assert line in text
        assert title in text
        assert "Removal delayed by the tenant" not in text
        assert "NOT revoked" not in text
    console = plain.render(moments.announcement(deleted))
    assert line in console
    assert title in console


def test_a_deleted_principal_s_wait_is_its_own_announcement() -> None:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    when = s.T0.isoformat()
    early = {"event": "removal_delayed", "not_before": when, "contained": []}
    gone = {"event": "principal_deleted", "not_before": when, "contained": []}
    said = job_views.announcement_view(sim.job, {}, gone)
    assert isinstance(said, RemovalDelayedView)
    assert (said.not_before, said.contained, said.deleted) == (s.T0, (), True)
    delayed = job_views.announcement_view(sim.job, {}, early)
    assert isinstance(delayed, RemovalDelayedView)
    assert not delayed.deleted
    # A re-delivery posts nothing twice (one key each), and neither hides the other.
    assert job_views.announcement_key(gone) != job_views.announcement_key(early)


def test_a_failed_write_and_a_failed_executor_say_why_and_what_happens_next() -> None:
    for name, title in wording.ENDED_EARLY_TITLES.items():
        for text in shown(name):
            assert title in text
            assert wording.END_REASONS[name] in text
            assert "ActiveDurationTooShort" in text
            assert wording.ENDED_EARLY_NEXT in text


def test_the_kill_result_names_the_new_end_reasons() -> None:
    for reason in ("write_failed", "executor_failed"):
        card = moments.kill_result(replace(s.kill_result(), trigger=reason, by=None))
        assert f"Ended: {wording.END_REASONS[reason]} at" in plain.render(card)


def test_what_the_sweep_removed_is_said_the_same_on_every_platform() -> None:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    grant = "directory role R assigned to P by breakglass job " + sim.job.job_id
    detail = {"event": job_views.SWEPT, "grant": grant, "at": s.T0.isoformat()}
    said = job_views.announcement_view(sim.job, {}, detail)
    assert isinstance(said, SweptView)
    assert (said.grant, said.at) == (grant, s.T0)
    line = wording.swept_line(said)
    assert line == (
        f"The reconciliation sweep removed {grant}, which job {sim.job.job_id} left behind, "
        "at 2025-11-25 17:30 UTC: that grant is no longer held. The sweep revokes no sign-in "
        "sessions."
    )
    for card in (teams.moment.announcement(said), slack.moment.announcement(said)):
        assert line in json.dumps(card, ensure_ascii=False)
    assert line in plain.render(moments.announcement(said))
    # One post per removal: a later removal of the same job is not taken for a re-delivery.
    later = {**detail, "at": (s.T0 + timedelta(minutes=5)).isoformat()}
    assert job_views.announcement_key(detail) != job_views.announcement_key(later)
    assert job_views.announcement_view(sim.job, {}, {**detail, "at": "never"}) is None
