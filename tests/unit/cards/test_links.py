"""Link buttons: the report link on the audit summary (only when a report URL is known) and
the approver's private sign-in button, drawn for Slack, Teams and plain text."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cards import moments, plain, slack, teams
from cards.job_views import report_url
from tests.unit.cards.samples import JOB, audit_summary

REPORT = f"https://breakglass.example/v1/reports/{JOB}"
SIGN_IN = "https://login.example/tenant/oauth2/v2.0/authorize?state=abc"


def slack_links(message: dict[str, Any]) -> list[dict[str, Any]]:
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    return [e for b in actions for e in b["elements"] if "url" in e]


def teams_links(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in card.get("actions", []) if a["type"] == "Action.OpenUrl"]


def test_the_report_url_needs_a_public_url() -> None:
    assert report_url(None, JOB) is None
    assert report_url("", JOB) is None
    assert report_url("https://breakglass.example/", JOB) == REPORT


def test_the_audit_summary_links_the_report_only_when_known() -> None:
    without = audit_summary()
    assert slack_links(slack.moment.audit_summary(without)) == []
    assert teams_links(teams.moment.audit_summary(without)) == []
    linked = replace(without, report_url=REPORT)
    (button,) = slack_links(slack.moment.audit_summary(linked))
    assert (button["url"], button["action_id"]) == (REPORT, slack.LINK_ACTION)
    (action,) = teams_links(teams.moment.audit_summary(linked))
    assert action["url"] == REPORT
    assert REPORT in plain.render(moments.audit_summary(linked))


def test_the_sign_in_answer_is_one_link_button() -> None:
    (button,) = slack_links(slack.step_up_message(JOB, SIGN_IN))
    assert button["url"] == SIGN_IN
    assert "value" not in button  # nothing of ours rides on the click Slack still sends
    card = teams.step_up_card(JOB, SIGN_IN)
    (action,) = teams_links(card)
    assert action["url"] == SIGN_IN
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl"]
