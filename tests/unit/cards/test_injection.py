"""Hostile text in every person- or directory-supplied field comes out inert on both platforms.

Each case names the attack it carries. Job ids and hashes are engine-made and pattern-checked
(see test_actions), so they stay benign here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from cards import job_views, slack, teams, views
from cards.text import MAX_LINES
from tests.support.engine_sim import JobSim
from tests.unit.cards import samples as s

HOSTILE = {
    "slack_channel_mention": "urgent <!channel> look",
    "slack_here_mention": "<!here>",
    "slack_user_mention": "ping <@U012AB3CD> now",
    "everyone_mention": "@everyone approve this",
    "slack_link_spoof": "see <http://evil.example|bank> for details",
    "markdown_link": "[click](http://evil.example)",
    "markdown_bold": "*bold* and _italic_ and ~strike~ and `code`",
    "teams_mention_tag": "<at>Carol Approver</at>",
    "rlo_override": "invoice\u202egpj.exe",
    "zero_width_joiner": "ad\u200dmin",
    "bidi_isolates_and_bom": "\u2066x\u2069\u200e\u200f\ufeff\u2060",
    "control_chars": "bell\x07esc\x1b[31mred",
    "huge_justification": "A" * 10_000,
    "many_newlines": "top" + "\n" * 200 + "bottom",
    "many_lines": "\n".join(f"line {i}" for i in range(200)),
    "emoji_shortcode": ":white_check_mark: approved by security",
    "blockquote": "> quoted\n> lines",
    "html": "<script>alert(1)</script><img src=x>",
}


def named(h: str) -> views.Named:
    return views.Named(h, h)


def hostile_action(h: str, simulated: bool = False) -> views.ActionSummary:
    return views.ActionSummary(
        views.Template.ENTRA_ROLE, named(h), named(h), named(h), 30, simulated
    )


def hostile_views(
    h: str, many: tuple[str, ...] | None = None
) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every moment with ``h`` in each person- or directory-supplied field; ``many`` fills lists."""
    lines = many or (h, h)
    people = tuple(views.Approval(named(x), s.T0) for x in lines)
    action = hostile_action(h, simulated=True)
    approval = s.approval(
        action,
        justification=h,
        ticket=h,
        requester=named(h),
        rollback=lines,
        approvals=people,
    )
    result = views.ApprovalResultView(
        s.JOB, s.PLAN, action, views.Decision.DENY, named(h), s.T0, 1, reason=h
    )
    status = views.StatusView(s.JOB, s.PLAN, action, h, s.T0, True, views.ToolCall(h, h, s.T0))
    receipt = views.ReceiptLineView(s.JOB, 1, s.T0, h, h, h, h)
    steps = tuple(views.RollbackStep(x, views.StepOutcome.FAILED, False, x) for x in lines)
    kill = views.KillResultView(s.JOB, action, h, s.T0, lines, steps, lines, named(h))
    audit = views.AuditSummaryView(
        s.JOB,
        action,
        named(h),
        people,
        lines,
        s.T0,
        s.T0 + timedelta(minutes=5),
        h,
        False,
        h,
        h,
    )
    form = views.RequestFormView(
        values=views.RequestValues(views.Template.ENTRA_ROLE, h, h, 30, h, h), error=h
    )
    burst = [views.ReceiptLineView(s.JOB, seq, s.T0, h, h, h, h) for seq in range(1, 40)]
    delayed = views.RemovalDelayedView(s.JOB, action, s.T0, lines)
    failed = views.EndedEarlyView(s.JOB, action, h, h)
    return {
        "approval": (
            teams.approval_card(approval, for_approver=True),
            slack.approval_message(approval),
        ),
        "approval_read_only": (teams.approval_card(approval, for_approver=False), None),
        "result": (teams.moment.approval_result(result), slack.moment.approval_result(result)),
        "status": (teams.moment.status(status, s.NOW), slack.moment.status(status, s.NOW)),
        "receipt": (teams.receipt_card(receipt), slack.receipt_message(receipt)),
        "kill": (teams.moment.kill_result(kill), slack.moment.kill_result(kill)),
        "audit": (teams.moment.audit_summary(audit), slack.moment.audit_summary(audit)),
        "form": (teams.request_form_card(form), slack.request_modal(form)),
        "receipts": (teams.receipts_card(burst), slack.receipts_message(burst)),
        "removal_delayed": (teams.moment.announcement(delayed), slack.moment.announcement(delayed)),
        "ended_early": (teams.moment.announcement(failed), slack.moment.announcement(failed)),
        **tenant_named_views(h),
    }


def tenant_named_views(h: str) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """A real job whose targets the tenant resolved to the display name ``h``: the tenant's
    text is as hostile as a person's."""
    sim = JobSim()
    named_h = {"given": "x", "display_name": h}
    found = {
        "principal_id": {**named_h, "object_id": "u-alice"},
        "role_definition_id": {**named_h, "object_id": "r-ga"},
    }
    sim.request(resolved=found)
    assert sim.job is not None
    approval = job_views.approval_view(sim.job, {}, sim.now)
    assert approval.action.subject.display_name == h  # the name reaches the card as given
    status = job_views.status_view(sim.job, {}, sim.now)
    return {
        "tenant_named_approval": (
            teams.approval_card(approval, for_approver=True),
            slack.approval_message(approval),
        ),
        "tenant_named_status": (
            teams.moment.status(status, sim.now),
            slack.moment.status(status, sim.now),
        ),
    }


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


INVISIBLE = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
INVISIBLE += "\u200b\u200c\u200d\u2060\ufeff\x07\x1b"
DISPLAYED_ONLY = ("text", "fallbackText", "label", "placeholder", "title", "errorMessage")


