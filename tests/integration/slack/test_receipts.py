"""One receipts event is one post, however many records it carries; announcements of a
failed write and of a delayed removal are posted once in the job's thread."""

from __future__ import annotations

import json
from datetime import timedelta

from adapters.graph.simulated import Fault
from cards.wording import END_REASONS, ENDED_EARLY_NEXT, ENDED_EARLY_TITLES, at_minute
from engine.job import KILLED, Job
from engine.ports import ChatEvent
from engine.timeutil import iso_ms, parse_iso
from tests.integration.graph.support import DAVE as DAVE_OID
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import (
    click,
    dm_of,
    request_job,
    status_card,
    thread,
    thread_texts,
)
from tests.integration.slack.support import BOB, CAROL, INCIDENT
from tests.support.receipts import closed_while_chat_was_down, receipt_summaries, shown_seqs


async def job_run_while_slack_was_down(env: Env) -> Job:
    """A whole job (approved, written, rolled back) whose receipts Slack never got."""
    job = await request_job(env)
    await env.fake.go_down()
    for user in (BOB, CAROL):
        await click(env, user, f"D{user}", dm_of(env, user), "approve")
    return await closed_while_chat_was_down(env, job.job_id, env.fake.come_back)


def receipts_posts(env: Env) -> list[str]:
    return [t for t in thread_texts(env) if receipt_summaries([t])]


async def test_a_burst_of_records_in_one_event_is_one_post(env: Env) -> None:
    job = await job_run_while_slack_was_down(env)
    shown_before, receipts_before = shown_seqs(thread_texts(env)), len(receipts_posts(env))
    chain = await env.store.chain(job.job_id)
    missed = [r for r in chain if r.seq not in shown_before]
    assert len(missed) >= 10  # a real burst: approvals, tokens, tool calls, the run end
    posts = len(env.fake.of("chat.postMessage"))
    await env.slack.deliver(ChatEvent("receipts", job.to_json(), {}, chain, env.clock.now()))
    assert len(env.fake.of("chat.postMessage")) == posts + 1
    assert len(receipts_posts(env)) == receipts_before + 1
    assert shown_seqs(receipts_posts(env)[-1:]) == [r.seq for r in missed]
    # What Slack missed comes from the outbox later: no record shown twice, no extra post.
    assert await env.slack.deliver_queued(env.clock.now() + timedelta(days=1)) > 0
    assert len(receipts_posts(env)) == receipts_before + 1
    assert sorted(shown_seqs(thread_texts(env))) == [r.seq for r in chain]


async def test_a_kill_in_the_first_minutes_tells_the_thread_when_removal_runs(env: Env) -> None:
    env.sim.strict = True  # PIM refuses a removal in the first 5 minutes after activation

    async def clock_sleep(seconds: float) -> None:  # waiting moves the manual clock
        env.advance(seconds=seconds)

    env.service.sleep = clock_sleep
    job = await request_job(env)
    for user in (BOB, CAROL):
        await click(env, user, f"D{user}", dm_of(env, user), "approve")
    await click(env, BOB, INCIDENT, status_card(env), "kill")
    killed = await env.service.load(job.job_id)
    assert killed.state == KILLED, killed.still_privileged
    said = [p for p in thread(env) if str(p.get("text", "")).startswith("Removal delayed")]
    assert len(said) == 1, thread_texts(env)
    allowed = parse_iso(killed.window_start or "") + timedelta(minutes=5)
    line = (
        f"Sessions of {DAVE_OID} (id {DAVE_OID}) revoked; the role {USER_ADMIN} (id "
        f"{USER_ADMIN}) can be removed from {at_minute(allowed)}; removal will run then."
    )
    assert line in json.dumps(said[0]["blocks"])
    assert holders(env.sim, USER_ADMIN) == set()  # and it was removed then
    # Delivered again (from the outbox, say): nothing is posted twice.
    posts = len(env.fake.of("chat.postMessage"))
    detail = {"event": "removal_delayed", "not_before": iso_ms(allowed), "contained": []}
    event = ChatEvent("announce", killed.to_json(), detail, (), env.clock.now())
    await env.slack.deliver(event)
    assert len(env.fake.of("chat.postMessage")) == posts


async def test_a_failed_write_is_announced_once_in_the_thread(env: Env) -> None:
    job = await request_job(env)
    await click(env, BOB, f"D{BOB}", dm_of(env, BOB), "approve")
    env.sim.add_fault(
        Fault("unavailable", method="POST", path="roleAssignmentScheduleRequests", times=10_000)
    )
    await click(env, CAROL, f"D{CAROL}", dm_of(env, CAROL), "approve")
    ended = await env.service.load(job.job_id)
    assert ended.end_reason == "write_failed", ended
    title = ENDED_EARLY_TITLES["write_failed"]
    said = [p for p in thread(env) if str(p.get("text", "")).startswith(title)]
    assert len(said) == 1, thread_texts(env)
    shown = json.dumps(said[0]["blocks"])
    assert END_REASONS["write_failed"] in shown
    assert ENDED_EARLY_NEXT in shown
