"""Kill pressed in Slack while the store refuses writes: what the person who pressed sees
(docs/notes/store-full.md). The real Bolt app, signed requests, the fake Slack Web API,
the simulated tenant; the store is SQLite on a full disk (``disk.SqliteDisk``)."""

from __future__ import annotations

import logging

import pytest

from engine.job import ACTIVE
from tests.integration.faults.disk import SqliteDisk
from tests.integration.slack import steps
from tests.integration.slack.conftest import Env, env, fake, fake_type, slack_overrides
from tests.integration.slack.support import BOB, CAROL, INCIDENT, MALLORY

__all__ = ["env", "fake", "fake_type", "slack_overrides"]  # the Slack service, as a fixture


async def test_a_kill_the_store_refuses_is_answered_to_the_person_who_pressed_it(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    job = await steps.request_job(env)
    await steps.approve(env, BOB)
    await steps.approve(env, CAROL)
    if (await env.service.load(job.job_id)).state != ACTIVE:
        raise RuntimeError("precondition: the job is active")
    disk = SqliteDisk(env.store)
    await disk.fill()
    try:
        await steps.click(env, MALLORY, INCIDENT, steps.status_card(env), "kill")
    finally:
        await disk.free()

    told = steps.ephemerals(env, MALLORY)
    assert told, "the person who pressed Kill was told nothing"
    for text in told:
        for inside in ("Traceback", "sqlite", "breakglass.db"):
            assert inside not in text, text
    crashed = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert crashed == [], [r.getMessage() for r in crashed]
