"""Reconciliation: remove every grant carrying our job marker whose job is not open.

The third timebox layer's safety net: whatever a crash, a lost response or a bug left
behind is found in the tenant itself. With several replicas, each removal is made under
the job's lease, so one replica removes it; a grant of a job another replica runs is left
to that replica, and a grant another deployment marked is never ours to remove.

What it removes of a known job is told in that job's channel (which saw its escalation):
one ANNOUNCE per removal, in chat only. The job has ended, so its chain is closed: nothing
is appended to it and none of its signed records change."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.leases import Leases
from cards.job_views import SWEPT
from engine import lifecycle
from engine.errors import JobNotFound
from engine.job import OPEN
from engine.ports import ChatEvent, MarkedGrant, Store, StoredJob, ToolPort
from engine.timeutil import iso_ms

log = logging.getLogger("breakglass.service")

Tell = Callable[[StoredJob, str], None]  # the job whose grant was removed, and the grant


async def sweep(
    store: Store,
    tools: ToolPort,
    leases: Leases,
    deployment: str | None = None,
    tell: Tell | None = None,
) -> list[str]:
    """Remove the marked grants of jobs that are not open; returns what was removed.
    ``tell`` hears each removal of a known job's grant (it must not block)."""
    removed = []
    for grant in await tools.find_marked_grants():
        if not _ours(grant, deployment):
            continue
        try:
            job: StoredJob | None = await store.load_job(grant.job_id)
        except JobNotFound:
            job = None  # our marker but no job of ours: nothing justifies it
        state = job.state if job is not None else None
        if state in OPEN or not await leases.take(grant.job_id):
            continue
        try:
            result = await tools.call(grant.rollback_tool, grant.arguments)
        finally:
            await leases.release(grant.job_id)
        log.warning(
            "reconciliation removed %s (job %s is %s): %s",
            grant.description,
            grant.job_id,
            state or "unknown",
            result.status,
        )
        if result.ok:
            removed.append(grant.description)
            if job is not None and tell is not None:
                _told(tell, job, grant.description)
    return removed


def swept_notice(job: StoredJob, grant: str, now: datetime) -> ChatEvent:
    """The chat event saying the sweep removed ``grant`` (a description, free of secrets)."""
    detail = {"event": SWEPT, "grant": grant, "at": iso_ms(now)}
    return ChatEvent(lifecycle.ANNOUNCE, job.document, detail, (), now)


def _told(tell: Tell, job: StoredJob, grant: str) -> None:
    """Telling never fails the sweep (chat, or the store behind its outbox, may be down)."""
    try:
        tell(job, grant)
    except Exception as exc:
        log.warning(
            "the channel of job %s was not told that reconciliation removed %s (%s)",
            job.job_id,
            grant,
            type(exc).__name__,
        )


def _ours(grant: MarkedGrant, deployment: str | None) -> bool:
    """A grant marked by another deployment is not ours (unmarked ones predate the mark)."""
    return grant.deployment is None or deployment is None or grant.deployment == deployment
