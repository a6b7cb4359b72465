"""The whole service with step-up configured: a console click on a step-up plan answers
with the approver's sign-in link; both approvers sign in with MFA at the in-process
simulated tenant, the callback on the service's listener records each approval, and the
job opens. A click alone changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from bot.app import SIMULATED_SEED, Runtime, seed_people
from bot.config import load_settings
from engine import job as states
from tests.support.waiting import settle

CONFIG = """
[templates.entra-role]
roles = ["*"]
principals = ["*"]
step_up = "required"

[templates.ca-exclusion]
ca_policies = ["*"]
groups = ["*"]

[step_up]
authentication_context = "c1"
max_age_seconds = 300
"""


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, str, Runtime]]:
    (tmp_path / "breakglass.toml").write_text(CONFIG)
    runtime = Runtime(replace(load_settings({"BREAKGLASS_HOME": str(tmp_path)}), port=0))
    await runtime.start()
    async with aiohttp.ClientSession() as session:
        # The console is on the internal (loopback) listener; the step-up callback on the public.
        yield session, runtime.internal_url, runtime
    await runtime.stop()


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, await response.json()


async def sign_in_and_return(session: aiohttp.ClientSession, link: str, user: str) -> int:
    form = {**URL(link).query, "user": user, "mfa": "1"}
    async with session.post(link, data=form, allow_redirects=False) as signed:
        assert signed.status == 302
        callback = signed.headers["Location"]
    async with session.get(callback, allow_redirects=False) as answer:
        return answer.status


async def test_console_approvals_with_step_up(
    runtime: tuple[aiohttp.ClientSession, str, Runtime],
) -> None:
    session, url, service_runtime = runtime
    people = seed_people()
    request = {
        "as": "console:alice",
        "template": "entra-role",
        "principal": people["alice"],
        "resource": SIMULATED_SEED["roles"][0]["id"],
        "minutes": 5,
        "justification": "console step-up test",
        "ticket": "T-2",
    }
    status, created = await post(session, f"{url}/console/api/request", request)
    assert status == 200, created
    job_id, plan = created["job_id"], created["result"]["plan_hash"]
    for who in ("bob", "carol"):
        act = {"as": f"console:{who}", "verb": "approve", "job_id": job_id, "plan_hash": plan}
        status, answer = await post(session, f"{url}/console/api/act", act)
        assert (status, answer["reason"]) == (409, "STEP_UP_REQUIRED")
        link = answer["result"]["sign_in_url"]
        job = await service_runtime.service.load(job_id)
        assert people[who] not in job.plan.approvers()  # the click alone counted nothing
        assert await sign_in_and_return(session, link, people[who]) == 200
    service = service_runtime.service
    job = await service.load(job_id)
    assert job.window_start is not None  # both approvals counted: the window opened
    assert job.state not in (states.PENDING, states.DENIED)
    assert [d.step_up is not None for d in job.plan.decisions] == [True, True]
    assert service.executor is not None
    await settle(service.executor.wait_idle, pending=lambda: service.tasks)
