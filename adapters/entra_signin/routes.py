"""The step-up callback on the public listener: Entra sends the approver's browser here."""

from __future__ import annotations

import html

from aiohttp import web

from adapters.entra_signin.config import CALLBACK_PATH, START_PATH
from adapters.entra_signin.flow import StepUpFlow

FLOW: web.AppKey[StepUpFlow] = web.AppKey("breakglass_stepup_flow", StepUpFlow)
_PAGE = "<!doctype html><title>breakglass step-up</title><h1>{title}</h1><p>{text}</p>"


async def callback(request: web.Request) -> web.Response:
    query = request.query
    outcome = await request.app[FLOW].complete(
        query.get("state", "")[:256], query.get("code", "")[:4096], query.get("error", "")[:80]
    )
    if outcome.ok:
        page = _PAGE.format(title="Approval recorded", text="You can close this tab.")
        return web.Response(text=page, content_type="text/html")
    text = html.escape(f"{outcome.reason}: {outcome.detail}"[:300])
    page = _PAGE.format(title="Approval refused", text=text)
    return web.Response(text=page, content_type="text/html", status=403)


async def start(request: web.Request) -> web.Response:
    """The short link a chat message carries: on to Entra's sign-in, or a plain refusal."""
    url = await request.app[FLOW].authorize_url_for(request.match_info["state"][:256])
    if url is None:
        page = _PAGE.format(title="Link expired", text="Click Approve again for a new link.")
        return web.Response(text=page, content_type="text/html", status=404)
    return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})


def add_callback_route(app: web.Application, flow: StepUpFlow) -> None:
    """Mount ``GET /v1/stepup/callback`` (the redirect URI registered for the app) and the
    short sign-in links ``GET /v1/stepup/start/{state}``."""
    app[FLOW] = flow
    app.router.add_get(CALLBACK_PATH, callback)
    app.router.add_get(START_PATH + "/{state}", start)
