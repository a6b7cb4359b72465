"""Console channel: keeps a feed of what each job showed, and serves the page and its API.

The page names who is acting (``as``); that is only acceptable because the console binds
to loopback and runs only against the simulated tenant (see the threat model). Binding to
loopback does not keep a browser's other pages out, so every route also checks (``guard``):
the ``Host`` is a loopback name (a DNS-rebinding page names its own), and a POST is JSON
from the console's own origin (a cross-site form or ``no-cors`` fetch cannot send JSON, and
says where it comes from). Every answer forbids framing (clickjacking of Approve or Kill).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from adapters.console.inputs import (
    FieldError,
    parse_act,
    parse_after,
    parse_before,
    parse_request,
)
from adapters.httpbody import read_request
from cards import moments, plain
from cards.actions import from_teams
from cards.job_views import announcement_view
from cards.views import RequestValues
from engine.canonical import strict_loads
from engine.errors import BreakGlassError, InputError, JobNotFound, StoreError, describe
from engine.job import Job
from engine.ports import ChatEvent

log = logging.getLogger("breakglass.console")
MAX_BODY = 16 * 1024
FEED_SIZE = 500
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAME_ORIGIN = frozenset({"same-origin", "none"})  # Sec-Fetch-Site of the console's own page
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

Json = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class JobsPage:
    """One page of the jobs list, newest first, and the cursor of the next (older) page."""

    jobs: list[Json]
    older: str | None  # the ``before`` of the next page; None on the last page


@dataclass(frozen=True)
class ConsoleHandlers:
    """What the page can ask the service to do (wired by bot/, so this adapter stays small)."""

    request: Callable[[str, RequestValues], Awaitable[Json]]  # (identity, form) -> outcome
    act: Callable[[str, Any], Awaitable[Json]]  # (identity, CardAction) -> outcome
    jobs: Callable[[str | None], Awaitable[JobsPage]]  # (before) -> a page, newest first
    bundle: Callable[[str], Awaitable[Json | None]]
    report: Callable[[str], Awaitable[str | None]]  # the HTML report; None: not ended
    trust: Callable[[], Json]
    identities: Callable[[], list[Json]]
    examples: Callable[[], Json]


class ConsoleChannel:
    platform = "console"

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names: Mapping[str, str] = names or {}
        self.feed: deque[Json] = deque(maxlen=FEED_SIZE)
        self._seq = 0
        self.handlers: ConsoleHandlers | None = None

    async def deliver(self, event: ChatEvent) -> None:
        self._seq += 1
        self.feed.append(
            {
                "seq": self._seq,
                "kind": event.kind,
                "job_id": event.job.get("job_id"),
                "state": event.job.get("state"),
                "detail": dict(event.detail),
                "records": [
                    {
                        "seq": r.seq,
                        "type": r.event["event_type"],
                        "hash": r.event["event_hash_b64u"],
                    }
                    for r in event.records
                ],
                "at": event.now.isoformat(),
                "text": self._text(event),
            }
        )

    def _text(self, event: ChatEvent) -> str | None:
        """What Slack and Teams show for an announcement (a failure, a delayed removal)."""
        if event.kind != "announce":
            return None
        try:
            said = announcement_view(Job.from_json(event.job), self.names, event.detail)
        except (InputError, KeyError):
            return None
        return plain.render(moments.announcement(said)) if said is not None else None

    def mount(
        self, app: web.Application, handlers: ConsoleHandlers, *, any_host: bool = False
    ) -> None:
        """Serve the page and its API on ``app``. ``any_host``: a console the operator let
        off loopback (``service.allow_remote_console``) is reached by names of its own."""
        self.handlers = handlers
        hosts = None if any_host else LOOPBACK_NAMES
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/", self._page),
            ("GET", "/console/api/jobs", self._jobs),
            ("GET", "/console/api/feed", self._feed),
            ("GET", "/console/api/identities", self._identities),
            ("GET", "/console/api/trust", self._trust),
            ("GET", "/console/api/examples", self._examples),
            ("GET", "/console/api/jobs/{job_id}/bundle", self._bundle),
            ("GET", "/console/api/jobs/{job_id}/report", self._report),
            ("POST", "/console/api/request", self._request),
            ("POST", "/console/api/act", self._act),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, guard(handler, hosts))

    async def _page(self, _request: web.Request) -> web.Response:
        page = resources.files("adapters.console").joinpath("page.html").read_text("utf-8")
        return web.Response(text=page, content_type="text/html", headers=PAGE_HEADERS)

    def _h(self) -> ConsoleHandlers:
        assert self.handlers is not None
        return self.handlers

    async def _jobs(self, request: web.Request) -> web.Response:
        """A page of jobs (a JSON list); the next page is named by a ``Link: rel="next"``."""
        try:
            before = parse_before(request.query.get("before"))
            page = await self._h().jobs(before)
        except FieldError as exc:
            return _invalid(exc)
        except JobNotFound:
            return _not_found(request.query.get("before", ""))
        headers = {}
        if page.older is not None:
            next_page = f"/console/api/jobs?before={quote(page.older, safe='')}"
            headers["Link"] = f'<{next_page}>; rel="next"'
        return web.json_response(page.jobs, headers=headers)

    async def _feed(self, request: web.Request) -> web.Response:
        try:
            after = parse_after(request.query.get("after"))
        except FieldError as exc:
            return _invalid(exc)
        return web.json_response([e for e in self.feed if e["seq"] > after])

    async def _identities(self, _request: web.Request) -> web.Response:
        return web.json_response(self._h().identities())

    async def _examples(self, _request: web.Request) -> web.Response:
        return web.json_response(self._h().examples())

    async def _trust(self, _request: web.Request) -> web.Response:
        return web.json_response(self._h().trust())

    async def _bundle(self, request: web.Request) -> web.Response:
        return await _of_ended(request, "bundle", self._h().bundle, web.json_response)

    async def _report(self, request: web.Request) -> web.Response:
        return await _of_ended(request, "report", self._h().report, html_page)

    async def _request(self, request: web.Request) -> web.Response:
        try:
            identity, values = parse_request(await _json_body(request))
            outcome = await self._h().request(identity, values)
        except StoreError:
            raise  # the service's middleware answers 503 STORE_UNAVAILABLE (no paths)
        except BreakGlassError as exc:
            return _invalid(exc)
        if not outcome.get("ok"):
            # A refused request made no job: the id the service drew for it names nothing,
            # and a page or script that saw it would follow a job that does not exist.
            outcome = {k: outcome.get(k, "") for k in ("ok", "reason", "detail")}
        return _answer(outcome)

    async def _act(self, request: web.Request) -> web.Response:
        try:
            press = parse_act(await _json_body(request))
            data = {"verb": press.verb, "job_id": press.job_id}
            action = from_teams(
                press.verb, data | ({"plan_hash": press.plan_hash} if press.plan_hash else {})
            )
            outcome = await self._h().act(press.identity, action)
        except JobNotFound:
            return _not_found(press.job_id)
        except StoreError:
            raise  # the service's middleware answers 503 STORE_UNAVAILABLE (no paths)
        except BreakGlassError as exc:
            return _invalid(exc)
        return _answer(outcome)


def guard(handler: Handler, hosts: frozenset[str] | None) -> Handler:
    """``handler`` behind the console's checks (see the module's text); a refusal is a 403
    (421 for a foreign host) with a reason, logged once, and reaches no handler."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        refusal = _refusal(request, hosts)
        if refusal is not None:
            status, reason = refusal
            log.warning("console request refused: %s %s: %s", request.method, request.path, reason)
            body = {"ok": False, "reason": reason, "detail": "not from the console's own page"}
            response: web.StreamResponse = web.json_response(body, status=status)
        else:
            response = await handler(request)
        for name, value in NO_FRAMING.items():
            response.headers.setdefault(name, value)
        return response

    return guarded


