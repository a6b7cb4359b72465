"""The readable HTML report of a stored job (issue 18 §4), for the console and the public
``/v1/reports/{job_id}`` route that the Slack and Teams audit summaries link.

The report is the job's proof bundle verified against the service's own trust document and
drawn by ``breakglass report``'s renderer. It is read-only and exists only once the job has
ended. The public route needs no login: it shows what the audit summary already posted in the
incident channel (who asked and approved, what ran, the outcome), with more detail, to whoever
holds the job id that summary names. Job ids are random but short; a deployment that must not
expose this keeps ``service.public_url`` unset (then no link is posted and the route answers
404 for every job).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web

from adapters.console.channel import html_page
from bot.keys import trust_document
from cards.job_views import REPORT_ROUTE
from engine.errors import JobNotFound
from engine.verify import Trust, verify_bundle

if TYPE_CHECKING:
    from bot.assembly import Assembly

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def job_report(parts: Assembly, job_id: str) -> str | None:
    """The page of a resolved job; None while it is open. Raises ``JobNotFound``."""
    from bot.commands import html_report  # here: bot.commands imports the running service

    service = parts.service
    job = await service.load(job_id)
    if not job.resolved:
        return None
    bundle = (await service.bundle(job))[0]
    report = verify_bundle(bundle, Trust.from_json(trust_document(parts.keys)))
    return html_report.render(report, bundle)


def add_report_route(app: web.Application, parts: Assembly) -> None:
    """``GET /v1/reports/{job_id}`` on the public listener, when a public URL is configured."""
    if not parts.settings.public_url:
        return

    async def report(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        page = None
        if _JOB_ID.fullmatch(job_id):
            try:
                page = await job_report(parts, job_id)
            except JobNotFound:
                page = None
        if page is None:
            raise web.HTTPNotFound(text="no report: unknown job, or the job has not ended")
        return html_page(page)

    app.router.add_get(REPORT_ROUTE, report)
