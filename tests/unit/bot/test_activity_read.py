"""The activity read never keeps a job from ending: a read that does not answer within its
budget, a refused read and a failed read each become ``unavailable (reason)``; a job with
nothing granted reads nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.activity_read import planned_read, read_activity
from bot.gateway_service import GatewayOutcome
from engine.activity import READ, UNAVAILABLE
from engine.job import Job
from engine.timeutil import parse_iso
from tests.support.engine_sim import JobSim


def granted_job() -> Job:
    sim = JobSim()
    sim.request()
    sim.approve_both()
    sim.run_write_and_verify()
    assert sim.job is not None
    return sim.job


async def test_a_read_that_never_answers_is_given_up_after_its_budget() -> None:
    job, never = granted_job(), asyncio.Event()

    async def hangs(step: Mapping[str, Any]) -> GatewayOutcome:
        await never.wait()  # a tenant that keeps the connection open and says nothing
        raise AssertionError("unreachable")

    record = await read_activity(job, job_now(job), hangs, budget=0.01)
    assert record == {"status": UNAVAILABLE, "reason": "the logs were not read within 0 s"}


async def test_refused_and_failed_reads_are_unavailable_with_their_reason() -> None:
    job = granted_job()

    async def refused(step: Mapping[str, Any]) -> GatewayOutcome:
        return GatewayOutcome(False, "refused", "tr_1", reason="TOKEN_INVALID")

    async def failed(step: Mapping[str, Any]) -> GatewayOutcome:
        return GatewayOutcome(True, "error", "tr_2", result={"error": "TooManyRequests"})

    first = await read_activity(job, job_now(job), refused)
    second = await read_activity(job, job_now(job), failed)
    assert first == {"status": UNAVAILABLE, "reason": "the read was refused (TOKEN_INVALID)"}
    assert second is not None
    assert second["reason"] == "the tenant did not answer the read (TooManyRequests)"


async def test_the_planned_read_covers_the_window_and_a_job_without_a_grant_reads_nothing() -> None:
    job = granted_job()
    seen: list[Mapping[str, Any]] = []

    async def answers(step: Mapping[str, Any]) -> GatewayOutcome:
        seen.append(step)
        return GatewayOutcome(True, "success", "tr_3", result={"window": {}})

    record = await read_activity(job, job_now(job), answers)
    assert record == {"status": READ, "receipt_id": "tr_3", "result": {"window": {}}}
    (step,) = seen
    assert step["arguments"]["since"].startswith(job.window_start[:19])
    assert planned_read(job.but(write_done=False, write_sent=False), job_now(job)) is None


def job_now(job: Job) -> datetime:
    return parse_iso(job.window_start or job.created_at)
