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
from tests.integration.slack.steps import (
    approve,
    click,
    request_job,
    status_card,
    thread_texts,
)
from tests.integration.slack.support import BOB, CAROL, DAVE, INCIDENT, MALLORY
from tests.support.engine_sim import trust_for
from tests.support.waiting import eventually


async def test_whole_job_from_slash_command_to_bundle(env: Env) -> None:
    job_id = (await request_job(env)).job_id
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

    await click(env, MALLORY, INCIDENT, status_card(env), "kill")  # anyone may stop it
    job = await env.service.load(job_id)
    assert job.state == KILLED, job.refusals
    assert holders(env.sim, USER_ADMIN) == set()

    texts = thread_texts(env)
    assert any("Break-glass ended" in t for t in texts)
    assert any("audit summary" in t for t in texts)
    (upload,) = env.fake.uploads.values()
    assert upload.thread_ts == card["ts"]
    assert upload.channel == INCIDENT
    bundle: Any = strict_loads(upload.content or b"")
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons
