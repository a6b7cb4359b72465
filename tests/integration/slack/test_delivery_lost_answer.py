"""Slack took a post but its answer was lost: the retry posts again (Slack has no idempotent
post). Only the message the bot recorded counts: a press on the copy is refused."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from aiohttp import web

from adapters.slack import refs as kinds
from engine.job import ACTIVE
from tests.integration.slack.conftest import Env
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.steps import approve, click, ephemerals, posted, request_job
from tests.integration.slack.support import BOB, CAROL

BOB_DM = f"D{BOB}"


@dataclass
class LosingSlack(FakeSlack):
    """Does what a call asks, then drops the connection instead of answering, once for each
    (method, channel) listed: the caller cannot know the message went out."""

    lose: set[tuple[str, str]] = field(default_factory=set)

    async def _api(self, request: web.Request) -> web.Response:
        response = await super()._api(request)
        call = self.calls[-1]
        key = (call.method, str(call.params.get("channel", "")))
        if key in self.lose:
            self.lose.discard(key)
            assert request.transport is not None
            request.transport.close()
        return response


@pytest.fixture
def fake_type() -> type[FakeSlack]:
    return LosingSlack


def lose(env: Env, method: str, channel: str) -> None:
    assert isinstance(env.fake, LosingSlack)
    env.fake.lose.add((method, channel))


def with_buttons(env: Env, channel: str) -> list[str]:
    """The ts of every message in ``channel`` that shows buttons now."""
    return [
        ts
        for (ch, ts), m in env.fake.messages.items()
        if ch == channel and any(b.get("type") == "actions" for b in m.get("blocks", []))
    ]


async def tracked_prompt(env: Env, job_id: str) -> str:
    refs = await env.store.message_refs(job_id, kinds.PLATFORM)
    (ts,) = [r.ref["ts"] for r in refs if r.kind == kinds.approval_kind(BOB)]
    return str(ts)


async def deliver_later(env: Env) -> None:
    env.advance(minutes=1)  # past the outbox's first backoff
    assert await env.slack.deliver_queued(env.clock.now()) == 1


async def test_a_lost_post_answer_leaves_a_copy_whose_presses_are_refused(env: Env) -> None:
    lose(env, "chat.postMessage", BOB_DM)
    job = await request_job(env)
    await deliver_later(env)
    assert len(env.fake.posts(BOB_DM)) == 2  # Slack kept both: the first answer was lost
    tracked = await tracked_prompt(env, job.job_id)
    (copy,) = [ts for ts in with_buttons(env, BOB_DM) if ts != tracked]

    await click(env, BOB, BOB_DM, posted(env, BOB_DM, copy), "approve")
    assert (await env.service.load(job.job_id)).plan.approvers() == []  # nothing counted
    assert any("not on a message the bot posted" in e for e in ephemerals(env, BOB))

    await approve(env, BOB)  # on the recorded prompt, the newest one
    await approve(env, CAROL)
    assert (await env.service.load(job.job_id)).state == ACTIVE
    assert tracked not in with_buttons(env, BOB_DM)  # decided: the recorded prompt shows it
