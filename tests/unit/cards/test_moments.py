"""What each card says: the facts a person needs, the same on both platforms."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from cards import wording
from cards.views import ActionSummary, Named, Template, ToolCall
from tests.unit.cards import samples as s


def text_of(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


def both(name: str) -> list[str]:
    return [text_of(s.TEAMS[name]()), text_of(s.SLACK[name]())]


def test_approval_prompt_says_exactly_what_will_happen() -> None:
    for text in both("approval_simulated_ca"):
        for needed in (
            "Exclude a group from a Conditional Access policy",
            "Require MFA for admins (id 7a8b9c0d-0000-4e1f-8a2b-666666666666)",
            "BG Exclusion 01 (id 5e6f7a8b-0000-4c1d-9e2f-555555555555)",
            "Contoso (id 9c0f3b7e-1d2a-4b8e-9f10-2a3b4c5d6e7f) [SIMULATED]",
            "45 min, ends by 2025-11-25 18:25 UTC",
            "Bob Requester (id 0b1c2d3e-bbbb-4bbb-8ccc-222222222222)",
            "mailbox rules hijacked",
            "INC-4711",
            "Check that no other principal gained the role",
            f"{s.POLICY[:12]}…",
            f"{s.PLAN[:12]}…",
            "1 of 2: Carol Approver (id 0b1c2d3e-cccc-4bbb-8ccc-333333333333)",
            "SIMULATED TENANT",
        ):
            assert needed in text, needed
    for text in [text_of(s.TEAMS["approval_approver"]()), text_of(s.SLACK["approval"]())]:
        assert "SIMULATED" not in text


def test_approval_variants_differ_only_in_buttons() -> None:
    approver, read_only = s.TEAMS["approval_approver"](), s.TEAMS["approval_read_only"]()
    assert [a["verb"] for a in approver["actions"]] == ["approve", "deny"]
    # Read-only: anyone may ask for their own variant (approvers whose client missed it).
    assert [(a["verb"], a["title"]) for a in read_only["actions"]] == [
        ("refresh", "Show my options")
    ]
    assert approver["refresh"] == read_only["refresh"]
    assert approver["refresh"]["userIds"] == list(s.TEAMS_APPROVERS)
    assert approver["refresh"]["action"]["verb"] == "refresh"
    withdraw = s.TEAMS["approval_withdraw"]()
    assert [a["verb"] for a in withdraw["actions"]] == ["withdraw"]


def test_slack_approval_asks_for_confirmation_before_approving() -> None:
    buttons = s.SLACK["approval"]()["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == [
        "breakglass.approve",
        "breakglass.deny",
        "breakglass.withdraw",
    ]
    question = buttons[0]["confirm"]["text"]["text"]
    assert question.startswith("Approve Exchange Administrator for Alice Example in Contoso")
    assert "for 30 min, until 2025-11-25 18:10 UTC?" in question
    first = s.SLACK["approval_first"]()["blocks"][-1]["elements"]
    assert [b["action_id"] for b in first] == ["breakglass.approve", "breakglass.deny"]


@pytest.mark.parametrize(
    ("left", "shown"),
    [
        (timedelta(minutes=12, seconds=30), "≈ 13 min left"),
        (timedelta(seconds=30), "≈ 1 min left"),
        (timedelta(0), "time is up"),
        (timedelta(minutes=-5), "time is up"),
    ],
)
def test_countdown_rounds_up_and_never_reads_zero_while_time_is_left(
    left: timedelta, shown: str
) -> None:
    assert shown in wording.countdown(s.NOW + left, s.NOW)


def test_status_card_offers_kill_done_extend_only_while_active() -> None:
    for text in both("status_active"):
        assert "ends 2025-11-25 18:00 UTC (≈ 13 min left)" in text
        assert "write_role_assignment → success at 17:30:00 UTC" in text
    active = s.TEAMS["status_active"]()
    assert [a["verb"] for a in active["actions"]] == ["kill", "done", "extend"]
    assert active["actions"][0]["style"] == "destructive"
    assert "actions" not in s.TEAMS["status_closed"]()
    assert not [b for b in s.SLACK["status_closed"]()["blocks"] if b["type"] == "actions"]


def test_failed_rollback_is_loud_and_first() -> None:
    card = s.TEAMS["kill_result_failed"]()
    assert card["body"][0]["text"] == "ROLLBACK FAILED: access is STILL granted"
    assert card["body"][1]["style"] == "attention"
    assert "STILL PRIVILEGED" in text_of(card["body"][1])
    blocks = s.SLACK["kill_result_failed"]()["blocks"]
    assert blocks[1]["text"]["text"].startswith(":rotating_light: *STILL PRIVILEGED")
    assert "Alice Example still holds Exchange Administrator" in blocks[2]["text"]["text"]
    for text in both("kill_result_failed"):
        assert "FAILED, NOT VERIFIED" in text
        assert "Graph 503" in text


def test_clean_kill_result_says_verified() -> None:
    for text in both("kill_result"):
        assert "rolled back and verified" in text
        assert "STILL" not in text
        assert "Kill pressed by Dave Approver" in text
        assert "agent token" in text


def test_audit_summary_tells_how_to_verify_the_bundle() -> None:
    for text in both("audit_summary"):
        assert s.BUNDLE in text  # the full hash, not a prefix
        assert "breakglass verify bundle.json --trust trust.json" in text
        assert "Bob Requester" in text
        assert "Dave Approver" in text
        assert "Rollback verified" in text
    for text in both("audit_summary_unverified"):
        assert "Rollback NOT verified" in text


def test_receipt_is_one_line_with_the_chain_head_prefix() -> None:
    message = s.SLACK["receipt"]()
    assert [b["type"] for b in message["blocks"]] == ["context"]
    line = message["blocks"][0]["elements"][0]["text"]
    assert "\n" not in line
    assert f"chain head {s.HEAD[:12]}…" in line
    assert line.startswith("`#7 ")


def test_long_lists_are_counted_not_silently_dropped() -> None:
    shown = wording.items(tuple(f"step {i}" for i in range(25)))
    assert len(shown) == wording.MAX_ITEMS + 1
    assert shown[-1] == "… and 5 more in the audit log"


def test_views_refuse_naive_times_and_empty_durations() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ToolCall("t", "ok", datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="duration_minutes"):
        ActionSummary(Template.ENTRA_ROLE, s.TENANT, s.ALICE, s.ROLE, 0)


def test_display_name_and_id_both_shown_so_look_alikes_differ() -> None:
    twin = Named("Alice Example", "ffffffff-0000-0000-0000-000000000000")
    assert wording.named(twin) != wording.named(s.ALICE)
    assert wording.named(Named("", "x")) == "(no display name) (id x)"