def _refusal(request: web.Request, hosts: frozenset[str] | None) -> tuple[int, str] | None:
    if hosts is not None and (request.url.host or "").lower() not in hosts:
        return 421, "HOST_NOT_CONSOLE"
    if request.method != "POST":
        return None
    if request.content_type != "application/json":
        return 415, "JSON_ONLY"
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return 403, "CROSS_ORIGIN"
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in SAME_ORIGIN:
        return 403, "CROSS_ORIGIN"
    return None


NO_FRAMING = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
PAGE_HEADERS = {
    # The page's own inline script and style, and requests to its own origin only.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}
REPORT_HEADERS = {
    # The report has no script and loads nothing: say so to the browser too.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def html_page(page: str) -> web.Response:
    """A report page, served so a browser runs nothing in it and guesses no other type."""
    return web.Response(text=page, content_type="text/html", headers=REPORT_HEADERS)


async def _json_body(request: web.Request) -> Any:
    # Floats parse so a wrong number is refused by its field, not as an unreadable body.
    return strict_loads(await read_request(request, MAX_BODY), floats=True)


async def _of_ended(
    request: web.Request,
    what: str,
    fetch: Callable[[str], Awaitable[T | None]],
    answer: Callable[[T], web.Response],
) -> web.Response:
    """The ``what`` of an ended job; 404 for an unknown job, 409 for one still open."""
    job_id = request.match_info["job_id"]
    try:
        found = await fetch(job_id)
    except JobNotFound:
        return _not_found(job_id)
    if found is None:
        detail = f"no {what} yet: the job has not ended"
        return web.json_response({"ok": False, "reason": "JOB_OPEN", "detail": detail}, status=409)
    return answer(found)


def _answer(outcome: Json) -> web.Response:
    return web.json_response(outcome, status=200 if outcome.get("ok") else 409)


def _invalid(exc: BreakGlassError) -> web.Response:
    """400 naming the field when one is to blame; the detail never carries a traceback."""
    body: Json = {"ok": False, "reason": "INVALID_INPUT", "detail": describe(exc)}
    if isinstance(exc, FieldError):
        body["field"] = exc.field
    log.info("console input refused: %s", body["detail"][:200])  # the formatter escapes it
    return web.json_response(body, status=400)


def _not_found(job_id: str) -> web.Response:
    shown = job_id if len(job_id) <= 64 and job_id.isprintable() else job_id[:64] + "…"
    detail = f"no job {shown!r}: check the id on the job card"
    return web.json_response({"ok": False, "reason": "JOB_NOT_FOUND", "detail": detail}, status=404)
