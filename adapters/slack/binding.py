"""Is a Slack request bound to our workspace, and a click to the job it names? Defence in depth
behind the signature.

Every app of a distributed Slack app signs with the same secret, so a signature says "Slack",
not "our workspace". With ``SlackConfig.team_id`` / ``enterprise_id`` set, :func:`workspace_gate`
(a Bolt global middleware, run before any listener) refuses every request, of any kind, whose
team or Enterprise Grid org is another (or missing), and a new job records the configured one.

A button's value names a job, but anyone who can get a signed request to us (another
workspace of a distributed app, a crafted click on some other message) could name any job.
So a click counts only when it comes from the workspace (and Enterprise Grid org) the job
was requested in, and from a message the bot posted for that job: the job's status card or
an approver's DM prompt, compared by channel and message ts with the stored message refs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from adapters.slack import refs as kinds
from adapters.slack.config import SlackConfig
from engine.job import Job
from engine.ports import MessageRefs

log = logging.getLogger("breakglass.slack")
# Only these messages carry the job's buttons.
BUTTON_KINDS = (kinds.STATUS, kinds.approval_kind(""))
FOREIGN = "foreign_workspace"  # the refusal's name in ``SlackAdapter.refusals``
NOT_OUR_WORKSPACE = ":no_entry: This workspace is not served by this breakglass; nothing was done."
Middleware = Callable[..., Awaitable[BoltResponse]]


def _str(doc: object, *path: str) -> str:
    for key in path:
        doc = doc.get(key) if isinstance(doc, Mapping) else None
    return doc if isinstance(doc, str) else ""


def workspace_of(body: Mapping[str, Any]) -> dict[str, str]:
    """The team and Enterprise Grid org an interaction payload comes from ("" when none)."""
    enterprise = _str(body, "enterprise", "id") or _str(body, "team", "enterprise_id")
    return {"team": _str(body, "team", "id"), "enterprise": enterprise}


def recorded_workspace(config: SlackConfig, body: Mapping[str, Any]) -> dict[str, str]:
    """The workspace a new job is bound to: the configured one where set, never a claim."""
    came = workspace_of(body)
    return {
        "team": config.team_id or came["team"],
        "enterprise": config.enterprise_id or came["enterprise"],
    }


def foreign_problem(config: SlackConfig, team: str | None, enterprise: str | None) -> str:
    """Why a request from ``team`` / ``enterprise`` is not ours ("" when it is, or unbound)."""
    if config.team_id is not None and team != config.team_id:
        return "another workspace"
    if config.enterprise_id is not None and enterprise != config.enterprise_id:
        return "another Enterprise Grid org"
    return ""


def workspace_gate(config: SlackConfig, refusals: Counter[str]) -> Middleware:
    """Bolt global middleware: stop a request from another workspace before any listener."""

    async def gate(
        context: AsyncBoltContext,
        body: dict[str, Any],
        response: BoltResponse,
        next: Callable[[], Awaitable[None]],
    ) -> BoltResponse:
        problem = foreign_problem(config, context.team_id, context.enterprise_id)
        if not problem:
            await next()
            return response  # what Bolt had so far, for the listeners to replace
        kind = "command" if "command" in body else str(body.get("type", "unknown"))[:40]
        team, org = str(context.team_id)[:40], str(context.enterprise_id)[:40]
        log.warning("refused Slack %s from team %s, org %s: %s", kind, team, org, problem)
        refusals[FOREIGN] += 1
        if kind == "command":  # the person sees why; other kinds get a bare 200 (no retry)
            ephemeral = {"response_type": "ephemeral", "text": NOT_OUR_WORKSPACE}
            return BoltResponse(status=200, body=ephemeral)
        return BoltResponse(status=200, body="")

    return gate


def _workspace_problem(job: Job, body: Mapping[str, Any]) -> str:
    recorded = job.channel
    if recorded.get("platform") != kinds.PLATFORM:
        return ""  # requested elsewhere: no workspace on record; the message check still holds
    came = workspace_of(body)
    if came["team"] != recorded.get("team", ""):
        return "the click comes from another workspace than the job's"
    if came["enterprise"] != recorded.get("enterprise", ""):
        return "the click comes from another Enterprise Grid org than the job's"
    return ""


async def _message_problem(store: MessageRefs, job: Job, body: Mapping[str, Any]) -> str:
    channel = _str(body, "container", "channel_id")
    ts = _str(body, "container", "message_ts")
    if not channel or not ts:
        return "the click names no message"
    for ref in await store.message_refs(job.job_id, kinds.PLATFORM):
        posted = kinds.Posted.of(ref)
        if (
            posted is not None
            and ref.kind.startswith(BUTTON_KINDS)
            and (posted.channel, posted.ts) == (channel, ts)
        ):
            return ""
    return "the click is not on a message the bot posted for this job"


async def binding_problem(store: MessageRefs, job: Job, body: Mapping[str, Any]) -> str:
    """Why this click may not act on ``job`` ("" when it may)."""
    return _workspace_problem(job, body) or await _message_problem(store, job, body)
