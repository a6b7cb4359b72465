from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.slack import commands
from adapters.slack.commands import Verb


@pytest.mark.parametrize(
    ("text", "verb", "job_id"),
    [
        ("", Verb.HELP, None),
        ("  help ", Verb.HELP, None),
        ("REQUEST", Verb.REQUEST, None),
        ("status", Verb.STATUS, None),
        ("kill", Verb.KILL, None),
        ("kill bg-1a2b3c4d5e", Verb.KILL, "bg-1a2b3c4d5e"),
    ],
)
def test_commands_parse(text: str, verb: Verb, job_id: str | None) -> None:
    parsed = commands.parse(text)
    assert (parsed.verb, parsed.job_id) == (verb, job_id)


@pytest.mark.parametrize(
    "text", ["grant", "status now", "kill a b", "kill ../etc", "kill <!channel>", "request x"]
)
def test_malformed_commands_say_why(text: str) -> None:
    parsed = commands.parse(text)
    assert parsed.verb is Verb.INVALID
    assert parsed.problem


def test_echo_is_inert() -> None:
    said = commands.parse("<!channel>*x*").problem
    assert "<!channel>" not in said
    assert "*x*" not in said


def test_mentions_are_stripped() -> None:
    assert commands.parse(commands.strip_mentions("<@U0BOT|breakglass> status")).verb is Verb.STATUS


def test_status_text_without_jobs() -> None:
    assert commands.status_text([], datetime(2026, 1, 1, tzinfo=UTC), "C1") == (
        "No open break-glass jobs."
    )
