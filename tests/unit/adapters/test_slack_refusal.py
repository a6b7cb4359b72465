"""The state of a job's channel that refuses the bot: when it is tried again, what a ref
holds, and what the operator and the requester are told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.slack.refs import Posted
from adapters.slack.refusal import Refusal, requester_text, what_to_do
from engine.errors import InputError

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_a_refusal_is_tried_again_after_the_outbox_backoff_capped_at_ten_minutes() -> None:
    refusal = Refusal.first("is_archived", "chat.postMessage", T0)
    waits = []
    for n in range(10):
        now = T0 + timedelta(hours=n)
        assert refusal.due(now) == (n > 0)  # not at once; an hour on, yes
        refusal = refusal.again("is_inactive", "chat.update", now)
        waits.append((refusal.retry_at - now).total_seconds())
    assert waits == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]
    assert refusal.since == T0  # a run of refusals keeps when it began
    assert refusal.tries == 11


def test_a_ref_round_trips_and_a_cleared_or_absent_one_is_no_refusal() -> None:
    refusal = Refusal.first("not_in_channel", "chat.postMessage", T0)
    ref = Posted("C1", "", {"channel": "C1", "ts": "", **refusal.as_ref()})
    assert Refusal.of(ref) == refusal
    assert Refusal.of(Posted("C1", "", {"refused": False})) is None
    assert Refusal.of(None) is None
    with pytest.raises(InputError):
        Refusal.of(Posted("C1", "", {"refused": True, "since": "yesterday"}))


@pytest.mark.parametrize(
    ("code", "said", "told"),
    [
        ("is_archived", "unarchive CINC42", "the channel is archived"),
        ("is_inactive", "unarchive CINC42", "the channel is archived"),
        ("not_in_channel", "invite the bot to CINC42", "/invite @breakglass"),
        ("channel_not_found", "invite the bot to CINC42", "/invite @breakglass"),
    ],
)
def test_what_the_operator_and_the_requester_are_told(code: str, said: str, told: str) -> None:
    assert said in what_to_do(code, "CINC42")
    text = requester_text("bg-1", "CINC42", code)
    assert told in text
    assert "<#CINC42>" in text
    assert requester_text("bg-1", "<!here>", code).count("<!here>") == 0  # typed text is inert
