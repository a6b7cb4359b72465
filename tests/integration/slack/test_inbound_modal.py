"""The request modal: bad input is a field error or a banner (never a 500), its words are ours
and exact, and the channel it was opened in cannot be changed by editing the submission."""

from __future__ import annotations

import json
import logging

import pytest

from adapters.slack import origin
from tests.integration.slack import steps
from tests.integration.slack.conftest import Env
from tests.integration.slack.support import (
    ALICE,
    INCIDENT,
    MALLORY,
    SECRET,
    Json,
    form_values,
)

INCIDENT2 = "CINCIDENT77"
HOMOGLYPH_COLON = "\ua789"


@pytest.fixture
def slack_overrides() -> dict[str, object]:
    return {"incident_channels": frozenset({INCIDENT, INCIDENT2})}


async def submit(env: Env, view: Json, values: Json, user: str = ALICE) -> Json:
    """Submit as Slack does: JSON with its escapes (a lone surrogate arrives as ``\\ud800``)."""
    answer = await env.sender.send_payload(env.sender.submit_payload(user, view, values))
    await env.settle()
    assert answer.status == 200
    return answer.json() if answer.body else {}


def banner_of(answer: Json) -> str:
    assert answer["response_action"] == "update"
    return json.dumps(answer["view"]["blocks"][0], ensure_ascii=False)


async def test_a_lone_surrogate_is_a_field_error_not_a_500(env: Env) -> None:
    view = await steps.open_form(env)
    typed = steps.REQUEST | {"justification": "INC-1 \ud800 broken"}
    answer = await submit(env, view, form_values(**typed))
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["justification"]
    assert "cannot be stored" in answer["errors"]["justification"]
    assert await env.jobs() == []


@pytest.mark.parametrize("duration", ["-5", "0", "1.5", "abc"])
async def test_a_bad_duration_names_the_forms_real_bounds(env: Env, duration: str) -> None:
    view = await steps.open_form(env)
    answer = await submit(
        env, view, form_values(**(steps.REQUEST | {"duration_minutes": duration}))
    )
    most = env.service.rules.max_minutes
    assert answer == {
        "response_action": "errors",
        "errors": {"duration_minutes": f"duration_minutes must be a whole number from 1 to {most}"},
    }
    assert await env.jobs() == []


async def test_our_own_emoji_in_a_banner_is_not_mangled(env: Env) -> None:
    # A form sealed for someone who is not a requester (say, removed from the group after it
    # opened): the banner is our text, shown as written.
    view = await steps.open_form(env)
    view |= {"private_metadata": origin.seal(SECRET, INCIDENT, MALLORY)}
    answer = await submit(env, view, form_values(**steps.REQUEST), user=MALLORY)
    banner = banner_of(answer)
    assert "You are not in the requester group" in banner
    assert HOMOGLYPH_COLON not in banner
    assert await env.jobs() == []


async def test_a_job_is_filed_in_the_channel_the_form_was_opened_in(env: Env) -> None:
    response = await env.sender.command(ALICE, "request", channel=INCIDENT2)
    assert response.status == 200
    await env.settle()
    view = env.fake.of("views.open")[-1].params["view"] | {"id": "V2", "hash": "h1"}
    await submit(env, view, form_values(**steps.REQUEST))
    assert (await env.only_job()).channel["channel"] == INCIDENT2


@pytest.mark.parametrize(
    "edit",
    [
        "moved to another incident channel",
        "unsealed",
        "sealed for someone else",
    ],
)
async def test_an_edited_origin_cannot_move_the_job(
    env: Env, caplog: pytest.LogCaptureFixture, edit: str
) -> None:
    caplog.set_level(logging.INFO, "breakglass.slack")
    view = await steps.open_form(env)  # opened in INCIDENT, for Alice
    sealed = json.loads(view["private_metadata"])
    edited = {
        "moved to another incident channel": sealed | {"channel": INCIDENT2},
        "unsealed": {"channel": INCIDENT2},
        "sealed for someone else": json.loads(origin.seal(SECRET, INCIDENT2, MALLORY)),
    }[edit]
    view |= {"private_metadata": json.dumps(edited)}
    answer = await submit(env, view, form_values(**steps.REQUEST))
    assert "not opened by breakglass for you" in banner_of(answer)
    assert await env.jobs() == []
    assert env.fake.posts(INCIDENT2) == []
    assert env.fake.posts(INCIDENT) == []
    assert any("request form by UALICE refused" in r.getMessage() for r in caplog.records)