def displayed(card: dict[str, Any]) -> list[str]:
    """Text a person sees (user input echoed into form inputs is excluded: it is an input)."""
    return [
        v for n in s.walk(card) for k, v in n.items() if k in DISPLAYED_ONLY and isinstance(v, str)
    ]


def assert_everywhere_inert(card: dict[str, Any]) -> None:
    for text in strings(card):
        assert not set(text) & set(INVISIBLE), "an invisible or control character survived"
    for text in displayed(card):
        assert "http://" not in text, "a URL survived undefanged"
        assert "@everyone" not in text, "a mention survived"
        assert "\n\n" not in text, "blank lines survived"
        assert text.count("\n") <= 40, "newlines were not collapsed"


CODE_SPAN = re.compile(r"`[^`]*`")


def slack_mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    return [n["text"] for n in s.walk(message) if n.get("type") == "mrkdwn"]


def teams_text_runs(card: dict[str, Any]) -> list[str]:
    return [n["text"] for n in s.walk(card) if n.get("type") == "TextRun"]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_text_is_inert_on_slack(case: str) -> None:
    for name, (_, message) in hostile_views(HOSTILE[case]).items():
        if message is None:
            continue
        assert_everywhere_inert(message)
        for text in slack_mrkdwn_texts(message):
            assert not set("<>") & set(text), f"{name}: raw angle bracket in mrkdwn"
            text = CODE_SPAN.sub("", text)  # nothing is formatted inside a code span
            assert "*bold*" not in text
            assert "_italic_" not in text
            assert "`code`" not in text
            assert ":white_check_mark:" not in text
            assert len(text) <= slack.SECTION_LIMIT
        assert all(n.get("verbatim") for n in s.walk(message) if n.get("type") == "mrkdwn")
        blocks = message["blocks"]
        assert len(blocks) <= slack.MAX_BLOCKS
        for header in (n for n in s.walk(message) if n.get("type") == "header"):
            assert HOSTILE[case][:20] not in header["text"]["text"]
        if "text" in message:
            assert len(message["text"]) <= slack.TEXT_LIMIT


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_text_is_inert_on_teams(case: str) -> None:
    h = HOSTILE[case]
    for name, (card, _) in hostile_views(h).items():
        assert_everywhere_inert(card)
        assert "entities" not in card.get("msteams", {}), f"{name}: a mention entity"
        assert len(json.dumps(card).encode()) < teams.MAX_CARD_BYTES
        for node in s.walk(card):
            assert "selectAction" not in node
            assert node.get("type") != "Action.OpenUrl"
            if node.get("type") == "TextBlock":  # markdown: only our own escaped headings
                assert h.strip()[:12] not in node["text"], f"{name}: user text in a TextBlock"
            if node.get("type") == "FactSet":
                raise AssertionError("FactSet values are markdown; user text must use TextRun")


def test_ten_thousand_characters_are_cut_with_a_visible_ellipsis() -> None:
    teams_card, message = hostile_views(HOSTILE["huge_justification"])["approval"]
    assert message is not None
    runs = teams_text_runs(teams_card)
    assert any(r.endswith("…") and r.startswith("AAAA") for r in runs)
    assert max(len(r) for r in runs) <= 2000
    texts = slack_mrkdwn_texts(message)
    assert any("AAAA" in t and "…" in t for t in texts)


def test_two_hundred_newlines_collapse() -> None:
    _teams_card, message = hostile_views(HOSTILE["many_lines"])["approval"]
    assert message is not None
    justification = next(t for t in slack_mrkdwn_texts(message) if "*Justification:*" in t)
    section = justification.split("*Justification:*\n", 1)[1].split("\n*Ticket:*")[0]
    assert section.count("\n") == MAX_LINES - 1


@pytest.mark.parametrize(
    ("platform", "case", "shown"),
    [
        ("slack", "slack_channel_mention", "&lt;!channel&gt;"),
        ("slack", "slack_link_spoof", "&lt;http[:]//evil.example|bank&gt;"),
        ("slack", "markdown_bold", "\u2217bold\u2217"),
        ("slack", "everyone_mention", "\uff20everyone"),
        ("slack", "rlo_override", "invoice[U+202E]gpj.exe"),
        ("slack", "zero_width_joiner", "ad[U+200D]min"),
        ("teams", "markdown_link", "[click](http[:]//evil.example)"),
        ("teams", "markdown_bold", "*bold* and _italic_"),
        ("teams", "teams_mention_tag", "<at>Carol Approver</at>"),
        ("teams", "rlo_override", "invoice[U+202E]gpj.exe"),
    ],
)
def test_each_platform_shows_the_attack_literally(platform: str, case: str, shown: str) -> None:
    """Slack in its mrkdwn texts, Teams in its text runs."""
    card, message = hostile_views(HOSTILE[case])["approval"]
    texts = slack_mrkdwn_texts(message or {}) if platform == "slack" else teams_text_runs(card)
    assert any(shown in t for t in texts)


@pytest.mark.parametrize(
    ("case", "slack_shows", "teams_shows"),
    [
        ("slack_here_mention", "&lt;!here&gt; (id u-alice)", "<!here> (id u-alice)"),
        ("rlo_override", "invoice[U+202E]gpj.exe (id u-alice)", "invoice[U+202E]gpj.exe (id"),
    ],
)
def test_a_tenant_display_name_is_shown_literally_beside_its_id(
    case: str, slack_shows: str, teams_shows: str
) -> None:
    card, message = tenant_named_views(HOSTILE[case])["tenant_named_approval"]
    assert any(slack_shows in t for t in slack_mrkdwn_texts(message or {}))
    runs = teams_text_runs(card)
    assert any(teams_shows in r for r in runs)
