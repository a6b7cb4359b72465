"""Reconciliation: remove every grant carrying our job marker whose job is not open.

The third timebox layer's safety net: whatever a crash, a lost response or a bug left
behind is found in the tenant itself."""

from __future__ import annotations

import logging

from engine.errors import JobNotFound
from engine.job import OPEN
from engine.ports import Store, ToolPort

log = logging.getLogger("breakglass.service")


async def sweep(store: Store, tools: ToolPort) -> list[str]:
    """Remove the marked grants of jobs that are not open; returns what was removed."""
    removed = []
    for grant in await tools.find_marked_grants():
        try:
            state: str | None = (await store.load_job(grant.job_id)).state
        except JobNotFound:
            state = None  # our marker but no job of ours: nothing justifies it
        if state in OPEN:
            continue
        result = await tools.call(grant.rollback_tool, grant.arguments)
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
