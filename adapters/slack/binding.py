"""Is a Slack click bound to the job it names? Defence in depth behind the signature.

A button's value names a job, but anyone who can get a signed request to us (another
workspace of a distributed app, a crafted click on some other message) could name any job.
So a click counts only when it comes from the workspace (and Enterprise Grid org) the job
was requested in, and from a message the bot posted for that job: the job's status card or
an approver's DM prompt, compared by channel and message ts with the stored message refs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.slack import refs as kinds
from engine.job import Job
from engine.ports import MessageRefs

# Only these messages carry the job's buttons.
BUTTON_KINDS = (kinds.STATUS, kinds.approval_kind(""))


def _str(doc: object, *path: str) -> str:
    for key in path:
        doc = doc.get(key) if isinstance(doc, Mapping) else None
    return doc if isinstance(doc, str) else ""


def workspace_of(body: Mapping[str, Any]) -> dict[str, str]:
    """The team and Enterprise Grid org an interaction payload comes from ("" when none)."""
    enterprise = _str(body, "enterprise", "id") or _str(body, "team", "enterprise_id")
    return {"team": _str(body, "team", "id"), "enterprise": enterprise}


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
