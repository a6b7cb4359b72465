"""After a Teams outage: what waited in the outbox is posted within a minute of Teams being
back (the backoff is capped at a minute), in the order it was queued. A 15-minute cap left
the end of a job that ended during an outage posted minutes after newer posts."""

from __future__ import annotations

from datetime import timedelta

from engine.job import CLOSED
from tests.integration.teams import flow
from tests.integration.teams.conftest import TeamsEnv
from tests.integration.teams.fakes import Call


async def waiting(env: TeamsEnv) -> int:
    return len(await env.store.due("teams", env.clock.now() + timedelta(days=1)))


def first(env: TeamsEnv, fragment: str) -> int:
    found: list[Call] = env.connector.titled(fragment)
    assert found, f"nothing titled {fragment!r} was posted"
    return env.connector.calls.index(found[0])


async def test_the_end_of_a_long_outage_is_posted_within_a_minute_in_order(
    teams: TeamsEnv,
) -> None:
    job, _ = await flow.active(teams)
    await teams.connector.stop()
    teams.advance(minutes=31)  # the window ends while Teams is down
    await teams.service.tick()
    await teams.settle()
    assert (await teams.service.load(job.job_id)).state == CLOSED
    queued = await waiting(teams)
    assert queued >= 3
    for _ in range(20):  # a long outage: every drain fails and backs off again
        await teams.bot.deliver_queued(teams.clock.now())
        teams.advance(minutes=1)
    await teams.connector.restart()
    teams.advance(minutes=1)  # at most the capped backoff later
    assert await teams.bot.deliver_queued(teams.clock.now()) == queued
    assert await waiting(teams) == 0
    ended, summary = first(teams, "Break-glass ended"), first(teams, "audit summary")
    assert ended < summary < first(teams, "Proof bundle")  # the job's posts in order
