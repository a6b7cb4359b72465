"""Each approver's prompt is delivered on its own: an approver Slack cannot reach holds back
no other, is given up (the requester told once), and a passing fault is retried alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from engine.job import ACTIVE
from tests.integration.slack.conftest import Env
from tests.integration.slack.fake_slack import FakeSlack, Json
from tests.integration.slack.steps import approve, dm_of, request_job, thread_texts
from tests.integration.slack.support import BOB, CAROL, DAVE

APPROVERS = (BOB, CAROL, DAVE)


@dataclass
class GoneUsersSlack(FakeSlack):
    """conversations.open answers Slack's error for the users listed (a deactivated account)."""

    gone: dict[str, str] = field(default_factory=dict)

    def _conversations_open(self, p: Json) -> Json:
        error = self.gone.get(str(p.get("users", "")))
        if error is not None:
            return {"ok": False, "error": error}
        return super()._conversations_open(p)


@pytest.fixture
def fake_type() -> type[FakeSlack]:
    return GoneUsersSlack


def gone(env: Env) -> dict[str, str]:
    assert isinstance(env.fake, GoneUsersSlack)
    return env.fake.gone


async def queued(env: Env) -> int:
    return len(await env.store.due("slack", env.clock.now() + timedelta(days=1)))


def prompted(env: Env) -> set[str]:
    """The approvers with an approval prompt in their DM."""
    return {u for u in APPROVERS if any(ch == f"D{u}" for ch, _ in env.fake.messages)}


def dm_opens(env: Env, user: str) -> int:
    return sum(1 for c in env.fake.of("conversations.open") if c.params.get("users") == user)


async def test_an_unreachable_approver_holds_back_no_other_and_is_told_once(env: Env) -> None:
    gone(env)[BOB] = "user_not_found"
    job = await request_job(env)
    assert prompted(env) == {CAROL, DAVE}
    told = [t for t in thread_texts(env) if "Could not reach approver" in t]
    assert len(told) == 1
    assert "u-bob" in told[0]
    assert "user_not_found" in told[0]
    assert await queued(env) == 0  # given up: nothing left to retry

    env.advance(minutes=10)
    await env.slack.deliver_queued(env.clock.now())
    assert dm_opens(env, BOB) == 1  # never asked again
    await approve(env, CAROL)
    await approve(env, DAVE)
    assert (await env.service.load(job.job_id)).state == ACTIVE
    assert len([t for t in thread_texts(env) if "Could not reach approver" in t]) == 1


async def test_a_rate_limited_dm_holds_back_no_other_and_goes_out_later(env: Env) -> None:
    env.fake.rate_limit("conversations.open", times=1, retry_after=30)  # above our in-place cap
    await request_job(env)
    assert len(prompted(env)) == 2  # whichever DM was limited, the other two went out
    assert await queued(env) == 1
    assert not [t for t in thread_texts(env) if "Could not reach approver" in t]

    env.advance(seconds=31)  # past Slack's Retry-After
    assert await env.slack.deliver_queued(env.clock.now()) == 1
    assert prompted(env) == set(APPROVERS)
    for user in APPROVERS:  # one prompt each: what went out first is not posted again
        assert len(env.fake.posts(f"D{user}")) == 1
        assert dm_of(env, user)["blocks"]
