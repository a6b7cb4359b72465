"""After the rollback, before the terminal record: what the privilege was used for.

The WPC plans one activity read (``terms.activity``: a READ tool on the job's own targets);
the rollback runner calls it through the gateway under its rollback token, so it is checked
against the WPC and receipted like every other call, and the job records the result with the
receipt's id (the verifier hashes one against the other). The span read is from the window's
start to now, after the rollback was verified, so the minutes a delayed removal left the
grant in place are covered too.

The first law wins: the read has a bounded time budget (the adapter paces and retries inside
its own, this is the backstop); a refusal, an error or the budget spent records
``unavailable (reason)`` and the job ends anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine import activity
from engine.job import Job
from engine.timeutil import parse_iso

if TYPE_CHECKING:
    from bot.gateway_service import GatewayOutcome

log = logging.getLogger("breakglass.activity")
READ_BUDGET_SECONDS = 90.0  # wall-clock backstop of the whole read (pages, pacing, retries)

Call = Callable[[Mapping[str, Any]], Awaitable["GatewayOutcome"]]


def planned_read(job: Job, now: datetime) -> dict[str, Any] | None:
    """The activity read this job's WPC plans, with its span; None when there is nothing to
    read: no read planned (an older WPC) or no write ever sent (nothing was granted)."""
    planned = job.plan.payload["metadata"]["breakglass"].get("activity")
    if not isinstance(planned, Mapping) or not (job.write_done or job.may_have_written):
        return None  # the caller also skips the read when the rollback found nothing granted
    since = parse_iso(job.window_start or job.created_at)
    window = activity.span(since, max(now, since))
    return {
        "tool": planned["tool"],
        "arguments": activity.read_arguments(planned["arguments"], window),
    }


async def read_activity(
    job: Job, now: datetime, call: Call, budget: float = READ_BUDGET_SECONDS
) -> dict[str, Any] | None:
    """The job's activity record (``engine.activity``), never raising for the tenant's sake."""
    step = planned_read(job, now)
    if step is None:
        return None
    try:
        outcome = await asyncio.wait_for(call(step), budget)
    except TimeoutError:
        return _unavailable(job, f"the logs were not read within {budget:.0f} s")
    if not outcome.allowed:
        return _unavailable(job, f"the read was refused ({outcome.reason})")
    if outcome.status != "success":
        error = outcome.result.get("error") or outcome.result.get("message") or "error"
        return _unavailable(job, f"the tenant did not answer the read ({str(error)[:80]})")
    return activity.read_record(outcome.receipt_id, outcome.result)


def _unavailable(job: Job, reason: str) -> dict[str, Any]:
    log.warning("activity of job %s unavailable: %s", job.job_id, reason)
    return activity.unavailable(reason)
