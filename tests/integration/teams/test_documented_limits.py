"""The Bot Connector's documented refusals and limits, and what our code does with them.

The fake refuses what Teams refuses (docs/teams.md §8): more operations in one channel than
the per bot per thread limits allow (429 ``Throttled`` with ``Retry-After``), a payload above
the message size limit counted in UTF-16 (413 ``MessageSizeTooBig``), a reply to or an update
of a message the conversation no longer holds (404 ``ActivityNotFoundInConversation``), and a
call without a bearer token (401). Each test shows the refusal, then that a job goes on: its
state intact, nothing lost that Teams would take, one WARNING and no traceback.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from adapters.teams import render
from adapters.teams.connector import reference_from
from engine.job import KILLED, Job
from engine.verify import verify_bundle
from tests.integration.teams import flow
from tests.integration.teams.conftest import (
    ALICE,
    CHANNEL,
    IN_FAKE_TIME,
    MALLORY,
    THREAD,
    TeamsEnv,
)
from tests.integration.teams.fakes import (
    MAX_MESSAGE_BYTES,
    OUTBOUND_TOKEN,
    RECOMMENDED_MESSAGE_BYTES,
    Call,
    FakeConnector,
    utf16_size,
)
from tests.support.engine_sim import trust_for
from tests.unit.cards.test_injection import hostile_views

END_CARDS = ("Break-glass ended", "audit summary", "Proof bundle")
# What "Format your bot messages" said the limit was before 2025 (its localized copies still
# say so): 40 KB. Our proof bundle's parts are above it; Teams takes them today (100 KB).
EARLIER_LIMIT = 40 * 1024


async def queued(env: TeamsEnv) -> int:
    return len(await env.store.due("teams", env.clock.now() + timedelta(days=1)))


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def said(caplog: pytest.LogCaptureFixture, fragment: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("breakglass")
        if fragment in r.getMessage()
    ]


def first(env: TeamsEnv, fragment: str) -> int:
    found: list[Call] = env.connector.titled(fragment)
    assert found, f"nothing titled {fragment!r} was posted"
    return env.connector.calls.index(found[0])


async def running(env: TeamsEnv) -> tuple[Job, str]:
    """An approved job, six minutes into its window (PIM lets the role go after five)."""
    job, status_id = await flow.active(env)
    env.advance(minutes=6)
    await env.service.tick()
    await env.settle()
    return job, status_id


async def killed(env: TeamsEnv, job: Job, status_id: str) -> Job:
    """Mallory presses Kill on the status card ``status_id`` as it was last shown."""
    shown = [c for c in env.connector.calls if c.card is not None and made(env, c) == status_id]
    card = shown[-1].card
    assert card is not None
    status, body = await flow.press(env, MALLORY, card, "kill", status_id)
    assert status == 200, body
    await env.settle()
    return await env.service.load(job.job_id)


def made(env: TeamsEnv, call: Call) -> str:
    """The message a call posted or updated."""
    return call.target if call.method == "PUT" else env.connector.id_of(call)


# --- the fake refuses as the Bot Connector does ---------------------------------------------


async def raw(
    connector: FakeConnector,
    path: str,
    body: dict[str, Any],
    *,
    token: str = OUTBOUND_TOKEN,
    method: str = "POST",
) -> tuple[int, dict[str, Any], str | None]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{connector.url}v3/conversations/{path}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body, headers=headers) as r,
    ):
        return r.status, await r.json(), r.headers.get("Retry-After")


async def test_the_fake_connector_refuses_what_the_documentation_says(
    connector: FakeConnector,
) -> None:
    message = {"type": "message", "text": "hello"}
    status, body, _ = await raw(connector, f"{THREAD}/activities", message, token="")
    assert (status, body["error"]["code"]) == (401, "Unauthorized")
    status, body, _ = await raw(connector, f"{THREAD}/activities/msg-404", message)
    assert (status, body["error"]["code"]) == (404, "ActivityNotFoundInConversation")
    big = {"type": "message", "text": "x" * (MAX_MESSAGE_BYTES // 2)}  # 2 bytes a character
    assert utf16_size(big) > MAX_MESSAGE_BYTES
    status, body, _ = await raw(connector, f"{THREAD}/activities", big)
    assert (status, body["error"]["code"]) == (413, "MessageSizeTooBig")
    assert connector.calls == []  # refused calls are not recorded and count for nothing

    answers = [await raw(connector, f"{THREAD}/activities", message) for _ in range(8)]
    assert [a[0] for a in answers] == [200] * 7 + [429]  # 7 a second
    assert (answers[-1][1]["error"]["code"], answers[-1][2]) == ("Throttled", "1")
    connector.clock.advance(1.0)
    answers = [await raw(connector, f"{CHANNEL}/activities", message) for _ in range(2)]
    assert [a[0] for a in answers] == [200, 429]  # 8 in 2 s, in the whole channel
    assert len(connector.calls) == 8

    connector.clock.advance(3600.0)
    posted = answers[0][1]["id"]
    status, body, _ = await raw(connector, f"{THREAD}/activities/{posted}", message, method="PUT")
    assert (status, body) == (200, {"id": posted})  # Update Activity: the updated id
    connector.delete(posted)  # a team owner deleted it
    status, body, _ = await raw(connector, f"{THREAD}/activities/{posted}", message, method="PUT")
    assert (status, body["error"]["code"]) == (404, "ActivityNotFoundInConversation")
    connector.heard(THREAD, "1700000000042")  # a person's message
    path = f"{THREAD}/activities/1700000000042"
    status, body, _ = await raw(connector, path, message, method="PUT")
    assert (status, body["error"]["code"]) == (403, "NotEnoughPermissions")
    status, _, _ = await raw(connector, path, message)  # replying to it is fine
    assert status == 200


# --- 429: the per bot per thread limits ----------------------------------------------------


async def test_a_whole_job_in_one_channel_waits_out_teams_throttling(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """The end of a job posts a burst (status, receipts, kill result, summary, bundle parts)
    well above 7 a second: with the production bounds every post waits what Teams asked and
    goes out, in order, and nothing is left for the outbox."""
    job, status_id = await running(teams)
    job = await killed(teams, job, status_id)
    assert job.state == KILLED
    assert job.rollback_verified is True
    throttled = [r for r in teams.connector.refusals if r[0] == 429]
    assert throttled, "the burst should have met the documented limits"
    assert {code for _, code in teams.connector.refusals} == {"Throttled"}
    slept = teams.connector.clock.slept
    assert len(slept) == len(throttled)  # every throttled call waited, then went out
    assert min(slept) >= min(teams.connector.asked) >= 1  # never sooner than Retry-After
    assert await queued(teams) == 0
    assert first(teams, END_CARDS[0]) < first(teams, END_CARDS[1]) < first(teams, END_CARDS[2])
    assert verify_bundle(flow.bundle_from(teams), trust_for(teams.service.keys)).valid
    assert not loud(caplog), caplog.text


async def test_throttling_beyond_the_retry_budget_waits_in_the_outbox_then_posts_in_order(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """The channel's 60 a 30 s is nearly spent (other jobs' posts): Teams asks for more
    than a call may wait (15 s). The job ends all the same; its posts wait in the outbox
    (fail-fast on the connector's clock) and go out in order once the window allows."""
    job, status_id = await running(teams)
    fake_clock = teams.connector.clock
    teams.bot.connector.clock = fake_clock
    teams.bot.connector.policy = replace(IN_FAKE_TIME, cooldown=30.0)
    teams.connector.spend(CHANNEL, 57)
    job = await killed(teams, job, status_id)
    assert job.state == KILLED  # chat never held the job up
    assert job.rollback_verified is True
    waiting = await queued(teams)
    assert waiting >= 2
    assert not teams.connector.titled("audit summary")
    assert said(caplog, "HTTP 429")
    assert not loud(caplog), caplog.text
    fake_clock.advance(30.0)  # the window has room again
    later = teams.clock.now() + timedelta(minutes=1)
    assert await teams.bot.deliver_queued(later) == waiting
    assert await queued(teams) == 0
    assert first(teams, END_CARDS[0]) < first(teams, END_CARDS[1]) < first(teams, END_CARDS[2])
    assert verify_bundle(flow.bundle_from(teams), trust_for(teams.service.keys)).valid
    assert not loud(caplog), caplog.text


# --- 413: the message size limit, in UTF-16 -------------------------------------------------


async def test_every_message_of_a_job_and_our_biggest_cards_fit_the_message_size_limit(
    teams: TeamsEnv,
) -> None:
    """Each card is at most 28 KB of ASCII-escaped JSON (cards.teams.check_size), so at most
    twice that in UTF-16 plus the activity around it: within the 80 KB Teams recommends."""
    job, status_id = await running(teams)
    await killed(teams, job, status_id)
    reference = reference_from(job.channel["reference"])
    worst = [
        card
        for text in ("漢字" * 3000, "\U0001f600" * 5000, '"\\' * 10_000, "x" * 20_000)
        for card, _ in hostile_views(text, tuple(text for _ in range(100))).values()
    ]
    teams.connector.limits = ()  # sizes only: far more posts than one channel ever gets
    for card in worst:
        await teams.bot.connector.reply(reference, status_id, render.card_message(card))
    assert not [r for r in teams.connector.refusals if r[0] == 413]
    sizes = [c.size for c in teams.connector.calls]
    assert len(sizes) > len(worst)
    assert max(sizes) <= RECOMMENDED_MESSAGE_BYTES, max(sizes)


async def test_a_message_teams_refuses_as_too_large_is_left_out_and_the_rest_goes_on(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """If Teams held a bot to the 40 KB it once documented, the first part of the proof bundle
    (about 48 KB in UTF-16) would be refused: it is left out with one WARNING naming
    MessageSizeTooBig, the other parts and cards are posted, and nothing blocks the outbox."""
    job, status_id = await running(teams)
    teams.connector.max_message_bytes = EARLIER_LIMIT
    job = await killed(teams, job, status_id)
    assert job.state == KILLED
    assert job.rollback_verified is True
    assert (413, "MessageSizeTooBig") in teams.connector.refusals
    assert teams.connector.titled(END_CARDS[0])
    assert teams.connector.titled(END_CARDS[1])
    parts = teams.connector.titled(END_CARDS[2])
    assert parts
    assert all(c.size <= EARLIER_LIMIT for c in parts)
    assert "part 1 of" not in json.dumps([c.card for c in parts])
    assert len(said(caplog, "MessageSizeTooBig")) == 1
    assert not loud(caplog), caplog.text
    assert await queued(teams) == 0  # refused for good: not retried, not in anyone's way
    assert await teams.bot.deliver_queued(teams.clock.now() + timedelta(hours=1)) == 0


# --- 404: a message deleted in Teams ---------------------------------------------------------


async def test_a_status_card_deleted_in_teams_is_posted_again_and_the_thread_goes_on(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """A team owner deleted the status card: Teams answers 404 ActivityNotFoundInConversation
    to its update and to replies under it. The card is posted again (Teams: "remove the ID if
    it was cached"), the rest of the job's posts follow under it, and the refusal starts no
    fail-fast cooldown: other posts are not held up."""
    job, status_id = await running(teams)
    teams.bot.connector.policy = replace(IN_FAKE_TIME, cooldown=3600.0)
    teams.connector.delete(status_id)
    teams.advance(minutes=5)  # the countdown changes: the status card is sent again
    await teams.service.tick()
    await teams.settle()
    assert (404, "ActivityNotFoundInConversation") in teams.connector.refusals
    again = [c for c in teams.connector.posts() if c.target == "" and c.card is not None]
    again = [c for c in again if "Break-glass active" in str(c.card.get("fallbackText"))]
    assert len(again) == 1, "the status card should have been posted once more"
    new_id = teams.connector.id_of(again[0])
    job = await killed(teams, job, new_id)
    assert job.state == KILLED
    assert job.rollback_verified is True
    assert teams.connector.titled(END_CARDS[0])[0].target == new_id  # in the new card's thread
    assert teams.connector.titled(END_CARDS[2])
    assert await queued(teams) == 0  # nothing waited: no cooldown after a refusal
    assert len(said(caplog, "is gone from Teams")) == 1
    assert not loud(caplog), caplog.text


async def test_a_reply_to_a_deleted_message_is_dropped_with_one_warning(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    message = teams.message(MALLORY, "help")
    teams.connector.delete(message["id"])  # deleted before the bot answered it
    status, _ = await teams.post(message)
    await teams.settle()
    assert status == 202
    assert (404, "ActivityNotFoundInConversation") in teams.connector.refusals
    assert not teams.bot.replies.waiting  # Teams will never take it: it does not wait
    assert len(said(caplog, "reply dropped")) == 1
    assert not loud(caplog), caplog.text
    assert await teams.bot.deliver_queued(teams.clock.now()) == 0


# --- 403: the bot shut out of a conversation ------------------------------------------------

HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"  # a role of the simulated tenant


async def second_request(env: TeamsEnv) -> Job:
    """Another pending job in the same channel, for another role."""
    form = await flow.open_form(env)
    data = flow.form_data(resource=HELPDESK_ADMIN)
    status, body = await env.post(env.invoke(ALICE, "request", data, env.connector.id_of(form)))
    assert status == 200, body
    await env.settle()
    return next(j for j in await env.service.open_jobs() if HELPDESK_ADMIN in str(j.request))


async def test_a_refused_job_waits_in_the_outbox_without_holding_up_the_others(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """Teams refuses one queued post with 403 (BotNotInConversationRoster: the app was
    removed, say): an ERROR naming the code (an operator must act), that job's posts wait in
    order, and the other job's queued posts still go out in the same drain."""
    first_job, _ = await flow.requested(teams)
    jobs = {first_job.job_id, (await second_request(teams)).job_id}
    await teams.connector.stop()
    teams.advance(minutes=61)  # both requests expire while Teams is unreachable
    await teams.service.tick()
    await teams.settle()
    later = teams.clock.now() + timedelta(hours=1)
    items = await teams.store.due("teams", later)
    assert {i.job_id for i in items} == jobs
    refused = items[0].job_id  # the oldest queued post is the one Teams refuses
    (other,) = jobs - {refused}
    await teams.connector.restart()
    teams.connector.faults = [(403, {})]
    caplog.clear()
    sent = await teams.bot.deliver_queued(later)
    assert sent == len([i for i in items if i.job_id == other])
    summaries = [str(c.card) for c in teams.connector.titled("audit summary")]
    assert [other in s for s in summaries] == [True]  # only the other job's went out
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert ["BotNotInConversationRoster" in r.getMessage() for r in errors] == [True]
    assert "credentials" not in errors[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]
    assert await queued(teams) == len(items) - sent  # the refused job's, all still waiting
    assert await teams.bot.deliver_queued(later + timedelta(hours=1)) == len(items) - sent
    summaries = [str(c.card) for c in teams.connector.titled("audit summary")]
    assert [refused in s for s in summaries] == [False, True]  # in order, once let in again
