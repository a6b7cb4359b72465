"""The local console's API: refusals are answered, change nothing, and are recorded."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from bot.app import Runtime
from engine import catalog
from tests.integration.console.conftest import post, role_request


async def test_refusals_change_nothing_and_are_recorded(
    console: tuple[aiohttp.ClientSession, str, Runtime],
) -> None:
    session, url, runtime = console
    request = role_request()
    status, created = await post(session, f"{url}/console/api/request", request)
    assert status == 200
    job_id, plan = created["job_id"], created["result"]["plan_hash"]
    before = await runtime.service.store.chain(job_id)

    act = {"as": "console:alice", "verb": "approve", "job_id": job_id, "plan_hash": plan}
    status, refused = await post(session, f"{url}/console/api/act", act)
    assert (status, refused["reason"]) == (409, "SELF_APPROVAL")
    status, malformed = await post(session, f"{url}/console/api/act", act | {"plan_hash": "x"})
    assert (status, malformed["reason"]) == (400, "INVALID_INPUT")
    status, bad_form = await post(
        session, f"{url}/console/api/request", request | {"minutes": "ten"}
    )
    assert (status, bad_form["reason"]) == (400, "INVALID_INPUT")
    status, busy = await post(session, f"{url}/console/api/request", request)  # the same grant
    assert (status, busy["reason"]) == (409, "TARGET_BUSY")
    assert job_id in busy["detail"]

    job = await runtime.service.load(job_id)
    assert job.state == "pending_approval"
    assert await runtime.service.store.chain(job_id) == before
    assert [r["reason"] for r in job.refusals] == ["SELF_APPROVAL"]
    assert len(await runtime.service.store.list_jobs()) == 1


async def test_the_tool_gateway_has_no_http_route(
    console: tuple[aiohttp.ClientSession, str, Runtime],
) -> None:
    """Tool calls are made in-process by the executors; nothing on the listener runs them."""
    session, url, runtime = console
    _, created = await post(session, f"{url}/console/api/request", role_request())
    job_id = created["job_id"]
    before = await runtime.service.store.chain(job_id)
    tool = f"{url}/v1/jobs/{job_id}/tools/{catalog.WRITE_ROLE}"
    async with session.post(tool, json={"arguments": {}}) as response:
        assert response.status == 404
    assert await runtime.service.store.chain(job_id) == before


async def test_health_readiness_and_metrics_answer(
    console: tuple[aiohttp.ClientSession, str, Runtime],
) -> None:
    session, url, _ = console
    async with session.get(f"{url}/healthz") as health:
        assert (health.status, await health.json()) == (200, {"ok": True})
    async with session.get(f"{url}/readyz") as ready:
        assert (ready.status, await ready.json()) == (200, {"ready": True, "open_jobs": 0})
    async with session.get(f"{url}/metrics") as metrics:
        assert metrics.status == 200
        assert 'breakglass_jobs{state="pending_approval"} 0.0' in await metrics.text()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"principal": "nobody@example.invalid"}, "TARGET_NOT_FOUND"),
        ({"minutes": 120}, "NOT_ELIGIBLE"),  # above the template's 60-minute maximum
    ],
)
async def test_a_refused_request_names_no_job_and_stores_nothing(
    console: tuple[aiohttp.ClientSession, str, Runtime],
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    reason: str,
) -> None:
    # A black-box run saw a refused request answer with a fresh job_id, as if a job had
    # been made: a page or a script would then follow a job that does not exist.
    session, url, runtime = console
    caplog.set_level(logging.INFO, logger="breakglass.service")
    status, answer = await post(session, f"{url}/console/api/request", role_request() | change)
    assert status == 409
    assert answer == {"ok": False, "reason": reason, "detail": answer["detail"]}
    assert answer["detail"]
    assert await runtime.service.store.list_jobs() == []
    logged = [r.getMessage() for r in caplog.records if r.name == "breakglass.service"]
    assert logged == [f"refused request by console:alice: {reason}"]
