"""Bot Connector 503 "Service is unavailable": Microsoft asks bots to retry it with
exponential backoff, like throttling (docs/teams.md §8, CODES). A short outage is waited out
within one call's retries; a longer one leaves the event in the outbox, one call's retries
spent and the rest failing fast; either way each message is posted exactly once after it.
The production retry bounds run on the fake connector's clock: nothing waits in real time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.integration.teams import flow
from tests.integration.teams.conftest import ALICE, IN_FAKE_TIME, TeamsEnv
from tests.integration.teams.fakes import heading

ATTEMPTS = IN_FAKE_TIME.attempts


async def queued(env: TeamsEnv) -> int:
    return len(await env.store.due("teams", env.clock.now() + timedelta(days=1)))


async def submit_request(env: TeamsEnv, outage: int, retry_after: str | None = None) -> None:
    """Alice submits the request form while Teams answers the next ``outage`` calls 503."""
    form = await flow.open_form(env)
    env.connector.unavailable(outage, retry_after=retry_after)
    invoke = env.invoke(ALICE, "request", flow.form_data(), env.connector.id_of(form))
    status, body = await env.post(invoke)
    assert status == 200, body
    await env.settle()
    assert len(await env.service.open_jobs()) == 1  # the job never waits for Teams


def posted_once(env: TeamsEnv) -> None:
    """The request's messages are in the thread once each (a 503 is a call Teams did not
    take: retrying it posts nothing twice), and the form became the status card once."""
    posts = [heading(c.card).split(" (job ")[0] for c in env.connector.posts() if c.card]
    assert posts == [
        "Break-glass request form",  # before the outage
        "Receipt #0",
        "Approval needed: Entra directory role",
    ]
    (update,) = env.connector.updates()
    assert update.card is not None
    assert heading(update.card).startswith("Break-glass awaiting approval")


@pytest.mark.parametrize(
    ("retry_after", "waits"),
    [(None, [0.5, 1.0, 2.0]), ("2", [2.0, 2.0, 2.0])],
    ids=["backoff", "retry-after"],
)
async def test_a_short_503_outage_is_waited_out_and_each_message_posted_once(
    teams: TeamsEnv, retry_after: str | None, waits: list[float]
) -> None:
    await submit_request(teams, ATTEMPTS - 1, retry_after)
    assert teams.connector.refused == ATTEMPTS - 1
    assert teams.connector.clock.slept == waits  # doubling, never sooner than Retry-After
    assert await queued(teams) == 0
    posted_once(teams)


async def test_a_503_outage_longer_than_a_call_waits_in_the_outbox_then_posts_once(
    teams: TeamsEnv,
) -> None:
    """One call spends its retries; the other events fail fast (the cooldown, on the fake
    clock) instead of each waiting for a Teams that is down; a drain during the outage
    probes once more; the drain after it posts everything, once."""
    teams.bot.connector.clock = teams.connector.clock
    teams.bot.connector.policy = replace(IN_FAKE_TIME, cooldown=30.0)
    await submit_request(teams, 2 * ATTEMPTS)
    assert teams.connector.refused == ATTEMPTS
    waiting = await queued(teams)
    assert waiting >= 2
    assert await teams.bot.deliver_queued(teams.clock.now()) == 0  # the probe's retries too
    assert teams.connector.refused == 2 * ATTEMPTS
    assert teams.connector.faults == []  # Teams is back
    later = teams.clock.now() + timedelta(minutes=1)  # at most the capped outbox backoff
    assert await teams.bot.deliver_queued(later) == waiting
    assert await queued(teams) == 0
    posted_once(teams)
    assert await teams.bot.deliver_queued(later + timedelta(hours=1)) == 0
    posted_once(teams)
