"""A Slack click counts only from the job's workspace (and Enterprise Grid org) and on a
message the bot posted for that job; otherwise it is refused, nothing changes, and the
refusal is logged and told to the person."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.job import Job
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import (
    OTHER_GRANT,
    approve,
    dm_of,
    ephemerals,
    request_job,
    status_card,
)
from tests.integration.slack.support import BOB, CAROL, INCIDENT, TEAM, Json

Forge = Callable[[Json, str], Json]  # (click payload, ts of another job's prompt)


def other_team(payload: Json, _other: str) -> Json:
    return payload | {"team": {"id": "T0OTHER", "domain": "evil"}}


def other_enterprise(payload: Json, _other: str) -> Json:
    return payload | {"enterprise": {"id": "E0OTHER", "name": "evil"}}


def no_team(payload: Json, _other: str) -> Json:
    return {k: v for k, v in payload.items() if k != "team"}


def other_channel(payload: Json, _other: str) -> Json:
    return payload | {"container": payload["container"] | {"channel_id": INCIDENT}}


def other_message(payload: Json, _other: str) -> Json:
    return payload | {"container": payload["container"] | {"message_ts": "1700000000.000001"}}


def no_container(payload: Json, _other: str) -> Json:
    return {k: v for k, v in payload.items() if k != "container"}


def another_jobs_card(payload: Json, other: str) -> Json:
    """Bob's approve for job 1, clicked on the DM prompt the bot posted for job 2."""
    return payload | {"container": payload["container"] | {"message_ts": other}}


FORGERIES: dict[str, tuple[Forge, str]] = {
    "another workspace": (other_team, "another workspace"),
    "another enterprise org": (other_enterprise, "another Enterprise Grid org"),
    "no workspace": (no_team, "another workspace"),
    "the incident channel, with the DM's ts": (other_channel, "not on a message the bot posted"),
    "an unknown message": (other_message, "not on a message the bot posted"),
    "no message": (no_container, "names no message"),
    "another job's prompt": (another_jobs_card, "not on a message the bot posted"),
}


async def state_of(env: Env, job: Job) -> tuple[Any, ...]:
    now = await env.service.load(job.job_id)
    chain = [r.event for r in await env.store.chain(job.job_id)]
    return now.state, now.plan.decisions, chain, await env.store.approvals(job.job_id)


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_an_unbound_click_is_refused_and_changes_nothing(
    env: Env, caplog: pytest.LogCaptureFixture, forgery: str
) -> None:
    forge, words = FORGERIES[forgery]
    job = await request_job(env)
    prompt = dm_of(env, BOB)
    await request_job(env, **OTHER_GRANT)
    second_prompt = dm_of(env, BOB)
    assert second_prompt["ts"] != prompt["ts"]
    before = await state_of(env, job)
    payload = env.sender.click_payload(BOB, f"D{BOB}", prompt, "breakglass.approve")
    answer = await env.sender.send_payload(forge(payload, second_prompt["ts"]))
    await env.settle()

    assert answer.status == 200  # acked; the refusal is the reply, not an HTTP error
    assert await state_of(env, job) == before
    assert holders(env.sim, USER_ADMIN) == set()
    assert any(
        r.name == "breakglass.slack"
        and f"refused click by {BOB} on {job.job_id}" in r.getMessage()
        and words in r.getMessage()
        for r in caplog.records
    )
    assert words in ephemerals(env, BOB)[-1]


async def test_bound_clicks_still_count_and_the_workspace_is_recorded(env: Env) -> None:
    job = await request_job(env)
    assert (job.channel["team"], job.channel["enterprise"]) == (TEAM, "")
    await approve(env, BOB)
    await approve(env, CAROL)
    await env.settle()
    assert (await env.service.load(job.job_id)).state == "active"
    env.advance(minutes=5)  # the strict tenant removes a role only 5 minutes after its grant
    card = status_card(env)
    kill = env.sender.click_payload(BOB, INCIDENT, card, "breakglass.kill")
    assert (await env.sender.send_payload(kill)).status == 200
    await env.settle()
    assert (await env.service.load(job.job_id)).state in {"rolling_back", "killed"}
