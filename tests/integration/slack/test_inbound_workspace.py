"""With ``team_id`` / ``enterprise_id`` set, the bot serves one workspace: every inbound kind
from another (command, mention, modal submission, click) is refused before any listener runs,
nothing changes, and the refusal is logged and counted. A new job records the configured
workspace, not what the submission claims."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from adapters.slack.binding import FOREIGN
from engine.job import Job
from tests.integration.slack import steps
from tests.integration.slack.conftest import Env
from tests.integration.slack.support import (
    ALICE,
    BOB,
    FORM,
    MALLORY,
    TEAM,
    Answer,
    Json,
    form_values,
)

EVIL, HOME_ORG, EVIL_ORG = "T0EVILCORP", "E0HOME", "E0EVIL"
GATE_LOG = "breakglass.slack"


@pytest.fixture
def slack_overrides() -> dict[str, Any]:
    return {"team_id": TEAM}


def foreign_command(env: Env, text: str, **fields: str) -> bytes:
    form = dict(parse_qsl(env.sender.command_body(MALLORY, text).decode()))
    return urlencode(form | {"team_id": EVIL} | fields).encode()


def foreign_mention(env: Env, text: str) -> bytes:
    doc = json.loads(env.sender.mention_body(MALLORY, text, event_id="Ev0EVIL1"))
    doc["team_id"] = EVIL
    doc["authorizations"][0]["team_id"] = EVIL
    return json.dumps(doc).encode()


def from_evil(payload: Json) -> Json:
    user = payload["user"] | {"team_id": EVIL}
    return payload | {"team": {"id": EVIL, "domain": "evil"}, "user": user}


async def snapshot(env: Env, job: Job) -> tuple[str, int, int, int]:
    now = await env.service.load(job.job_id)
    chain = await env.store.chain(job.job_id)
    return now.state, len(chain), len(await env.jobs()), len(env.fake.calls)


def gate_logged(caplog: pytest.LogCaptureFixture, kind: str) -> bool:
    words = f"refused Slack {kind} from team {EVIL}"
    return any(r.name == GATE_LOG and words in r.getMessage() for r in caplog.records)


Attack = Callable[[Env, Job], Any]


async def kill_command(env: Env, job: Job) -> Answer:
    return await env.sender.send(foreign_command(env, f"kill {job.job_id}"), FORM)


async def status_command(env: Env, _job: Job) -> Answer:
    return await env.sender.send(foreign_command(env, "status"), FORM)


async def kill_mention(env: Env, job: Job) -> Answer:
    return await env.sender.send(foreign_mention(env, f"kill {job.job_id}"), "application/json")


async def request_submission(env: Env, _job: Job) -> Answer:
    # The form the test opened for Alice (sealed by the bot), submitted "from" another team.
    view = env.fake.of("views.open")[-1].params["view"] | {"id": "V0EVIL", "hash": "h1"}
    values = form_values(**(steps.REQUEST | steps.OTHER_GRANT))
    return await env.sender.send_payload(from_evil(env.sender.submit_payload(ALICE, view, values)))


async def approve_click(env: Env, _job: Job) -> Answer:
    prompt = steps.dm_of(env, BOB)
    payload = env.sender.click_payload(BOB, f"D{BOB}", prompt, "breakglass.approve")
    return await env.sender.send_payload(from_evil(payload))


ATTACKS: dict[str, tuple[Attack, str]] = {
    "kill by slash command": (kill_command, "command"),
    "status by slash command": (status_command, "command"),
    "kill by mention": (kill_mention, "event_callback"),
    "request by modal submission": (request_submission, "view_submission"),
    "approve by button": (approve_click, "block_actions"),
}


@pytest.mark.parametrize("name", ATTACKS)
async def test_every_kind_from_another_workspace_is_refused_before_any_listener(
    env: Env, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    attack, kind = ATTACKS[name]
    job = await steps.request_job(env)
    if kind == "view_submission":
        await steps.open_form(env, ALICE)  # opened at home; only the submission is the attack
    before = await snapshot(env, job)
    answer = await attack(env, job)
    await env.settle()
    assert answer.status == 200  # Slack must not retry it
    assert await snapshot(env, job) == before  # no job, no kill, no approval, no post at all
    assert gate_logged(caplog, kind)
    assert env.slack.refusals[FOREIGN] == 1
    if kind == "command":
        assert "not served" in answer.json()["text"]
        assert job.job_id not in answer.json()["text"]  # the job list stays at home


async def test_the_home_workspace_still_works(env: Env) -> None:
    job = await steps.request_job(env)
    await steps.approve(env, BOB)
    assert len(await env.store.approvals(job.job_id)) == 1
    assert env.slack.refusals[FOREIGN] == 0


async def test_a_job_records_the_configured_workspace_not_the_submission(env: Env) -> None:
    # An org-wide install sends interactivity with "team": null and the team in user.team_id:
    # the gate lets it in (it is ours), and the job must still be bound to our team, so that
    # the approvers' clicks from our team count.
    view = await steps.open_form(env, ALICE)
    payload = env.sender.submit_payload(ALICE, view, form_values(**steps.REQUEST))
    answer = await env.sender.send_payload(payload | {"team": None})
    await env.settle()
    assert answer.status == 200
    job = await env.only_job()
    assert (job.channel["team"], job.channel["enterprise"]) == (TEAM, "")
    await steps.approve(env, BOB)
    assert len(await env.store.approvals(job.job_id)) == 1


@pytest.mark.parametrize("slack_overrides", [{"enterprise_id": HOME_ORG}])
async def test_another_enterprise_org_is_refused(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    ours = foreign_command(env, "status", team_id=TEAM, enterprise_id=HOME_ORG)
    assert (await env.sender.send(ours, FORM)).status == 200
    await env.settle()
    assert [c.method for c in env.fake.calls] == ["chat.postEphemeral"]  # ours, answered
    theirs = foreign_command(env, "status", team_id=TEAM, enterprise_id=EVIL_ORG)
    answer = await env.sender.send(theirs, FORM)
    await env.settle()
    assert answer.status == 200
    assert "not served" in answer.json()["text"]
    assert any("another Enterprise Grid org" in r.getMessage() for r in caplog.records)
    assert env.slack.refusals[FOREIGN] == 1
    assert [c.method for c in env.fake.calls] == ["chat.postEphemeral"]  # nothing more


@pytest.mark.parametrize("slack_overrides", [{}])
async def test_unbound_any_workspace_is_served(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    answer = await env.sender.send(foreign_command(env, "status"), FORM)
    await env.settle()
    assert answer.status == 200
    assert env.slack.refusals[FOREIGN] == 0
    assert env.fake.of("chat.postEphemeral")  # answered: the documented, noted default
