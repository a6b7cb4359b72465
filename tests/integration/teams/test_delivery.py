"""Teams throttling, failing or gone: retries stay bounded, jobs end and roll back on time
regardless, and what Teams missed is posted later from the outbox."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from engine.errors import ChatError
from engine.job import CLOSED
from engine.ports import ChatEvent
from engine.verify import verify_bundle
from tests.integration.teams import flow
from tests.integration.teams.conftest import (
    ALICE,
    BOB,
    FAST,
    IN_FAKE_TIME,
    USER_ADMIN,
    TeamsEnv,
)
from tests.support.engine_sim import trust_for


class Pauses:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def record_pauses(env: TeamsEnv) -> Pauses:
    """The connector's waits, recorded instead of waited, under the FAST bounds."""
    pauses = Pauses()
    env.bot.connector.policy = FAST
    env.bot.connector.sleep = pauses
    env.bot.sleep = pauses
    return pauses


async def queued(env: TeamsEnv) -> int:
    later = env.clock.now() + timedelta(days=1)
    return len(await env.store.due("teams", later))


@pytest.mark.parametrize("status", [429, 412, 502, 503, 504])
async def test_throttled_or_failing_connector_is_retried_with_backoff(
    teams: TeamsEnv, status: int
) -> None:
    pauses = record_pauses(teams)
    teams.connector.faults = [(status, {"Retry-After": "1"}), (status, {})]
    job, status_id = await flow.requested(teams)
    assert teams.connector.refused == 2
    assert pauses.seconds == [FAST.max_delay, FAST.base_delay * 2]  # Retry-After capped
    assert teams.connector.updates(status_id)
    assert await queued(teams) == 0
    assert job.state == "pending_approval"


async def test_retries_stop_at_the_bound_and_the_event_waits_in_the_outbox(
    teams: TeamsEnv,
) -> None:
    pauses = record_pauses(teams)
    await flow.open_form(teams)
    teams.connector.faults = [(429, {})] * 50
    form_id = teams.connector.id_of(teams.connector.calls[-1])
    await teams.post(teams.invoke(ALICE, "request", flow.form_data(), form_id))
    await teams.settle()
    assert len(await teams.service.open_jobs()) == 1  # the job does not wait for Teams
    events = 3  # the receipt, the approval prompt, the status card
    assert teams.connector.refused == events * FAST.attempts
    assert len(pauses.seconds) == events * (FAST.attempts - 1)
    assert max(pauses.seconds) <= FAST.max_delay
    assert await queued(teams) == events


async def card_update_refused(teams: TeamsEnv, status: int) -> None:
    """A pending job's card sent again while Teams answers ``status``: it raises."""
    job, _ = await flow.requested(teams)
    teams.connector.faults = [(status, {})]
    teams.advance(minutes=10)  # the countdown text changes, so the card is sent again
    event = ChatEvent("update_cards", job.to_json(), {}, (), teams.clock.now())
    with pytest.raises(ChatError, match=f"HTTP {status}"):
        await teams.bot.deliver(event)


async def test_a_refusal_is_not_retried(teams: TeamsEnv) -> None:
    await card_update_refused(teams, 403)
    assert teams.connector.refused == 1


async def test_teams_down_job_still_rolls_back_and_the_outbox_posts_later(
    teams: TeamsEnv,
) -> None:
    job, status_id = await flow.active(teams)
    await teams.connector.stop()
    teams.advance(minutes=31)
    await teams.service.tick()
    await teams.settle()
    job = await teams.service.load(job.job_id)
    assert job.state == CLOSED
    assert job.end_reason == "timebox_expired"
    assert job.rollback_verified is True
    assert not [a for a in teams.sim.active_grants() if a.role_id == USER_ADMIN]
    waiting = await queued(teams)
    assert waiting >= 3
    assert await teams.bot.deliver_queued(teams.clock.now()) == 0  # still down: postponed
    calls = len(teams.connector.calls)
    await teams.connector.restart()
    later = teams.clock.now() + timedelta(hours=1)
    assert await teams.bot.deliver_queued(later) == waiting
    assert await queued(teams) == 0
    assert len(teams.connector.calls) > calls
    assert teams.connector.titled("Break-glass ended")
    assert teams.connector.titled("audit summary")
    assert verify_bundle(flow.bundle_from(teams), trust_for(teams.service.keys)).valid
    assert teams.connector.updates(status_id)[-1].card is not None


async def test_after_a_failure_deliveries_fail_fast_until_the_outbox_probe_succeeds(
    teams: TeamsEnv,
) -> None:
    job, _ = await flow.requested(teams)
    teams.bot.connector.policy = replace(IN_FAKE_TIME, cooldown=3600.0)
    teams.connector.unavailable(IN_FAKE_TIME.attempts)  # longer than one call's retries
    teams.advance(minutes=61)  # the pending request expires: finish, update cards
    await teams.service.tick()
    await teams.settle()
    assert teams.connector.refused == IN_FAKE_TIME.attempts  # one failed call, then no more
    calls = len(teams.connector.calls)
    waiting = await queued(teams)
    assert waiting >= 2
    assert len(teams.connector.calls) == calls
    later = teams.clock.now() + timedelta(hours=1)
    assert await teams.bot.deliver_queued(later) == waiting
    assert teams.connector.titled("audit summary")
    assert (await teams.service.load(job.job_id)).state == "expired_unapproved"


async def test_invoke_is_answered_while_the_slow_work_goes_on(teams: TeamsEnv) -> None:
    """Teams waits only seconds for an invoke; chat deliveries after a decision may not."""
    job, _ = await flow.requested(teams)
    message_id, shared = flow.approval_message(teams)
    _, body = await flow.press(teams, BOB, shared, "refresh", message_id)
    approver_card = flow.invoke_card(body)
    teams.bot.background.budget = 0.5
    teams.connector.gate = asyncio.Event()
    started = time.monotonic()
    status, body = await flow.press(teams, BOB, approver_card, "approve", message_id)
    elapsed = time.monotonic() - started
    assert status == 200
    assert set(flow.actions(flow.invoke_card(body))) == {"withdraw"}  # the decision is already in
    assert elapsed < 2.0
    waiting = [t for t in teams.service.tasks if t.get_name().startswith("chat:")]
    assert waiting, "the deliveries should still be waiting for Teams"
    teams.connector.gate.set()
    await teams.settle()
    assert (await teams.service.load(job.job_id)).plan.approvers() == ["u-bob"]
    assert teams.connector.titled("Approval recorded")
