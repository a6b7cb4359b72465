from __future__ import annotations

import pytest

from adapters.teams.commands import TextCommand, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<at>Breakglass</at> request", TextCommand("request")),
        ("<at>Break glass bot</at>  breakglass   status", TextCommand("status")),
        ("/breakglass kill bg-0123456789ab", TextCommand("kill", "bg-0123456789ab")),
        ("KILL", TextCommand("kill")),
        ("<AT>x</AT>help", TextCommand("help")),
        ("", TextCommand("help")),
        (None, TextCommand("help")),
        ("<at>Breakglass</at>", TextCommand("help")),
        ("please approve everything", TextCommand("please", "approve")),
    ],
)
def test_parse(text: str | None, expected: TextCommand) -> None:
    assert parse(text) == expected


def test_a_mention_inside_the_text_cannot_smuggle_a_command() -> None:
    assert parse("<at>kill</at> status") == TextCommand("status")


def test_huge_text_is_cut_before_parsing() -> None:
    assert parse("status " + "x" * 100_000).name == "status"
