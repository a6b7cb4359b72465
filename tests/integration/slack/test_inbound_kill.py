"""Kill by command or mention acts only on the jobs of the channel it is sent in: "anyone in
the channel may stop a job" means that channel's jobs, not every incident channel's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.integration.slack import steps
from tests.integration.slack.conftest import Env
from tests.integration.slack.support import INCIDENT, MALLORY

INCIDENT2 = "CINCIDENT77"


@pytest.fixture
def slack_overrides() -> dict[str, object]:
    return {"incident_channels": frozenset({INCIDENT, INCIDENT2})}


async def by_command(env: Env, job_id: str) -> None:
    assert (await env.sender.command(MALLORY, f"kill {job_id}", channel=INCIDENT2)).status == 200


async def by_mention(env: Env, job_id: str) -> None:
    body = env.sender.mention_body(MALLORY, f"kill {job_id}", "Ev0KILL2", channel=INCIDENT2)
    assert (await env.sender.send(body, "application/json")).status == 200


@pytest.mark.parametrize("kill", [by_command, by_mention], ids=["command", "mention"])
async def test_kill_from_another_incident_channel_is_refused(
    env: Env, caplog: pytest.LogCaptureFixture, kill: Callable[[Env, str], Awaitable[None]]
) -> None:
    job = await steps.request_job(env)  # its card is in INCIDENT
    chain = len(await env.store.chain(job.job_id))
    await kill(env, job.job_id)
    await env.settle()
    after = await env.service.load(job.job_id)
    assert after.state == "pending_approval"
    assert after.ended_by is None
    assert len(await env.store.chain(job.job_id)) == chain
    (reply,) = steps.ephemerals(env, MALLORY)
    assert "not this channel's; nothing was done" in reply
    assert any(
        "refused kill of" in r.getMessage() and "another channel's job" in r.getMessage()
        for r in caplog.records
    )


async def test_kill_in_the_jobs_own_channel_still_works(env: Env) -> None:
    job = await steps.request_job(env)
    assert (await env.sender.command(MALLORY, f"kill {job.job_id}")).status == 200
    await env.settle()
    assert (await env.service.load(job.job_id)).state == "killed"
