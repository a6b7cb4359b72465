"""The console links each ended job's readable report (issue 18 §4): the page is the proof
bundle verified against the service's own trust document, verdict first, served so a browser
runs nothing in it; an open or unknown job has no report."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import aiohttp

from tests.integration.console.conftest import Console, fast_runtime, post, role_request
from tests.support.waiting import settle

CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


class _Ids(HTMLParser):
    """The ids of the page's elements, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.ids += [value for key, value in attrs if key == "id" and value]


async def ended_job(console: Console) -> str:
    session, url, runtime = console
    _, created = await post(session, f"{url}/console/api/request", role_request())
    job_id, plan = created["job_id"], created["result"]["plan_hash"]
    for who in ("bob", "carol"):
        act = {"as": f"console:{who}", "verb": "approve", "job_id": job_id, "plan_hash": plan}
        assert (await post(session, f"{url}/console/api/act", act))[0] == 200
    kill = {"as": "console:bob", "verb": "kill", "job_id": job_id}
    assert (await post(session, f"{url}/console/api/act", kill))[0] == 200
    service = runtime.service
    assert service.executor is not None
    await settle(service.executor.wait_idle, pending=lambda: service.tasks)
    assert (await service.load(job_id)).resolved
    return job_id


async def test_an_ended_job_links_its_report_verdict_first(console: Console) -> None:
    session, url, _ = console
    job_id = await ended_job(console)
    async with session.get(f"{url}/") as page:
        assert "/report" in await page.text()  # the page's job list links it
    async with session.get(f"{url}/console/api/jobs/{job_id}/report") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = await response.text()
    parsed = _Ids()
    parsed.feed(html)
    assert parsed.scripts == 0
    assert parsed.ids[0] == "verdict"
    assert '<section id="verdict" class="valid">' in html


async def test_open_and_unknown_jobs_have_no_report(console: Console) -> None:
    session, url, _ = console
    _, created = await post(session, f"{url}/console/api/request", role_request())
    answers = ((created["job_id"], 409, "JOB_OPEN"), ("bg-0000000000", 404, "JOB_NOT_FOUND"))
    for job_id, status, reason in answers:
        async with session.get(f"{url}/console/api/jobs/{job_id}/report") as response:
            assert response.status == status
            body = await response.json()
            assert (body["ok"], body["reason"]) == (False, reason)


async def test_the_public_report_route_serves_ended_jobs_only_with_a_public_url(
    tmp_path: Path,
) -> None:
    runtime = fast_runtime(tmp_path, public_url="https://breakglass.example")
    await runtime.start()
    try:
        async with aiohttp.ClientSession() as session:
            console = (session, runtime.internal_url, runtime)
            job_id = await ended_job(console)
            _, open_job = await post(
                session, f"{runtime.internal_url}/console/api/request", role_request()
            )
            public = f"{runtime.url}/v1/reports"
            async with session.get(f"{public}/{job_id}") as report:
                assert report.status == 200
                assert report.headers["Content-Security-Policy"] == CSP
                assert report.headers["X-Content-Type-Options"] == "nosniff"
                assert '<section id="verdict" class="valid">' in await report.text()
            for missing in (open_job["job_id"], "bg-0000000000", "..%2f..%2fetc"):
                async with session.get(f"{public}/{missing}") as gone:
                    assert gone.status == 404
    finally:
        await runtime.stop()


async def test_without_a_public_url_there_is_no_public_report(console: Console) -> None:
    session, _, runtime = console
    job_id = await ended_job(console)
    async with session.get(f"{runtime.url}/v1/reports/{job_id}") as response:
        assert response.status == 404
