"""The one action contract: renderers and parsers round-trip; anything malformed is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cards.actions import (
    PLAN_BOUND_VERBS,
    CardAction,
    CardActionError,
    Verb,
    from_slack,
    from_teams,
    to_slack,
    to_teams,
)
from engine.errors import InputError
from tests.unit.cards import samples

JOB, PLAN = samples.JOB, samples.PLAN


def every_action() -> Iterator[CardAction]:
    for verb in Verb:
        yield CardAction(verb, JOB, PLAN)
        if verb not in PLAN_BOUND_VERBS:
            yield CardAction(verb, JOB)


@pytest.mark.parametrize("action", list(every_action()), ids=str)
def test_teams_round_trip(action: CardAction) -> None:
    verb, data = to_teams(action)
    assert from_teams(verb, data) == action
    assert from_teams(None, data) == action  # the Action.Submit fallback carries no verb


@pytest.mark.parametrize("action", list(every_action()), ids=str)
def test_slack_round_trip(action: CardAction) -> None:
    action_id, value = to_slack(action)
    assert from_slack(action_id, value) == action
    assert len(value) <= 2000
    assert len(action_id) <= 255


def test_wire_formats_are_as_documented() -> None:
    action = CardAction(Verb.APPROVE, JOB, PLAN)
    assert to_teams(action) == ("approve", {"verb": "approve", "job_id": JOB, "plan_hash": PLAN})
    assert to_slack(action) == ("breakglass.approve", f"approve|{JOB}|{PLAN}")
    assert to_slack(CardAction(Verb.KILL, JOB)) == ("breakglass.kill", f"kill|{JOB}|")


def rendered_buttons() -> Iterator[tuple[str, str, Any]]:
    for name, render in samples.TEAMS.items():
        if name.startswith("request_form"):
            continue  # the form's submit is the form contract (test_forms)
        for node in samples.walk(render()):
            if node.get("type") in ("Action.Execute", "Action.Submit") and "verb" in node:
                yield "teams", name, (node["verb"], node["data"])
    for name, render in samples.SLACK.items():
        for node in samples.walk(render()):
            if node.get("type") == "button":
                yield "slack", name, (node["action_id"], node["value"])


def test_every_rendered_button_parses_back() -> None:
    seen = set()
    for platform, _name, wire in rendered_buttons():
        action = from_teams(*wire) if platform == "teams" else from_slack(*wire)
        assert action.job_id == JOB
        assert action.plan_hash == PLAN
        seen.add((platform, action.verb))
    for platform in ("teams", "slack"):
        expected = {Verb.APPROVE, Verb.DENY, Verb.WITHDRAW, Verb.KILL, Verb.DONE, Verb.EXTEND}
        assert expected <= {verb for p, verb in seen if p == platform}
    assert ("teams", Verb.REFRESH) in seen


GOOD = {"verb": "approve", "job_id": JOB, "plan_hash": PLAN}
# A plan hash whose last character has non-zero unused bits: 43 base64url chars, not canonical.
NON_CANONICAL = PLAN[:-1] + ("V" if PLAN[-1] != "V" else "W")
BAD_TEAMS: dict[str, tuple[object, object]] = {
    "unknown verb": ("sudo", {**GOOD, "verb": "sudo"}),
    "verb disagrees with data": ("deny", GOOD),
    "data not an object": ("approve", "approve|x"),
    "data is a list": ("approve", [GOOD]),
    "extra key": ("approve", {**GOOD, "approver": "me"}),
    "non-string key": ("approve", {**GOOD, 1: "x"}),
    "missing job id": ("approve", {"verb": "approve", "plan_hash": PLAN}),
    "missing verb in data": ("approve", {"job_id": JOB, "plan_hash": PLAN}),
    "job id is a number": ("approve", {**GOOD, "job_id": 12345}),
    "job id with space": ("approve", {**GOOD, "job_id": "bg 1234"}),
    "job id with pipe": ("approve", {**GOOD, "job_id": "bg|1234"}),
    "job id too short": ("approve", {**GOOD, "job_id": "bg1"}),
    "job id oversized": ("approve", {**GOOD, "job_id": "a" * 10_000}),
    "job id unicode digits": ("approve", {**GOOD, "job_id": "bg-١٢٣٤"}),
    "job id trailing newline": ("approve", {**GOOD, "job_id": JOB + "\n"}),
    "plan hash short": ("approve", {**GOOD, "plan_hash": PLAN[:42]}),
    "plan hash padded": ("approve", {**GOOD, "plan_hash": PLAN + "="}),
    "plan hash standard base64": ("approve", {**GOOD, "plan_hash": "+" * 43}),
    "plan hash not canonical": ("approve", {**GOOD, "plan_hash": NON_CANONICAL}),
    "plan hash null": ("approve", {**GOOD, "plan_hash": None}),
    "plan hash missing for approve": ("approve", {"verb": "approve", "job_id": JOB}),
    "verb is a list": (["approve"], GOOD),
    "verb oversized": ("a" * 10_000, GOOD),
    "verb in capitals": ("APPROVE", {**GOOD, "verb": "APPROVE"}),
}


@pytest.mark.parametrize("case", sorted(BAD_TEAMS))
def test_malformed_teams_action_is_refused(case: str) -> None:
    verb, data = BAD_TEAMS[case]
    with pytest.raises(CardActionError) as caught:
        from_teams(verb, data)
    assert isinstance(caught.value, InputError)


GOOD_VALUE = f"approve|{JOB}|{PLAN}"
BAD_SLACK: dict[str, tuple[object, object]] = {
    "foreign action id": ("approve", GOOD_VALUE),
    "unknown verb": ("breakglass.sudo", f"sudo|{JOB}|{PLAN}"),
    "action id and value disagree": ("breakglass.deny", GOOD_VALUE),
    "value not a string": ("breakglass.approve", {"job_id": JOB}),
    "action id not a string": (None, GOOD_VALUE),
    "too few parts": ("breakglass.approve", f"approve|{JOB}"),
    "too many parts": ("breakglass.approve", GOOD_VALUE + "|extra"),
    "oversized value": ("breakglass.approve", GOOD_VALUE + "x" * 3000),
    "oversized action id": ("breakglass." + "a" * 300, GOOD_VALUE),
    "empty job id": ("breakglass.approve", f"approve||{PLAN}"),
    "missing plan for deny": ("breakglass.deny", f"deny|{JOB}|"),
    "bad plan hash": ("breakglass.approve", f"approve|{JOB}|{PLAN[:-2]}"),
    "job id with colon": ("breakglass.kill", "kill|bg:1234|"),
}


@pytest.mark.parametrize("case", sorted(BAD_SLACK))
def test_malformed_slack_action_is_refused(case: str) -> None:
    action_id, value = BAD_SLACK[case]
    with pytest.raises(CardActionError):
        from_slack(action_id, value)


def test_constructor_enforces_the_same_rules() -> None:
    with pytest.raises(CardActionError):
        CardAction(Verb.APPROVE, JOB)
    with pytest.raises(CardActionError):
        CardAction(Verb.KILL, "no spaces allowed")
    assert CardAction("kill", JOB).verb is Verb.KILL  # type: ignore[arg-type]
