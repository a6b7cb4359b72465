"""The console lists jobs a page at a time, newest first, read a page at a time from the
store; the next page is named by a ``Link: rel="next"`` header, the last page names none."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from bot.app import Runtime
from bot.console_room import PAGE_SIZE
from tests.integration.console.conftest import post, role_request

NEXT = re.compile(r'^<(/console/api/jobs\?before=[^>]+)>; rel="next"$')


async def page(session: aiohttp.ClientSession, url: str) -> tuple[list[Any], str | None]:
    async with session.get(url) as response:
        assert response.status == 200
        link = response.headers.get("Link")
        found = NEXT.match(link) if link is not None else None
        assert (link is None) == (found is None), link
        return await response.json(), found.group(1) if found else None


async def test_more_jobs_than_a_page_are_listed_over_two_pages(
    console: tuple[aiohttp.ClientSession, str, Runtime],
) -> None:
    session, url, _ = console
    created = []
    for _ in range(PAGE_SIZE + 3):
        status, out = await post(session, f"{url}/console/api/request", role_request())
        assert status == 200, out
        created.append(out["job_id"])
        # Withdrawn at once: one open job per grant, and every job asks for the same grant.
        kill = {"as": "console:bob", "verb": "kill", "job_id": out["job_id"]}
        status, out = await post(session, f"{url}/console/api/act", kill)
        assert status == 200, out
    first, older = await page(session, f"{url}/console/api/jobs")
    assert older is not None
    second, last = await page(session, url + older)
    assert last is None
    shown = [j["job_id"] for j in first + second]
    assert [len(first), len(second)] == [PAGE_SIZE, 3]
    assert shown == created[::-1]  # newest first, each job once


async def test_a_bad_or_unknown_cursor_is_refused(
    console: tuple[aiohttp.ClientSession, str, Runtime],
) -> None:
    session, url, runtime = console
    await post(session, f"{url}/console/api/request", role_request())
    async with session.get(f"{url}/console/api/jobs", params={"before": "a b"}) as bad:
        assert bad.status == 400
        assert (await bad.json())["field"] == "before"
    async with session.get(f"{url}/console/api/jobs", params={"before": "bg-nope"}) as unknown:
        assert (unknown.status, (await unknown.json())["reason"]) == (404, "JOB_NOT_FOUND")
    assert len(await runtime.service.store.list_jobs()) == 1  # nothing changed
