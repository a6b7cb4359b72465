"""The console's own page only: another page in the operator's browser (a cross-site form
or ``no-cors`` fetch, a DNS-rebinding page, a frame) can neither act nor read. A black-box
run made a job and approved it twice from another origin, and read the jobs list through a
rebound host name. Each refusal changes nothing and is logged."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.integration.console.conftest import Console, post, role_request

EVIL = "http://127.0.0.1:1"  # another origin on the same machine


async def raw_post(
    console: Console, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any]:
    session, url, _ = console
    data = json.dumps(body)
    async with session.post(f"{url}{path}", data=data, headers=headers) as response:
        return response.status, await response.json()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "breakglass.console"]


def levels(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.levelname for r in caplog.records if r.name == "breakglass.console"]


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({"Content-Type": "text/plain"}, 415, "JSON_ONLY"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "JSON_ONLY"),
        ({"Content-Type": "application/json", "Origin": EVIL}, 403, "CROSS_ORIGIN"),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403, "CROSS_ORIGIN"),
        ({"Content-Type": "application/json", "Host": "attacker.example"}, 421, "HOST_NOT_CONSOLE"),
    ],
)
async def test_a_request_from_another_page_creates_nothing(
    console: Console,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    _, _, runtime = console
    caplog.set_level(logging.INFO, logger="breakglass.console")
    answer = await raw_post(console, "/console/api/request", role_request(), headers)
    assert answer == (status, {"ok": False, "reason": reason, "detail": answer[1]["detail"]})
    assert await runtime.service.store.list_jobs() == []
    assert refusals(caplog) == [f"console request refused: POST /console/api/request: {reason}"]
    assert levels(caplog) == ["WARNING"]  # another page (or host) acting: not a typo


async def test_an_approval_from_another_origin_is_not_counted(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    session, url, runtime = console
    status, made = await post(session, f"{url}/console/api/request", role_request())
    assert status == 200, made
    job_id, plan = made["job_id"], made["result"]["plan_hash"]
    before = await runtime.service.store.load_job(job_id)
    approve = {"as": "console:bob", "verb": "approve", "job_id": job_id, "plan_hash": plan}
    headers = {"Content-Type": "application/json", "Origin": EVIL}
    assert (await raw_post(console, "/console/api/act", approve, headers))[0] == 403
    assert await runtime.service.store.load_job(job_id) == before
    assert refusals(caplog) == ["console request refused: POST /console/api/act: CROSS_ORIGIN"]


async def test_its_own_page_may_act(console: Console) -> None:
    """What a browser sends from the console itself: its own Origin, same-origin."""
    _, url, runtime = console
    headers = {"Content-Type": "application/json", "Origin": url, "Sec-Fetch-Site": "same-origin"}
    status, answer = await raw_post(console, "/console/api/request", role_request(), headers)
    assert (status, answer["ok"]) == (200, True)
    assert len(await runtime.service.store.list_jobs()) == 1


@pytest.mark.parametrize("path", ["/", "/console/api/jobs", "/console/api/trust"])
async def test_a_rebound_host_name_reads_nothing(
    console: Console, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    session, url, _ = console
    caplog.set_level(logging.INFO, logger="breakglass.console")
    async with session.get(f"{url}{path}", headers={"Host": "attacker.example:80"}) as response:
        assert response.status == 421
        assert (await response.json())["reason"] == "HOST_NOT_CONSOLE"
    assert refusals(caplog) == [f"console request refused: GET {path}: HOST_NOT_CONSOLE"]
    assert levels(caplog) == ["WARNING"]


async def test_no_page_may_frame_the_console(console: Console) -> None:
    session, url, _ = console
    for path in ("/", "/console/api/jobs"):
        async with session.get(f"{url}{path}") as response:
            assert response.status == 200
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with session.get(f"{url}/") as response:
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
