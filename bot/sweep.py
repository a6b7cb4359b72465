"""Reconciliation: remove every grant carrying our job marker whose job is not open.

The third timebox layer's safety net: whatever a crash, a lost response or a bug left
behind is found in the tenant itself. With several replicas, each removal is made under
the job's lease, so one replica removes it; a grant of a job another replica runs is left
to that replica, and a grant another deployment marked is never ours to remove."""

from __future__ import annotations

import logging

from bot.leases import Leases
from engine.errors import JobNotFound
from engine.job import OPEN
from engine.ports import MarkedGrant, Store, ToolPort

log = logging.getLogger("breakglass.service")


async def sweep(
    store: Store, tools: ToolPort, leases: Leases, deployment: str | None = None
) -> list[str]:
    """Remove the marked grants of jobs that are not open; returns what was removed."""
    removed = []
    for grant in await tools.find_marked_grants():
        if not _ours(grant, deployment):
            continue
        try:
            state: str | None = (await store.load_job(grant.job_id)).state
        except JobNotFound:
            state = None  # our marker but no job of ours: nothing justifies it
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
    return removed


def _ours(grant: MarkedGrant, deployment: str | None) -> bool:
    """A grant marked by another deployment is not ours (unmarked ones predate the mark)."""
    return grant.deployment is None or deployment is None or grant.deployment == deployment
