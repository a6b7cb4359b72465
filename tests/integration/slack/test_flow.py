"""The whole break-glass flow in a Slack incident channel, end to end over real HTTP."""

from __future__ import annotations

import json
from typing import Any

from engine.canonical import strict_loads
from engine.job import ACTIVE, KILLED, PENDING
from engine.verify import verify_bundle
from tests.integration.graph.support import DAVE as DAVE_OID
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack.conftest import Env
from tests.integration.slack.support import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    INCIDENT,
    MALLORY,
    Json,
    form_values,
)
from tests.support.engine_sim import trust_for
from tests.support.waiting import eventually

REQUEST = {
    "template": "entra-role",
    "principal": DAVE_OID,
    "resource": USER_ADMIN,
    "duration_minutes": "30",
    "justification": "INC-42: mail flow is down, need User Administrator",
    "ticket": "INC-42",
}


async def open_form(env: Env, user: str = ALICE) -> Json:
    """``/breakglass request``: the modal views.open showed."""
    response = await env.sender.command(user, "request")
    assert response.status == 200
    await env.settle()
    (call,) = env.fake.of("views.open")
    view: Json = call.params["view"]
    return view | {"id": "V0000FORM", "hash": "h1"}


async def request_job(env: Env, **typed: str) -> str:
    view = await open_form(env)
    response = await env.sender.submit(ALICE, view, form_values(**(REQUEST | typed)))
    assert response.status == 200
    await env.settle()
    return (await env.only_job()).job_id


def dm_of(env: Env, user: str) -> Json:
    """The approval prompt as posted in ``user``'s DM."""
    (post,) = [p for p in env.fake.posts(f"D{user}")]
    return message_at(env, f"D{user}", post)


def message_at(env: Env, channel: str, post: Json) -> Json:
    for (where, ts), message in env.fake.messages.items():
        if where == channel and message.get("text") == post.get("text"):
            return message | {"ts": ts}
    raise AssertionError("not posted")


def status_card(env: Env) -> Json:
    (ts,) = [ts for (ch, ts), m in env.fake.messages.items() if ch == INCIDENT and
             "thread_ts" not in m]  # fmt: skip
    return env.fake.messages[(INCIDENT, ts)] | {"ts": ts}


async def approve(env: Env, user: str) -> None:
    response = await env.sender.click(user, f"D{user}", dm_of(env, user), "breakglass.approve")
    assert response.status == 200
    await env.settle()


def thread(env: Env) -> list[Json]:
    return env.fake.posts(INCIDENT, thread_ts=status_card(env)["ts"])


async def test_whole_job_from_slash_command_to_bundle(env: Env) -> None:
    job_id = await request_job(env)
    job = await env.service.load(job_id)
    assert job.state == PENDING
    assert job.requester.principal == "u-alice"
    assert job.channel["channel"] == INCIDENT
    assert {c.params["users"] for c in env.fake.of("conversations.open")} == {BOB, CAROL, DAVE}
    card = status_card(env)
    assert "blocks" in card

    await approve(env, BOB)
    assert (await env.service.load(job_id)).state == PENDING
    await approve(env, CAROL)
    await eventually(lambda: bool(holders(env.sim, USER_ADMIN)))
    await env.settle()
    job = await env.service.load(job_id)
    assert job.state == ACTIVE
    assert holders(env.sim, USER_ADMIN) == {DAVE_OID}
    assert job.verified_after_write is True

    updates_before = len(env.fake.of("chat.update"))
    env.advance(minutes=10)
    await env.service.tick()
    await env.settle()
    assert len(env.fake.of("chat.update")) > updates_before
    updated = env.fake.messages[(INCIDENT, card["ts"])]
    assert "20 min left" in updated["text"] or "20 min left" in json.dumps(updated["blocks"])

    response = await env.sender.click(MALLORY, INCIDENT, status_card(env), "breakglass.kill")
    assert response.status == 200
    await env.settle()
    job = await env.service.load(job_id)
    assert job.state == KILLED, job.refusals
    assert holders(env.sim, USER_ADMIN) == set()

    texts = [p.get("text", "") for p in thread(env)]
    assert any("Break-glass ended" in t for t in texts)
    assert any("audit summary" in t for t in texts)
    (upload,) = env.fake.uploads.values()
    assert upload.thread_ts == card["ts"]
    assert upload.channel == INCIDENT
    bundle: Any = strict_loads(upload.content or b"")
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons
