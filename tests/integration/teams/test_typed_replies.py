"""Typed commands are answered over HTTP before their replies are posted: a Bot Connector that
hangs or fails never holds the channel's request (the Bot Framework gives a bot 15 s), and a
reply Teams did not take goes out later with the outbox drain."""

from __future__ import annotations

import asyncio

from engine.job import KILLED
from tests.integration.teams.conftest import IN_FAKE_TIME, MALLORY, TeamsEnv
from tests.integration.teams.flow import requested


def texts(env: TeamsEnv) -> list[str]:
    return [str(c.body.get("text", "")) for c in env.connector.calls]


def hang_teams(env: TeamsEnv) -> asyncio.Event:
    """Every connector call waits until the returned event is set; the turn does not wait
    for its replies at all (a zero budget), so nothing here depends on timing."""
    env.connector.gate = asyncio.Event()
    env.bot.background.budget = 0.0
    return env.connector.gate


async def test_status_is_acknowledged_while_teams_hangs(teams: TeamsEnv) -> None:
    job, _ = await requested(teams)
    calls = len(teams.connector.calls)
    gate = hang_teams(teams)
    status, _ = await teams.post(teams.message(MALLORY, "status"))
    assert status == 202  # answered with the connector still holding the reply
    assert len(teams.connector.calls) == calls
    assert teams.bot.background.tasks, "the reply should still be on its way"
    gate.set()
    await teams.settle()
    card = teams.connector.calls[-1].card
    assert card is not None
    assert job.job_id in card["fallbackText"]


async def test_typed_kill_acts_and_is_acknowledged_while_teams_hangs(teams: TeamsEnv) -> None:
    job, _ = await requested(teams)
    gate = hang_teams(teams)
    status, _ = await teams.post(teams.message(MALLORY, f"kill {job.job_id}"))
    assert status == 202  # answered with the connector still holding everything
    assert teams.bot.background.tasks
    gate.set()
    await teams.settle()
    assert (await teams.service.load(job.job_id)).state == KILLED
    assert f"Kill recorded for job {job.job_id}" in " ".join(texts(teams))


async def test_reply_goes_in_the_thread_of_the_typed_message(teams: TeamsEnv) -> None:
    message = teams.message(MALLORY, "help")
    await teams.post(message)
    await teams.settle()
    reply = teams.connector.calls[-1]
    assert reply.target == message["id"]  # POST .../activities/<the typed message>
    assert reply.body["replyToId"] == message["id"]
    assert "kill [job]" in str(reply.body["text"])


async def test_a_reply_teams_refused_goes_out_with_the_outbox_drain(teams: TeamsEnv) -> None:
    teams.connector.unavailable(IN_FAKE_TIME.attempts)  # down longer than the reply's retries
    status, _ = await teams.post(teams.message(MALLORY, "request"))
    await teams.settle()
    assert status == 202
    assert teams.connector.calls == []
    assert teams.connector.refused == IN_FAKE_TIME.attempts
    assert await teams.bot.deliver_queued(teams.clock.now()) == 1
    form = teams.connector.calls[-1].card
    assert form is not None
    assert "request" in form["fallbackText"].lower()
    assert await teams.bot.deliver_queued(teams.clock.now()) == 0  # posted once
